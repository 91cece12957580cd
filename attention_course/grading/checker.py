"""Grade ONE submission: start its sandboxed worker, run the source's checks here, write JSON.

Forked from the grader's warm server (:func:`run_job`, see :func:`attention_course.grading.cli.start_forkserver`),
or started as ``python -I -m attention_course.grading.checker JOB.json``. Its first act is to make the
student's worker: forked from this still job-free process and moved behind the wall
(:func:`fork_worker`, :mod:`.wall`), or started as a new Python behind it (:func:`worker_argv`).
This process is clean: it never executes student code. It executes the nbgrader *source*
notebook's trusted cells (imports, setup) and its graded test cells, public and hidden parts, in
which every name the solution cells define is a :class:`Remote` proxy to the student's worker.
"""
from __future__ import annotations

import builtins
import functools
import importlib.util
import json
import os
import select
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

from attention_course.env import LANGUAGES, set_language

from . import timer, wall, wire
from .borrowing import judge_evidence, reference_fingerprints
from .course import (Assignment, cell_source, code_cells, defined_names, load_assignment, normalise)
from .messages import tr

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # .../attention_course
PACKAGE_REPO = PACKAGE_DIR.parent


class StudentCodeError(RuntimeError):
    """The student's function raised an exception that is not a built-in one."""


class StudentTimeout(RuntimeError):
    """The student's function ran past the time limit."""


class WorkerGone(RuntimeError):
    """The student's process is no longer running (killed for time or memory, or crashed)."""


# ------------------------------------------------------------------------- the checker's time limits
class CheckerTimeout(BaseException):
    """A grader function called back by the student's code ran past the call's time limit."""


def _on_alarm(signum, frame):
    raise CheckerTimeout("the grader's function ran past the time limit of the call")


def _limit(deadline: float) -> timer.Alarm:
    """The time limit of a callback the student's code called: until ``deadline`` (at least 0.01 s),
    raising :class:`CheckerTimeout` (nested in any limit already running, see :class:`timer.Alarm`)."""
    return timer.Alarm(max(0.01, deadline - time.monotonic()), _on_alarm)


def _importable(obj) -> bool:
    """True if pickle can send ``obj`` by reference (module.qualname resolves to it)."""
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str) or module == "__main__" or "<" in qualname:
        return False
    target = sys.modules.get(module)
    for part in qualname.split("."):
        target = getattr(target, part, None)
    return target is obj


def needs_callback(obj) -> bool:
    """Objects of the checker that go to the worker as a :class:`wire.CheckerProxy`: functions,
    lambdas and classes defined in test cells (they cannot be pickled by reference, and must run
    here, on the checker's own modules), bound methods, and instances of test-cell classes.

    Returns:
        True for those; False for what pickle can send by value or by reference.
    """
    if isinstance(obj, (types.FunctionType, type)):
        return not _importable(obj)
    if isinstance(obj, types.MethodType):
        return True
    if isinstance(obj, types.BuiltinMethodType):  # also builtin functions
        owner = getattr(obj, "__self__", None)
        return not (owner is None or isinstance(owner, types.ModuleType) or _importable(obj))
    return getattr(type(obj), "__module__", None) == "__main__"


# ------------------------------------------------------------------------- talking to the worker
class Worker:
    """The checker's end of one student's sandboxed worker process and of the pipes to it.

    Starting it starts the process (in its own session), sends it ``setup`` (the dict the sandbox's
    :func:`~attention_course.grading.sandbox.main` reads first) and waits for its ``"ready"``.
    Afterwards ``dead`` is None while the process runs, else why it stopped; ``warm_failed`` lists
    the imports the worker could not load. ``call_seconds`` is the time limit of the student's
    functions reached through :class:`Remote` proxies (set by :func:`run_checks`).

    Args:
        argv: the command that starts the worker (``python -I -B -m attention_course.grading.sandbox``,
            behind the wall of :mod:`.wall`), or a worker already forked (:func:`fork_worker`).
        setup: the worker's setup (scratch folder, files, limits, read and forbidden roots...).
        ready_timeout: seconds to wait for ``"ready"``.

    Raises:
        OSError: if ``argv`` cannot be started.
        WorkerGone: if the worker does not answer ``"ready"`` in time or stops first.
    """

    def __init__(self, argv, setup: dict, ready_timeout: float):
        self.proc = argv if isinstance(argv, ForkedProcess) else subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True,
            close_fds=True, env={k: v for k, v in os.environ.items() if k.startswith(WORKER_ENV)})
        self.tx, self.rx = self.proc.stdin.fileno(), self.proc.stdout.fileno()
        self.dead: str | None = None
        self.callbacks: dict[int, object] = {}   # key -> the checker's object behind a CheckerProxy
        self.callback_keys: dict[int, int] = {}  # id(object) -> key (the objects are kept alive)
        self.send(setup)
        reply = self.receive(ready_timeout)
        if reply[0] != "ready":
            raise WorkerGone("the student's process did not start")
        self.warm_failed = list(reply[1]) if isinstance(reply[1], list) else []

    def _callback_key(self, obj) -> int:
        key = self.callback_keys.get(id(obj))
        if key is None:
            key = len(self.callbacks) + 1
            self.callbacks[key], self.callback_keys[id(obj)] = obj, key
        return key

    def checker_object(self, key):
        """The checker's object the worker refers to by callback ``key`` (one it was passed as a ``"cb"`` id).

        Raises:
            wire.ProtocolError: if ``key`` is not an int this checker handed out.
        """
        if type(key) is not int or key not in self.callbacks:
            raise wire.ProtocolError("reference to a grader object that was never passed")
        return self.callbacks[key]

    def _persistent_id(self, originals=()):
        own = {id(o): i for i, o in enumerate(originals)}

        def persistent_id(obj):
            if type(obj) is Remote:
                return ("obj", obj._handle)
            index = own.get(id(obj))
            if index is not None:
                return ("orig", index)
            if type(obj) in wire.PLAIN_TYPES:
                return None
            if needs_callback(obj):
                name = getattr(obj, "__qualname__", None) or type(obj).__qualname__
                return ("cb", self._callback_key(obj), str(name)[:100])
            return None

        return persistent_id

    def send(self, message, originals=()) -> None:
        """Pickle ``message`` and write it to the worker (the checker -> worker pipe, see :mod:`.wire`).

        The checker's own callables and test-cell objects travel as callback ids, the student's objects as
        their handles, and the objects in ``originals`` as ``("orig", index)``.

        Raises:
            WorkerGone: if the worker has stopped, or stops while the message is written (it is killed).
            pickle.PicklingError, TypeError...: if ``message`` cannot be pickled (then nothing is sent).
        """
        if self.dead:
            raise WorkerGone(self.dead)
        self._write(wire.dumps(message, self._persistent_id(originals)))  # pickling may raise: nothing sent

    def _write(self, data: bytes) -> None:
        if self.dead:
            raise WorkerGone(self.dead)
        try:
            wire.send_bytes(self.tx, data)
        except (BrokenPipeError, OSError):
            self.kill("the student's process stopped (crashed, or killed for memory or CPU time)")
            raise WorkerGone(self.dead) from None

    def receive(self, timeout: float):
        """Wait at most ``timeout`` seconds for the worker's next message and decode it as untrusted data.

        Returns:
            The message (builtins only, see :func:`wire.loads_untrusted`).

        Raises:
            WorkerGone: if the worker had stopped already, or does not answer in time, sends something
                malformed or closes the pipe (then it is killed first, and ``dead`` says why).
        """
        if self.dead:
            raise WorkerGone(self.dead)
        ready, _, _ = select.select([self.rx], [], [], max(0.0, timeout))
        if not ready:
            self.kill(f"the student's process did not answer within {timeout:.0f} s and was stopped")
            raise WorkerGone(self.dead)
        try:
            return wire.loads_untrusted(wire.recv_raw(self.rx))
        except wire.ProtocolError as error:
            code = self.proc.poll()
            if code is not None and code < 0:
                name = signal.Signals(-code).name
                why = {"SIGXCPU": "it used up its CPU time", "SIGKILL": "it was killed (out of memory?)",
                       "SIGSEGV": "it crashed (segmentation fault)", "SIGXFSZ": "it wrote a file past the size limit"}
                self.kill(f"the student's process stopped: {why.get(name, name)}")
            else:
                self.kill(f"the student's process stopped ({error})")
            raise WorkerGone(self.dead) from None

    def request(self, message, timeout: float, grace: float = 0.0):
        """Send a command and wait for its reply, serving the worker's callbacks meanwhile (the
        student's code calling a function the checks passed to it). The whole exchange must end
        within ``timeout + grace`` seconds; callbacks must end within ``timeout``.

        Returns:
            The worker's reply (a non-empty tuple, untrusted data).

        Raises:
            WorkerGone: if the worker stops or does not answer in time; wire.ProtocolError: for a
                reply that is not a non-empty tuple. Anything else that interrupts the wait (a
                timeout of an outer call...) kills the worker first, since the conversation is out of step.
        """
        started = time.monotonic()
        deadline, work_deadline = started + timeout + grace, started + timeout
        self.send(message)
        try:
            while True:
                reply = self.receive(deadline - time.monotonic())
                if isinstance(reply, tuple) and reply[:1] == ("callback",):
                    self._serve_callback(reply, work_deadline)
                    continue
                if not isinstance(reply, tuple) or not reply:
                    raise wire.ProtocolError("malformed reply")
                return reply
        except WorkerGone:
            raise
        except BaseException:
            # we stop waiting for this reply: the conversation is out of step, end it
            self.kill("the student's process was stopped: a call ran past its time limit")
            raise

    def _serve_callback(self, message, deadline: float) -> None:
        """Run the checker's function the student's code called (arguments: untrusted data)."""
        seq = message[1] if len(message) > 1 and type(message[1]) is int else -1
        originals: list = []
        try:
            if len(message) != 5:
                raise wire.ProtocolError("malformed callback request")
            _, _, key, op, payload = message
            target = self.checker_object(key)
            decode = functools.partial(wire.unflatten, make_remote=self._make_remote,
                                       checker_object=self.checker_object)
            if op == "call":
                args, kwargs = (decode(node) for node in payload)
                if type(args) is not tuple or type(kwargs) is not dict or not all(type(k) is str for k in kwargs):
                    raise wire.ProtocolError("malformed callback arguments")
                value, originals, dirty = wire.call_noting_changes(target, args, kwargs, lambda: _limit(deadline))
                back = [(i, wire.detached_copy(o)) for i, (o, d) in enumerate(zip(originals, dirty)) if d]
            elif op == "getattr" and isinstance(payload, str) and not payload.startswith("_"):
                with _limit(deadline):
                    value = getattr(target, payload)
                back = []
            else:
                raise wire.ProtocolError("malformed callback request")
            result = ("cb_result", seq, "ok", value, back)
        except WorkerGone:
            raise
        except wire.ProtocolError as error:
            self.kill(f"the student's process stopped ({error})")
            raise WorkerGone(self.dead) from None
        except BaseException as error:  # noqa: BLE001 - the function failed: the student's code sees it
            result = ("cb_result", seq, "raise", type(error).__name__ if type(type(error)) is type else "Exception",
                      str(error)[:600])
            originals = []
        try:
            data = wire.dumps(result, self._persistent_id(originals))
        except Exception as error:  # noqa: BLE001 - e.g. the function returned an open file
            data = wire.dumps(("cb_result", seq, "raise", "TypeError",
                               f"the grader's function returned a value that cannot be sent ({error})"[:600]))
        self._write(data)

    def _make_remote(self, handle, kind, is_callable):
        return Remote(self, handle, kind, is_callable, self.call_seconds)

    call_seconds = 120.0

    def finish(self) -> None:
        """End the worker: a running one politely first (``exit``, so that its processes end and are
        reaped, their CPU time counted), then :meth:`kill` whatever is left."""
        if self.dead is None:
            try:
                self.request(("exit",), 5)
                self.proc.wait(timeout=2)
            except (WorkerGone, wire.ProtocolError, subprocess.TimeoutExpired, OSError):
                pass
        self.kill()

    def kill(self, why: str = "stopped") -> None:
        """Stop the worker: kill its process group, wait up to 10 s, close the pipes (and end the wall's holder).

        ``why`` becomes ``dead`` unless a reason is already there.
        """
        if self.dead is None:
            self.dead = why
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        if getattr(self.proc, "holder", None) is not None:
            self.proc.holder.close()


# ------------------------------------------------------------------------- a worker forked from a warm process
class ForkedProcess:
    """The checker's handle of a worker made by :func:`fork_worker`: what :class:`Worker` uses of a
    :class:`subprocess.Popen` (``pid``, ``stdin``, ``stdout``, ``poll``, ``wait``), and the wall's
    :class:`.wall.Holder` (None without a wall)."""

    def __init__(self, pid: int, tx: int, rx: int, holder):
        self.pid, self.holder, self.returncode = pid, holder, None
        self.stdin, self.stdout = open(tx, "wb", buffering=0), open(rx, "rb", buffering=0)

    def poll(self):
        """The exit status (negative: the signal that killed it), or None while it runs."""
        if self.returncode is None:
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None):
        """Wait for the end (at most ``timeout`` seconds) and return the exit status.

        Raises:
            subprocess.TimeoutExpired: if it still runs after ``timeout`` seconds.
        """
        end = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if end is not None and time.monotonic() > end:
                raise subprocess.TimeoutExpired(str(self.pid), timeout)
            time.sleep(0.005)
        return self.returncode


def _walled_paths(job: dict) -> tuple[list[str], list[str]]:
    """``(hide, readable)`` of the job's wall: the course, the package's checkout and the job's forbidden
    paths stay hidden; readable are :func:`.wall.readable_paths` (Python, its packages, this package).
    The checkout only when it is one: for an installed wheel its folder's parent is site-packages, and
    hiding that would hide torch and the rest."""
    course = str(Path(job["course"]))
    checkout = [str(PACKAGE_REPO)] if (PACKAGE_REPO / "pyproject.toml").is_file() else []
    return [course, *checkout, *job["forbidden"]], wall.readable_paths(str(PACKAGE_DIR), [course, *checkout])


def fork_worker(job: dict, scratch: str) -> ForkedProcess:
    """Fork this (warm, clean) process into the student's worker, behind the job's wall.

    Call it before anything of the assignment is read (the source notebook holds the solutions and
    the hidden tests; the worker gets a copy of this process's memory). The wall (``job["wall"]``,
    see :mod:`.wall`) is a :class:`.wall.Holder` started first; the child leaves this process's files
    and descriptors behind, joins the holder's namespaces (:func:`.wall.enter`) and runs
    :func:`.sandbox.run` on the pipes; it reads its setup from them, as a started worker does.

    Raises:
        wall.WallError: if the wall's holder does not start; OSError: if the fork fails.
    """
    holder = None
    kind = job.get("wall", "")
    if kind:
        hide, readable = _walled_paths(job)
        prefix = (wall.bwrap_argv(job["scratch_root"], readable, hide) if kind == "bubblewrap" else
                  wall.namespace_prefix(job["scratch_root"], scratch, hide, readable))
        holder = wall.Holder(prefix)
    else:
        os.makedirs(scratch, exist_ok=True)
    from_checker, to_worker = os.pipe()
    from_worker, to_checker = os.pipe()
    pid = os.fork()
    if pid == 0:  # the worker
        try:
            _become_worker(from_checker, to_checker, holder.pid if holder else None)
        finally:
            os._exit(70)
    os.close(from_checker)
    os.close(to_checker)
    return ForkedProcess(pid, to_worker, from_worker, holder)


#: The environment variables a forked worker keeps (prefixes): locale, time zone, threads, offline switches.
WORKER_ENV = ("PATH", "LANG", "LANGUAGE", "LC_", "TZ", "TERM", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
              "OPENBLAS_NUM_THREADS", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "PYTHONDONTWRITEBYTECODE")


def _become_worker(rx: int, tx: int, holder_pid: int | None) -> None:
    """In the forked child: a new session, killed with its parent, no descriptor but the pipes
    (0, 1 and 2 are ``/dev/null``), no environment variable but :data:`WORKER_ENV` (the instructor's
    tokens and paths stay out), inside the wall; then the worker's life (:func:`.sandbox.run`)."""
    os.setsid()
    for name in list(os.environ):
        if not name.startswith(WORKER_ENV):
            del os.environ[name]
    wall.die_with_parent()
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    keep = {0, 1, 2, rx, tx}
    for name in os.listdir("/proc/self/fd") if os.path.isdir("/proc/self/fd") else map(str, range(3, 1024)):
        if int(name) not in keep:
            try:
                os.close(int(name))
            except OSError:
                pass
    if holder_pid is not None:
        wall.enter(holder_pid)
    from . import sandbox

    sandbox.run(rx, tx)
    os._exit(0)


class StudentNotImplemented(NotImplementedError):
    """The student's function raised NotImplementedError (it is still the release's stub).
    A NotImplementedError, so checks behave exactly as in the student's kernel."""

    def __init__(self, message: str, function: str):
        super().__init__(message)
        self.function = function


class Remote:
    """A proxy in the checker for an object that lives in the student's process.

    Calling it, or reading an attribute, asks the worker to do it there (within ``timeout``
    seconds) and rebuilds the result from data (:func:`wire.unflatten`).

    Args:
        worker: the student's :class:`Worker`.
        handle: the object's handle in the worker.
        kind: its type's name; is_callable: whether it can be called.
        timeout: the time limit of each call, in seconds.
        label: the name the student gave it (for messages), else ``kind``.
    """

    __slots__ = ("_worker", "_handle", "_kind", "_callable", "_timeout", "_label")

    def __init__(self, worker: Worker, handle: int, kind: str, is_callable: bool, timeout: float, label: str = ""):
        object.__setattr__(self, "_worker", worker)
        object.__setattr__(self, "_handle", handle)
        object.__setattr__(self, "_kind", kind)
        object.__setattr__(self, "_callable", is_callable)
        object.__setattr__(self, "_timeout", timeout)
        object.__setattr__(self, "_label", label or kind)

    def __repr__(self):
        """``<student's TYPE>``."""
        return f"<student's {self._kind}>"

    def _decode(self, node, originals=()):
        return wire.unflatten(node, lambda h, k, c: Remote(self._worker, h, k, c, self._timeout), originals,
                              self._worker.checker_object)

    def _raise(self, reply):
        if len(reply) != 4:
            raise wire.ProtocolError("malformed reply")
        _, kind, name, message = reply
        if kind == "timeout":
            raise StudentTimeout(tr("your code ran longer than {seconds:.0f} s and was stopped", seconds=self._timeout))
        if name == "NotImplementedError":
            raise StudentNotImplemented(str(message), self._label)
        cls = getattr(builtins, str(name), None)
        if isinstance(cls, type) and issubclass(cls, Exception) and cls.__module__ == "builtins":
            try:
                raise cls(message)
            except TypeError:
                pass
        raise StudentCodeError(f"{name}: {message}")

    def __call__(self, *args, **kwargs):
        """Call the student's object in the worker; mirror what it changed in the mutable arguments.

        Returns:
            Its result, rebuilt from data (the student's objects as new :class:`Remote` proxies).

        Raises:
            StudentTimeout, StudentNotImplemented, a built-in exception of the student's code (else
            StudentCodeError), WorkerGone, wire.ProtocolError: for a malformed reply.
        """
        originals = wire.mutables((args, tuple(kwargs.values())))
        reply = self._worker.request(("call", self._handle, args, kwargs, self._timeout), self._timeout, grace=15)
        if reply[0] != "ok":
            self._raise(reply)
        if len(reply) != 3 or not isinstance(reply[2], list):
            raise wire.ProtocolError("malformed reply")
        _, value, back = reply
        for node in back:  # the arguments the student's code changed in place
            self._decode(node, originals)
        return self._decode(value, originals)

    def __getattr__(self, name):
        """The attribute ``name`` of the student's object, read in the worker and rebuilt from data.

        Raises:
            AttributeError: for a dunder name (never asked); else as :meth:`__call__`.
        """
        if name.startswith("__"):
            raise AttributeError(name)
        reply = self._worker.request(("getattr", self._handle, name, self._timeout), self._timeout, grace=15)
        if reply[0] != "ok":
            self._raise(reply)
        return self._decode(reply[1])


# ------------------------------------------------------------------------- grading one notebook
def plan_cells(assignment: Assignment, nb: dict) -> tuple[list[tuple[int, str]], list[str]]:
    """Which of the student's code cells to run (with what code), and notes about the notebook.

    Graded test cells (also those that lost their metadata) are left out: they run in the checker,
    from the source. An edited locked cell runs as the source has it.

    Returns:
        ``(cells, notes)``: ``(index, source)`` of each code cell to run, in order, and notes about
        missing nbgrader metadata and edited locked cells.
    """
    tests = {t.grade_id for t in assignment.tests}
    notes, run = [], []
    stripped_ids, edited_locked = 0, []
    for index, cell in code_cells(nb):
        meta = cell.get("metadata", {}) if isinstance(cell.get("metadata"), dict) else {}
        grade_id = (meta.get("nbgrader") or {}).get("grade_id") if isinstance(meta.get("nbgrader"), dict) else None
        source = cell_source(cell)
        if grade_id in tests:
            continue  # graded test cells run in the checker, from the source notebook
        if normalise(source) and any(normalise(source).startswith(t) or t in normalise(source)
                                     for t in assignment.test_sources if t):
            stripped_ids += 1
            continue  # a test cell that lost its metadata
        if grade_id in assignment.locked_sources and grade_id not in assignment.solution_ids:
            if normalise(source) != normalise(assignment.locked_sources[grade_id]):
                edited_locked.append(grade_id)
            source = assignment.locked_sources[grade_id]
        run.append((index, source))
    student_ids = {((c.get("metadata") or {}).get("nbgrader") or {}).get("grade_id")
                   for _, c in code_cells(nb) if isinstance((c.get("metadata") or {}).get("nbgrader"), dict)}
    missing = sorted((assignment.solution_ids | tests) - student_ids)
    if missing:
        notes.append(f"nbgrader metadata missing or changed for {len(missing)} graded cell(s) "
                     f"({', '.join(missing[:4])}{'...' if len(missing) > 4 else ''}); graded by function names instead")
    if edited_locked:
        notes.append(f"edited locked cell(s) {', '.join(edited_locked)}: the original was used")
    return run, notes


def warm_imports(assignment: Assignment) -> list[str]:
    """Modules the source notebook imports (loaded in the worker before the hook).

    Returns:
        ``numpy``, ``attention_course`` and every module the source's code cells import (absolute
        imports), once each, in order; never ``subprocess`` or ``google`` (Colab).
    """
    import ast

    modules = ["numpy", "attention_course"]
    for cell in assignment.cells:
        if cell["cell_type"] != "code":
            continue
        try:
            tree = ast.parse(cell_source(cell))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                modules.append(node.module)
    return [m for m in dict.fromkeys(modules) if m.split(".")[0] not in {"subprocess", "google"}]


def grade(job: dict) -> dict:
    """Grade one submission as ``job`` describes it: run its cells in the worker, the checks here.

    Args:
        job: the job :func:`attention_course.grading.cli.run_one` wrote to ``job.json``: ``course``,
            ``source`` (the nbgrader source notebook), ``notebook`` (the submission), ``total_seconds``,
            ``cell_seconds``, ``memory_mb``, ``file_mb``, ``scratch_root``, ``job_id``, ``forbidden``,
            ``namespaces``, ``result``.

    Returns:
        The result: ``tests`` (one :func:`run_test` entry per graded cell), ``cells`` (index, status
        ``ok``/``error``/``timeout``/``memory``/``killed``, output and error of each student cell run),
        ``notes`` (about the notebook), ``patched`` and ``blocked`` (from the worker's report),
        ``borrowed`` (:func:`_add_borrowing`),
        ``worker`` (why the worker stopped, or None), ``sandbox`` and ``seconds``.

    Raises:
        OSError, json.JSONDecodeError, KeyError: if the job, the source or the submission cannot be read.
        wire.ProtocolError: if the worker answers a command with a malformed reply.
    """
    started = time.monotonic()
    deadline = started + job["total_seconds"]
    scratch = os.path.join(job["scratch_root"], job["job_id"])
    forked = fork_worker(job, scratch) if job.get("fork") else None  # before the source is read
    course = Path(job["course"])
    assignment = load_assignment(course, Path(job["source"]))
    nb = json.loads(Path(job["notebook"]).read_text(encoding="utf-8"))
    cells, notes = plan_cells(assignment, nb)
    result = {"tests": [], "cells": [], "notes": notes, "patched": [], "blocked": [], "worker": None,
              "sandbox": f"{job['wall']}+audit-hook" if job.get("wall") else "audit-hook"}
    modules = warm_imports(assignment)
    setup = worker_setup(job, assignment, scratch, modules)
    argv = forked or worker_argv(job, scratch, modules)
    _grade_in_worker(argv, setup, assignment, cells, result, deadline, float(job["cell_seconds"]))
    result["seconds"] = round(time.monotonic() - started, 2)
    return result


def worker_setup(job: dict, assignment: Assignment, scratch: str, modules: list[str]) -> dict:
    """The setup the sandboxed worker reads first (see :func:`attention_course.grading.sandbox.main`).

    Args:
        job: the job (see :func:`grade`): limits, ``forbidden`` paths, ``scratch_root``.
        assignment: gives the data files and the trusted prelude cells.
        scratch: the worker's scratch folder.
        modules: the warm imports (:func:`warm_imports`).

    Returns:
        A dict: ``scratch``, ``files``, ``memory_mb``, ``cpu_seconds``, ``file_mb``, ``read_roots``
        (the Python installation, system folders, this package), ``forbidden_roots`` (the course,
        ``solutions/``, the job's forbidden paths, the scratch root, the repositories' ``.git``...),
        ``warm_imports``, ``output_chars``, ``prelude`` and ``references`` (the code fingerprints of the
        graded names' reference implementations, :func:`.borrowing.reference_fingerprints`).
    """
    course = Path(job["course"])
    read_roots = [sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.__file__),
                  "/usr/lib", "/usr/share", "/usr/local/lib", "/lib", "/lib64", "/etc", "/proc/self",
                  "/sys/devices/system/cpu"]
    forbidden = [str(course), str(PACKAGE_REPO / "solutions"), *job["forbidden"], job["scratch_root"]]
    for extra in (str(PACKAGE_REPO / ".git"), str(PACKAGE_REPO / ".nbgrader"), str(course / ".git")):
        forbidden.append(extra)
    read_roots.append(str(PACKAGE_DIR))
    return {"scratch": scratch, "files": assignment.data_files(), "memory_mb": job["memory_mb"],
            "cpu_seconds": int(job["total_seconds"]) + 5, "file_mb": job["file_mb"],
            "read_roots": read_roots, "forbidden_roots": forbidden, "warm_imports": modules,
            "output_chars": 20000, "prelude": [src for _, src in assignment.trusted_prelude()],
            "language": job.get("language") or LANGUAGES[0],
            "references": sorted(reference_fingerprints(assignment.graded_names))}


def worker_argv(job: dict, scratch: str, modules: list[str]) -> list[str]:
    """The command that starts the worker: ``python -I -B -m attention_course.grading.sandbox``, behind
    the job's wall (``job["wall"]``, see :mod:`.wall`).

    ``"bubblewrap"``: :func:`.wall.bwrap_argv`, which shows only the system, the Python installation,
    ``sys.path`` and this package (never the course's repository, the job's forbidden paths or the
    host's ``/tmp``). ``"unshare"``: :func:`.wall.namespace_prefix`, which hides the course, the
    package's repository and the forbidden paths, and exposes the Python installation, this package
    and the folders of the warm imports ``modules``. None: it creates the ``scratch`` folder.

    Raises:
        OSError: if the scratch folder cannot be created.
    """
    python = [sys.executable, "-I", "-B", "-m", "attention_course.grading.sandbox"]
    hide, readable = _walled_paths(job)
    kind = job.get("wall", "unshare" if job.get("namespaces") else "")
    if kind == "bubblewrap":
        return wall.bwrap_argv(job["scratch_root"], readable, hide) + python
    if kind != "unshare":
        os.makedirs(scratch, exist_ok=True)
        return python
    expose = [sys.prefix, sys.base_prefix, sys.exec_prefix, str(PACKAGE_DIR)]
    for module in modules:
        try:
            spec = importlib.util.find_spec(module.split(".")[0])
        except (ImportError, ValueError):
            spec = None
        if spec and spec.origin:
            expose.append(os.path.dirname(spec.origin) if spec.submodule_search_locations else spec.origin)
    return wall.namespace_prefix(job["scratch_root"], scratch, hide, expose) + python


def _grade_in_worker(argv: list[str], setup: dict, assignment: Assignment, cells: list[tuple[int, str]],
                     result: dict, deadline: float, cell_seconds: float) -> None:
    """Start the worker, run the student's ``cells`` there and the checks here, filling ``result``.

    If the worker cannot start or stops, ``result["worker"]`` says why (the checks then run without
    the student's functions if they had not run yet); the worker is killed at the end in any case.

    Raises:
        OSError: if ``argv`` cannot be started; wire.ProtocolError: for a malformed reply.
    """
    worker = None
    try:
        worker = Worker(argv, setup, ready_timeout=max(5.0, min(90.0, deadline - time.monotonic())))
        run_student_cells(worker, cells, result, deadline, cell_seconds)
        values = {}
        if not worker.dead:
            reply = worker.request(("fetch", assignment.graded_names), max(5.0, deadline - time.monotonic()))
            values = reply[1] if reply[0] == "ok" else {}
        run_checks(assignment, worker, values, result, deadline, cell_seconds)
        _add_report(worker, result)
        _add_borrowing(worker, assignment, result)
    except WorkerGone as gone:
        result["worker"] = str(gone)
        if not result["tests"]:
            run_checks(assignment, None, {}, result, deadline, cell_seconds)
    finally:
        if worker is not None:
            if worker.dead and result["worker"] is None:
                result["worker"] = worker.dead
            worker.finish()


def run_student_cells(worker: Worker, cells: list[tuple[int, str]], result: dict, deadline: float,
                      cell_seconds: float) -> None:
    """Run the student's ``cells`` (index, source) in the worker, one at a time, adding each one's entry
    to ``result["cells"]``.

    A cell gets at most ``cell_seconds`` and never more than the time left before ``deadline``; once
    that is used up the other cells are listed as not run (``timeout``). If the worker stops, the cell
    is ``killed`` and the rest are left out.

    Raises:
        wire.ProtocolError: if the worker answers with a malformed reply.
    """
    for index, source in cells:
        left = deadline - time.monotonic()
        if left <= 1:
            result["cells"].append({"index": index, "status": "timeout",
                                    "error": "not run: the submission's total time was used up"})
            continue
        limit = min(cell_seconds, left - 0.5)
        try:
            reply = worker.request(("run_cells", [(index, source)], limit), limit + 10)
            result["cells"].extend(reply[1] if reply[0] == "ok" else
                                   [{"index": index, "status": "error", "error": str(reply[2:])}])
        except WorkerGone as gone:
            result["cells"].append({"index": index, "status": "killed", "error": str(gone)})
            break


def _add_report(worker: Worker, result: dict) -> None:
    """Copy the worker's report (what the submission patched, what the sandbox blocked) into ``result``."""
    if not worker.dead:
        try:
            report = worker.request(("report",), 20)[1]
            result["patched"], result["blocked"] = report["patched"], report["blocked"]
        except WorkerGone:
            pass


def _add_borrowing(worker: Worker, assignment: Assignment, result: dict) -> None:
    """Ask the worker what each graded name's object is, reaches and ran (:meth:`.sandbox.SandboxWorker.do_borrowing`)
    and keep, in ``result["borrowed"]``, graded name -> ``{"found": [why...], "tampering": [what...]}``:
    only the fingerprints that are this chapter's references count (the worker's report is untrusted data)."""
    result["borrowed"] = {}
    if worker.dead:
        return
    try:
        reply = worker.request(("borrowing", assignment.graded_names), 30)
    except WorkerGone:
        return
    if not (reply[0] == "ok" and len(reply) == 2 and isinstance(reply[1], dict)):
        result["notes"].append("the worker did not report what the graded functions are and ran "
                               f"({str(reply)[:200]}): borrowing was judged on the source text only")
        return
    result["borrowed"] = judge_evidence(reply[1], reference_fingerprints(assignment.graded_names),
                                        assignment.graded_names)


def run_checks(assignment: Assignment, worker, values: dict, result: dict, deadline: float, cell_seconds: float):
    """Execute the source notebook's trusted cells and test cells, in order, here.

    In the namespace the test cells see, each name a solution cell defines is the student's object
    (rebuilt from ``values``, functions as :class:`Remote` proxies with ``cell_seconds`` per call),
    or missing. Colab set-up cells are skipped; a trusted cell that fails is noted.

    Args:
        assignment: the source notebook.
        worker: the student's :class:`Worker`, or None (the worker is gone: every name is missing).
        values: the flattened values the worker sent for the graded names.
        result: the result being built: one :func:`run_test` entry per test cell is added to
            ``tests``, notes to ``notes``.
        deadline: unused (the calls' limits are ``cell_seconds``).
        cell_seconds: the time limit of each call of a student's function.
    """
    namespace: dict = {"__name__": "__main__"}
    if worker is not None:
        worker.call_seconds = cell_seconds
    tests = {t.index: t for t in assignment.tests}
    missing = [n for n in assignment.graded_names if n not in values]
    for index, cell in enumerate(assignment.cells):
        if cell["cell_type"] != "code":
            continue
        meta = cell.get("metadata", {}).get("nbgrader", {})
        source = cell_source(cell)
        if index in tests:
            result["tests"].append(run_test(tests[index], namespace))
        elif meta.get("solution"):
            for name in defined_names(source):
                if name in values and worker is not None and not worker.dead:
                    try:
                        namespace[name] = wire.unflatten(
                            values[name], lambda h, k, c, label=name: Remote(worker, h, k, c, cell_seconds, label),
                            checker_object=worker.checker_object)
                    except wire.ProtocolError:
                        namespace.pop(name, None)
                else:
                    namespace.pop(name, None)
        elif "colab-setup" in (cell.get("metadata", {}).get("tags") or []):
            continue  # installs/seeds for the student; test cells seed their own generators
        else:
            try:
                exec(compile(source, f"<source cell {index}>", "exec"), namespace)  # trusted course code
            except Exception as error:  # noqa: BLE001
                result["notes"].append(f"course setup cell {index} failed in the checker: {type(error).__name__}")
    if missing and worker is not None and not worker.dead:
        result["notes"].append("not defined in the notebook: " + ", ".join(missing))


def run_test(test, namespace: dict) -> dict:
    """Run one graded test cell's public, then hidden part in ``namespace``; any exception fails it.

    Args:
        test: the :class:`~attention_course.grading.course.TestCell`.
        namespace: the checker's namespace (trusted cells run, the student's names as :class:`Remote`).

    Returns:
        A dict: ``grade_id``, ``max``, ``points`` (all or nothing), ``outcome`` (``"passed"``,
        ``"failed_public"`` or ``"failed_hidden"``), ``message`` (for the student; for a hidden test,
        a generic sentence only) and ``instructor`` (the full explanation, for ``grade.log``).
    """
    entry = {"grade_id": test.grade_id, "max": test.points, "points": 0.0, "outcome": "passed",
             "message": "", "instructor": ""}
    for part, code in (("public", test.public), ("hidden", test.hidden)):
        if not code.strip():
            continue
        try:
            exec(compile(code, f"<{test.grade_id} {part} tests>", "exec"), namespace)
        except BaseException as error:  # noqa: BLE001 - any failure is a failed check
            text = _explain(error, code if part == "public" else None)
            entry["outcome"] = f"failed_{part}"
            entry["instructor"] = f"{part} tests: {text}"
            entry["message"] = text if part == "public" else \
                tr("the public checks pass, but hidden tests found a mistake: test your function on other inputs")
            return entry
    entry["points"] = test.points
    return entry


def _not_implemented(error: BaseException | None) -> StudentNotImplemented | None:
    """The student's NotImplementedError behind a failure, also when a check converted it into an
    AssertionError (``except RuntimeError: raise AssertionError(...) from None`` keeps it as context)."""
    for _ in range(20):
        if error is None:
            return None
        if isinstance(error, StudentNotImplemented):
            return error
        error = error.__cause__ or error.__context__
    return None


def _explain(error: BaseException, public_code: str | None) -> str:
    missing = _not_implemented(error)
    if missing is not None:
        said = f": {missing}" if str(missing) else ""
        return tr("{function} is not implemented yet (it raised NotImplementedError{said}): replace "
                  "`raise NotImplementedError()` with your code", function=missing.function, said=said)
    if isinstance(error, NameError):
        return tr("{error} (is the cell that defines it still there, and does it run without errors?)", error=error)
    if isinstance(error, WorkerGone):
        return str(error)
    if isinstance(error, AssertionError):
        if str(error):
            return str(error)
        line = None
        tb = error.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code.co_filename.endswith("public tests>"):
                line = tb.tb_lineno
            tb = tb.tb_next
        if public_code and line:
            return tr("this check failed: {line}", line=public_code.splitlines()[line - 1].strip())
        return tr("a check failed")
    text = f"{type(error).__name__}: {error}" if not isinstance(error, (StudentCodeError, StudentTimeout)) else str(error)
    return tr("your code raised {error}", error=text[:600]) if isinstance(error, (StudentCodeError, Exception)) and \
        not isinstance(error, StudentTimeout) else text


def main() -> None:
    """Run ``python -I -m attention_course.grading.checker JOB.json``: grade the job, write its result
    (:func:`grade_job`)."""
    grade_job(Path(sys.argv[1]))


def run_job(job_path: str) -> None:
    """Grade the job at ``job_path`` in a process forked from the grader's warm server (see
    :func:`attention_course.grading.cli.run_one`): as ``python -I -B`` would (no ``sys.path`` entry
    relative to the working folder, no bytecode written), in the job's folder. A failure's traceback
    is written to ``checker_error.txt`` beside the job, then re-raised (the process ends with status 1).
    """
    sys.path[:] = [p for p in sys.path if p and os.path.isabs(p)]
    sys.dont_write_bytecode = True
    path = Path(job_path)
    os.chdir(path.parent)
    try:
        grade_job(path)
    except BaseException:
        import traceback

        (path.parent / "checker_error.txt").write_text(traceback.format_exc(), encoding="utf-8")
        raise


def grade_job(job_path: Path) -> None:
    """Grade the job at ``job_path`` and write its result.

    Caps this process's address space (``checker_memory_mb`` of the job, default 4096 MB, where
    ``resource`` allows it), runs :func:`grade` and writes its result as JSON to the job's ``result``
    path (through a ``.tmp`` file, replaced at once). An exception of :func:`grade` is raised: no result file.

    Raises:
        OSError, json.JSONDecodeError, KeyError: as :func:`grade`.
    """
    job = json.loads(job_path.read_text(encoding="utf-8"))
    set_language(job.get("language") or LANGUAGES[0])  # the submission's: its checks speak it, and so does the worker
    try:
        import resource

        limit = job.get("checker_memory_mb", 4096) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):
        pass
    result = grade(job)
    out = Path(job["result"])
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1, default=str), encoding="utf-8")
    os.replace(tmp, out)


if __name__ == "__main__":
    main()

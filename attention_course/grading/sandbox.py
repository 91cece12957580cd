"""The sandboxed worker: runs ONE student's cells and answers remote calls from the checker.

Started by :mod:`.checker` as ``python -I -m attention_course.grading.sandbox`` (inside Linux
namespaces when available, see :mod:`.wall`). It talks over its original
stdin/stdout (moved to private descriptors; the student's ``print`` goes to a capped buffer).

Limits, applied before any student code runs:

* ``resource.setrlimit``: address space (memory), CPU seconds, size of any file written, no core
  files; per-cell and per-call wall-clock limits with ``SIGALRM``; the checker also kills the
  whole process group when the submission's total time is up.
* A Python audit hook (PEP 578) refuses: opening files outside the scratch directory and the Python
  installation (never the course, ``solutions/``, the submissions or the output), writing or
  deleting outside the scratch directory, listing other directories, starting processes, signals to
  other processes, sockets, ``ctypes`` (after the course's own imports are loaded), and ``gc``
  introspection; it tells the borrowing watch (:class:`.borrowing.CallWatch`, which traces the
  checks' calls) of every profile or trace function set. An audit hook lives in the same interpreter
  as the student's code, so it is a guard rail, not a wall: the kernel-level wall is :mod:`.wall`
  (bubblewrap, or the unshare script), which also holds for file I/O done in C (``torch.save``,
  ``numpy.memmap``, compiled extensions).
"""
from __future__ import annotations

import builtins
import contextlib
import io
import os
import select
import signal
import sys

# Only the standard library and numpy before the hook; everything else is imported on request.
# (wire imports numpy; timer is standard library only.)
from attention_course.grading import borrowing, timer, wire

#: The commands the checker sends (:meth:`SandboxWorker.dispatch` runs ``do_<command>``).
COMMANDS = ("run_cells", "fetch", "call", "getattr", "report", "borrowing", "exit")


class CellTimeout(BaseException):
    """Raised by SIGALRM inside student code (a BaseException, so ``except Exception`` won't eat it)."""


class CappedWriter(io.TextIOBase):
    """A text stream that keeps the first ``limit`` characters and counts the rest."""

    def __init__(self, limit: int = 20000):
        self.limit, self.parts, self.kept, self.total = limit, [], 0, 0

    def writable(self):
        """True: the stream can be written to."""
        return True

    def write(self, text):
        """Keep as much of ``text`` as fits under the limit, count all of it; return its length."""
        text = str(text)
        self.total += len(text)
        if self.kept < self.limit:
            piece = text[: self.limit - self.kept]
            self.parts.append(piece)
            self.kept += len(piece)
        return len(text)

    def flush(self):
        """Do nothing (the text is kept in memory)."""
        pass

    def take(self):
        """``(kept text, characters written)`` since the last call, then start again from empty."""
        out, total = "".join(self.parts), self.total
        self.parts, self.kept, self.total = [], 0, 0
        return out, total


def _limits(memory_mb: int, cpu_seconds: int, file_mb: int) -> None:
    import resource

    def cap(which, value):
        try:
            soft, hard = resource.getrlimit(which)
            value = value if hard == resource.RLIM_INFINITY else min(value, hard)
            resource.setrlimit(which, (value, value))
        except (ValueError, OSError):
            pass

    cap(resource.RLIMIT_AS, memory_mb * 1024 * 1024)
    cap(resource.RLIMIT_CPU, cpu_seconds)
    cap(resource.RLIMIT_FSIZE, file_mb * 1024 * 1024)
    cap(resource.RLIMIT_CORE, 0)


# ------------------------------------------------------------------------- the audit hook
# The hook and every function it calls are closures made once, at installation: everything they
# need is bound then, as locals (rebinding a module global later changes nothing), and the hook
# refuses ``object.__setattr__`` (e.g. replacing ``__code__``) on any of them.
_NO_PROCESS = ("subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork",
               "os.forkpty", "os.kill", "os.killpg", "pty.spawn", "os.startfile", "resource.setrlimit",
               "resource.prlimit", "ctypes.dlsym", "ctypes.call_function",
               "ctypes.cdata", "ctypes.cdata/buffer", "ctypes.addressof", "gc.get_objects",
               "gc.get_referrers", "gc.get_referents", "sys._current_frames", "webbrowser.open",
               "sys.remote_exec")
_PATH_WRITES = ("os.remove", "os.rmdir", "os.mkdir", "os.rename", "os.replace", "os.link", "os.symlink",
                "os.chmod", "os.chown", "os.truncate", "os.utime", "os.chflags", "os.lchflags",
                "shutil.rmtree", "shutil.copyfile", "shutil.copytree", "shutil.move", "shutil.copymode",
                "shutil.copystat", "shutil.chown", "shutil.make_archive", "shutil.unpack_archive",
                "os.chdir", "os.setxattr", "os.removexattr")
_PATH_READS = ("os.listdir", "os.scandir", "glob.glob", "os.listxattr", "os.getxattr")


def _path_rules(scratch: str, read_roots, forbidden_roots):
    """The hook's path tests, as closures over the resolved roots.

    Returns:
        ``(inside, resolve, may_read, may_write)``: ``inside(path, root)``; ``resolve(path)`` (the
        real path of a ``str``/``bytes``/path-like, None for a descriptor or None, ``"?"`` if it
        cannot be resolved); ``may_read(path)`` (inside the scratch folder, or in a read root more
        specific than any forbidden root that holds it); ``may_write(path)`` (inside the scratch
        folder, or ``/dev/null``). ``path`` None (a descriptor) is always allowed.
    """
    import os as _os
    import posixpath as _pp

    realpath, fspath, sep = _pp.realpath, _os.fspath, _os.sep
    scratch = realpath(scratch)
    read_roots = tuple(realpath(p) for p in read_roots) + ("/dev/null", "/dev/urandom", "/dev/random")
    forbidden_roots = tuple(realpath(p) for p in forbidden_roots)

    def inside(path, root):
        return path == root or path.startswith(root.rstrip(sep) + sep)

    def resolve(path):
        if isinstance(path, int) or path is None:
            return None
        try:
            path = fspath(path)
            if isinstance(path, bytes):
                path = path.decode("utf-8", "surrogateescape")
            return realpath(path)
        except Exception:
            return "?"

    def may_read(path):
        if path is None or inside(path, scratch):
            return True
        # the most specific root wins: the venv inside a forbidden course folder stays readable
        allowed = max((len(root) for root in read_roots if inside(path, root)), default=-1)
        refused = max((len(root) for root in forbidden_roots if inside(path, root)), default=-1)
        return allowed > refused

    def may_write(path):
        return path is None or inside(path, scratch) or path == "/dev/null"

    return inside, resolve, may_read, may_write


def _denial(blocked: list):
    """``deny(event, detail)``: record ``"event detail"`` in ``blocked`` and raise PermissionError."""

    def deny(event, detail):
        blocked.append(f"{event} {detail}")
        raise PermissionError(f"grading sandbox: {event} {detail!s} is not allowed")

    return deny


def _file_checks(rules, deny):
    """The checks of the file events, as closures over the path ``rules`` of :func:`_path_rules`.

    Returns:
        ``(check_open, check_listing, check_change)``: each takes ``(event, args)`` and calls
        ``deny`` (which raises PermissionError) for a refused path: ``open`` for reading outside the
        readable roots or writing outside the scratch folder; listing (:data:`_PATH_READS`) an
        unreadable folder; changing (:data:`_PATH_WRITES`) any path outside the scratch folder.
    """
    import os as _os

    _, resolve, may_read, may_write = rules
    write_flags = _os.O_WRONLY | _os.O_RDWR | _os.O_CREAT | _os.O_TRUNC | _os.O_APPEND

    def check_open(event, args):
        path = resolve(args[0])
        mode, flags = args[1], args[2] if len(args) > 2 else 0
        writing = (isinstance(mode, str) and any(ch in mode for ch in "wax+")) or \
                  (isinstance(flags, int) and bool(flags & write_flags) and mode is None)
        if (writing and not may_write(path)) or not may_read(path):
            deny("open", args[0])

    def check_listing(event, args):
        if args and not may_read(resolve(args[0])):
            deny(event, args[0])

    def check_change(event, args):
        for arg in args:
            if isinstance(arg, (str, bytes)) or hasattr(arg, "__fspath__"):
                if not may_write(resolve(arg)):
                    deny(event, arg)

    return check_open, check_listing, check_change


def _library_check(rules, deny):
    """``check_dlopen(event, args)``: ``ctypes.dlopen`` only of an absolute path inside the Python installation.

    torch & co. load their own libraries with ctypes; the scratch folder and libc by name are refused
    (``deny`` raises PermissionError).
    """
    import os as _os
    import posixpath as _pp

    inside, resolve, _, _ = rules
    fspath = _os.fspath
    lib_roots = tuple(_pp.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix))

    def check_dlopen(event, args):
        path = resolve(args[0]) if isinstance(args[0], (str, bytes)) and fspath(args[0])[:1] in ("/", b"/") else None
        if path is None or not any(inside(path, root) for root in lib_roots):
            deny(event, args[0])

    return check_dlopen


def _hook(checks, deny, hook_ids: list, on_trace=None):
    """The audit hook: hands each event to its check, refuses processes, signals, sockets, ``gc``
    introspection... (:data:`_NO_PROCESS`), and ``object.__setattr__`` on an object whose id is in
    ``hook_ids`` (the hook's own functions); ``sys.setprofile``/``sys.settrace`` are told to ``on_trace(event)``
    (:meth:`.borrowing.CallWatch.audit`), if given."""
    check_open, check_listing, check_change, check_dlopen = checks
    path_reads, path_writes, no_process = _PATH_READS, _PATH_WRITES, _NO_PROCESS

    def hook(event, args):
        if event == "open":
            check_open(event, args)
        elif event in path_reads:
            check_listing(event, args)
        elif event in path_writes:
            check_change(event, args)
        elif event == "ctypes.dlopen":
            check_dlopen(event, args)
        elif event.startswith("socket.") or event in no_process:
            deny(event, "")
        elif event == "object.__setattr__" and args and id(args[0]) in hook_ids:
            deny(event, "the sandbox hook")
        elif on_trace is not None and event in ("sys.setprofile", "sys.settrace"):
            on_trace(event)

    return hook


def install_audit_hook(scratch: str, read_roots, forbidden_roots, blocked: list, protect=(), on_trace=None) -> None:
    """Install the guard-rail hook (PEP 578) for the rest of the process. Everything it needs is bound now, as locals.

    Args:
        scratch: the scratch folder: readable and writable.
        read_roots: paths readable besides it (the Python installation, the warm imports...).
        forbidden_roots: paths never readable, unless a more specific read root holds them.
        blocked: where each refused ``"event detail"`` is appended (for the worker's report).
        protect: more objects whose attributes may not be replaced (``object.__setattr__``: a class's
            methods, a function's ``__code__`` or defaults...).
        on_trace: called with the event's name when any code sets a profile or trace function.

    A refused event raises PermissionError in the code that caused it (see the module docstring).
    """
    rules = _path_rules(scratch, read_roots, forbidden_roots)
    deny = _denial(blocked)
    checks = (*_file_checks(rules, deny), _library_check(rules, deny))
    hook_ids: list[int] = []
    hook = _hook(checks, deny, hook_ids, on_trace)
    hook_ids.extend(id(function) for function in (hook, deny, *rules, *checks, *protect))
    sys.addaudithook(hook)


# ------------------------------------------------------------------------- tampering
def _snapshot():
    """Identities of functions a submission could patch to fool checks in its own kernel."""
    import builtins

    import numpy

    snap = {}
    for module, prefix in ((numpy, "numpy."), (numpy.testing, "numpy.testing."), (builtins, "builtins.")):
        for name, value in vars(module).items():
            if not name.startswith("_") and callable(value):
                snap[prefix + name] = id(value)
    return snap


def _changed(before):
    import builtins

    import numpy

    now = _snapshot()
    changed = sorted(k for k, v in before.items() if now.get(k) != v)
    for name in ("AssertionError", "Exception"):
        if getattr(builtins, name) is not getattr(sys.modules["builtins"], name):
            changed.append("builtins." + name)
    _ = numpy
    return changed


def _transformer_counts(shell) -> tuple[int, int, int]:
    """How many IPython input and AST transformers ``shell`` has (a submission may add its own)."""
    return (len(shell.input_transformers_cleanup), len(shell.input_transformers_post),
            len(shell.ast_transformers))


# ------------------------------------------------------------------------- errors, both ways
def describe(error: BaseException) -> tuple[str, str, str]:
    """``(kind, type name, message)`` of an exception of the student's code, as the checker receives it.

    ``kind`` is ``"timeout"`` for :class:`CellTimeout` (then a fixed name and message), ``"memory"``
    for MemoryError, else ``"error"``; the message is cut to 600 characters (empty if ``str`` fails).
    """
    if isinstance(error, CellTimeout):
        return "timeout", "TimeoutError", "ran past the time limit and was stopped"
    kind = "memory" if isinstance(error, MemoryError) else "error"
    try:
        message = str(error)
    except BaseException:  # noqa: BLE001
        message = ""
    name = type(error).__name__ if type(type(error)) is type else "Exception"
    return kind, name, message[:600]


def checker_error(name, text) -> Exception:
    """The exception to raise in the student's code for a callback of the checker that raised ``name: text``.

    The built-in exception class of that name if there is one (and it takes a message), else a
    RuntimeError whose message starts with the name.
    """
    cls = getattr(builtins, str(name), None)
    if not (isinstance(cls, type) and issubclass(cls, Exception)):
        cls, text = RuntimeError, f"{name}: {text}"
    try:
        return cls(text)
    except Exception:  # noqa: BLE001 - a class that wants other arguments
        return RuntimeError(f"{name}: {text}")


# ------------------------------------------------------------------------- the worker
class SandboxWorker:
    """The worker's end of the conversation with the checker: the student's shell, objects and pipes.

    The student's objects the checker holds a proxy of are kept in ``objects`` (handle -> object);
    the checker's objects the student's code got are :class:`wire.CheckerProxy` in ``proxies``.
    ``SIGALRM`` (:meth:`on_alarm`) raises :class:`CellTimeout` in the student's code, except while a
    message is being read or written (a half-sent message would break the protocol): then it waits
    until the I/O is done (``alarm_pending``).

    Args:
        rx, tx: the private descriptors of the pipes from and to the checker.
        shell: the IPython shell that runs the student's cells (its prelude has run).
        output_chars: how much of each cell's or call's printed output is kept (:class:`CappedWriter`).
    """

    def __init__(self, rx: int, tx: int, shell, output_chars: int):
        self.rx, self.tx, self.shell = rx, tx, shell
        self.baseline = _snapshot()
        self.transformers_before = _transformer_counts(shell)
        self.blocked: list[str] = []
        self.out = CappedWriter(output_chars)
        self.alarm_io = self.alarm_pending = False
        self.objects: dict[int, object] = {}
        self.ids: dict[int, int] = {}
        self.proxies: dict[int, wire.CheckerProxy] = {}
        self.callback_originals: list[list] = []  # the arguments of the callbacks in progress (innermost last)
        self.sequence = 0
        self.watch: borrowing.CallWatch | None = None  # set by main: what the graded calls run (do_borrowing)

    def lock_down(self, scratch: str, read_roots, forbidden_roots) -> None:
        """Capture the student's output, install the ``SIGALRM`` handler, then the audit hook
        (:func:`install_audit_hook`, arguments as there). Nothing can be loosened afterwards."""
        sys.stdout = sys.stderr = self.out
        signal.signal(signal.SIGALRM, self.on_alarm)
        install_audit_hook(scratch, read_roots, forbidden_roots, self.blocked, protect=self._watch_parts(),
                           on_trace=self.watch.audit if self.watch is not None else None)

    def _watch_parts(self) -> list:
        """The classes and functions behind the borrowing evidence (:meth:`do_borrowing`), which the hook guards."""
        parts = [type(self), borrowing.CallWatch, *vars(borrowing.CallWatch).values()]
        if self.watch is not None:
            parts += [self.watch, self.watch.profiler]
        return parts + [getattr(borrowing, name) for name in ("code_fingerprint", "reached_code", "_parts",
                                                               "_function_parts", "_instance_parts", "_used_names",
                                                               "_code_key", "_const_key", "_normal_bytecode", "code_shape",
                                                               "_shape_key", "_digest")]

    def on_alarm(self, signum, frame) -> None:
        """The ``SIGALRM`` handler: raise :class:`CellTimeout`, or, during I/O, note it for later."""
        if self.alarm_io:
            self.alarm_pending = True
            return
        if self.watch is not None:
            self.watch.time_is_up()  # raised inside the profile function, this also removes it
        raise CellTimeout()

    def _raise_pending_timeout(self) -> None:
        """Raise the :class:`CellTimeout` an alarm during I/O left pending, if any."""
        if self.alarm_pending:
            self.alarm_pending = False
            raise CellTimeout()

    # ---- the pipes
    def remember(self, obj) -> int:
        """The handle of ``obj`` (a new one the first time): the checker's proxy of it refers to it."""
        key = id(obj)
        if key not in self.ids:
            self.ids[key] = len(self.objects) + 1
            self.objects[self.ids[key]] = obj
        return self.ids[key]

    def persistent_load(self, pid):
        """Resolve a persistent id of the checker's message (see :mod:`.wire`).

        Raises:
            ValueError: for an unknown kind of id; KeyError, IndexError: for an unknown handle or index.
        """
        kind = pid[0]
        if kind == "obj":
            return self.objects[pid[1]]
        if kind == "cb":
            if pid[1] not in self.proxies:
                self.proxies[pid[1]] = wire.CheckerProxy(pid[1], str(pid[2]), self.call_checker)
            return self.proxies[pid[1]]
        if kind == "orig":
            return self.callback_originals[-1][pid[1]]
        raise ValueError(f"unknown persistent id {pid!r}")

    def transmit(self, message) -> None:
        """Send ``message`` to the checker; end the process (status 4) if the checker is gone.

        Raises:
            pickle.PicklingError, TypeError...: if ``message`` cannot be pickled (nothing is sent).
        """
        self.alarm_io = True
        try:
            wire.send(self.tx, message)
        except OSError:
            os._exit(4)  # the checker is gone
        finally:
            self.alarm_io = False

    def receive(self):
        """Wait for the next message (a timeout may interrupt the wait, never the read) and return it.

        Raises:
            wire.ProtocolError: if the checker closed the pipe; CellTimeout: while waiting.
        """
        select.select([self.rx], [], [])
        self.alarm_io = True
        try:
            return wire.recv_trusted(self.rx, persistent_load=self.persistent_load)
        finally:
            self.alarm_io = False

    # ---- the checker's objects, called by the student's code
    def call_checker(self, key: int, op: str, payload):
        """A CheckerProxy was used: ask the checker to run its object; serve the checker's own
        requests (nested calls of the student's functions) while waiting for the answer.

        Args:
            key: the callback key of the checker's object.
            op: ``"call"`` (``payload``: ``(args, kwargs)``) or ``"getattr"`` (``payload``: the name).

        Returns:
            What the checker's object returned (the mutable arguments are updated in place).

        Raises:
            TypeError: for keyword names that are not strings; CellTimeout: if the time ran out
            meanwhile; the exception the checker's object raised (see :func:`checker_error`).
        """
        self.sequence += 1
        seq = self.sequence
        originals, flat = self._callback_arguments(op, payload)
        self.transmit(("callback", seq, key, op, flat))
        self.callback_originals.append(originals)
        try:
            return self._await_callback(seq, originals)
        finally:
            self.callback_originals.pop()

    def _callback_arguments(self, op: str, payload) -> tuple[list, object]:
        """``(mutable arguments, what to send)`` for a callback request."""
        if op != "call":
            return [], str(payload)
        args, kwargs = payload
        if not all(isinstance(k, str) for k in kwargs):
            raise TypeError("keyword argument names must be strings")
        originals = wire.mutables((args, tuple(kwargs.values())))
        return originals, (wire.flatten(tuple(args), self.remember), wire.flatten(dict(kwargs), self.remember))

    def _await_callback(self, seq: int, originals: list):
        """Serve the checker's requests until the result of callback ``seq`` comes; return its value."""
        while True:
            message = self.receive()
            if message[0] == "cb_result":
                if message[1] != seq:
                    continue  # the answer to a callback that was abandoned (timeout)
                self._raise_pending_timeout()
                return self._callback_value(message, originals)
            reply = self.dispatch(message)
            if reply is not None:
                self.transmit(reply)
            self._raise_pending_timeout()

    @staticmethod
    def _callback_value(message, originals: list):
        """The value of a ``cb_result`` (copying the changed arguments back), or raise its error."""
        if message[2] == "ok":
            _, _, _, value, back = message
            for index, new in back:
                wire.copy_into(originals[index], new)
            return value
        _, _, _, name, text = message
        raise checker_error(name, text)

    # ---- the checker's commands
    def dispatch(self, message):
        """Run one command of the checker (``do_<command>``, see :data:`COMMANDS`) and return the reply."""
        command = message[0]
        if command in COMMANDS:
            return getattr(self, "do_" + command)(message)
        return ("raise", "error", "ValueError", f"unknown command {command!r}")

    def do_run_cells(self, message):
        """``("run_cells", [(index, source)...], seconds)``: run each cell, each within ``seconds``.

        Returns:
            ``("ok", entries)``: per cell its ``index``, ``status`` (``ok``, or the kind of
            :func:`describe`), ``output``, ``output_chars`` and, if it failed, ``error``.
        """
        return ("ok", [self._run_cell(index, source, message[2]) for index, source in message[1]])

    def _run_cell(self, index: int, source: str, seconds) -> dict:
        try:
            with timer.Alarm(seconds):
                result = self.shell.run_cell(source, store_history=False)
            error = result.error_before_exec or result.error_in_exec
        except BaseException as caught:  # noqa: BLE001 - a timeout outside run_code
            error = caught
        text, total = self.out.take()
        entry = {"index": index, "status": "ok", "output": text, "output_chars": total}
        if error is not None:
            kind, name, msg = describe(error)
            entry.update(status=kind, error=f"{name}: {msg}" if msg else name)
        return entry

    def do_fetch(self, message):
        """``("fetch", names)``: ``("ok", {name: flattened value})`` for the names the student defined
        (a value that cannot be flattened is sent as None)."""
        values = {}
        for name in message[1]:
            if name in self.shell.user_ns:
                try:
                    values[name] = wire.flatten(self.shell.user_ns[name], self.remember)
                except BaseException:  # noqa: BLE001
                    values[name] = ("s", None)
        return ("ok", values)

    def do_call(self, message):
        """``("call", handle, args, kwargs, seconds)``: call the student's object within ``seconds``.

        Returns:
            ``("ok", value, changed arguments)`` (flattened, the arguments as ``"same"``/``"ref"``
            nodes, see :func:`wire.flatten`), or ``("raise", kind, name, message)`` (:func:`describe`).
        """
        _, handle, args, kwargs, seconds = message
        try:
            with self._watched(handle):
                value, originals, dirty = wire.call_noting_changes(self.objects[handle], args, kwargs,
                                                                   lambda: timer.Alarm(seconds))
            refs = {id(o): (i, d) for i, (o, d) in enumerate(zip(originals, dirty))}
            back = [wire.flatten(o, self.remember, refs=refs) for o in originals if refs[id(o)][1]]
            reply = ("ok", wire.flatten(value, self.remember, refs=refs), back)
        except BaseException as error:  # noqa: BLE001
            reply = ("raise",) + describe(error)
        self.out.take()
        return reply

    @contextlib.contextmanager
    def _watched(self, handle):
        """Trace a call of the student's object ``handle`` (:class:`.borrowing.CallWatch`), if watching."""
        if self.watch is None:
            yield
            return
        self.watch.start(handle)
        timed_out = False
        try:
            yield
        except CellTimeout:
            timed_out = True
            raise
        finally:
            self.watch.stop(timed_out)

    def do_borrowing(self, message):
        """``("borrowing", names)``: ``("ok", evidence)``: for each graded name, the reference implementations
        its object is or reaches, those its calls started, and what interfered with the tracing
        (:meth:`.borrowing.CallWatch.report`); ``("ok", {})`` without references."""
        if self.watch is None:
            return ("ok", {})
        names = [n for n in message[1] if isinstance(n, str) and n in self.shell.user_ns]
        keys = {n: (self.shell.user_ns[n], self.ids.get(id(self.shell.user_ns[n]))) for n in names}
        with timer.Alarm(20):
            return ("ok", self.watch.report(keys))

    def do_getattr(self, message):
        """``("getattr", handle, name, seconds)``: ``("ok", flattened attribute)`` or ``("raise", ...)``."""
        _, handle, name, seconds = message
        try:
            target = self.objects[handle]
            with timer.Alarm(seconds):
                value = getattr(target, name)
            return ("ok", wire.flatten(value, self.remember))
        except BaseException as error:  # noqa: BLE001
            return ("raise",) + describe(error)

    def do_report(self, message):
        """``("report",)``: ``("ok", {"patched": [...], "blocked": [...]})``: what the submission
        replaced in NumPy, builtins or IPython's transformers, and what the audit hook refused."""
        now = _transformer_counts(self.shell)
        patched = _changed(self.baseline)
        if now != self.transformers_before:
            patched.append("IPython input/AST transformers")
        return ("ok", {"patched": patched, "blocked": list(self.blocked)})

    def do_exit(self, message):
        """``("exit",)``: answer ``("ok", None)`` and end the process with status 0."""
        self.transmit(("ok", None))
        os._exit(0)

    def serve(self, warm_failed: list[str]) -> None:
        """Answer ``("ready", warm_failed)``, then every command until the checker closes the pipe.

        A failed command is answered ``("raise", "error", name, message)``; a reply that cannot be
        sent ends the process (status 3).
        """
        self.transmit(("ready", warm_failed))
        while True:
            self.alarm_pending = False
            try:
                message = self.receive()
            except wire.ProtocolError:
                return
            except BaseException:  # noqa: BLE001 - a stray timeout between calls
                continue
            if message[0] == "cb_result":
                continue  # the answer to a callback that was abandoned (timeout)
            try:
                reply = self.dispatch(message)
            except BaseException as error:  # noqa: BLE001 - answer something, always
                reply = ("raise", "error", type(error).__name__, str(error)[:600])
            try:
                self.transmit(reply)
            except BaseException:  # noqa: BLE001 - e.g. a value that cannot be sent
                os._exit(3)


# ------------------------------------------------------------------------- starting up
def _private_pipes() -> tuple[int, int]:
    """Move stdin/stdout (the pipes from and to the checker) to private descriptors; 0 and 1 become /dev/null."""
    rx, tx = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    return rx, tx


def _prepare_scratch(setup: dict) -> None:
    """Create the scratch folder, work in it, write the data files there, point HOME & co. at it."""
    scratch = setup["scratch"]
    os.makedirs(scratch, exist_ok=True)
    os.chdir(scratch)
    for rel, data in setup.get("files", {}).items():
        target = os.path.join(scratch, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as handle:
            handle.write(data)
    os.environ.update({"HOME": scratch, "IPYTHONDIR": os.path.join(scratch, ".ipython"),
                       "MPLCONFIGDIR": os.path.join(scratch, ".matplotlib"), "MPLBACKEND": "Agg",
                       "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TMPDIR": scratch})


def _make_shell():
    """An IPython shell without history that shows no tracebacks (the errors are reported instead)."""
    import numpy  # noqa: F401
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.enabled = False
    shell = InteractiveShell.instance(config=config)
    shell.showtraceback = lambda *a, **k: None
    shell.showsyntaxerror = lambda *a, **k: None
    shell.showindentationerror = lambda *a, **k: None
    return shell


def _warm_imports(modules: list[str], read_roots: list[str]) -> list[str]:
    """Import ``modules`` now (before the hook), adding each one's folder or file to ``read_roots``.

    Returns:
        ``"module: ExceptionName"`` for each module that could not be imported (not fatal).
    """
    failed = []
    for module in modules:
        try:
            imported = __import__(module)
            path = getattr(imported, "__file__", None)
            if path and os.path.basename(path) == "__init__.py":
                read_roots.append(os.path.dirname(path))
            elif path:
                read_roots.append(path)
        except BaseException as error:  # noqa: BLE001 - a missing optional package is not fatal
            failed.append(f"{module}: {type(error).__name__}")
    return failed


def _load_language(language: str | None) -> None:
    """Speak the submission's language (the checks a student's cell calls), its catalogue read now,
    before the hook (no file is opened for a message afterwards)."""
    from attention_course.env import set_language
    from attention_course.grading.messages import load

    if language:
        set_language(language)
        load(language)


def _run_prelude(shell, sources: list[str]) -> None:
    """Run the course's own setup/import cells (trusted), before the hook, ignoring their errors.

    What they load (torch, models...) is then in memory; the student's copies run under the hook.
    """
    for source in sources:
        try:
            shell.run_cell(source, store_history=False)
        except BaseException:  # noqa: BLE001
            pass


def main() -> None:
    """Run the worker: ``python -I -m attention_course.grading.sandbox``, started by the checker.

    Reads the setup from stdin (``scratch``, ``files``, ``memory_mb``, ``cpu_seconds``, ``file_mb``,
    ``read_roots``, ``forbidden_roots``, ``warm_imports``, ``output_chars``, ``prelude``, ``references``:
    the reference fingerprints a :class:`.borrowing.CallWatch` looks for), writes the
    data files into the scratch folder, applies the rlimits, loads the warm imports and runs the
    course's prelude cells, installs the audit hook, answers ``("ready", failed imports)``, then
    serves the checker's commands until it closes the pipe: ``run_cells``, ``fetch``, ``call``,
    ``getattr``, ``report``, ``borrowing`` and ``exit`` (see :class:`SandboxWorker`).

    Returns when the checker's pipe closes. Ends the process with ``os._exit``: status 0 on
    ``exit``, 4 if the checker is gone while a message is written, 3 if a reply cannot be sent.
    """
    run(*_private_pipes())


def run(rx: int, tx: int) -> None:
    """The worker's life after its pipes are known (``rx`` from the checker, ``tx`` to it), as
    :func:`main` describes it; also called in a worker forked from a warm checker (see
    :func:`.checker.fork_worker`). Returns when the checker's pipe closes."""
    setup = wire.recv_trusted(rx)
    _prepare_scratch(setup)
    _limits(setup["memory_mb"], setup["cpu_seconds"], setup["file_mb"])
    shell = _make_shell()
    read_roots = list(setup["read_roots"])
    warm_failed = _warm_imports(setup.get("warm_imports", []), read_roots)
    _load_language(setup.get("language"))
    _run_prelude(shell, setup.get("prelude", []))
    sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
    worker = SandboxWorker(rx, tx, shell, setup.get("output_chars", 20000))
    if setup.get("references"):
        worker.watch = borrowing.CallWatch(setup["references"], read_roots, os.path.dirname(os.path.dirname(
            os.path.abspath(borrowing.__file__))))
    worker.lock_down(setup["scratch"], read_roots, setup["forbidden_roots"])
    worker.serve(warm_failed)


if __name__ == "__main__":
    main()

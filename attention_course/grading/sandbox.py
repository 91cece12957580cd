"""The sandboxed worker: runs ONE student's cells and answers remote calls from the checker.

Started by :mod:`.checker` as ``python -I -m attention_course.grading.sandbox`` (inside Linux
namespaces when available, see :func:`.checker.namespace_prefix`). It talks over its original
stdin/stdout (moved to private descriptors; the student's ``print`` goes to a capped buffer).

Limits, applied before any student code runs:

* ``resource.setrlimit``: address space (memory), CPU seconds, size of any file written, no core
  files; per-cell and per-call wall-clock limits with ``SIGALRM``; the checker also kills the
  whole process group when the submission's total time is up.
* A Python audit hook (PEP 578) refuses: opening files outside the scratch directory and the Python
  installation (never the course, ``solutions/``, the submissions or the output), writing or
  deleting outside the scratch directory, listing other directories, starting processes, signals to
  other processes, sockets, ``ctypes`` (after the course's own imports are loaded), and ``gc``
  introspection. An audit hook lives in the same interpreter as the student's code, so it is a
  guard rail, not a wall: the kernel-level wall is the namespace layer of the checker.
"""
from __future__ import annotations

import builtins
import io
import os
import select
import sys
import time

# Only the standard library and numpy before the hook; everything else is imported on request.


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


def install_audit_hook(scratch: str, read_roots, forbidden_roots, blocked: list):
    """Install the guard-rail hook. Everything it needs is bound now, as locals."""
    import os as _os
    import posixpath as _pp

    realpath, fspath, sep = _pp.realpath, _os.fspath, _os.sep
    scratch = realpath(scratch)
    read_roots = tuple(realpath(p) for p in read_roots) + ("/dev/null", "/dev/urandom", "/dev/random")
    forbidden_roots = tuple(realpath(p) for p in forbidden_roots)
    write_flags = _os.O_WRONLY | _os.O_RDWR | _os.O_CREAT | _os.O_TRUNC | _os.O_APPEND
    no_process = ("subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork",
                  "os.forkpty", "os.kill", "os.killpg", "pty.spawn", "os.startfile", "resource.setrlimit",
                  "resource.prlimit", "ctypes.dlsym", "ctypes.call_function",
                  "ctypes.cdata", "ctypes.cdata/buffer", "ctypes.addressof", "gc.get_objects",
                  "gc.get_referrers", "gc.get_referents", "sys._current_frames", "webbrowser.open",
                  "sys.remote_exec")
    path_writes = ("os.remove", "os.rmdir", "os.mkdir", "os.rename", "os.replace", "os.link", "os.symlink",
                   "os.chmod", "os.chown", "os.truncate", "os.utime", "os.chflags", "os.lchflags",
                   "shutil.rmtree", "shutil.copyfile", "shutil.copytree", "shutil.move", "shutil.copymode",
                   "shutil.copystat", "shutil.chown", "shutil.make_archive", "shutil.unpack_archive",
                   "os.chdir", "os.setxattr", "os.removexattr")
    path_reads = ("os.listdir", "os.scandir", "glob.glob", "os.listxattr", "os.getxattr")
    lib_roots = tuple(realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix))
    hook_ids = []

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

    def deny(event, detail):
        blocked.append(f"{event} {detail}")
        raise PermissionError(f"grading sandbox: {event} {detail!s} is not allowed")

    def may_read(path):
        if path is None or inside(path, scratch):
            return True
        # the most specific root wins: the venv inside a forbidden course folder stays readable
        allowed = max((len(root) for root in read_roots if inside(path, root)), default=-1)
        refused = max((len(root) for root in forbidden_roots if inside(path, root)), default=-1)
        return allowed > refused

    def may_write(path):
        return path is None or inside(path, scratch) or path == "/dev/null"

    def hook(event, args):
        if event == "open":
            path = resolve(args[0])
            mode, flags = args[1], args[2] if len(args) > 2 else 0
            writing = (isinstance(mode, str) and any(ch in mode for ch in "wax+")) or \
                      (isinstance(flags, int) and bool(flags & write_flags) and mode is None)
            if (writing and not may_write(path)) or not may_read(path):
                deny("open", args[0])
        elif event in path_reads:
            if args and not may_read(resolve(args[0])):
                deny(event, args[0])
        elif event in path_writes:
            for arg in args:
                if isinstance(arg, (str, bytes)) or hasattr(arg, "__fspath__"):
                    if not may_write(resolve(arg)):
                        deny(event, arg)
        elif event == "ctypes.dlopen":
            # torch & co. load their own libraries with ctypes; allow only absolute paths inside
            # the Python installation (never the scratch folder, never libc by name)
            path = resolve(args[0]) if isinstance(args[0], (str, bytes)) and fspath(args[0])[:1] in ("/", b"/") else None
            if path is None or not any(inside(path, root) for root in lib_roots):
                deny(event, args[0])
        elif event.startswith("socket.") or event in no_process:
            deny(event, "")
        elif event == "object.__setattr__" and args and id(args[0]) in hook_ids:
            deny(event, "the sandbox hook")

    hook_ids.extend([id(hook), id(deny), id(may_read), id(may_write), id(resolve), id(inside)])
    sys.addaudithook(hook)


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


def main() -> None:
    """Run the worker: ``python -I -m attention_course.grading.sandbox``, started by the checker.

    Reads the setup from stdin (``scratch``, ``files``, ``memory_mb``, ``cpu_seconds``, ``file_mb``,
    ``read_roots``, ``forbidden_roots``, ``warm_imports``, ``output_chars``, ``prelude``), writes the
    data files into the scratch folder, applies the rlimits, loads the warm imports and runs the
    course's prelude cells, installs the audit hook, answers ``("ready", failed imports)``, then
    serves the checker's commands until it closes the pipe: ``run_cells``, ``fetch``, ``call``,
    ``getattr``, ``report`` and ``exit``.

    Returns when the checker's pipe closes. Ends the process with ``os._exit``: status 0 on
    ``exit``, 4 if the checker is gone while a message is written, 3 if a reply cannot be sent.
    """
    from attention_course.grading import wire

    rx, tx = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    setup = wire.recv_trusted(rx)
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
    _limits(setup["memory_mb"], setup["cpu_seconds"], setup["file_mb"])

    import signal

    import numpy  # noqa: F401
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.enabled = False
    shell = InteractiveShell.instance(config=config)
    shell.showtraceback = lambda *a, **k: None
    shell.showsyntaxerror = lambda *a, **k: None
    shell.showindentationerror = lambda *a, **k: None
    warm_failed = []
    read_roots = list(setup["read_roots"])
    for module in setup.get("warm_imports", []):
        try:
            imported = __import__(module)
            path = getattr(imported, "__file__", None)
            if path and os.path.basename(path) == "__init__.py":
                read_roots.append(os.path.dirname(path))
            elif path:
                read_roots.append(path)
        except BaseException as error:  # noqa: BLE001 - a missing optional package is not fatal
            warm_failed.append(f"{module}: {type(error).__name__}")
    for source in setup.get("prelude", []):
        # the course's own setup/import cells (trusted), run before the hook so that what they
        # load (torch, models...) is in memory; the student's copies then run under the hook
        try:
            shell.run_cell(source, store_history=False)
        except BaseException:  # noqa: BLE001
            pass
    sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
    baseline = _snapshot()
    transformers_before = (len(shell.input_transformers_cleanup), len(shell.input_transformers_post),
                           len(shell.ast_transformers))
    blocked: list[str] = []
    out = CappedWriter(setup.get("output_chars", 20000))
    sys.stdout = sys.stderr = out

    # SIGALRM raises CellTimeout in the student's code, except while a message is being read or
    # written (a half-sent message would break the protocol): then it waits until the I/O is done.
    alarm = {"io": False, "pending": False}

    def on_alarm(signum, frame):
        if alarm["io"]:
            alarm["pending"] = True
            return
        raise CellTimeout()

    signal.signal(signal.SIGALRM, on_alarm)
    install_audit_hook(scratch, read_roots, setup["forbidden_roots"], blocked)
    objects: dict[int, object] = {}
    ids: dict[int, int] = {}
    proxies: dict[int, wire.CheckerProxy] = {}
    callback_originals: list[list] = []  # the arguments of the callbacks in progress (innermost last)
    sequence = [0]

    def remember(obj):
        key = id(obj)
        if key not in ids:
            ids[key] = len(objects) + 1
            objects[ids[key]] = obj
        return ids[key]

    def describe(error: BaseException):
        if isinstance(error, CellTimeout):
            return "timeout", "TimeoutError", "ran past the time limit and was stopped"
        kind = "memory" if isinstance(error, MemoryError) else "error"
        try:
            message = str(error)
        except BaseException:  # noqa: BLE001
            message = ""
        name = type(error).__name__ if type(type(error)) is type else "Exception"
        return kind, name, message[:600]

    def timed(seconds, fn, *args, **kwargs):
        """Run fn with a wall-clock limit; nested calls (a call served while a callback waits) keep
        the outer limit running: the inner limit is never later than the outer one."""
        outer, _ = signal.setitimer(signal.ITIMER_REAL, 0)
        started = time.monotonic()
        limit = float(seconds) if not outer else min(float(seconds), outer)
        signal.setitimer(signal.ITIMER_REAL, max(0.01, limit))
        try:
            return fn(*args, **kwargs)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            if outer:
                signal.setitimer(signal.ITIMER_REAL, max(0.001, outer - (time.monotonic() - started)))

    def persistent_load(pid):
        kind = pid[0]
        if kind == "obj":
            return objects[pid[1]]
        if kind == "cb":
            if pid[1] not in proxies:
                proxies[pid[1]] = wire.CheckerProxy(pid[1], str(pid[2]), call_checker)
            return proxies[pid[1]]
        if kind == "orig":
            return callback_originals[-1][pid[1]]
        raise ValueError(f"unknown persistent id {pid!r}")

    def transmit(message):
        alarm["io"] = True
        try:
            wire.send(tx, message)
        except OSError:
            os._exit(4)  # the checker is gone
        finally:
            alarm["io"] = False

    def receive():
        """Wait for the next message (a timeout may interrupt the wait, never the read)."""
        select.select([rx], [], [])
        alarm["io"] = True
        try:
            return wire.recv_trusted(rx, persistent_load=persistent_load)
        finally:
            alarm["io"] = False

    def call_checker(key, op, payload):
        """A CheckerProxy was used: ask the checker to run its object; serve the checker's own
        requests (nested calls of the student's functions) while waiting for the answer."""
        sequence[0] += 1
        seq = sequence[0]
        if op == "call":
            args, kwargs = payload
            if not all(isinstance(k, str) for k in kwargs):
                raise TypeError("keyword argument names must be strings")
            originals = wire.mutables((args, tuple(kwargs.values())))
            flat = (wire.flatten(tuple(args), remember), wire.flatten(dict(kwargs), remember))
        else:
            originals, flat = [], str(payload)
        transmit(("callback", seq, key, op, flat))
        callback_originals.append(originals)
        try:
            while True:
                message = receive()
                if message[0] == "cb_result":
                    if message[1] != seq:
                        continue  # the answer to a callback that was abandoned (timeout)
                    if alarm["pending"]:
                        alarm["pending"] = False
                        raise CellTimeout()
                    if message[2] == "ok":
                        _, _, _, value, back = message
                        for index, new in back:
                            wire.copy_into(originals[index], new)
                        return value
                    _, _, _, name, text = message
                    cls = getattr(builtins, str(name), None)
                    if not (isinstance(cls, type) and issubclass(cls, Exception)):
                        cls, text = RuntimeError, f"{name}: {text}"
                    try:
                        error = cls(text)
                    except Exception:  # noqa: BLE001 - a class that wants other arguments
                        error = RuntimeError(f"{name}: {text}")
                    raise error
                reply = dispatch(message)
                if reply is not None:
                    transmit(reply)
                if alarm["pending"]:
                    alarm["pending"] = False
                    raise CellTimeout()
        finally:
            callback_originals.pop()

    def dispatch(message):
        command = message[0]
        if command == "run_cells":
            results = []
            for index, source in message[1]:
                try:
                    result = timed(message[2], shell.run_cell, source, store_history=False)
                    error = result.error_before_exec or result.error_in_exec
                except BaseException as caught:  # noqa: BLE001 - a timeout outside run_code
                    error = caught
                text, total = out.take()
                entry = {"index": index, "status": "ok", "output": text, "output_chars": total}
                if error is not None:
                    kind, name, msg = describe(error)
                    entry.update(status=kind, error=f"{name}: {msg}" if msg else name)
                results.append(entry)
            return ("ok", results)
        if command == "fetch":
            values = {}
            for name in message[1]:
                if name in shell.user_ns:
                    try:
                        values[name] = wire.flatten(shell.user_ns[name], remember)
                    except BaseException:  # noqa: BLE001
                        values[name] = ("s", None)
            return ("ok", values)
        if command == "call":
            _, handle, args, kwargs, seconds = message
            try:
                originals = wire.mutables((args, tuple(kwargs.values())))
                before = [wire.snapshot(o) for o in originals]
                value = timed(seconds, objects[handle], *args, **kwargs)
                refs = {id(o): (i, wire.changed(o, b)) for i, (o, b) in enumerate(zip(originals, before))}
                back = [wire.flatten(o, remember, refs=refs) for o in originals if refs[id(o)][1]]
                reply = ("ok", wire.flatten(value, remember, refs=refs), back)
            except BaseException as error:  # noqa: BLE001
                kind, name, msg = describe(error)
                reply = ("raise", kind, name, msg)
            out.take()
            return reply
        if command == "getattr":
            _, handle, name, seconds = message
            try:
                return ("ok", wire.flatten(timed(seconds, getattr, objects[handle], name), remember))
            except BaseException as error:  # noqa: BLE001
                return ("raise",) + describe(error)
        if command == "report":
            now = (len(shell.input_transformers_cleanup), len(shell.input_transformers_post),
                   len(shell.ast_transformers))
            patched = _changed(baseline)
            if now != transformers_before:
                patched.append("IPython input/AST transformers")
            return ("ok", {"patched": patched, "blocked": list(blocked)})
        if command == "exit":
            transmit(("ok", None))
            os._exit(0)
        return ("raise", "error", "ValueError", f"unknown command {command!r}")

    transmit(("ready", warm_failed))
    while True:
        alarm["pending"] = False
        try:
            message = receive()
        except wire.ProtocolError:
            return
        except BaseException:  # noqa: BLE001 - a stray timeout between calls
            continue
        if message[0] == "cb_result":
            continue  # the answer to a callback that was abandoned (timeout)
        try:
            reply = dispatch(message)
        except BaseException as error:  # noqa: BLE001 - answer something, always
            reply = ("raise", "error", type(error).__name__, str(error)[:600])
        try:
            transmit(reply)
        except BaseException:  # noqa: BLE001 - e.g. a value that cannot be sent
            os._exit(3)


if __name__ == "__main__":
    main()

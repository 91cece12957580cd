"""The kernel-level wall around a student's worker: what the student's code can see and change.

The audit hook of :mod:`.sandbox` refuses Python-level file access, but code that does its file
I/O in C (``torch.save``, ``torch.from_file``, ``numpy.memmap``, a compiled extension) goes past
it. The wall is built by the kernel, so it holds for C code too. Two ways, best first:

* ``"bubblewrap"`` (``bwrap``, Debian's ``bubblewrap``; installed by ``scripts/setup_env.sh`` as
  root): new user (where unprivileged), mount, pid, network, IPC and UTS namespaces. The root is
  empty, read-only, and only what grading needs is bound into it, read-only: the system's
  programs and libraries (``/usr``, ``/lib*``, ``/bin``, ``/sbin``), a few files of ``/etc``
  (:data:`ETC_FILES`: the loader cache, fonts, time zone, users), the Python installation and the
  folders on ``sys.path`` (except the course's repository), this package, and
  ``/sys/devices/system/cpu``. ``/tmp``, ``/var/tmp``, ``/dev/shm`` and the scratch root are
  private, empty, size-capped tmpfs; ``/proc`` is the new pid namespace's, ``/dev`` a minimal one.
  The course, ``solutions/``, the submissions, the output, ``$HOME`` and the rest of the host are
  simply not there; any of them under a bound folder is covered by an empty read-only tmpfs.
* ``"unshare"`` (util-linux, where bwrap is missing and user namespaces work): the hand-written
  script of :func:`namespace_prefix`. The course, the package's repository, the submissions and
  the output are covered by empty tmpfs, ``/tmp``, ``/var/tmp`` and ``/dev/shm`` are private, the
  scratch root is a fresh tmpfs; the rest of the host stays as the grader's user sees it
  (readable, and writable where that user may write): weaker, and said so in ``grade.log``.

Without either (not Linux, or user namespaces disabled) only the audit hook and the rlimits remain.

A worker is forked from a warm process (see :mod:`.checker`), not started from a program: it
*joins* the namespaces of a small holder process started inside the wall (:func:`start_holder`,
:func:`join`), then leaves itself without capabilities (a new, nested user namespace), so it
cannot unmount or remount anything.
"""
from __future__ import annotations

import ctypes
import fcntl
import functools
import json
import os
import shlex
import shutil
import subprocess
import sys

#: Files and folders of ``/etc`` bound into the bubblewrap sandbox (those that exist): the dynamic
#: loader's cache, time zone, fonts, alternatives (links of ``/usr/bin``), users and groups, MIME types.
ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "timezone", "fonts", "alternatives",
             "passwd", "group", "nsswitch.conf", "mime.types", "os-release", "matplotlibrc")
#: The system folders bound read-only (a symbolic link such as Debian's ``/bin -> usr/bin`` is recreated as one).
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/sys/devices/system/cpu")
#: Size of each private tmpfs (``/tmp``, ``/var/tmp``, ``/dev/shm``, the scratch root), in MB.
TMPFS_MB = 512

_CLONE = {"user": 0x10000000, "mnt": 0x00020000, "net": 0x40000000, "ipc": 0x08000000,
          "uts": 0x04000000, "pid": 0x20000000}
_NS_GET_USERNS = 0xB701  # ioctl: the user namespace that owns a namespace


class WallError(RuntimeError):
    """The wall could not be put up (the holder did not start, or a namespace could not be joined)."""


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


# ------------------------------------------------------------------------- which wall
@functools.lru_cache(maxsize=1)
def bwrap_available() -> bool:
    """True if ``bwrap`` is installed and can make its namespaces here (a 20 s probe, run once)."""
    path = shutil.which("bwrap")
    if not path or not sys.platform.startswith("linux"):
        return False
    try:
        probe = subprocess.run([path, "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "--dev", "/dev",
                                "--proc", "/proc", "--tmpfs", "/tmp", "true"], capture_output=True, timeout=20)
        return probe.returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@functools.lru_cache(maxsize=1)
def namespaces_available() -> bool:
    """True if unprivileged user+mount+pid+net namespaces work here (Linux, util-linux's ``unshare``)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        probe = subprocess.run(["unshare", "-rmnp", "--fork", "--mount-proc", "sh", "-c",
                                "mount -t tmpfs t /mnt 2>/dev/null || mount -t tmpfs t /tmp; exec unshare -U true"],
                               capture_output=True, timeout=20)
        return probe.returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def best_wall() -> str:
    """``"bubblewrap"``, ``"unshare"`` or ``""`` (none): the strongest wall that works here."""
    if bwrap_available():
        return "bubblewrap"
    return "unshare" if namespaces_available() else ""


# ------------------------------------------------------------------------- bubblewrap
def _mounts(readable: list[str], hide: list[str]) -> list[tuple[str, str]]:
    """``(path, "bind"|"hide")`` in mount order (a folder before what is inside it): every readable path,
    and every hidden path that lies inside a readable one (a readable path inside a hidden one is bound
    again after it)."""
    real = {os.path.realpath(p) for p in readable if p and os.path.exists(p)}
    hidden = {os.path.realpath(h) for h in hide if h and os.path.exists(h)}
    entries = [(p, "bind") for p in real]
    shown = real | {d for d in SYSTEM_DIRS if os.path.isdir(d) and not os.path.islink(d)} | {"/etc"}
    entries += [(h, "hide") for h in hidden if any(_inside(h, r) for r in shown)]
    entries = [(p, k) for p, k in entries if p != "/"]
    return sorted(entries, key=lambda e: (e[0].split("/"), e[1] == "bind"))


def bwrap_argv(scratch_root: str, readable: list[str], hide: list[str], tmpfs_mb: int = TMPFS_MB) -> list[str]:
    """The ``bwrap`` command line (without the command) of the wall described in the module docstring.

    Args:
        scratch_root: becomes a private tmpfs of ``tmpfs_mb`` MB, the only writable folder besides
            ``/tmp``, ``/var/tmp`` and ``/dev/shm`` (each a private tmpfs of the same size).
        readable: paths bound read-only besides :data:`SYSTEM_DIRS` and :data:`ETC_FILES` (the Python
            installation, ``sys.path``, the package...); missing ones are left out.
        hide: paths never visible: where one lies inside a readable path it is covered by an empty,
            read-only tmpfs (a file by ``/dev/null``).

    Returns:
        ``["bwrap", ...]``, ending with ``--``.

    Raises:
        WallError: if ``bwrap`` is not installed.
    """
    path = shutil.which("bwrap")
    if not path:
        raise WallError("bwrap (bubblewrap) is not installed")
    size = str(tmpfs_mb * 1024 * 1024)
    argv = [path, "--unshare-all", "--die-with-parent", "--new-session", "--tmpfs", "/"]
    for system in SYSTEM_DIRS:
        if os.path.islink(system):
            argv += ["--symlink", os.readlink(system), system]
        elif os.path.isdir(system):
            argv += ["--ro-bind", system, system]
    for name in ETC_FILES:
        if os.path.exists(os.path.join("/etc", name)):
            argv += ["--ro-bind", os.path.join("/etc", name), os.path.join("/etc", name)]
    argv += ["--dev", "/dev", "--proc", "/proc"]
    # the private tmpfs first, then the readable paths: a Python or package installed under /tmp (a
    # test's fresh environment, say) is bound on top of the private /tmp instead of vanishing under it
    for private in ("/tmp", "/var/tmp", "/dev/shm"):
        argv += ["--size", size, "--tmpfs", private]
    for where, kind in _mounts(readable, hide):
        if kind == "bind":
            argv += ["--ro-bind", where, where]
        elif os.path.isdir(where):
            argv += ["--size", "4096", "--tmpfs", where, "--remount-ro", where]
        else:
            argv += ["--ro-bind", "/dev/null", where]
    argv += ["--size", size, "--tmpfs", os.path.realpath(scratch_root)]
    return argv + ["--remount-ro", "/", "--chdir", "/", "--"]


def readable_paths(package_dir: str, course_repos: list[str]) -> list[str]:
    """What the worker may read: the Python installation, the ``sys.path`` folders that hold installed
    packages (inside the installation, or named ``site-packages``/``dist-packages``; never a working
    folder such as ``python -m``'s, nor one inside or around one of ``course_repos``, whose
    ``solutions/`` stay hidden), and ``package_dir``."""
    prefixes = [os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)]
    repos = [os.path.realpath(c) for c in course_repos]
    paths = prefixes + [os.path.dirname(os.__file__), package_dir]
    for entry in sys.path:
        real = os.path.realpath(entry) if entry and os.path.isabs(entry) else ""
        installed = any(_inside(real, p) for p in prefixes) or os.path.basename(real) in ("site-packages", "dist-packages")
        if real and os.path.isdir(real) and installed and not any(
                _inside(real, c) and not any(_inside(real, p) for p in prefixes) or _inside(c, real) for c in repos):
            paths.append(real)
    return list(dict.fromkeys(p for p in paths if p))


# ------------------------------------------------------------------------- the unshare fallback
def namespace_prefix(scratch_root: str, scratch: str, hide: list[str], expose: list[str]) -> list[str]:
    """argv prefix that runs a command in new user/mount/pid/net/IPC/UTS namespaces where every path in
    ``hide`` is covered by an empty tmpfs (files: by /dev/null), except ``expose`` (bound back
    read-only), ``/tmp``, ``/var/tmp``, ``/dev/shm`` and the scratch root are fresh private tmpfs, and
    the command then runs in a nested user namespace with no capabilities, so it cannot unmount any of this.

    Args:
        scratch_root: the folder that becomes a fresh private tmpfs (not hidden, even if inside ``hide``).
        scratch: the worker's folder, created inside it.
        hide: paths to cover (those missing, ``/`` and those inside another hidden path are left out).
        expose: paths inside hidden ones to bind back read-only (the Python installation...).

    Returns:
        The argv prefix (``unshare ... sh -c SCRIPT sandbox``); the command follows it.
    """
    private = [p for p in ("/tmp", "/var/tmp", "/dev/shm") if os.path.isdir(p) and not os.path.islink(p)]
    gone = [os.path.realpath(p) for p in private]  # replaced first: nothing inside them needs hiding or exposing
    hide = sorted({os.path.realpath(h) for h in hide if h and os.path.exists(h) and os.path.realpath(h) != "/"})
    hide = [h for h in hide if not any(h != o and _inside(h, o) for o in hide) and not any(_inside(h, g) for g in gone)]
    hide = [h for h in hide if not _inside(os.path.realpath(scratch_root), h)]  # the hook still refuses them
    expose = sorted({os.path.realpath(e) for e in expose if e and os.path.exists(e)})
    expose = [e for e in expose if any(_inside(e, h) for h in hide) and not any(_inside(e, g) for g in gone)]
    q = shlex.quote
    hold = os.path.join(scratch_root, ".hold")
    lines = ["set -e"] + [f"mount -t tmpfs -o size={TMPFS_MB}m,mode=1777 tmpfs {p}" for p in private]
    lines += [f"mkdir -p {q(scratch_root)}", f"mount -t tmpfs -o size={TMPFS_MB}m,mode=700 tmpfs {q(scratch_root)}",
              f"mkdir -p {q(scratch)} {q(hold)}"]
    for i, path in enumerate(expose):
        lines += [f"mkdir -p {q(hold)}/{i}", f"mount --rbind {q(path)} {q(hold)}/{i}"]
    for path in hide:
        if os.path.isdir(path):
            lines.append(f"mount -t tmpfs -o size=1m,mode=755 tmpfs {q(path)}")
        else:
            lines.append(f"mount --bind /dev/null {q(path)}")
    for i, path in enumerate(expose):
        lines += [f"mkdir -p {q(path)}", f"mount --rbind {q(hold)}/{i} {q(path)}",
                  f"mount -o remount,bind,ro {q(path)} 2>/dev/null || true"]
    lines.append('exec unshare -U -- "$@"')
    return ["unshare", "-rmnpiu", "--fork", "--mount-proc", "--kill-child", "sh", "-c", "\n".join(lines), "sandbox"]


# ------------------------------------------------------------------------- the holder, and joining it
class Holder:
    """A small process (``sh -c 'echo; exec cat'``) started inside the wall, whose namespaces each
    worker joins (:func:`enter`). It lives until :meth:`close` closes its stdin (or its parent dies:
    ``--die-with-parent``, ``--kill-child``), and its pid namespace, the worker included, with it.

    Args:
        prefix: the wall's command line: :func:`bwrap_argv` (ending with ``--``) or :func:`namespace_prefix`.
        timeout: seconds to wait for the holder to be ready.

    Raises:
        WallError: if the holder does not start or does not answer within ``timeout``.
    """

    def __init__(self, prefix: list[str], timeout: float = 20.0):
        info_r = info_w = -1
        if os.path.basename(prefix[0]) == "bwrap":
            info_r, info_w = os.pipe()
            prefix = prefix[:-1] + ["--info-fd", str(info_w), "--"]
        try:
            self.proc = subprocess.Popen(prefix + ["sh", "-c", "echo; exec cat"], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, close_fds=True,
                                         pass_fds=(info_w,) if info_w >= 0 else (), start_new_session=True)
        except OSError as error:
            raise WallError(f"the wall's holder could not start: {error}") from None
        finally:
            if info_w >= 0:
                os.close(info_w)
        try:
            self.pid = self._wait_ready(info_r, timeout)
        except BaseException:
            self.close()
            raise
        finally:
            if info_r >= 0:
                os.close(info_r)

    def _wait_ready(self, info_r: int, timeout: float) -> int:
        import select

        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready or self.proc.stdout.readline() != b"\n":
            self.proc.kill()
            self.proc.wait(5)
            error = self.proc.stderr.read().decode(errors="replace")[-500:]
            raise WallError(f"the wall's holder did not start: {error.strip() or 'no answer'}")
        if info_r >= 0:  # bubblewrap says which process runs the command
            return int(json.loads(os.read(info_r, 65536).decode().split("}")[0] + "}")["child-pid"])
        pid = self.proc.pid  # unshare --fork: its one child runs the command
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as handle:
            return int(handle.read().split()[0])

    def close(self) -> None:
        """End the holder (and every process left in its pid namespace)."""
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                stream.close()
            except OSError:
                pass
        try:
            self.proc.kill()
            self.proc.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            pass


def _setns(libc, fd: int, kind: str) -> None:
    if libc.setns(fd, _CLONE[kind]) != 0:
        raise WallError(f"could not join the wall's {kind} namespace: {os.strerror(ctypes.get_errno())}")


def enter(pid: int) -> None:
    """Move this process into the namespaces of the holder process ``pid`` (:class:`Holder`), without
    capabilities there. Call it in a freshly forked, single-threaded process before any untrusted code.

    Joins the user namespace that owns the holder's mount namespace (unless it is this process's
    own), then its mount, network, IPC, UTS and pid namespaces, then makes a new nested user
    namespace (which owns nothing: no capability over any of these mounts). A pid namespace only
    holds the children of who joins it, so this forks: the child returns, inside the wall; this
    process waits for it and ends as it ended (the same exit status, or killed by the same signal).

    Raises:
        WallError: if a namespace cannot be joined (in the calling process, before any fork).
    """
    libc = ctypes.CDLL(None, use_errno=True)
    kinds = ("mnt", "net", "ipc", "uts", "pid")
    own = {kind: os.stat(f"/proc/self/ns/{kind}").st_ino for kind in kinds + ("user",)}
    fds = {kind: os.open(f"/proc/{pid}/ns/{kind}", os.O_RDONLY) for kind in kinds}
    try:
        owner = fcntl.ioctl(fds["mnt"], _NS_GET_USERNS)
        try:
            if os.fstat(owner).st_ino != own["user"]:
                _setns(libc, owner, "user")
        finally:
            os.close(owner)
        for kind, fd in fds.items():
            if os.fstat(fd).st_ino != own[kind]:  # not one it shares with us
                _setns(libc, fd, kind)
    finally:
        for fd in fds.values():
            os.close(fd)
    if libc.unshare(_CLONE["user"]) != 0:
        raise WallError(f"could not drop capabilities in the wall: {os.strerror(ctypes.get_errno())}")
    child = os.fork()
    if child == 0:
        die_with_parent()
        return
    _, status = os.waitpid(child, 0)
    if os.WIFSIGNALED(status):
        import signal

        signal.signal(os.WTERMSIG(status), signal.SIG_DFL)
        os.kill(os.getpid(), os.WTERMSIG(status))
    os._exit(os.waitstatus_to_exitcode(status) & 0xFF)


def die_with_parent() -> None:
    """Have the kernel kill this process when its parent ends (``prctl(PR_SET_PDEATHSIG, SIGKILL)``; Linux only)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL

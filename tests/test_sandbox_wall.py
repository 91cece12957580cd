"""The kernel is the wall: file I/O done in C (torch.save, torch.from_file(shared=True), numpy.memmap,
a compiled extension) inside the grader's sandbox leaves nothing on the host and reads nothing hidden.

The audit hook of grading/sandbox.py sees only Python-level file access, so these tests run the
attacks under the wall of grading/wall.py without the hook (the hook would stop some of them
first, and test nothing of the wall), then afterwards look at the host. A control run without the
wall shows that the same script does leave its files (so the checks can fail). The last test grades
a submission that does the same through the whole grader.
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import uuid
from pathlib import Path

import pytest

from attention_course.grading import wall
from grading_fixtures import ROOT, course_copy, submission, write

EXTENSION = r"""
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <fcntl.h>
#include <unistd.h>
#include <errno.h>
static PyObject *cwrite(PyObject *self, PyObject *args) {
    const char *path; if (!PyArg_ParseTuple(args, "s", &path)) return NULL;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return PyLong_FromLong(-errno);
    long n = write(fd, "wall", 4); close(fd); return PyLong_FromLong(n);
}
static PyObject *cread(PyObject *self, PyObject *args) {
    const char *path; if (!PyArg_ParseTuple(args, "s", &path)) return NULL;
    char buf[64]; int fd = open(path, O_RDONLY);
    if (fd < 0) return PyLong_FromLong(-errno);
    long n = read(fd, buf, sizeof buf); close(fd); return PyLong_FromLong(n);
}
static PyMethodDef methods[] = {{"cwrite", cwrite, METH_VARARGS, ""}, {"cread", cread, METH_VARARGS, ""}, {0}};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "wallext", NULL, -1, methods};
PyMODINIT_FUNC PyInit_wallext(void) { return PyModule_Create(&module); }
"""

# Run inside (or, for the control, outside) the wall: every C-level way to write each target and to
# read each secret; prints what worked as JSON. argv: targets (json), secrets (json), extension (base64).
ATTACK = r"""
import base64, json, os, sys
targets, secrets, ext = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
import numpy as np, torch
done = {"wrote": [], "read": [], "scratch": False}
if ext:
    os.makedirs("ext", exist_ok=True)
    with open("ext/wallext" + sys.argv[4], "wb") as handle:
        handle.write(base64.b64decode(ext))
    sys.path.insert(0, os.path.abspath("ext"))
    import wallext
for folder, name in targets:
    for how in ("save", "from_file", "memmap", "ext"):
        path = os.path.join(folder, f"{name}_{how}")
        try:
            if how == "save":
                torch.save(torch.zeros(2), path)
            elif how == "from_file":
                torch.from_file(path, shared=True, size=8)
            elif how == "memmap":
                np.memmap(path, mode="w+", shape=(4,))
            elif not ext or wallext.cwrite(path) < 0:
                continue
            done["wrote"].append(path)
        except Exception:
            pass
for path in secrets:
    try:
        np.memmap(path, mode="r", dtype=np.uint8, shape=(1,))
        done["read"].append(path)
    except Exception:
        pass
    if ext and wallext.cread(path) >= 0:
        done["read"].append(path)
done["scratch"] = os.path.exists(os.path.join(targets[-1][0], targets[-1][1] + "_save"))
print(json.dumps(done))
"""


@pytest.fixture(scope="module")
def extension(tmp_path_factory) -> tuple[str, str]:
    """(base64 of a compiled C extension that writes and reads files with open(2), its suffix); skips without gcc."""
    gcc = shutil.which("gcc")
    if not gcc:
        pytest.skip("no gcc: the compiled-extension attack is not tried (torch and numpy still are)")
    folder = tmp_path_factory.mktemp("ext")
    (folder / "wallext.c").write_text(EXTENSION, encoding="utf-8")
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    out = folder / ("wallext" + suffix)
    built = subprocess.run([gcc, "-shared", "-fPIC", "-O0", "-I", sysconfig.get_paths()["include"],
                            str(folder / "wallext.c"), "-o", str(out)], capture_output=True, text=True)
    if built.returncode != 0:
        pytest.skip(f"the C extension did not compile: {built.stderr[-300:]}")
    return base64.b64encode(out.read_bytes()).decode(), suffix


@pytest.fixture()
def host(tmp_path):
    """Folders of the host the attack aims at, secrets it tries to read, and a unique file name."""
    course = course_copy(tmp_path)
    subs, out, cwd = tmp_path / "subs", tmp_path / "out", tmp_path / "cwd"
    for folder in (subs, out, cwd):
        folder.mkdir()
    (subs / "alice.ipynb").write_text("{}", encoding="utf-8")
    (out / "gradebook.csv").write_text("student\n", encoding="utf-8")
    name = "wall_" + uuid.uuid4().hex[:10]
    folders = ["/tmp", "/var/tmp", "/dev/shm", os.path.expanduser("~"), str(course), str(cwd), str(ROOT)]
    secrets = [str(subs / "alice.ipynb"), str(out / "gradebook.csv"),
               str(course / "solutions" / "ch03_general_form" / "general_form.ipynb"),
               str(ROOT / "solutions" / "ch03_general_form" / "general_form.ipynb")]
    yield {"folders": folders, "secrets": secrets, "name": name, "course": course, "subs": subs, "out": out,
           "cwd": cwd, "tmp": tmp_path}
    for folder in folders:
        for leftover in Path(folder).glob(name + "_*"):
            leftover.unlink()


def attack(prefix: list[str], host: dict, extension: tuple[str, str], scratch: str) -> dict:
    targets = [(folder, host["name"]) for folder in host["folders"]] + [(scratch, host["name"])]
    argv = prefix + [sys.executable, "-I", "-B", "-c", ATTACK, json.dumps(targets), json.dumps(host["secrets"]),
                     extension[0], extension[1]]
    done = subprocess.run(argv, capture_output=True, text=True, cwd=scratch if not prefix else None, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def left_on_host(host: dict) -> list[str]:
    return sorted(str(p) for folder in host["folders"] for p in Path(folder).glob(host["name"] + "_*"))


def test_without_the_wall_the_attack_leaves_files_and_reads_secrets(host, extension):
    """The control: the same script run with no wall writes into every folder and reads every secret."""
    scratch = host["tmp"] / "scratch"
    scratch.mkdir()
    done = attack([], host, extension, str(scratch))
    assert done["scratch"] and len(done["read"]) == 2 * len(host["secrets"]), done
    assert len(left_on_host(host)) == 4 * len(host["folders"]), left_on_host(host)


@pytest.mark.skipif(not wall.bwrap_available(), reason="bubblewrap (bwrap) is not installed or cannot run here")
def test_bubblewrap_wall_keeps_c_level_io_inside(host, extension):
    scratch_root = host["tmp"] / "scratch-root"
    scratch_root.mkdir()
    hide = [str(host["course"]), str(ROOT), str(host["subs"]), str(host["out"]), str(host["tmp"])]
    readable = wall.readable_paths(str(ROOT / "attention_course"), [str(host["course"]), str(ROOT)])
    prefix = wall.bwrap_argv(str(scratch_root), readable, hide)
    prefix[-1:-1] = ["--chdir", str(scratch_root)]
    done = attack(prefix, host, extension, str(scratch_root))
    assert done["scratch"], done  # the scratch folder is writable inside
    assert any(path.startswith("/tmp/") for path in done["wrote"]), done  # a private /tmp, writable inside
    assert done["read"] == [], done
    assert left_on_host(host) == []
    assert list(scratch_root.iterdir()) == []  # the scratch root inside was a private tmpfs


@pytest.mark.skipif(not wall.namespaces_available(), reason="Linux user namespaces do not work here")
def test_unshare_fallback_keeps_tmp_and_the_course_private(host, extension):
    """Without bubblewrap: /tmp, /var/tmp, /dev/shm, the course and the grader's folders stay untouched
    and unread (the rest of the host is not covered by this weaker wall: $HOME is left out here)."""
    scratch_root = host["tmp"] / "scratch-root"
    scratch_root.mkdir()
    host["folders"].remove(os.path.expanduser("~"))
    host["secrets"] = host["secrets"][:3]
    hide = [str(host["course"]), str(ROOT), str(host["subs"]), str(host["out"]), str(host["cwd"])]
    expose = [sys.prefix, sys.base_prefix, sys.exec_prefix, str(ROOT / "attention_course")]
    scratch = str(scratch_root / "w")
    prefix = wall.namespace_prefix(str(scratch_root), scratch, hide, expose)
    script = ["sh", "-c", f'cd {scratch} && exec "$@"', "attack"]
    done = attack(prefix + script, host, extension, scratch)
    assert done["scratch"] and done["read"] == [], done
    assert left_on_host(host) == []


@pytest.mark.slow
@pytest.mark.skipif(not wall.bwrap_available(), reason="bubblewrap (bwrap) is not installed or cannot run here")
def test_graded_submission_doing_c_level_io_leaves_nothing(host, extension, tmp_path):
    """Through the whole grader: a correct submission that also writes with torch.from_file and a
    compiled extension loaded from its scratch folder is graded, and the host has none of its files."""
    targets = [(folder, host["name"]) for folder in host["folders"]]
    cell = (f"import json, sys\nsys.argv = ['x', {json.dumps(json.dumps(targets))}, {json.dumps(json.dumps(host['secrets']))}, "
            f"{extension[0]!r}, {extension[1]!r}]\n"
            + ATTACK.replace("print(json.dumps(done))", "if done['read']:\n    raise RuntimeError('LEAK ' + repr(done['read']))\n"
                             "raise RuntimeError('WALLDONE ' + repr(done['wrote'][:3]))"))
    write(host["subs"], "attack_general_form.ipynb", submission(extra=[(-1, cell)]))
    (host["subs"] / "alice.ipynb").unlink()
    done = subprocess.run([sys.executable, "-m", "attention_course.grading", str(host["subs"]), "--out", str(host["out"]),
                           "--course", str(host["course"]), "--jobs", "1"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    log = (host["out"] / "grade.log").read_text(encoding="utf-8")
    assert "WALLDONE" in log and "LEAK" not in log, log[-3000:]
    assert "15/15" in log
    assert left_on_host(host) == []


WALLS = [pytest.param("bubblewrap", marks=pytest.mark.skipif(not wall.bwrap_available(), reason="no bubblewrap")),
         pytest.param("unshare", marks=pytest.mark.skipif(not wall.namespaces_available(), reason="no user namespaces")),
         ""]


@pytest.mark.parametrize("how", ["fork", "exec"])
@pytest.mark.parametrize("kind", WALLS)
def test_worker_is_inside_the_wall(kind, how, host, tmp_path):
    """A worker forked from a warm checker joins the wall's namespaces (the fast path), or is started
    behind it (``python -I``, the old path); with no wall it still runs. Its C-level writes to /tmp,
    /var/tmp, /dev/shm and the course stay inside; it sees its own pid namespace and none of the
    grader's environment variables; killing it ends the wall's holder too."""
    from attention_course.grading import checker
    from attention_course.grading.course import load_assignment

    course = host["course"]
    job = {"course": str(course), "forbidden": [str(host["subs"]), str(host["out"])], "job_id": "j1",
           "scratch_root": str(tmp_path / "scratch-root"), "wall": kind, "memory_mb": 3072, "total_seconds": 60,
           "file_mb": 64, "language": "en"}
    scratch = os.path.join(job["scratch_root"], "j1")
    forked = checker.fork_worker(job, scratch) if how == "fork" else None
    assignment = load_assignment(course, course / "solutions" / "ch03_general_form" / "general_form.ipynb")
    modules = checker.warm_imports(assignment)
    setup = checker.worker_setup(job, assignment, scratch, modules)
    os.environ["WALL_TEST_SECRET"] = "token"  # the instructor's environment stays out of the worker
    worker = checker.Worker(forked or checker.worker_argv(job, scratch, modules), setup, 60)
    forked = worker.proc
    folders = ["/tmp", "/var/tmp", "/dev/shm", str(course)] if kind else []
    cell = ("import os, torch\nfound = [k for k in os.environ if 'SECRET' in k]\n"
            f"for folder in {folders!r}:\n"
            f"    try:\n        torch.from_file(os.path.join(folder, {host['name']!r} + '_from_file'), shared=True, size=8)\n"
            "        found.append(folder)\n    except Exception as error:\n        found.append(repr(error))\n"
            "print(os.getpid(), found)")
    try:
        reply = worker.request(("run_cells", [(0, cell)], 30), 60)
        assert reply[0] == "ok" and reply[1][0]["status"] == "ok", reply
        pid, _ = reply[1][0]["output"].split(" ", 1)
        assert "WALL_TEST_SECRET" not in reply[1][0]["output"], reply
        if kind:
            assert int(pid) < 100 and int(pid) != forked.pid, reply  # its own pid namespace
            assert "/tmp" in reply[1][0]["output"], reply  # a private /tmp it may write
    finally:
        os.environ.pop("WALL_TEST_SECRET", None)
        holder = getattr(forked, "holder", None)
        worker.kill()
    assert forked.poll() is not None
    if holder is not None:
        assert holder.proc.poll() is not None
    assert left_on_host(host) == []


def test_readable_paths_leave_out_working_folders_and_the_course(monkeypatch, tmp_path):
    """``python -m`` puts its working folder (often $HOME or the course) on sys.path: it must not become
    readable inside the wall; the installed packages and the course's package must."""
    monkeypatch.setattr(sys, "path", [str(tmp_path), str(ROOT), *sys.path])
    readable = wall.readable_paths(str(ROOT / "attention_course"), [str(ROOT)])
    assert str(tmp_path) not in readable and str(ROOT) not in readable, readable
    assert str(ROOT / "attention_course") in readable
    import numpy

    assert any(os.path.realpath(numpy.__file__).startswith(p + "/") for p in readable), readable


@pytest.mark.skipif(not (hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get")),
                    reason="only where scripts/setup_env.sh installs bubblewrap itself (root, Debian/Ubuntu)")
def test_where_the_scripts_install_bubblewrap_it_runs():
    """The wall's tests above skip without bwrap; where the README's commands install it (as root with
    apt-get), a missing or broken bwrap is an install bug, not a reason to skip the wall."""
    assert shutil.which("bwrap"), "bwrap is missing: scripts/setup_env.sh should have installed bubblewrap"
    assert wall.bwrap_available(), "bwrap is installed but cannot make its namespaces here"

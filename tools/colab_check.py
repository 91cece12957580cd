"""Run every notebook of the course the way a fresh Colab runtime would, here, and print a table.

    python3 tools/colab_check.py                 # every book, solution and student notebook
    python3 tools/colab_check.py book/03*.ipynb  # only these

What it does (not part of CI: it installs a second PyTorch and takes about half an hour):

1. Makes ``.colab-venv/`` with Python 3.13 and Colab's versions of what Colab ships
   (``requirements-colab.txt``: torch 2.11, ipywidgets 7.7.1, IPython 7.34, ...). Reused while
   that file is unchanged; at the start of every run anything installed since (by an earlier
   run's setup cells) is removed again, so the first setup cell finds what Colab has.
2. Builds a wheel of this checkout. It stands in for the git URL of the setup cell, which is
   otherwise run unchanged: ``apt-get update``/``install``, the pinned model packages, the font
   registration and ``output.enable_custom_widget_manager()`` (a stand-in ``google.colab`` module is
   imported when each kernel starts, as in Colab).
3. Executes each notebook in its own empty working folder, with an empty model cache and an empty
   Hugging Face cache, like a fresh runtime. In the student notebooks (``notebooks/``) the
   unsolved exercises fail their checks: a ``NotImplementedError`` or a failed check cell is
   expected there. Any other error, anywhere, fails the run (exit 1).

Python 3.13 is looked up as ``--python``, then ``python3.13`` on PATH, then pyenv's versions.
"""
from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".colab-venv"
REQUIREMENTS = ROOT / "requirements-colab.txt"
STAMP = VENV / ".colab-stamp"
BASELINE = VENV / ".colab-baseline.txt"
CELL_TIMEOUT = 900  # seconds per cell, as generous as the book build

# A stand-in for the module Colab's kernel imports at start: the setup cell checks for it and
# calls output.enable_custom_widget_manager(), which has nothing to do outside Colab.
COLAB_STUB = '''"""Stand-in for google.colab (tools/colab_check.py): only what the course's setup cell uses."""
from . import output  # noqa: F401
'''
COLAB_OUTPUT_STUB = '''def enable_custom_widget_manager():
    """Colab switches its front end to the custom widget manager; nothing to do here."""
'''


def find_python(explicit: str | None) -> str:
    """Path of a Python 3.13 interpreter, or exit with what to install."""
    candidates = [explicit] if explicit else []
    candidates.append(shutil.which("python3.13"))
    pyenv_root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    candidates += sorted(glob.glob(f"{pyenv_root}/versions/3.13*/bin/python3.13"), reverse=True)
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            version = subprocess.run([candidate, "-c", "import sys; print(sys.version_info[:2])"],
                                     capture_output=True, text=True).stdout.strip()
            if version == "(3, 13)":
                return candidate
    sys.exit("!! Python 3.13 not found: install it (e.g. `pyenv install 3.13`) or pass --python PATH")


def run(*command, **kwargs) -> subprocess.CompletedProcess:
    """Run a set-up command; on failure print its output and stop."""
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        print(result.stdout[-4000:], result.stderr[-4000:], sep="\n", file=sys.stderr)
        sys.exit(f"!! failed (exit {result.returncode}): {' '.join(map(str, command))}")
    return result


def pip(*args) -> subprocess.CompletedProcess:
    return run(VENV / "bin" / "python", "-m", "pip", "--disable-pip-version-check", *args)


def colab_environment(python: str) -> None:
    """Create or reset ``.colab-venv`` to what a fresh Colab runtime has."""
    want = hashlib.sha256(REQUIREMENTS.read_bytes() + python.encode()).hexdigest()
    if not (STAMP.exists() and STAMP.read_text() == want):
        print(f"== creating {VENV.name} with Colab's versions (requirements-colab.txt); this takes minutes",
              flush=True)
        shutil.rmtree(VENV, ignore_errors=True)
        run(python, "-m", "venv", VENV)
        pip("install", "--quiet", "-r", REQUIREMENTS)
        site = Path(run(VENV / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
                    .stdout.strip())
        colab = site / "google" / "colab"  # google/ stays a namespace package (protobuf shares it)
        colab.mkdir(parents=True, exist_ok=True)
        (colab / "__init__.py").write_text(COLAB_STUB)
        (colab / "output.py").write_text(COLAB_OUTPUT_STUB)
        BASELINE.write_text(pip("freeze", "--all").stdout)
        STAMP.write_text(want)
        return
    baseline = {line.split("==")[0].split(" @ ")[0].lower() for line in BASELINE.read_text().splitlines()}
    now = {line.split("==")[0].split(" @ ")[0].lower() for line in pip("freeze", "--all").stdout.splitlines()}
    extra = sorted(now - baseline)
    if extra:
        print(f"== removing what earlier setup cells installed: {', '.join(extra)}", flush=True)
        pip("uninstall", "--quiet", "-y", *extra)
    print(f"== {VENV.name} is Colab's environment again", flush=True)


def build_wheel(folder: Path) -> Path:
    """A wheel of this checkout: what `pip install git+<repository>` would build in Colab.

    Built from a copy of the files git tracks (as a clone would have them), so nothing else in
    the working tree gets in and no build/ folder is left in it.
    """
    source = folder / "source"
    for name in run("git", "ls-files", "-z", cwd=ROOT).stdout.split("\0"):
        if name and (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    run(VENV / "bin" / "python", "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", folder, source)
    (wheel,) = folder.glob("attention_course-*.whl")
    return wheel


def default_notebooks() -> list[Path]:
    return (sorted(ROOT.glob("book/*.ipynb")) + sorted(ROOT.glob("solutions/*/*.ipynb"))
            + sorted(ROOT.glob("notebooks/*/*.ipynb")))


# ---------------------------------------------------------------------------------------------
# Inside .colab-venv: execute one notebook and describe its errors (run as a child process).

def execute(notebook: Path, wheel: Path, workdir: Path, student: bool) -> dict:
    """Run ``notebook`` in ``workdir`` like a fresh Colab runtime; returns its errors and seconds.

    ``student``: a student notebook, whose unsolved exercises are expected to fail their checks.
    """
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(notebook, as_version=4)
    setup = nb.cells[0]
    marker = '"attention-course @ git+'
    if "colab-setup" not in setup.metadata.get("tags", []) or marker not in setup.source:
        return {"seconds": 0.0, "errors": [("setup", "the first cell is not the course's Colab setup cell")]}
    start = setup.source.index(marker)
    end = setup.source.index('"', start + 1)
    setup.source = setup.source[:start] + f'"attention-course @ {wheel.as_uri()}' + setup.source[end:]
    client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3", allow_errors=student,
                            resources={"metadata": {"path": str(workdir)}})
    began = time.perf_counter()
    try:
        client.execute()
        crashed = None
    except Exception as error:  # CellExecutionError, DeadKernelError, CellTimeoutError
        crashed = f"{type(error).__name__}: {str(error).strip().splitlines()[-1][:200] if str(error).strip() else ''}"
    seconds = time.perf_counter() - began
    errors, expected = [], 0
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") != "error":
                continue
            graded_check = cell.metadata.get("nbgrader", {}).get("grade", False)
            if student and (output["ename"] == "NotImplementedError"
                            or (graded_check and output["ename"] == "AssertionError")):
                expected += 1
            else:
                errors.append((f"cell {index}", f"{output['ename']}: {output['evalue'][:200]}"))
    if crashed and not errors:
        errors.append(("run", crashed))
    return {"seconds": seconds, "errors": errors, "expected": expected}


def child(args) -> int:
    result = execute(Path(args.notebook), Path(args.wheel), Path(args.workdir), args.student == "student")
    Path(args.report).write_text(json.dumps(result))
    return 0


# ---------------------------------------------------------------------------------------------

def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="notebooks to run (default: all of book/, solutions/, notebooks/)")
    parser.add_argument("--python", help="a Python 3.13 interpreter")
    parser.add_argument("--child", nargs=5, metavar=("NOTEBOOK", "WHEEL", "WORKDIR", "REPORT", "KIND"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        args.notebook, args.wheel, args.workdir, args.report, args.student = args.child
        return child(args)

    colab_environment(find_python(args.python))
    notebooks = [Path(p).resolve() for p in args.notebooks] or default_notebooks()
    rows, failed = [], 0
    with tempfile.TemporaryDirectory(prefix="colab-check-") as tmp:
        tmp = Path(tmp)
        wheel = build_wheel(tmp / "wheel")
        versions = run(VENV / "bin" / "python", "-c",
                       "import sys, torch, numpy, matplotlib, ipywidgets, IPython, transformers; "
                       "print(f'Python {sys.version.split()[0]}, torch {torch.__version__}, numpy {numpy.__version__}, '"
                       "f'matplotlib {matplotlib.__version__}, ipywidgets {ipywidgets.__version__}, '"
                       "f'IPython {IPython.__version__}, transformers {transformers.__version__}')").stdout.strip()
        print(f"== Colab-like runtime: {versions}", flush=True)
        for i, notebook in enumerate(notebooks):
            runtime = tmp / f"runtime-{i}"
            workdir, cache, ipython = runtime / "content", runtime / "cache", runtime / "ipython"
            kind = "student" if notebook.relative_to(ROOT).parts[0] == "notebooks" else "course"
            for folder in (workdir, cache / "hf", ipython / "profile_default" / "startup"):
                folder.mkdir(parents=True)
            (ipython / "profile_default" / "startup" / "00-colab.py").write_text("import google.colab\n")
            shutil.copy(notebook, workdir / notebook.name)
            env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON", "JUPYTER"))}
            env.update(PATH=f"{VENV / 'bin'}{os.pathsep}/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                       HOME=str(runtime), ATTENTION_COURSE_CACHE=str(cache), HF_HOME=str(cache / "hf"),
                       IPYTHONDIR=str(ipython), MPLCONFIGDIR=str(runtime / "mpl"),
                       HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYDEVD_DISABLE_FILE_VALIDATION="1")
            report = runtime / "report.json"
            name = str(notebook.relative_to(ROOT))
            print(f"-- {name}", flush=True)
            subprocess.run([VENV / "bin" / "python", __file__, "--child", workdir / notebook.name, wheel, workdir,
                            report, kind], cwd=workdir, env=env)
            result = json.loads(report.read_text()) if report.exists() else {
                "seconds": 0.0, "errors": [("run", "the runner itself failed (see above)")], "expected": 0}
            status = "ok" if not result["errors"] else "FAILED: " + "; ".join(f"{w}: {e}" for w, e in result["errors"][:2])
            if not result["errors"] and result.get("expected"):
                status = f"ok ({result['expected']} unsolved-exercise failures, expected)"
            failed += bool(result["errors"])
            rows.append((name, f"{result['seconds']:.0f}", status))
            print(f"   {rows[-1][1]} s  {status}", flush=True)
    print(f"\n{versions}\n")
    print("| notebook | seconds | result |\n|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(f"\n{len(rows) - failed} of {len(rows)} notebooks ran as in Colab" + (f"; {failed} failed" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

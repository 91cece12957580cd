"""Installing the course as a user would: a built wheel, and the release script in a fresh clone.

Both are `slow` (a wheel build and a virtual environment, or a clone and nbgrader): run them
with the full suite (`bash scripts/test.sh`), not in the contributor tier.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from course_tools import ROOT

pytestmark = pytest.mark.slow

# What the editable install of scripts/setup_env.sh puts into .venv's site-packages: the
# clean environment must not see it, or the test would import the source tree, not the wheel.
EDITABLE = ("attention_course", "__editable__", "attention_course-", "attention_course.")


def run(*args, **kwargs) -> subprocess.CompletedProcess:
    """Run a command; fail the test with its own output if it fails."""
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))} failed ({result.returncode}):\n"
                             f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result


def source_files() -> list[str]:
    """The repository's files as a clone would have them, plus new files not yet committed."""
    out = run("git", "ls-files", "--cached", "--others", "--exclude-standard", cwd=ROOT).stdout
    return [f for f in out.splitlines() if (ROOT / f).is_file()]


def copy_source_files(dest: Path) -> list[str]:
    """Copy source_files() into ``dest`` (same relative paths); returns their names."""
    files = source_files()
    for name in files:
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, dest / name)
    return files


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The course's wheel, built from a copy of its files (no build/ or egg-info in the tree)."""
    src, dist = tmp_path_factory.mktemp("src"), tmp_path_factory.mktemp("dist")
    copy_source_files(src)
    # No build isolation: the environment's setuptools builds it, nothing is downloaded.
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
        "--wheel-dir", dist, src)
    (built,) = dist.glob("attention_course-*.whl")
    return built


@pytest.fixture(scope="module")
def clean_env(tmp_path_factory) -> Path:
    """A new virtual environment that sees this one's third-party packages, but not attention_course.

    Reinstalling torch and transformers would take minutes and gigabytes, so the new
    environment reaches the installed ones through a folder of links to every entry of this
    environment's site-packages except the editable install of the course.
    """
    root = tmp_path_factory.mktemp("clean")
    env = root / "venv"
    venv.create(env, with_pip=False, symlinks=True)
    python = env / "bin" / "python"
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip())
    shared = root / "third_party"
    shared.mkdir()
    ours = Path(sysconfig.get_paths()["purelib"])
    for entry in ours.iterdir():
        if not entry.name.startswith(EDITABLE) and not entry.name.endswith(".pth"):
            (shared / entry.name).symlink_to(entry)
    # A plain path line: Python appends it to sys.path after the environment's own
    # site-packages (and does not run the .pth files inside it).
    (site / "course_third_party.pth").write_text(f"{shared}\n")
    return env


def test_wheel_contains_every_module_and_data_file(wheel):
    import zipfile

    names = set(zipfile.ZipFile(wheel).namelist())
    package = [f for f in source_files() if f.startswith("attention_course/") and "__pycache__" not in f]
    assert package, "no files under attention_course/"
    missing = [f for f in package if f not in names]
    assert not missing, f"the wheel leaves out {missing}: see [tool.setuptools] in pyproject.toml"
    assert not [n for n in names if n.endswith(".pyc")], "the wheel ships compiled files"


def test_wheel_installs_imports_and_grades(wheel, clean_env, tmp_path):
    python = clean_env / "bin" / "python"
    # pip of this environment installs into the clean one (which has no pip of its own);
    # --no-index: every dependency must already be satisfied, nothing is downloaded.
    run(sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-index",
        "--no-warn-script-location", wheel)
    check = f"""
import importlib, pkgutil, sys
import attention_course
prefix = {str(clean_env)!r}
assert attention_course.__file__.startswith(prefix), attention_course.__file__
names = [m.name for m in pkgutil.walk_packages(attention_course.__path__, "attention_course.")]
assert "attention_course.grading" in names, names
for name in names:
    module = importlib.import_module(name)
    assert module.__file__.startswith(prefix), (name, module.__file__)
print(len(names))
"""
    env = dict(os.environ, HF_HUB_OFFLINE="1", MPLBACKEND="Agg", PYTHONNOUSERSITE="1")
    env.pop("PYTHONPATH", None)
    count = int(run(python, "-c", check, cwd=tmp_path, env=env).stdout.split()[-1])
    assert count >= 20, f"only {count} modules imported"
    help_text = run(python, "-m", "attention_course.grading", "--help", cwd=tmp_path, env=env).stdout
    assert "usage:" in help_text and "--out" in help_text


def notebook_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def fresh_clone(tmp_path_factory) -> Path:
    """A fresh clone of HEAD that borrows this environment (ATTENTION_COURSE_VENV) instead of installing one.

    The working tree's changes not yet committed (new files included, ignored ones not) are copied
    in and committed in the clone, as the wheel is built from them: a stale notebooks/ then fails
    before it is committed, and `git status` in the clone shows only what the release script changed.
    """
    clone = tmp_path_factory.mktemp("clone") / "course"
    run("git", "clone", "--quiet", "--no-hardlinks", ROOT, clone)
    files = copy_source_files(clone)
    for name in set(run("git", "ls-files", cwd=clone).stdout.splitlines()) - set(files):
        (clone / name).unlink()  # deleted in the working tree
    run("git", "add", "--all", cwd=clone)
    run("git", "-c", "user.name=tests", "-c", "user.email=tests@localhost", "commit", "--quiet", "--allow-empty",
        "--no-verify", "-m", "the working tree's uncommitted changes", cwd=clone)
    return clone


def release(clone: Path) -> subprocess.CompletedProcess:
    """Run the release script as an instructor would, with a minimal PATH and no venv activated."""
    env = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp"), "LANG": "C.UTF-8",
           "ATTENTION_COURSE_VENV": str(Path(sys.prefix))}
    return subprocess.run(["bash", "scripts/release_notebooks.sh"], cwd=clone, env=env,
                          capture_output=True, text=True, timeout=900)


def test_release_script_regenerates_notebooks_identically_in_a_fresh_clone(fresh_clone):
    """notebooks/ must be exactly what the release script (nbgrader generate_assignment) makes from solutions/."""
    committed = notebook_bytes(fresh_clone / "notebooks")
    result = release(fresh_clone)
    assert result.returncode == 0, f"release_notebooks.sh failed:\n{result.stdout}\n{result.stderr}"
    fresh = notebook_bytes(fresh_clone / "notebooks")
    stale = sorted(name for name in committed.keys() | fresh.keys() if committed.get(name) != fresh.get(name))
    assert not stale, f"stale student notebooks in notebooks/ {stale}: run bash scripts/release_notebooks.sh"
    status = run("git", "status", "--porcelain", "--untracked-files=all", "--", "notebooks", "solutions",
                 cwd=fresh_clone).stdout
    assert status == "", f"the release script changed files:\n{status}"


def test_failing_release_leaves_notebooks_as_they_were(fresh_clone):
    committed = notebook_bytes(fresh_clone / "notebooks")
    # The last chapter fails inside nbgrader, after the others have been generated: a solution
    # region that never ends.
    broken = sorted((fresh_clone / "solutions").glob("*/*.ipynb"))[-1]
    original = broken.read_bytes()
    nb = json.loads(original)
    nb["cells"].append({"cell_type": "code", "execution_count": None, "id": "broken-cell",
                        "metadata": {}, "outputs": [], "source": ["### BEGIN SOLUTION\n", "x = 1\n"]})
    try:
        broken.write_text(json.dumps(nb, indent=1), encoding="utf-8")
        result = release(fresh_clone)
    finally:
        broken.write_bytes(original)
    assert result.returncode != 0, "the release script succeeded on a broken solution notebook"
    output = result.stdout + result.stderr
    assert broken.parent.name in output, output[-3000:]
    written = [f"notebooks/{nb.parent.name}/{nb.name}" for nb in sorted((fresh_clone / "solutions").glob("*/*.ipynb"))
               if nb.parent != broken.parent]
    assert written and all(any(path in line for line in output.splitlines() if "Writing" in line)
                           for path in written), f"the other chapters were not generated first:\n{output[-3000:]}"
    assert notebook_bytes(fresh_clone / "notebooks") == committed, "a failing release changed notebooks/"

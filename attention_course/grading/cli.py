"""Grade a class's exercise notebooks: ``python -m attention_course.grading SUBMISSIONS --out DIR``.

SUBMISSIONS is a folder or a ``.zip`` (as exported by an LMS). Who is who comes from the path of
each file inside it:

* ``alice/general_form.ipynb`` (one folder per student): the student is the first folder, ``alice``;
* ``alice_general_form.ipynb`` or ``alice_ch03.ipynb`` (flat): the student is the name up to the
  first ``_``;
* anything else: pass ``--student-pattern REGEX``, a Python regex searched in the path relative to
  SUBMISSIONS (with ``/`` separators) whose named group ``student`` is the id, e.g.
  ``--student-pattern '^(?P<student>[^_]+)_\\d+_'`` for Canvas's ``name_12345_678_file.ipynb``.

Notebooks of older formats (nbformat 3, as old Jupyter/IPython installs save them) are converted to
nbformat 4 and every notebook is validated, both by nbformat itself. Each notebook's chapter is found
from its content (nbgrader cell ids, cell ids, the functions it
defines, the course text it contains), not from its name, and matched against every assignment in
``COURSE/solutions/``. Each notebook is graded in its own sandboxed process (see
:mod:`attention_course.grading`), several at a time. Output in DIR:

* ``gradebook.csv`` (in English): one row per file found: student, chapter, file, language, the points of every graded
  exercise, total, max, status, reason;
* ``feedback/<student>/<chapter>.html``, in the notebook's language (``metadata.attention_course.language``,
  English if absent; its checks run in it too): what the student may see (public checks and their
  messages; hidden tests only as "passed" or "failed", never their code or messages);
* ``grade.log``: what happened, for the instructor (includes hidden-test messages and timings);
* ``report.html``: the class report, for the instructor (:mod:`.report`): per chapter, the scores and
  pass rates as plots, the most frequent named mistakes, the statuses counted;
* with ``--roster roster.csv``: ``canvas.csv`` and ``moodle.csv``, the totals per chapter in Canvas's
  and Moodle's grade import formats, one row per roster student (:mod:`.exports`).

Before any submission, each needed chapter's own solution notebook is graded the same way; if it
does not get full marks the environment is broken, and the command stops with exit status 3 (a
message names the chapter and the solution's score) without writing a gradebook.

Statuses (worst first): ``empty_file``, ``not_a_notebook``, ``malformed_notebook``, ``too_large``,
``unknown_chapter``, ``wrong_chapter``, ``grader_error``, ``killed``, ``timeout``, ``memory``,
``sandbox_violation``, ``tampering``, ``borrowed_reference``, ``cell_error``, ``metadata_changed``, ``ok``.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from attention_course.grading.course import Assignment, cell_source, cell_timeout, defined_names, load_course, normalise
from attention_course.grading.exports import lms_table, one_per_student, read_roster, write_canvas, write_moodle
from attention_course.grading.gradebook import Row, check_borrowing, interpret, write_feedback, write_gradebook
from attention_course.grading.messages import Text, notebook_language
from attention_course.grading.report import write_report

PACKAGE_REPO = Path(__file__).resolve().parents[2]
IGNORED_PARTS = {"__MACOSX", ".ipynb_checkpoints", "__pycache__"}
IGNORED_NAMES = {".DS_Store", "Thumbs.db", "desktop.ini"}
log = logging.getLogger("attention_course.grading.cli")


# ------------------------------------------------------------------------------ collecting
def student_of(rel: str, pattern: str | None) -> str | None:
    """The student id in ``rel``, a submitted file's path relative to SUBMISSIONS (``/`` separators).

    With ``pattern`` (``--student-pattern``): its named group ``student``, searched in ``rel``.
    Without: the first folder of ``rel``, else the file name up to the first ``_`` (the whole stem
    if it has none).

    Returns:
        The id, or None if ``pattern`` does not match or its ``student`` group is empty.

    Raises:
        re.error: if ``pattern`` is not a valid regex.
    """
    if pattern:
        match = re.search(pattern, rel)
        return match.group("student") if match and match.groupdict().get("student") else None
    parts = rel.split("/")
    if len(parts) > 1:
        return parts[0]
    stem = parts[0].rsplit(".", 1)[0]
    return stem.split("_", 1)[0] if "_" in stem else stem


def _safe_extract(archive: Path, target: Path, limit_mb: int) -> list[str]:
    """Extract a zip without path traversal and without a zip bomb; return notes."""
    notes, total = [], 0
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            name = info.filename.replace("\\", "/")
            if info.is_dir():
                continue
            if name.startswith("/") or ".." in name.split("/"):
                notes.append(f"skipped unsafe path in the zip: {name}")
                continue
            total += info.file_size
            if total > limit_mb * 1024 * 1024:
                notes.append(f"zip larger than {limit_mb} MB once extracted: stopped at {name}")
                break
            dest = target / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out)
    return notes


def collect(root: Path, pattern: str | None) -> tuple[list[Row], list[str]]:
    """One :class:`Row` per file (or symbolic link) under ``root``, in path order.

    Args:
        root: the SUBMISSIONS folder (or the folder a zip was extracted to).
        pattern: ``--student-pattern``, or None (see :func:`student_of`). A file it does not match
            gets its file stem as the id and a reason saying so.

    Returns:
        ``(rows, ignored)``: the rows (student, file, path filled in, nothing read yet) and the
        relative paths of system files left out (``__MACOSX``, ``.ipynb_checkpoints``, ``.DS_Store``...).
    """
    rows, ignored = [], []
    for path in sorted(p for p in root.rglob("*") if p.is_file() or p.is_symlink()):
        rel = path.relative_to(root).as_posix()
        if any(part in IGNORED_PARTS for part in rel.split("/")) or path.name in IGNORED_NAMES:
            ignored.append(rel)
            continue
        student = student_of(rel, pattern)
        row = Row(student=student or path.stem, file=rel, path=path)
        if student is None:
            row.reasons.append("the file name does not match --student-pattern: the file name is used as the id")
        rows.append(row)
    return rows, ignored


# ------------------------------------------------------------------------------ reading
def read_notebook(row: Row, max_mb: int) -> None:
    """Parse the row's file into ``row.notebook`` (nbformat 4, see :func:`to_nbformat4`).

    On failure the row is flagged instead (``not_a_notebook``, ``empty_file``, ``too_large`` past
    ``max_mb`` megabytes, ``malformed_notebook``) and ``row.notebook`` stays None; a converted older
    format or a notebook under another extension gets a reason.

    Raises:
        OSError: if the file cannot be read.
    """
    path = row.path
    if path.is_symlink():
        row.flag("not_a_notebook", "a symbolic link, not a file")
        return
    size = path.stat().st_size
    if size == 0:
        row.flag("empty_file", "the file is empty (0 bytes): nothing was submitted")
        return
    if size > max_mb * 1024 * 1024:
        row.flag("too_large", f"the file is {size / 1e6:.0f} MB, more than the {max_mb} MB limit")
        return
    raw = path.read_bytes()
    is_ipynb = path.suffix.lower() == ".ipynb"
    try:
        nb = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        row.flag("malformed_notebook" if is_ipynb else "not_a_notebook",
                 "not a text file (binary content)" + ("" if is_ipynb else f"; a {path.suffix or 'file'} is not a notebook"))
        return
    except json.JSONDecodeError as error:
        if is_ipynb:
            row.flag("malformed_notebook", f"not valid JSON (line {error.lineno}, column {error.colno}: {error.msg}); "
                     "the notebook is damaged, ask the student to download it again from Jupyter/Colab")
        else:
            row.flag("not_a_notebook", f"a {path.suffix or 'file without extension'} file, not a Jupyter notebook (.ipynb)")
        return
    if not isinstance(nb, dict) or not (isinstance(nb.get("cells"), list) or isinstance(nb.get("worksheets"), list)):
        row.flag("not_a_notebook" if not is_ipynb else "malformed_notebook",
                 "JSON, but not a Jupyter notebook (no list of cells)")
        return
    converted = to_nbformat4(nb)
    if isinstance(converted, str):
        row.flag("malformed_notebook", converted)
        return
    if nb.get("nbformat") != 4:
        row.reasons.append(Text("an nbformat {version} notebook (older Jupyter), converted to nbformat 4 by nbformat",
                                version=nb.get("nbformat")))
    if not is_ipynb:
        row.reasons.append(Text("graded although named {name} (it is a notebook)", name=path.name))
    row.notebook = converted
    row.language = notebook_language(converted)


def to_nbformat4(nb: dict):
    """The notebook as a valid nbformat 4 node, or a sentence saying why it cannot be one.

    nbformat itself does the work: ``nbformat.convert`` upgrades older versions (nbformat 3's
    ``worksheets``, written by old Jupyter/IPython installs), ``nbformat.validator.normalize`` adds
    missing cell ids and drops invalid metadata, ``nbformat.validate`` checks the schema.
    """
    import nbformat
    from nbformat.validator import normalize
    from nbformat.warnings import MissingIDFieldWarning

    version = nb.get("nbformat")
    try:
        node = nbformat.from_dict(nb)
        if version != 4:
            if not isinstance(version, int) or version > 4:
                return f"nbformat version {version!r}: not a notebook format this grader reads (1 to 4)"
            node = nbformat.convert(node, 4)
        with warnings.catch_warnings():  # normalize warns about the missing ids it is adding
            warnings.simplefilter("ignore", MissingIDFieldWarning)
            _, node = normalize(node, strip_invalid_metadata=True)
        node = nbformat.from_dict(node)
        nbformat.validate(node)
    except nbformat.ValidationError as error:
        where = "".join(f"[{p!r}]" for p in getattr(error, "absolute_path", []))
        return (f"not a valid notebook (nbformat: {getattr(error, 'message', str(error).splitlines()[0])}"
                f"{', at ' + where if where else ''}); ask the student to open it in Jupyter/Colab and download it again")
    except Exception as error:  # noqa: BLE001 - nbformat raises many kinds on broken input
        return f"not a valid notebook (nbformat could not read it: {type(error).__name__}: {str(error)[:200]})"
    return node


# ------------------------------------------------------------------------------ which chapter
def fingerprint(nb: dict) -> dict:
    """What in a notebook tells which chapter it belongs to (read by :func:`detect_chapter`).

    Args:
        nb: an nbformat 4 notebook as a dict (as :func:`to_nbformat4` returns it).

    Returns:
        A dict of sets: ``"ids"`` (nbgrader ``grade_id`` of its cells), ``"cell_ids"`` (cell ids),
        ``"names"`` (top-level names its code cells define) and ``"texts"`` (every non-empty cell's
        source, normalised by :func:`~attention_course.grading.course.normalise`).
    """
    ids, cell_ids, names, texts = set(), set(), set(), set()
    for cell in nb["cells"]:
        meta = cell.get("metadata") if isinstance(cell.get("metadata"), dict) else {}
        nbg = meta.get("nbgrader") if isinstance(meta.get("nbgrader"), dict) else {}
        if isinstance(nbg.get("grade_id"), str):
            ids.add(nbg["grade_id"])
        if isinstance(cell.get("id"), str):
            cell_ids.add(cell["id"])
        source = cell_source(cell)
        if cell.get("cell_type") == "code":
            names.update(defined_names(source))
        if normalise(source):
            texts.add(normalise(source))
    return {"ids": ids, "cell_ids": cell_ids, "names": names, "texts": texts}


def detect_chapter(nb: dict, assignments: dict[str, Assignment]) -> tuple[str | None, str]:
    """Best-matching assignment for a notebook, or (None, why).

    Evidence is needed (a shared nbgrader ``grade_id``, or enough of the assignment's graded
    function names); among those with evidence, the one sharing the most ids, names, cell ids and
    cell texts (see :func:`fingerprint`) wins.

    Returns:
        ``(chapter, "")``, or ``(None, a sentence for the gradebook)`` when nothing matches.
    """
    fp = fingerprint(nb)
    scored = []
    for name, a in assignments.items():
        texts = {normalise(cell_source(c)) for c in a.cells
                 if not (c.get("metadata", {}).get("nbgrader", {}) or {}).get("solution")}
        ids = len(fp["ids"] & a.grade_ids)
        names = len(fp["names"] & set(a.graded_names))
        evidence = ids >= 1 or names >= max(1, min(2, len(a.graded_names)))
        score = 3 * ids + 2 * names + len(fp["cell_ids"] & a.cell_ids) + 2 * len(fp["texts"] & texts)
        scored.append((evidence, score, name))
    scored.sort(key=lambda t: (t[0], t[1]), reverse=True)
    if not scored or not scored[0][0]:
        known = ", ".join(assignments) or "none"
        return None, (f"does not match any exercise notebook of the course (known: {known}); its graded "
                      f"cells: {', '.join(sorted(fp['ids'])[:5]) or 'none'}; "
                      f"functions: {', '.join(sorted(fp['names'])[:5]) or 'none'}")
    return scored[0][2], ""


# ------------------------------------------------------------------------------ grading
def run_one(row: Row, a: Assignment, opts, work: Path, forbidden: list[str]) -> dict | None:
    """Grade one submission's notebook in its own checker process (which starts its sandbox).

    Writes ``work/jobs/<job id>/submission.ipynb`` (``row.notebook``) and ``job.json`` (the job:
    paths, time and memory limits, ``forbidden`` paths, where to write the result, the notebook's
    ``language``, which the checks then speak), then runs
    ``python -I -B -m attention_course.grading.checker job.json`` with a cleaned environment and
    waits at most ``opts.total_timeout + 120`` seconds.

    Args:
        row: the submission's gradebook row (its ``notebook`` must be set).
        a: the assignment it was matched to.
        opts: the parsed command line (``course``, ``total_timeout``, ``cell_timeout``,
            ``memory_mb``, ``namespaces``, ``jobs``).
        work: the run's temporary folder.
        forbidden: paths the student's code must not see (submissions, output, work folder).

    Returns:
        The checker's result (``result.json``, see :func:`attention_course.grading.checker.grade`),
        or None after flagging the row ``grader_error`` (the checker failed or did not finish).

    Raises:
        OSError, json.JSONDecodeError: writing the job or reading its result failed (the callers
            catch these and flag ``grader_error``).
    """
    job_id = "j" + hashlib.sha1(row.file.encode("utf-8")).hexdigest()[:12]
    job_dir = work / "jobs" / job_id
    job_dir.mkdir(parents=True, exist_ok=True)
    notebook = job_dir / "submission.ipynb"
    notebook.write_text(json.dumps(row.notebook), encoding="utf-8")
    scratch_root = Path(tempfile.mkdtemp(prefix="attention-scratch-"))  # not inside a hidden folder
    job = {"course": str(opts.course), "source": str(a.source_path), "notebook": str(notebook),
           "total_seconds": opts.total_timeout, "cell_seconds": opts.cell_timeout, "memory_mb": opts.memory_mb,
           "file_mb": 64, "scratch_root": str(scratch_root), "job_id": job_id, "forbidden": forbidden,
           "namespaces": opts.namespaces, "wall": getattr(opts, "wall", ""), "result": str(job_dir / "result.json"),
           "language": row.language}
    if getattr(opts, "forkserver", None) is not None:
        job["fork"] = True
        (job_dir / "job.json").write_text(json.dumps(job), encoding="utf-8")
        try:
            return _run_forked(row, opts, job_dir)
        finally:
            shutil.rmtree(scratch_root, ignore_errors=True)
    (job_dir / "job.json").write_text(json.dumps(job), encoding="utf-8")
    try:
        proc = subprocess.run([sys.executable, "-I", "-B", "-m", "attention_course.grading.checker", str(job_dir / "job.json")],
                              capture_output=True, text=True, timeout=opts.total_timeout + 120, env=checker_env(opts.jobs),
                              cwd=str(job_dir), start_new_session=True)
        if proc.returncode != 0 or not (job_dir / "result.json").exists():
            row.flag("grader_error", Text("the grader itself failed on this notebook (see grade.log)"))
            log.error("%s: checker exit %s\n%s", row.file, proc.returncode, proc.stderr[-3000:])
            return None
        return json.loads((job_dir / "result.json").read_text(encoding="utf-8"))
    except subprocess.TimeoutExpired:
        row.flag("grader_error", Text("grading did not finish in time (see grade.log)"))
        return None
    finally:
        shutil.rmtree(scratch_root, ignore_errors=True)


def _run_forked(row: Row, opts, job_dir: Path) -> dict | None:
    """Grade the job in ``job_dir`` in a checker forked from the warm server (``opts.forkserver``, see
    :func:`start_forkserver`), waiting at most ``opts.total_timeout + 120`` seconds; as :func:`run_one`."""
    from attention_course.grading.checker import run_job

    proc = opts.forkserver.Process(target=run_job, args=(str(job_dir / "job.json"),), daemon=True)
    proc.start()
    proc.join(opts.total_timeout + 120)
    if proc.is_alive():
        proc.kill()
        proc.join(10)
        row.flag("grader_error", Text("grading did not finish in time (see grade.log)"))
        return None
    if proc.exitcode != 0 or not (job_dir / "result.json").exists():
        row.flag("grader_error", Text("the grader itself failed on this notebook (see grade.log)"))
        error = job_dir / "checker_error.txt"
        log.error("%s: checker exit %s\n%s", row.file, proc.exitcode,
                  error.read_text(encoding="utf-8")[-3000:] if error.exists() else "")
        return None
    return json.loads((job_dir / "result.json").read_text(encoding="utf-8"))


def start_forkserver(opts, assignments: dict[str, Assignment]):
    """Start the warm server the checkers are forked from, or None where there is none (not Linux).

    The standard library's ``multiprocessing`` forkserver: one process, started with the checkers'
    environment (:func:`checker_env`), imports torch, IPython, the grader and every module the
    assignments' source notebooks import, once; each submission's checker is then a fork of it (and
    its worker a fork of that checker, made before the checker reads the source notebook: see
    :func:`.checker.fork_worker`), instead of two new Python processes importing torch each.
    Nothing of a submission ever runs in the server.

    It runs this process's ``sys.executable`` (so a Python that lacks the course fails the
    self-check, as started checkers would). ``ATTENTION_COURSE_NO_FORKSERVER=1`` turns it off (each
    checker is then a new ``python -I`` process, and starts its worker as one: the old, slow path,
    kept for comparison and for systems without it). Stop it with :func:`stop_forkserver`.

    Returns:
        The multiprocessing context (``opts.forkserver`` for :func:`run_one`), or None.
    """
    import multiprocessing
    from multiprocessing import forkserver

    if (not sys.platform.startswith("linux") or "forkserver" not in multiprocessing.get_all_start_methods()
            or os.environ.get("ATTENTION_COURSE_NO_FORKSERVER") == "1"):
        return None
    from attention_course.grading.checker import warm_imports

    modules = ["torch", "numpy", "IPython.core.interactiveshell", "traitlets.config", "nbformat",
               "attention_course.grading.checker", "attention_course.grading.sandbox"]
    for a in assignments.values():
        modules += warm_imports(a)
    stop_forkserver()  # one of an earlier run in this process may run another Python, or another course
    context = multiprocessing.get_context("forkserver")
    context.set_executable(sys.executable)
    context.set_forkserver_preload(list(dict.fromkeys(modules)))
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(checker_env(opts.jobs))
    try:
        forkserver.ensure_running()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return context


def stop_forkserver() -> None:
    """Stop the warm server of :func:`start_forkserver`, if it runs (it would also end with this process)."""
    from multiprocessing import forkserver

    stop = getattr(getattr(forkserver, "_forkserver", None), "_stop", None)
    if stop is not None:
        stop()


def checker_env(jobs: int) -> dict[str, str]:
    """The environment of a checker process (and so of its worker): this process's without the
    ``PYTHON*``, ``JUPYTER*`` and ``IPYTHON*`` variables and ``ATTENTION_COURSE_LANGUAGE``, with Hugging Face offline, no bytecode
    written, and as many math-library threads as one notebook's share of the cores when ``jobs``
    notebooks are graded at once."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "JUPYTER", "IPYTHON"))
           and k != "ATTENTION_COURSE_LANGUAGE"}  # the submission's language comes with its job
    # -I ignores PYTHONDONTWRITEBYTECODE: -B (here and for the worker) keeps an import of a module
    # without a cached .pyc from trying to write one, which the sandbox refuses and reports
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONDONTWRITEBYTECODE="1")
    # opts.jobs notebooks share the cores: more math-library threads than that only oversubscribe
    # them (a tiny torch op then takes milliseconds instead of microseconds)
    threads = str(max(1, (os.cpu_count() or 1) // max(1, jobs)))
    env.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads)
    return env


def grade_row(row: Row, a: Assignment, opts, work: Path, forbidden: list[str]) -> None:
    """Grade one submission (:func:`run_one`), fill its row (:func:`.gradebook.interpret`,
    :func:`.gradebook.check_borrowing`) and log the outcome; never raises: a failure of the grader
    flags the row ``grader_error`` (logged with its traceback).

    Args: as :func:`run_one`.
    """
    try:
        result = run_one(row, a, opts, work, forbidden)
        if result is not None:
            interpret(row, a, result, opts)
            check_borrowing(row, a, result.get("borrowed"))
            log.info("%s -> %s %s: %g/%g %s (%.1f s) %s", row.file, row.student, row.chapter, row.total,
                     row.max, row.status, result.get("seconds", 0), json.dumps(
                         {"tests": [(t["grade_id"], t["outcome"], t["instructor"]) for t in result["tests"]],
                          "cells": [(c["index"], c["status"], c.get("error", "")) for c in result["cells"]
                                    if c["status"] != "ok"], "blocked": result.get("blocked", [])[:20]},
                         ensure_ascii=False))
    except Exception as error:  # noqa: BLE001 - never lose a row
        log.exception("grading %s failed", row.file)
        row.flag("grader_error", f"the grader failed on this notebook ({type(error).__name__}; see grade.log)")


def self_check(chapters: list[str], assignments: dict[str, Assignment], opts, work: Path,
               forbidden: list[str]) -> list[str]:
    """Grade each chapter's own solution notebook (``solutions/<chapter>/*.ipynb``) through the same
    pipeline as the submissions; return one line per chapter whose solution did not get full marks.

    Run on every grading run, nothing cached: a broken environment (a package missing, a borrowed
    virtual environment whose ``attention_course`` is another checkout's, a model cache the sandbox
    cannot read...) then stops the run instead of giving every student 0 points.

    Args:
        chapters: the chapters the submissions need (graded in parallel, ``opts.jobs`` at a time).
        assignments, opts, work, forbidden: as :func:`run_one`.
    """
    if not chapters:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(opts.jobs, len(chapters)))) as pool:
        lines = pool.map(lambda name: check_solution(name, assignments[name], opts, work, forbidden), chapters)
        return [line for line in lines if line]


def check_solution(name: str, a: Assignment, opts, work: Path, forbidden: list[str]) -> str | None:
    """Grade chapter ``name``'s own solution notebook (assignment ``a``) as a submission.

    Args: ``opts``, ``work`` and ``forbidden`` as :func:`run_one`.

    Returns:
        None if it gets full marks with status ``ok`` (logged), else the line :func:`self_check`
        reports: the chapter, the solution's path, its score and status, its reasons, the first
        failed checks.
    """
    row = Row(student="(course solution)", file=f"(solution)/{name}/{a.notebook}", chapter=name,
              path=a.source_path)
    read_notebook(row, max_mb=10 ** 6)
    try:
        result = run_one(row, a, opts, work, forbidden) if row.notebook is not None else None
    except Exception as error:  # noqa: BLE001 - reported as a broken environment
        log.exception("grading the solution of %s failed", name)
        row.flag("grader_error", f"{type(error).__name__}: {error}")
        result = None
    if result is not None:
        interpret(row, a, result, opts)
        check_borrowing(row, a, result.get("borrowed"))  # the solution's own code is never the package's
    if result is not None and row.status == "ok" and row.total == a.max_points:
        log.info("self-check: the solution of %s gets %g/%g (%.1f s)", name, row.total, a.max_points,
                 result.get("seconds", 0))
        return None
    failed = [f"{t['grade_id']}: {t['instructor'] or t['message']}"[:300] for t in (result or {}).get("tests", [])
              if t["outcome"] != "passed"]
    shown = a.source_path.relative_to(opts.course) if a.source_path.is_relative_to(opts.course) else a.source_path
    return (f"{name}: its solution {shown} "
            f"got {row.total:g}/{a.max_points:g}, status {row.status}"
            + (f" ({'; '.join(row.reasons)[:600]})" if row.reasons else "")
            + (f"; failed checks: {' | '.join(failed[:3])}" if failed else ""))


# ------------------------------------------------------------------------------ main
def default_course() -> Path:
    """The course root when ``--course`` is not given.

    The current folder if it has ``solutions/``, else the repository this package lives in.
    """
    cwd = Path.cwd()
    return cwd if (cwd / "solutions").is_dir() else PACKAGE_REPO


def parse_args(argv=None):
    """The command line as an :class:`argparse.Namespace` (``argv`` None: ``sys.argv[1:]``).

    Also reads the roster (``--roster``) into ``roster_entries`` (None without one; see
    :func:`attention_course.grading.exports.read_roster`) and ``--canvas-assignment`` into
    ``canvas_ids`` (chapter -> Canvas assignment id), so that a bad roster stops the run before grading.

    Raises:
        SystemExit: for ``--help`` or invalid arguments, an unreadable or invalid roster (argparse
            prints the message).
    """
    p = argparse.ArgumentParser(prog="python -m attention_course.grading", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("submissions", type=Path, help="folder or .zip of submitted notebooks")
    p.add_argument("--out", type=Path, required=True, help="output folder (gradebook.csv, feedback/, grade.log)")
    p.add_argument("--course", type=Path, default=None, help="course root with solutions/ (default: here or the repo)")
    p.add_argument("--student-pattern", default=None, help="regex with a named group 'student', searched in each relative path")
    p.add_argument("--chapter", action="append", default=[], help="only accept these assignments (repeatable)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="notebooks graded at the same time")
    p.add_argument("--cell-timeout", type=float, default=None, help="seconds per cell and per graded call "
                   "(default: ExecutePreprocessor.timeout in nbgrader_config.py, else 120)")
    p.add_argument("--total-timeout", type=float, default=300, help="seconds per notebook, everything included")
    p.add_argument("--memory-mb", type=int, default=3072, help="address-space limit of a student's process")
    p.add_argument("--max-file-mb", type=int, default=20, help="larger submitted files are not graded")
    p.add_argument("--no-namespaces", dest="namespaces", action="store_false",
                   help="do not use Linux namespaces (audit hook and rlimits only)")
    p.add_argument("--roster", type=Path, default=None, help="CSV mapping each student id to LMS identifiers "
                   "(columns student, name, email, username, idnumber, canvas_id, sis_user_id, sis_login_id, "
                   "section): also write canvas.csv and moodle.csv")
    p.add_argument("--canvas-assignment", action="append", default=[], metavar="CHAPTER=ID",
                   help="the Canvas assignment id of a chapter's column in canvas.csv (repeatable)")
    p.add_argument("--missing-as-zero", action="store_true",
                   help="in canvas.csv and moodle.csv, 0 instead of an empty cell where a student has no submission")
    opts = p.parse_args(argv)
    opts.roster_entries = None
    if opts.roster is not None:
        try:
            opts.roster_entries = read_roster(opts.roster)
        except (OSError, ValueError) as error:
            p.error(f"--roster: {error}")
    opts.canvas_ids = {}
    for pair in opts.canvas_assignment:
        chapter, sep, number = pair.partition("=")
        if not sep or not chapter.strip() or not number.strip():
            p.error(f"--canvas-assignment {pair!r}: give CHAPTER=ID, e.g. ch03_general_form=12345")
        opts.canvas_ids[chapter.strip()] = number.strip()
    return opts


def prepare_run(opts) -> Path:
    """Complete ``opts`` and start the log; return the output folder (created, resolved).

    Resolves ``opts.course`` (default :func:`default_course`), reads ``opts.cell_timeout`` from the
    course's ``nbgrader_config.py`` when not given, and sets ``opts.wall`` to the strongest kernel wall
    that works here (:func:`.wall.best_wall`: ``"bubblewrap"``, else ``"unshare"``, else ``""``, the
    last two with a warning; ``""`` with ``--no-namespaces``). Logs to ``OUT/grade.log`` (replaced) and stderr.
    """
    opts.course = (opts.course or default_course()).resolve()
    opts.out.mkdir(parents=True, exist_ok=True)
    out = opts.out.resolve()
    handler = logging.FileHandler(out / "grade.log", mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.handlers[:] = [handler, logging.StreamHandler(sys.stderr)]
    log.setLevel(logging.INFO)
    if opts.cell_timeout is None:
        opts.cell_timeout = cell_timeout(opts.course)
    from attention_course.grading.wall import best_wall

    opts.wall = best_wall() if opts.namespaces else ""
    if opts.namespaces and opts.wall != "bubblewrap":
        log.warning("bubblewrap (bwrap) is missing or cannot make namespaces here: %s (install it: "
                    "'sudo apt-get install bubblewrap'; see the instructors' page)",
                    "Linux namespaces through unshare, a weaker wall: the rest of the file system stays readable "
                    "and writable where this user may write" if opts.wall else
                    "no kernel wall at all, only the audit hook and rlimits (code doing its file I/O in C can "
                    "read and write what this user can)")
    opts.namespaces = bool(opts.wall)
    return out


def submissions_root(source: Path, work: Path) -> Path | None:
    """The folder to collect the submissions from: ``source`` itself, or, for a zip, the folder under
    ``work`` it is extracted to (safely, at most 2000 MB; what was skipped is logged). None (logged
    as an error) if ``source`` is neither a folder nor a zip file."""
    if source.is_file() and zipfile.is_zipfile(source):
        root = work / "extracted"
        root.mkdir()
        for note in _safe_extract(source, root, 2000):
            log.warning(note)
        return root
    if not source.is_dir():
        log.error("%s is neither a folder nor a zip file", source)
        return None
    return source


def read_submissions(root: Path, opts, assignments: dict[str, Assignment]) -> list[Row]:
    """One row per file under ``root`` (:func:`collect`), each read (:func:`read_notebook`) and
    matched to its chapter (:func:`match_chapter`); the system files left out are logged."""
    rows, ignored = collect(root, opts.student_pattern)
    for rel in ignored:
        log.info("ignored (system file): %s", rel)
    for row in rows:
        read_notebook(row, opts.max_file_mb)
        if row.notebook is not None:
            match_chapter(row, assignments, opts.chapter)
    return rows


def match_chapter(row: Row, assignments: dict[str, Assignment], accepted: list[str]) -> None:
    """Set the row's chapter (:func:`detect_chapter`) and max; flag ``unknown_chapter``, or
    ``wrong_chapter`` when ``accepted`` (``--chapter``) is not empty and does not name it."""
    chapter, why = detect_chapter(row.notebook, assignments)
    if chapter is None:
        row.flag("unknown_chapter", why)
    elif accepted and chapter not in accepted:
        row.chapter = chapter
        row.flag("wrong_chapter", Text("this is the notebook of {chapter}, not of {accepted}", chapter=chapter,
                                       accepted=", ".join(accepted)))
    else:
        row.chapter = chapter
        row.max = assignments[chapter].max_points


def grade_submissions(opts, assignments: dict[str, Assignment], work: Path, out: Path) -> tuple[int, list[Row], list[Row]]:
    """Read every submission, self-check the chapters they need, grade them (``opts.jobs`` at a time).

    Args:
        opts: the options (see :func:`prepare_run`); work: the run's temporary folder; out: the
            output folder (hidden from the submissions, as are the submissions and ``work``).

    Returns:
        ``(status, rows, graded)``: the exit status (0, or 2 and 3 as :func:`main` says), every row
        and the rows that were graded.
    """
    source = opts.submissions.resolve()
    root = submissions_root(source, work)
    if root is None:
        return 2, [], []
    rows = read_submissions(root, opts, assignments)
    todo = [r for r in rows if r.notebook is not None and r.chapter in assignments and not r.statuses]
    forbidden = [str(source), str(root), str(out), str(work)]
    opts.forkserver = start_forkserver(opts, assignments) if todo else None
    try:
        return _self_check_and_grade(opts, assignments, work, forbidden, out, rows, todo)
    finally:
        if opts.forkserver is not None:
            stop_forkserver()


def _self_check_and_grade(opts, assignments: dict[str, Assignment], work: Path, forbidden: list[str], out: Path,
                          rows: list[Row], todo: list[Row]) -> tuple[int, list[Row], list[Row]]:
    """The second half of :func:`grade_submissions`: self-check the needed chapters, then grade ``todo``."""
    broken = self_check(sorted({r.chapter for r in todo}), assignments, opts, work, forbidden)
    if broken:
        log.error("grading stopped, nothing graded and no gradebook written: the grading environment is "
                  "broken, not the submissions. The course's own solution notebook must get full marks "
                  "through the same pipeline, and did not:\n  %s\nCheck that this Python (%s) imports "
                  "attention_course from the course being graded (%s) and that the chapter's packages and "
                  "models are installed; details above and in %s.", "\n  ".join(broken), sys.executable,
                  opts.course, out / "grade.log")
        return 3, rows, todo
    with ThreadPoolExecutor(max_workers=max(1, opts.jobs)) as pool:
        list(pool.map(lambda row: grade_row(row, assignments[row.chapter], opts, work, forbidden), todo))
    return 0, rows, todo


def write_outputs(rows: list[Row], graded: list[Row], assignments: dict[str, Assignment], out: Path,
                  started: float, opts=None) -> None:
    """Log the rows that were not graded, sort the rows (student, chapter, file), write
    ``gradebook.csv``, ``feedback/``, ``report.html`` and, with a roster (``opts.roster_entries``),
    ``canvas.csv`` and ``moodle.csv`` (warnings logged and shown in the report), and log a summary
    (time since ``started``, statuses).

    Raises:
        OSError: if an output cannot be written.
    """
    graded_ids = {id(r) for r in graded}
    for row in rows:
        if id(row) not in graded_ids:
            log.info("%s -> %s: %s (%s)", row.file, row.student, row.status, "; ".join(row.reasons))
    rows.sort(key=lambda r: (r.student, r.chapter, r.file))
    write_gradebook(rows, assignments, out)
    write_feedback(rows, assignments, out)
    roster = getattr(opts, "roster_entries", None)
    warnings, names = write_lms_files(rows, assignments, out, opts)
    try:
        write_report(rows, assignments, out, warnings, names)
    except Exception:  # noqa: BLE001 - the gradebook and the LMS files are written: a broken report must not hide them
        (out / "report.html").unlink(missing_ok=True)
        log.exception("report.html could not be written (the gradebook is complete)")
    elapsed = time.monotonic() - started
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.status] = counts.get(r.status, 0) + 1
    log.info("graded %d files in %.1f s (%s); gradebook %s, report %s%s", len(rows), elapsed,
             ", ".join(f"{k} {v}" for k, v in sorted(counts.items())), out / "gradebook.csv", out / "report.html",
             "" if roster is None else f", LMS files {out / 'canvas.csv'} and {out / 'moodle.csv'}")


def write_lms_files(rows: list[Row], assignments: dict[str, Assignment], out: Path, opts) -> tuple[list[str], set[str]]:
    """With a roster (``opts.roster_entries``), write ``canvas.csv`` and ``moodle.csv``
    (:mod:`.exports`); without one, remove those of an earlier run (they would not match this
    gradebook). Log the warnings (students not in the roster, several files for one chapter...).

    Returns:
        ``(warnings, names)``: the warnings, and the roster's names, e-mails and usernames (to keep
        out of the report's examples).

    Raises:
        OSError: if a file cannot be written or removed.
    """
    roster = getattr(opts, "roster_entries", None)
    if roster is None:
        for name in ("canvas.csv", "moodle.csv"):
            if (out / name).exists():
                (out / name).unlink()
                log.info("removed %s of an earlier run (no --roster this time)", out / name)
        warnings, names = one_per_student(rows, assignments)[1], set()
    else:
        table = lms_table(rows, assignments, roster)
        write_canvas(table, out / "canvas.csv", opts.canvas_ids, opts.missing_as_zero)
        write_moodle(table, out / "moodle.csv", opts.missing_as_zero)
        warnings = table.warnings
        names = {value for e in roster.values() for value in (e.name, e.email, e.username) if value}
    for warning in warnings:
        log.warning(warning)
    return warnings, names


def main(argv=None) -> int:
    """Run ``python -m attention_course.grading``: grade every submission and write the outputs.

    Completes the options and starts the log (:func:`prepare_run`), self-checks every needed
    chapter's solution (:func:`self_check`), grades the submissions in parallel (``--jobs``), then
    writes ``gradebook.csv``, ``feedback/``, ``report.html`` and the LMS files (:func:`write_outputs`).

    Returns:
        The exit status: 0 done, 2 if SUBMISSIONS is neither a folder nor a zip, 3 if a chapter's
        own solution did not get full marks (nothing graded, no gradebook written).

    Raises:
        SystemExit: from :func:`parse_args` on invalid arguments.
    """
    opts = parse_args(argv)
    out = prepare_run(opts)
    assignments = load_course(opts.course)
    log.info("course %s: assignments %s; cell timeout %g s, total %g s, memory %d MB, %d parallel, sandbox %s",
             opts.course, ", ".join(assignments) or "none", opts.cell_timeout, opts.total_timeout, opts.memory_mb,
             opts.jobs, f"{opts.wall} + audit hook" if opts.wall else "audit hook")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="attention-grade-") as tmp:
        status, rows, graded = grade_submissions(opts, assignments, Path(tmp), out)
        if status:
            return status
    write_outputs(rows, graded, assignments, out, started, opts)
    return 0


if __name__ == "__main__":
    sys.exit(main())

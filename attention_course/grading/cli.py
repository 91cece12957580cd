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

* ``gradebook.csv``: one row per file found: student, chapter, file, the points of every graded
  exercise, total, max, status, reason;
* ``feedback/<student>/<chapter>.html``: what the student may see (public checks and their
  messages; hidden tests only as "passed" or "failed", never their code or messages);
* ``grade.log``: what happened, for the instructor (includes hidden-test messages and timings).

Before any submission, each needed chapter's own solution notebook is graded the same way; if it
does not get full marks the environment is broken, and the command stops with exit status 3 (a
message names the chapter and the solution's score) without writing a gradebook.

Statuses (worst first): ``empty_file``, ``not_a_notebook``, ``malformed_notebook``, ``too_large``,
``unknown_chapter``, ``wrong_chapter``, ``grader_error``, ``killed``, ``timeout``, ``memory``,
``sandbox_violation``, ``tampering``, ``borrowed_reference``, ``cell_error``, ``metadata_changed``, ``ok``.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import html
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
from dataclasses import dataclass, field
from pathlib import Path

from attention_course.grading.borrowing import allowed_imports, borrowed
from attention_course.grading.course import (Assignment, cell_source, cell_timeout, code_cells,
                                             defined_names, is_grade, is_solution, load_course, normalise)

PACKAGE_REPO = Path(__file__).resolve().parents[2]
IGNORED_PARTS = {"__MACOSX", ".ipynb_checkpoints", "__pycache__"}
IGNORED_NAMES = {".DS_Store", "Thumbs.db", "desktop.ini"}
SEVERITY = ["empty_file", "not_a_notebook", "malformed_notebook", "too_large", "unknown_chapter",
            "wrong_chapter", "grader_error", "killed", "timeout", "memory", "sandbox_violation",
            "tampering", "borrowed_reference", "cell_error", "metadata_changed", "ok"]
log = logging.getLogger("attention_course.grading.cli")


@dataclass
class Row:
    """One gradebook row: one file found in SUBMISSIONS, and what grading it gave.

    Fields: ``student`` (the id, see :func:`student_of`), ``file`` (path relative to SUBMISSIONS),
    ``chapter`` (the assignment it was matched to, "" if none), ``points`` (grade_id -> points),
    ``total`` and ``max``, ``statuses`` and ``reasons`` (added by :meth:`flag`), ``tests`` (the
    checker's per-test entries, see :func:`attention_course.grading.checker.run_test`), ``path``
    (the file on disk) and ``notebook`` (the parsed nbformat 4 notebook, None if it could not be read).
    """

    student: str
    file: str
    chapter: str = ""
    points: dict = field(default_factory=dict)
    total: float = 0.0
    max: float = 0.0
    statuses: list = field(default_factory=list)
    reasons: list = field(default_factory=list)
    tests: list = field(default_factory=list)
    path: Path | None = None
    notebook: dict | None = None

    def flag(self, status: str, reason: str) -> None:
        """Record a status for this row and its reason (each reason is kept once; "" adds none)."""
        self.statuses.append(status)
        if reason and reason not in self.reasons:
            self.reasons.append(reason)

    @property
    def status(self) -> str:
        """The row's worst status in :data:`SEVERITY` order, ``"ok"`` if none was flagged.

        Raises:
            ValueError: if a flagged status is not in :data:`SEVERITY`.
        """
        return min(self.statuses or ["ok"], key=SEVERITY.index)


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
    """Parse the file; on failure flag the row (empty, not a notebook, malformed, too large)."""
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
        row.reasons.append(f"an nbformat {nb.get('nbformat')} notebook (older Jupyter), converted to nbformat 4 by nbformat")
    if not is_ipynb:
        row.reasons.append(f"graded although named {path.name} (it is a notebook)")
    row.notebook = converted


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
    """Best-matching assignment for a notebook, or (None, why)."""
    fp = fingerprint(nb)
    scored = []
    for name, a in assignments.items():
        texts = {normalise(cell_source(c)) for c in a.cells if not (c.get("metadata", {}).get("nbgrader", {}) or {}).get("solution")}
        ids = len(fp["ids"] & a.grade_ids)
        names = len(fp["names"] & set(a.graded_names))
        evidence = ids >= 1 or names >= max(1, min(2, len(a.graded_names)))
        score = 3 * ids + 2 * names + len(fp["cell_ids"] & a.cell_ids) + 2 * len(fp["texts"] & texts)
        scored.append((evidence, score, name))
    scored.sort(key=lambda t: (t[0], t[1]), reverse=True)
    if not scored or not scored[0][0]:
        known = ", ".join(assignments) or "none"
        return None, (f"does not match any exercise notebook of the course (known: {known}); its graded "
                      f"cells: {', '.join(sorted(fp['ids'])[:5]) or 'none'}; functions: {', '.join(sorted(fp['names'])[:5]) or 'none'}")
    return scored[0][2], ""


# ------------------------------------------------------------------------------ grading
def run_one(row: Row, a: Assignment, opts, work: Path, forbidden: list[str]) -> dict | None:
    """Grade one submission's notebook in its own checker process (which starts its sandbox).

    Writes ``work/jobs/<job id>/submission.ipynb`` (``row.notebook``) and ``job.json`` (the job:
    paths, time and memory limits, ``forbidden`` paths, where to write the result), then runs
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
           "namespaces": opts.namespaces, "result": str(job_dir / "result.json")}
    (job_dir / "job.json").write_text(json.dumps(job), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "JUPYTER", "IPYTHON"))}
    # -I ignores PYTHONDONTWRITEBYTECODE: -B (here and for the worker) keeps an import of a module
    # without a cached .pyc from trying to write one, which the sandbox refuses and reports
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONDONTWRITEBYTECODE="1")
    # opts.jobs notebooks share the cores: more math-library threads than that only oversubscribe
    # them (a tiny torch op then takes milliseconds instead of microseconds)
    threads = str(max(1, (os.cpu_count() or 1) // max(1, opts.jobs)))
    env.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads)
    try:
        proc = subprocess.run([sys.executable, "-I", "-B", "-m", "attention_course.grading.checker", str(job_dir / "job.json")],
                              capture_output=True, text=True, timeout=opts.total_timeout + 120, env=env,
                              cwd=str(job_dir), start_new_session=True)
        if proc.returncode != 0 or not (job_dir / "result.json").exists():
            row.flag("grader_error", "the grader itself failed on this notebook (see grade.log)")
            log.error("%s: checker exit %s\n%s", row.file, proc.returncode, proc.stderr[-3000:])
            return None
        return json.loads((job_dir / "result.json").read_text(encoding="utf-8"))
    except subprocess.TimeoutExpired:
        row.flag("grader_error", "grading did not finish in time (see grade.log)")
        return None
    finally:
        shutil.rmtree(scratch_root, ignore_errors=True)


def interpret(row: Row, a: Assignment, result: dict) -> None:
    """Fill a gradebook row from the checker's result: points, total, max, statuses and reasons.

    Flags ``killed``, ``timeout``, ``memory`` and ``cell_error`` from the cells, ``sandbox_violation``
    from what the sandbox blocked, ``tampering`` from what the notebook patched, and
    ``metadata_changed`` from the checker's notes about nbgrader metadata. The texts of the memory and
    time limits come from the module globals set by :func:`main`.

    Args:
        row: the submission's row; changed in place.
        a: its assignment (gives ``max``).
        result: the dict :func:`attention_course.grading.checker.grade` returned.

    Raises:
        KeyError: if ``result`` has no ``"tests"`` or ``"cells"``.
    """
    row.tests = result["tests"]
    row.points = {t["grade_id"]: t["points"] for t in result["tests"]}
    row.total = float(sum(row.points.values()))
    row.max = a.max_points
    if result.get("worker"):
        row.flag("killed", f"the notebook's process was stopped: {result['worker']}")
    for cell in result["cells"]:
        status, error = cell.get("status"), cell.get("error", "")
        where = f"code cell {cell['index'] + 1}"
        if status == "timeout":
            row.flag("timeout", f"{where} ran longer than the {a_limit(result)} limit and was stopped")
        elif status == "memory":
            row.flag("memory", f"{where} ran out of memory (limit {MEM_TEXT})")
        elif status == "killed":
            row.flag("killed", f"{where}: {error}")
        elif status == "error":
            if error.startswith("NotImplementedError"):
                row.flag("cell_error", f"{where} is not implemented yet (raise NotImplementedError)")
            else:
                row.flag("cell_error", f"{where} raised {error[:200]}")
        if cell.get("output_chars", 0) > 20000:
            row.reasons.append(f"{where} printed {cell['output_chars']:,} characters (kept the first 20,000)")
    if result.get("blocked"):
        shown = sorted(set(result["blocked"]))
        row.flag("sandbox_violation", "blocked by the sandbox: " + "; ".join(shown[:4]) +
                 (f" (+{len(shown) - 4} more)" if len(shown) > 4 else ""))
    if result.get("patched"):
        row.flag("tampering", "the notebook patched " + ", ".join(result["patched"][:6]) +
                 " in its own kernel; the checks ran in a separate process, so this changed nothing")
    for note in result.get("notes", []):
        row.flag("metadata_changed" if note.startswith("nbgrader metadata") else "ok", note)
    failed = [t for t in result["tests"] if t["outcome"] != "passed"]
    if row.status == "ok" and failed:
        row.reasons.append(f"{len(failed)} of {len(result['tests'])} exercises failed their checks")


def check_borrowing(row: Row, a: Assignment) -> None:
    """No points for an exercise whose graded function is, wraps or forwards to the course's own
    implementation in ``attention_course`` (see :mod:`attention_course.grading.borrowing`)."""
    trusted = [cell_source(c) for c in a.cells if c.get("cell_type") == "code" and not is_solution(c)]
    known = {normalise(code) for code in trusted}
    student = [cell_source(c) for _, c in code_cells(row.notebook) if normalise(cell_source(c)) not in known]
    found = borrowed(student, a.graded_names, allowed_imports(trusted))
    if not found:
        return
    owner, tests_of = None, {}
    for c in a.cells:  # nbgrader layout: a solution cell, then the test cells that check it
        if c.get("cell_type") != "code":
            continue
        if is_solution(c):
            owner = defined_names(cell_source(c))
        elif is_grade(c) and owner:
            gid = c["metadata"]["nbgrader"]["grade_id"]
            for name in owner:
                tests_of.setdefault(name, []).append(gid)
    for name, how in found.items():
        lost = []
        for t in row.tests:
            if t["grade_id"] in tests_of.get(name, []):
                lost.append(t["grade_id"])
                t.update(points=0.0, outcome="failed_borrowed", instructor=f"borrowed: {how}",
                         message=f"{name} uses the course's own implementation from attention_course "
                                 "instead of your code: no points for this exercise")
        row.flag("borrowed_reference", f"{name} is the course's reference implementation, not the student's "
                 f"({how}): 0 points for {', '.join(lost) or 'its exercise'}")
    row.points = {t["grade_id"]: t["points"] for t in row.tests}
    row.total = float(sum(row.points.values()))


MEM_TEXT = ""


def a_limit(result) -> str:
    """The per-cell time limit as a timeout reason shows it (e.g. ``"120 s"``).

    The text is set by :func:`main`; ``result`` is not read.
    """
    return CELL_TEXT


CELL_TEXT = ""


def self_check(chapters: list[str], assignments: dict[str, Assignment], opts, work: Path,
               forbidden: list[str]) -> list[str]:
    """Grade each chapter's own solution notebook (``solutions/<chapter>/*.ipynb``) through the same
    pipeline as the submissions; return one line per chapter whose solution did not get full marks.

    Run on every grading run, nothing cached: a broken environment (a package missing, a borrowed
    virtual environment whose ``attention_course`` is another checkout's, a model cache the sandbox
    cannot read...) then stops the run instead of giving every student 0 points.
    """
    def check(name: str) -> str | None:
        a = assignments[name]
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
            interpret(row, a, result)
        if result is not None and row.status == "ok" and row.total == a.max_points:
            log.info("self-check: the solution of %s gets %g/%g (%.1f s)", name, row.total, a.max_points,
                     result.get("seconds", 0))
            return None
        failed = [f"{t['grade_id']}: {t['instructor'] or t['message']}"[:300] for t in (result or {}).get("tests", [])
                  if t["outcome"] != "passed"]
        return (f"{name}: its solution {a.source_path.relative_to(opts.course) if a.source_path.is_relative_to(opts.course) else a.source_path} "
                f"got {row.total:g}/{a.max_points:g}, status {row.status}"
                + (f" ({'; '.join(row.reasons)[:600]})" if row.reasons else "")
                + (f"; failed checks: {' | '.join(failed[:3])}" if failed else ""))

    if not chapters:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(opts.jobs, len(chapters)))) as pool:
        return [line for line in pool.map(check, chapters) if line]


# ------------------------------------------------------------------------------ writing
def exercise_columns(rows: list[Row], assignments: dict[str, Assignment]) -> list[tuple[str, str, str]]:
    """(chapter, grade_id, column name) for every graded cell of every chapter present."""
    chapters = sorted({r.chapter for r in rows if r.chapter in assignments})
    pairs = [(c, t.grade_id) for c in chapters for t in assignments[c].tests]
    counts: dict[str, int] = {}
    for _, g in pairs:
        counts[g] = counts.get(g, 0) + 1
    return [(c, g, g if counts[g] == 1 else f"{c}:{g}") for c, g in pairs]


def _fmt(x: float) -> str:
    return f"{x:g}"


def write_gradebook(rows: list[Row], assignments, out: Path) -> None:
    """Write ``out/gradebook.csv`` (replacing it): one line per row, in the order given.

    Columns: student, chapter, file, one column per graded cell of every chapter present (see
    :func:`exercise_columns`; empty for a row of another chapter), total, max, status and the reasons
    joined with ``"; "``.

    Raises:
        OSError: if the file cannot be written.
    """
    columns = exercise_columns(rows, assignments)
    with open(out / "gradebook.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student", "chapter", "file", *[name for _, _, name in columns], "total", "max",
                         "status", "reason"])
        for r in rows:
            cells = [(_fmt(r.points.get(g, 0.0)) if r.chapter == c else "") for c, g, _ in columns]
            writer.writerow([r.student, r.chapter, r.file, *cells, _fmt(r.total), _fmt(r.max), r.status,
                             "; ".join(r.reasons)])


def feedback_html(r: Row, a: Assignment | None) -> str:
    """The feedback page a student may see for one row, as an HTML document.

    Shows the file, the chapter, the score and status, the reasons (except those that mention hidden
    tests), and, if the chapter is known (``a`` is not None) and tests ran, one line per graded cell
    with its message, plus the code of every public check that failed. A hidden test shows only the
    generic message of :func:`attention_course.grading.checker.run_test`, never its code or its own message.
    """
    e = html.escape
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Feedback: {e(r.chapter or r.file)}</title>",
             "<style>body{font-family:sans-serif;max-width:52em;margin:2em auto;line-height:1.45}"
             "table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:.3em .6em;text-align:left}"
             ".passed{color:#1a7f37}.failed{color:#b42318}pre{background:#f6f8fa;padding:.6em;overflow-x:auto}</style>",
             "</head><body>", f"<h1>Feedback for {e(r.student)}</h1>",
             f"<p>File <code>{e(r.file)}</code>; exercise set <b>{e(r.chapter or 'not recognised')}</b>.</p>",
             f"<p><b>Score: {_fmt(r.total)} / {_fmt(r.max)}</b>. Status: <code>{e(r.status)}</code>.</p>"]
    if r.reasons:
        parts.append("<p>Notes:</p><ul>" + "".join(f"<li>{e(x)}</li>" for x in r.reasons
                                                   if "hidden" not in x.lower()) + "</ul>")
    if a is not None and r.tests:
        public = {t.grade_id: t.public for t in a.tests}
        parts.append("<table><tr><th>Exercise</th><th>Points</th><th>Result</th></tr>")
        for t in r.tests:
            ok = t["outcome"] == "passed"
            parts.append(f"<tr><td>{e(t['grade_id'])}</td><td>{_fmt(t['points'])} / {_fmt(t['max'])}</td>"
                         f"<td class='{'passed' if ok else 'failed'}'>{'passed' if ok else e(t['message'])}</td></tr>")
        parts.append("</table>")
        for t in r.tests:
            if t["outcome"] == "failed_public":
                parts.append(f"<h2>{e(t['grade_id'])}: the public check that failed</h2>"
                             f"<p class='failed'>{e(t['message'])}</p><pre>{e(public[t['grade_id']].strip())}</pre>")
        parts.append("<p>Hidden tests are not shown; an exercise that passes the public checks can still fail "
                     "them. Test your functions on other inputs (other shapes, batches, edge cases).</p>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "unknown"


def write_feedback(rows: list[Row], assignments, out: Path) -> None:
    """Replace ``out/feedback/`` with one page per row (:func:`feedback_html`).

    A page is ``feedback/<student>/<chapter>.html`` (the file's stem when no chapter was recognised;
    names reduced to ``[A-Za-z0-9_.-]``); a second page of the same name gets ``-2``, ``-3``...

    Raises:
        OSError: if the folder cannot be removed or a page cannot be written.
    """
    folder = out / "feedback"
    if folder.exists():
        shutil.rmtree(folder)
    used: set[Path] = set()
    for r in rows:
        base = folder / _slug(r.student) / (_slug(r.chapter) if r.chapter else _slug(Path(r.file).stem))
        path, n = base.with_suffix(".html"), 1
        while path in used:
            n += 1
            path = base.parent / f"{base.name}-{n}.html"
        used.add(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(feedback_html(r, assignments.get(r.chapter)), encoding="utf-8")


# ------------------------------------------------------------------------------ main
def default_course() -> Path:
    """The course root when ``--course`` is not given.

    The current folder if it has ``solutions/``, else the repository this package lives in.
    """
    cwd = Path.cwd()
    return cwd if (cwd / "solutions").is_dir() else PACKAGE_REPO


def parse_args(argv=None):
    """The command line as an :class:`argparse.Namespace` (``argv`` None: ``sys.argv[1:]``).

    Raises:
        SystemExit: for ``--help`` or invalid arguments (argparse prints the message).
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
    return p.parse_args(argv)


def main(argv=None) -> int:
    """Run ``python -m attention_course.grading``: grade every submission and write the outputs.

    Logs to ``OUT/grade.log`` and stderr, sets the module globals that :func:`interpret` reads,
    self-checks every needed chapter's solution (:func:`self_check`), grades the submissions in
    parallel (``--jobs``), then writes ``gradebook.csv`` and ``feedback/``.

    Returns:
        The exit status: 0 done, 2 if SUBMISSIONS is neither a folder nor a zip, 3 if a chapter's
        own solution did not get full marks (nothing graded, no gradebook written).

    Raises:
        SystemExit: from :func:`parse_args` on invalid arguments.
    """
    global MEM_TEXT, CELL_TEXT
    opts = parse_args(argv)
    opts.course = (opts.course or default_course()).resolve()
    opts.out.mkdir(parents=True, exist_ok=True)
    out = opts.out.resolve()
    handler = logging.FileHandler(out / "grade.log", mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.handlers[:] = [handler, logging.StreamHandler(sys.stderr)]
    log.setLevel(logging.INFO)
    if opts.cell_timeout is None:
        opts.cell_timeout = cell_timeout(opts.course)
    from attention_course.grading.checker import namespaces_available

    if opts.namespaces and not namespaces_available():
        log.warning("Linux user namespaces are not available here: audit hook and rlimits only")
        opts.namespaces = False
    MEM_TEXT, CELL_TEXT = f"{opts.memory_mb} MB", f"{opts.cell_timeout:g} s"
    assignments = load_course(opts.course)
    log.info("course %s: assignments %s; cell timeout %g s, total %g s, memory %d MB, %d parallel, sandbox %s",
             opts.course, ", ".join(assignments) or "none", opts.cell_timeout, opts.total_timeout, opts.memory_mb,
             opts.jobs, "namespaces + audit hook" if opts.namespaces else "audit hook")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="attention-grade-") as tmp:
        work = Path(tmp)
        source = opts.submissions.resolve()
        root = source
        if source.is_file() and zipfile.is_zipfile(source):
            root = work / "extracted"
            root.mkdir()
            for note in _safe_extract(source, root, 2000):
                log.warning(note)
        elif not source.is_dir():
            log.error("%s is neither a folder nor a zip file", source)
            return 2
        rows, ignored = collect(root, opts.student_pattern)
        for rel in ignored:
            log.info("ignored (system file): %s", rel)
        for row in rows:
            read_notebook(row, opts.max_file_mb)
            if row.notebook is None:
                continue
            chapter, why = detect_chapter(row.notebook, assignments)
            if chapter is None:
                row.flag("unknown_chapter", why)
            elif opts.chapter and chapter not in opts.chapter:
                row.chapter = chapter
                row.flag("wrong_chapter", f"this is the notebook of {chapter}, not of {', '.join(opts.chapter)}")
            else:
                row.chapter = chapter
                row.max = assignments[chapter].max_points
        todo = [r for r in rows if r.notebook is not None and r.chapter in assignments and not r.statuses]
        forbidden = [str(source), str(root), str(out), str(work)]
        broken = self_check(sorted({r.chapter for r in todo}), assignments, opts, work, forbidden)
        if broken:
            log.error("grading stopped, nothing graded and no gradebook written: the grading environment is "
                      "broken, not the submissions. The course's own solution notebook must get full marks "
                      "through the same pipeline, and did not:\n  %s\nCheck that this Python (%s) imports "
                      "attention_course from the course being graded (%s) and that the chapter's packages and "
                      "models are installed; details above and in %s.", "\n  ".join(broken), sys.executable,
                      opts.course, out / "grade.log")
            return 3

        def task(row: Row):
            a = assignments[row.chapter]
            try:
                result = run_one(row, a, opts, work, forbidden)
                if result is not None:
                    interpret(row, a, result)
                    check_borrowing(row, a)
                    log.info("%s -> %s %s: %g/%g %s (%.1f s) %s", row.file, row.student, row.chapter, row.total,
                             row.max, row.status, result.get("seconds", 0), json.dumps(
                                 {"tests": [(t["grade_id"], t["outcome"], t["instructor"]) for t in result["tests"]],
                                  "cells": [(c["index"], c["status"], c.get("error", "")) for c in result["cells"]
                                            if c["status"] != "ok"], "blocked": result.get("blocked", [])[:20]},
                                 ensure_ascii=False))
            except Exception as error:  # noqa: BLE001 - never lose a row
                log.exception("grading %s failed", row.file)
                row.flag("grader_error", f"the grader failed on this notebook ({type(error).__name__}; see grade.log)")

        with ThreadPoolExecutor(max_workers=max(1, opts.jobs)) as pool:
            list(pool.map(task, todo))
    graded = {id(r) for r in todo}
    for row in rows:
        if id(row) not in graded:
            log.info("%s -> %s: %s (%s)", row.file, row.student, row.status, "; ".join(row.reasons))
    rows.sort(key=lambda r: (r.student, r.chapter, r.file))
    write_gradebook(rows, assignments, out)
    write_feedback(rows, assignments, out)
    elapsed = time.monotonic() - started
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.status] = counts.get(r.status, 0) + 1
    log.info("graded %d files in %.1f s (%s); gradebook %s", len(rows), elapsed,
             ", ".join(f"{k} {v}" for k, v in sorted(counts.items())), out / "gradebook.csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())

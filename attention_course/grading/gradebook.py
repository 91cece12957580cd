"""The gradebook of a grading run: its rows, how a checker's result fills one, and the files written.

:class:`Row` is one file found in SUBMISSIONS; :func:`interpret` fills it from the checker's result
(:func:`attention_course.grading.checker.grade`), :func:`check_borrowing` takes the points of an
exercise whose function is the course's own implementation; :func:`write_gradebook` writes
``gradebook.csv`` and :func:`write_feedback` the students' ``feedback/`` pages
(:func:`feedback_html`). The command line (:mod:`attention_course.grading.cli`) runs them.
"""
from __future__ import annotations

import csv
import html
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from attention_course.grading.borrowing import allowed_imports, borrowed
from attention_course.grading.course import (Assignment, cell_source, code_cells, defined_names, is_grade,
                                             is_solution, normalise)
from attention_course.grading.messages import Text, translate

SEVERITY = ["empty_file", "not_a_notebook", "malformed_notebook", "too_large", "unknown_chapter",
            "wrong_chapter", "grader_error", "killed", "timeout", "memory", "sandbox_violation",
            "tampering", "borrowed_reference", "cell_error", "metadata_changed", "ok"]


@dataclass


class Row:
    """One gradebook row: one file found in SUBMISSIONS, and what grading it gave.

    Fields: ``student`` (the id, see :func:`attention_course.grading.cli.student_of`), ``file`` (path relative to SUBMISSIONS),
    ``chapter`` (the assignment it was matched to, "" if none), ``points`` (grade_id -> points),
    ``total`` and ``max``, ``statuses`` and ``reasons`` (added by :meth:`flag`), ``tests`` (the
    checker's per-test entries, see :func:`attention_course.grading.checker.run_test`), ``path``
    (the file on disk), ``notebook`` (the parsed nbformat 4 notebook, None if it could not be read) and
    ``language`` (the notebook's, :func:`attention_course.grading.messages.notebook_language`: its checks
    and feedback page speak it; a reason may be a :class:`~attention_course.grading.messages.Text`,
    English in the gradebook and translated on the feedback page).
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
    language: str = "en"

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


# ------------------------------------------------------------------------------ filling a row
def interpret(row: Row, a: Assignment, result: dict, opts) -> None:
    """Fill a gradebook row from the checker's result: points, total, max, statuses and reasons.

    Flags ``killed``, ``timeout``, ``memory`` and ``cell_error`` from the cells (:func:`flag_cell`),
    ``sandbox_violation`` from what the sandbox blocked, ``tampering`` from what the notebook
    patched, and ``metadata_changed`` from the checker's notes about nbgrader metadata.

    Args:
        row: the submission's row; changed in place.
        a: its assignment (gives ``max``).
        result: the dict :func:`attention_course.grading.checker.grade` returned.
        opts: the run's options (the parsed command line): its ``memory_mb`` and ``cell_timeout``
            are the limits the reasons name.

    Raises:
        KeyError: if ``result`` has no ``"tests"`` or ``"cells"``.
    """
    row.tests = result["tests"]
    row.points = {t["grade_id"]: t["points"] for t in result["tests"]}
    row.total = float(sum(row.points.values()))
    row.max = a.max_points
    if result.get("worker"):
        row.flag("killed", Text("the notebook's process was stopped: {why}", why=result["worker"]))
    for cell in result["cells"]:
        flag_cell(row, cell, opts)
    if result.get("blocked"):
        shown = sorted(set(result["blocked"]))
        row.flag("sandbox_violation", Text("blocked by the sandbox: {what}", what="; ".join(shown[:4]) +
                 (f" (+{len(shown) - 4} more)" if len(shown) > 4 else "")))
    if result.get("patched"):
        row.flag("tampering", Text("the notebook patched {what} in its own kernel; the checks ran in a separate "
                                   "process, so this changed nothing", what=", ".join(result["patched"][:6])))
    for note in result.get("notes", []):
        row.flag("metadata_changed" if note.startswith("nbgrader metadata") else "ok", note)
    failed = [t for t in result["tests"] if t["outcome"] != "passed"]
    if row.status == "ok" and failed:
        row.reasons.append(Text("{failed} of {tests} exercises failed their checks", failed=len(failed),
                                tests=len(result["tests"])))


def flag_cell(row: Row, cell: dict, opts) -> None:
    """Flag ``row`` for one of the student's cells the checker ran (an entry of its ``"cells"``).

    ``timeout``, ``memory`` (naming ``opts.cell_timeout`` and ``opts.memory_mb``), ``killed`` and
    ``cell_error`` by the cell's status; a note when it printed more than 20,000 characters.

    Raises:
        KeyError: if ``cell`` has no ``"index"``.
    """
    status, error = cell.get("status"), cell.get("error", "")
    where = Text("code cell {number}", number=cell["index"] + 1)
    if status == "timeout":
        row.flag("timeout", Text("{where} ran longer than the {seconds:g} s limit and was stopped", where=where,
                                 seconds=opts.cell_timeout))
    elif status == "memory":
        row.flag("memory", Text("{where} ran out of memory (limit {mb} MB)", where=where, mb=opts.memory_mb))
    elif status == "killed":
        row.flag("killed", Text("{where}: {error}", where=where, error=error))
    elif status == "error":
        if error.startswith("NotImplementedError"):
            row.flag("cell_error", Text("{where} is not implemented yet (raise NotImplementedError)", where=where))
        else:
            row.flag("cell_error", Text("{where} raised {error}", where=where, error=error[:200]))
    if cell.get("output_chars", 0) > 20000:
        row.reasons.append(Text("{where} printed {chars:,} characters (kept the first 20,000)", where=where,
                                chars=cell["output_chars"]))


def check_borrowing(row: Row, a: Assignment, objects: dict | None = None) -> None:
    """No points for an exercise whose graded function is, wraps or forwards to the course's own
    implementation in ``attention_course`` (see :mod:`attention_course.grading.borrowing`).

    Two findings count: the source text of the cells the student wrote (not the notebook's own cells,
    which may import the package), and ``objects``, what the checker judged from the worker's report
    on the objects (:func:`.borrowing.judge_evidence`: a graded function that is, reaches or, while
    the checks called it, ran a reference implementation, however it was obtained). Each test cell of
    a borrowed function gets 0 points and outcome ``failed_borrowed``, the row is flagged
    ``borrowed_reference``; a function whose calls switched the grader's tracing off gets 0 points too
    (outcome ``failed_tampering``) and the row is flagged ``tampering``. Points and total are recomputed.

    Args:
        row: the graded row (``notebook`` and ``tests`` set); changed in place.
        a: its assignment.
        objects: the checker's result's ``"borrowed"`` (graded name -> ``{"found": [...],
            "tampering": [...]}``), or None (only the source text is read).
    """
    trusted = [cell_source(c) for c in a.cells if c.get("cell_type") == "code" and not is_solution(c)]
    known = {normalise(code) for code in trusted}
    student = [cell_source(c) for _, c in code_cells(row.notebook) if normalise(cell_source(c)) not in known]
    found = borrowed(student, a.graded_names, allowed_imports(trusted))
    objects = objects if isinstance(objects, dict) else {}
    for name in a.graded_names:
        entry = objects.get(name) or {}
        if name not in found and entry.get("found"):
            more = len(entry["found"]) - 1
            found[name] = entry["found"][0] + (f" (and {more} more)" if more else "")
    tampered = {n: e["tampering"][0] for n, e in objects.items() if e.get("tampering") and n not in found}
    if not found and not tampered:
        return
    tests_of = _tests_of(a)
    for name, how in found.items():
        lost = _zero(row, tests_of.get(name, []), "failed_borrowed", f"borrowed: {how}", translate(
            "{name} uses the course's own implementation from attention_course instead of your code: no points "
            "for this exercise", row.language, name=name))
        row.flag("borrowed_reference", Text("{name} is the course's reference implementation, not the student's "
                                            "({how}): 0 points for {lost}", name=name, how=how,
                                            lost=", ".join(lost) or Text("its exercise")))
    for name, what in tampered.items():
        lost = _zero(row, tests_of.get(name, []), "failed_tampering", f"tracing: {what}", translate(
            "{name} interfered with the grader's tracing of its calls: no points for this exercise",
            row.language, name=name))
        row.flag("tampering", Text("{name} interfered with the grader's tracing of its calls ({what}): 0 points "
                                   "for {lost}", name=name, what=what, lost=", ".join(lost) or Text("its exercise")))
    row.points = {t["grade_id"]: t["points"] for t in row.tests}
    row.total = float(sum(row.points.values()))


def _tests_of(a: Assignment) -> dict[str, list[str]]:
    """graded name -> the grade_ids of the test cells that check it (nbgrader layout: a solution cell,
    then the test cells that check it)."""
    owner, tests_of = None, {}
    for c in a.cells:
        if c.get("cell_type") != "code":
            continue
        if is_solution(c):
            owner = defined_names(cell_source(c))
        elif is_grade(c) and owner:
            gid = c["metadata"]["nbgrader"]["grade_id"]
            for name in owner:
                tests_of.setdefault(name, []).append(gid)
    return tests_of


def _zero(row: Row, grade_ids: list[str], outcome: str, instructor: str, message: str) -> list[str]:
    """Give 0 points to the row's tests in ``grade_ids`` with that outcome and messages; return their ids."""
    lost = []
    for t in row.tests:
        if t["grade_id"] in grade_ids:
            lost.append(t["grade_id"])
            t.update(points=0.0, outcome=outcome, instructor=instructor, message=message)
    return lost


# ------------------------------------------------------------------------------ writing
def exercise_columns(rows: list[Row], assignments: dict[str, Assignment]) -> list[tuple[str, str, str]]:
    """(chapter, grade_id, column name) for every graded cell of every chapter present.

    The chapters are the rows' known ones, sorted; a column is named by the ``grade_id``, or by
    ``chapter:grade_id`` when two chapters share that ``grade_id``.
    """
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

    Columns: student, chapter, file, language (the notebook's), one column per graded cell of every chapter present (see
    :func:`exercise_columns`; empty for a row of another chapter), total, max, status and the reasons
    joined with ``"; "``.

    Raises:
        OSError: if the file cannot be written.
    """
    columns = exercise_columns(rows, assignments)
    with open(out / "gradebook.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student", "chapter", "file", "language", *[name for _, _, name in columns], "total", "max",
                         "status", "reason"])
        for r in rows:
            cells = [(_fmt(r.points.get(g, 0.0)) if r.chapter == c else "") for c, g, _ in columns]
            writer.writerow([r.student, r.chapter, r.file, r.language, *cells, _fmt(r.total), _fmt(r.max), r.status,
                             "; ".join(r.reasons)])


def feedback_html(r: Row, a: Assignment | None) -> str:
    """The feedback page a student may see for one row, as an HTML document.

    Shows the file, the chapter, the score and status, the reasons (except those that mention hidden
    tests), and, if the chapter is known (``a`` is not None) and tests ran, one line per graded cell
    with its message, plus the code of every public check that failed. A hidden test shows only the
    generic message of :func:`attention_course.grading.checker.run_test`, never its code or its own message.
    In the row's ``language``: the page's text and the notes (the checks' messages already are).
    """
    e, lang = html.escape, r.language

    def say(msgid: str, **params) -> str:  # the page's fixed text in the student's language, escaped
        return e(translate(msgid, lang, **params))

    parts = [f"<!DOCTYPE html><html lang='{'zh-CN' if lang == 'zh_CN' else 'en'}'><head><meta charset='utf-8'>"
             f"<title>{say('Feedback: {what}', what=r.chapter or r.file)}</title>",
             "<style>body{font-family:sans-serif;max-width:52em;margin:2em auto;line-height:1.45}"
             "table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:.3em .6em;text-align:left}"
             ".passed{color:#1a7f37}.failed{color:#b42318}pre{background:#f6f8fa;padding:.6em;overflow-x:auto}</style>",
             "</head><body>", f"<h1>{say('Feedback for {student}', student=r.student)}</h1>",
             "<p>" + say("File {file}; exercise set {chapter}.", file="\x00", chapter="\x01").replace(  # markup
                 "\x00", f"<code>{e(r.file)}</code>").replace(
                 "\x01", f"<b>{e(r.chapter) if r.chapter else say('not recognised')}</b>") + "</p>",
             f"<p><b>{say('Score: {total} / {max}', total=_fmt(r.total), max=_fmt(r.max))}</b>. "
             f"{say('Status:')} <code>{e(r.status)}</code>.</p>"]
    if r.reasons:
        parts.append(f"<p>{say('Notes:')}</p><ul>" + "".join(
            f"<li>{e(x.translated(lang) if isinstance(x, Text) else x)}</li>" for x in r.reasons
            if "hidden" not in x.lower()) + "</ul>")
    if a is not None and r.tests:
        public = {t.grade_id: t.public for t in a.tests}
        parts.append(f"<table><tr><th>{say('Exercise')}</th><th>{say('Points')}</th><th>{say('Result')}</th></tr>")
        for t in r.tests:
            ok = t["outcome"] == "passed"
            parts.append(f"<tr><td>{e(t['grade_id'])}</td><td>{_fmt(t['points'])} / {_fmt(t['max'])}</td>"
                         f"<td class='{'passed' if ok else 'failed'}'>{say('passed') if ok else e(t['message'])}</td></tr>")
        parts.append("</table>")
        for t in r.tests:
            if t["outcome"] == "failed_public":
                parts.append(f"<h2>{say('{exercise}: the public check that failed', exercise=t['grade_id'])}</h2>"
                             f"<p class='failed'>{e(t['message'])}</p><pre>{e(public[t['grade_id']].strip())}</pre>")
        hidden = say("Hidden tests are not shown; an exercise that passes the public checks can still fail them. "
                     "Test your functions on other inputs (other shapes, batches, edge cases).")
        parts.append(f"<p>{hidden}</p>")
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

"""The gradebook in the import formats of two LMSs, Canvas and Moodle, for the students of a roster.

``gradebook.csv`` has one row per *file*, keyed by the student id the grader read from the file
names. An LMS wants one row per *student*, keyed by its own identifiers, and one column per
assignment. The instructor gives a roster (``--roster roster.csv``) that maps the grader's id to
those identifiers; :func:`read_roster` reads it, :func:`lms_table` picks one submission per student
and chapter (:func:`one_per_student`), and two writers follow the formats:

* :func:`write_canvas` (``canvas.csv``): Canvas's gradebook import. Header ``Student, ID,
  SIS User ID, SIS Login ID, Section``, then one column per chapter named ``<chapter>`` or, with a
  Canvas assignment id, ``<chapter> (<id>)``; a second row ``Points Possible`` gives each chapter's
  maximum. Canvas matches a row to a student by ``ID`` (Canvas's user id), else ``SIS User ID``,
  else ``SIS Login ID``, else the name in ``Student``; a column to an assignment by the id in
  parentheses, else by its exact name (else it creates the assignment). Source: Canvas's
  ``GradebookImporter`` (``app/models/gradebook_importer.rb``) and the Canvas Instructor Guide,
  "How do I import grades in the Gradebook?".
* :func:`write_moodle` (``moodle.csv``): Moodle's "Import grades: CSV file". One column per
  identifier Moodle can map a user from (``ID number``, ``Username``, ``Email address``; the import
  page's "Map from" / "Map to"), ``Full name`` for reading, then one column per chapter, which the
  import page maps to a grade item. Moodle stops the whole import at a row whose mapped identifier
  matches no user, so only roster students with at least one identifier are written. Source: Moodle's
  ``gradeimport_csv_load_data`` (``grade/import/csv/classes/load_data.php``) and MoodleDocs, "Grade import".

A roster student without a submission for a chapter gets an **empty cell** in both files: in Canvas
an empty cell is "no grade" (a cell left as it was if it had none), in Moodle an empty cell (or
``-``) is "no grade" too; a missing notebook is not a notebook that scored 0, and both LMSs have
their own rule for ungraded work (Canvas's missing-submission policy, Moodle's "exclude empty
grades"). ``--missing-as-zero`` writes 0 instead. A student who submitted but is not in the roster
cannot be identified in the LMS: left out of both files and named in the warnings (``grade.log``
and ``report.html``), never dropped silently.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from attention_course.grading.gradebook import Row

#: The roster's columns: the grader's id (required), then the LMS identifiers (optional).
ROSTER_COLUMNS = ("student", "name", "email", "username", "idnumber", "canvas_id", "sis_user_id", "sis_login_id",
                  "section")
CANVAS_STUDENT_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
MOODLE_IDENTIFIERS = [("ID number", "idnumber"), ("Username", "username"), ("Email address", "email")]


@dataclass(frozen=True)
class RosterEntry:
    """One student of the roster: the grader's id and what the LMSs know the student by ("" if not given)."""

    student: str
    name: str = ""
    email: str = ""
    username: str = ""
    idnumber: str = ""
    canvas_id: str = ""
    sis_user_id: str = ""
    sis_login_id: str = ""
    section: str = ""


def read_roster(path: Path) -> dict[str, RosterEntry]:
    """Read a roster CSV (UTF-8, a byte-order mark allowed): the grader's student id -> :class:`RosterEntry`.

    The header names the columns, in any order and case: ``student`` (required: the id the grader
    reads from the submissions' file names, see :func:`attention_course.grading.cli.student_of`) and
    any of ``name, email, username, idnumber, canvas_id, sis_user_id, sis_login_id, section``.

    Returns:
        The entries in the file's order.

    Raises:
        OSError: if the file cannot be read.
        ValueError: no ``student`` column, a column of another name (a typo would silently lose
            identifiers), a row without a student id, or an id given twice; the message names the line.
    """
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        header = [h.strip().lower() for h in next(reader, [])]
        if "student" not in header:
            raise ValueError(f"{path}: the roster's header needs a 'student' column (the grader's id); "
                             f"it has {header or 'nothing'}")
        unknown = [h for h in header if h not in ROSTER_COLUMNS]
        if unknown:
            raise ValueError(f"{path}: unknown roster column(s) {unknown}; the columns are {list(ROSTER_COLUMNS)}")
        entries: dict[str, RosterEntry] = {}
        for line, cells in enumerate(reader, start=2):
            if not any(c.strip() for c in cells):
                continue
            values = {h: (cells[i].strip() if i < len(cells) else "") for i, h in enumerate(header)}
            if not values["student"]:
                raise ValueError(f"{path}, line {line}: no student id")
            if values["student"] in entries:
                raise ValueError(f"{path}, line {line}: student {values['student']!r} is listed twice")
            entries[values["student"]] = RosterEntry(**values)
    return entries


def one_per_student(rows: list[Row], assignments: dict) -> tuple[dict[tuple[str, str], Row], list[str]]:
    """The submission that counts for each (student, chapter), and warnings about the choices made.

    A row counts if its chapter is an assignment and it was accepted for grading (``max`` set; a
    ``wrong_chapter`` row has none). When a student has several files for one chapter, the one with
    the highest total counts (the first in the rows' order on a tie), and a warning names the files.

    Returns:
        ``({(student, chapter): row}, warnings)``.
    """
    groups: dict[tuple[str, str], list[Row]] = {}
    for r in rows:
        if r.chapter in assignments and r.max:
            groups.setdefault((r.student, r.chapter), []).append(r)
    chosen, warnings = {}, []
    for key, group in groups.items():
        best = max(group, key=lambda r: r.total)  # max keeps the first of equal totals
        chosen[key] = best
        if len(group) > 1:
            warnings.append(f"{key[0]} has {len(group)} files for {key[1]} ({', '.join(r.file for r in group)}): "
                            f"the best, {best.file} ({best.total:g} points), counts")
    return chosen, warnings


@dataclass
class LmsTable:
    """What both LMS files hold: chapters (columns) with their maxima, and one row of points per roster student.

    ``points[student][chapter]`` is the chapter's total, or None where the student has no counted
    submission; ``warnings`` are sentences for ``grade.log`` and the report.
    """

    chapters: list[str]
    maxima: dict[str, float]
    roster: dict[str, RosterEntry]
    points: dict[str, dict[str, float | None]]
    warnings: list[str]


def lms_table(rows: list[Row], assignments: dict, roster: dict[str, RosterEntry]) -> LmsTable:
    """One row of chapter totals per roster student (:func:`one_per_student`), with warnings.

    The chapters are those of the counted submissions, sorted. Warned about: several files of one
    student for one chapter, students who submitted but are not in the roster (left out), a counted
    submission the grader itself failed on (``grader_error``: its 0 is not a grade).

    Raises:
        KeyError: if a counted row's chapter is not in ``assignments`` (cannot happen for rows the
            grader made).
    """
    chosen, warnings = one_per_student(rows, assignments)
    chapters = sorted({chapter for _, chapter in chosen})
    maxima = {c: assignments[c].max_points for c in chapters}
    submitted = sorted({r.student for r in rows})
    for student in submitted:
        if student not in roster:
            files = [r.file for r in rows if r.student == student]
            warnings.append(f"{student} submitted {', '.join(files)} but is not in the roster: left out of "
                            "canvas.csv and moodle.csv (add a roster line with student "
                            f"{student!r} and the LMS identifiers, then run again)")
    for (student, chapter), r in chosen.items():
        if r.status == "grader_error":
            warnings.append(f"{student}'s {chapter} ({r.file}) was not graded (grader_error, see grade.log): "
                            "its cell holds 0 points until it is graded again")
    points = {s: {c: (chosen[(s, c)].total if (s, c) in chosen else None) for c in chapters} for s in roster}
    return LmsTable(chapters, maxima, roster, points, warnings)


def _cell(value: float | None, missing_as_zero: bool) -> str:
    if value is None:
        return "0" if missing_as_zero else ""
    return f"{value:g}"


def write_canvas(table: LmsTable, path: Path, assignment_ids: dict[str, str] | None = None,
                 missing_as_zero: bool = False) -> None:
    """Write ``table`` as a Canvas gradebook import CSV (see the module's docstring for the format).

    Args:
        table: from :func:`lms_table`.
        path: the file to write (replaced), UTF-8.
        assignment_ids: chapter -> Canvas assignment id (``--canvas-assignment``); a chapter without
            one is matched by its name, or created by Canvas.
        missing_as_zero: write 0, not an empty cell, where a student has no submission.

    Raises:
        OSError: if the file cannot be written.
    """
    ids = assignment_ids or {}
    titles = [f"{c} ({ids[c]})" if ids.get(c) else c for c in table.chapters]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CANVAS_STUDENT_COLUMNS + titles)
        writer.writerow(["Points Possible", "", "", "", ""] + [f"{table.maxima[c]:g}" for c in table.chapters])
        for student, entry in table.roster.items():
            writer.writerow([entry.name or student, entry.canvas_id, entry.sis_user_id, entry.sis_login_id, entry.section]
                            + [_cell(table.points[student][c], missing_as_zero) for c in table.chapters])


def write_moodle(table: LmsTable, path: Path, missing_as_zero: bool = False) -> list[str]:
    """Write ``table`` as a CSV for Moodle's grade import (see the module's docstring for the format).

    Roster students with none of ``idnumber``, ``username``, ``email`` cannot be mapped to a Moodle
    user (Moodle would stop the whole import): they are left out and warned about. An identifier
    column empty for some of the written students is warned about too, naming the columns every
    row has (the ones to map users from).

    Returns:
        The warnings (also appended to ``table.warnings``).

    Raises:
        OSError: if the file cannot be written.
    """
    warnings, written = [], []
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([label for label, _ in MOODLE_IDENTIFIERS] + ["Full name"] + table.chapters)
        for student, entry in table.roster.items():
            identifiers = [getattr(entry, field) for _, field in MOODLE_IDENTIFIERS]
            if not any(identifiers):
                warnings.append(f"{student} has no idnumber, username or email in the roster: left out of moodle.csv")
                continue
            written.append((student, identifiers))
            writer.writerow(identifiers + [entry.name or student]
                            + [_cell(table.points[student][c], missing_as_zero) for c in table.chapters])
    complete = [label for i, (label, _) in enumerate(MOODLE_IDENTIFIERS) if all(ids[i] for _, ids in written)]
    for i, (label, _) in enumerate(MOODLE_IDENTIFIERS):
        empty = [student for student, ids in written if not ids[i]]
        if empty and len(empty) < len(written):
            warnings.append(f"moodle.csv: {label} is empty for {', '.join(empty)}; Moodle stops the import at such a "
                            f"row if users are mapped from it: map from {' or '.join(complete) or 'another column'}")
    table.warnings.extend(warnings)
    return warnings

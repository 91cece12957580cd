"""The grader's LMS exports (canvas.csv, moodle.csv) and its class report (report.html).

Fast tests build gradebook rows by hand (the checker's test entries, with messages made from the
real catalogue) and parse the files back; one slow test runs the grader on a small class with a
roster and checks the files against its gradebook.csv.
"""
from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

import pytest

from attention_course.grading.cli import parse_args
from attention_course.grading.course import load_course
from attention_course.grading.exports import (CANVAS_STUDENT_COLUMNS, lms_table, read_roster, write_canvas,
                                              write_moodle)
from attention_course.grading.gradebook import Row
from attention_course.grading.messages import load, translate
from attention_course.grading.report import anonymise, mistake_key, report_html, summarise, write_report

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = "ch03_general_form"
# Real catalogue messages (checks.py / checker.py), formatted with different values.
SHAPE = ("{name} must return a NumPy array; yours returned a {value}. Build the result with NumPy (np.array(...), "
         "np.full(...), @) instead of a Python list.")
SQRT = "you forgot to divide the scores by sqrt(d_k)"
RAISED = "your code raised {error}"


@pytest.fixture(scope="module")
def assignments():
    return load_course(ROOT)


def graded(student: str, failed: dict[str, tuple[str, str]], assignments, file: str | None = None,
           status: str | None = None) -> Row:
    """A graded ch03 row: every exercise passes except ``failed`` (grade_id -> (outcome, explanation))."""
    row = Row(student=student, file=file or f"{student}_general_form.ipynb", chapter=CHAPTER)
    for t in assignments[CHAPTER].tests:
        outcome, text = failed.get(t.grade_id, ("passed", ""))
        part = "hidden" if outcome == "failed_hidden" else "public"
        row.tests.append({"grade_id": t.grade_id, "max": t.points, "points": t.points if outcome == "passed" else 0.0,
                          "outcome": outcome, "instructor": f"{part} tests: {text}" if text else "",
                          "message": text if outcome == "failed_public" else ("generic" if text else "")})
    row.points = {t["grade_id"]: t["points"] for t in row.tests}
    row.total, row.max = float(sum(row.points.values())), assignments[CHAPTER].max_points
    if status:
        row.flag(status, "flagged by the test")
    return row


@pytest.fixture
def klass(assignments):
    """Five students, one of them (eve) not in the roster, one (bob) with two files, one unreadable file."""
    shape = lambda name, value, lang="en": translate(SHAPE, lang, name=name, value=value)  # noqa: E731
    rows = [
        graded("ann", {}, assignments),
        graded("bob", {"test_softmax": ("failed_public", shape("softmax", "list"))}, assignments, "bob/try1.ipynb"),
        graded("bob", {}, assignments, "bob/try2.ipynb"),
        graded("cid", {"test_softmax": ("failed_public", shape("softmax", "tuple", "zh_CN")),
                       "test_scaled_dot_product_score": ("failed_hidden", translate(SQRT, "en"))}, assignments,
               status="timeout"),
        graded("dan", {"test_scaled_dot_product_score": ("failed_public", translate(SQRT, "en")),
                       "test_cosine_score": ("failed_public", translate(
                           RAISED, "en", error="FileNotFoundError: /tmp/scratch-1/dan_general_form.ipynb, dan"))},
               assignments, status="tampering"),
        graded("eve", {"test_additive_score": ("failed_public", shape("additive_score", "list"))}, assignments),
        Row(student="fay", file="fay_notes.txt"),
    ]
    rows[-1].flag("not_a_notebook", "a .txt file")
    return rows


ROSTER = ("Student,Name,Email,Username,IDnumber,Canvas_ID,SIS_User_ID,SIS_Login_ID,Section\n"
          "ann,\"Lee, Ann\",ann@uni.example,alee,1001,501,S1,alee,A\n"
          "bob,Bob Roe,bob@uni.example,,,502,S2,broe,A\n"
          "cid,Cid Poe,,cpoe,1003,,,,B\n"
          "dan,Dan Ito,dan@uni.example,dito,1004,504,S4,dito,B\n"
          "gus,Gus Ng,gus@uni.example,gng,1007,507,S7,gng,B\n"
          "hal,Hal Oz,,,,508,,,B\n")


@pytest.fixture
def roster(tmp_path):
    path = tmp_path / "roster.csv"
    path.write_bytes(b"\xef\xbb\xbf" + ROSTER.encode("utf-8"))  # as Excel saves it
    return read_roster(path)


def read_csv(path: Path) -> list[list[str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


# ------------------------------------------------------------------------------ roster
def test_roster_is_read_with_its_identifiers(roster):
    assert list(roster) == ["ann", "bob", "cid", "dan", "gus", "hal"]
    assert roster["ann"].name == "Lee, Ann" and roster["ann"].canvas_id == "501" and roster["ann"].section == "A"
    assert roster["cid"].email == "" and roster["cid"].idnumber == "1003"


@pytest.mark.parametrize("text, words", [
    ("name,email\nAnn,a@x\n", "'student' column"),
    ("student,e-mail\nann,a@x\n", "unknown roster column"),
    ("student,name\nann,Ann\nann,Ann again\n", "line 3"),
    ("student,name\n,Nobody\n", "no student id"),
])
def test_bad_roster_is_refused_with_its_line(tmp_path, text, words):
    path = tmp_path / "roster.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(words)):
        read_roster(path)
    with pytest.raises(SystemExit):  # the command stops before grading anything
        parse_args(["subs", "--out", str(tmp_path / "out"), "--roster", str(path)])


def test_canvas_assignment_option_is_parsed(tmp_path):
    opts = parse_args(["subs", "--out", "o", "--canvas-assignment", f"{CHAPTER}=4321"])
    assert opts.canvas_ids == {CHAPTER: "4321"} and opts.roster_entries is None
    with pytest.raises(SystemExit):
        parse_args(["subs", "--out", "o", "--canvas-assignment", CHAPTER])


# ------------------------------------------------------------------------------ LMS files
def test_canvas_csv_follows_the_import_format(klass, roster, assignments, tmp_path):
    table = lms_table(klass, assignments, roster)
    write_canvas(table, tmp_path / "canvas.csv", {CHAPTER: "4321"})
    lines = read_csv(tmp_path / "canvas.csv")
    header = lines[0]
    # Canvas's GradebookImporter: Student, ID, SIS User ID, SIS Login ID, Section, then "Title (id)"
    assert header[:5] == CANVAS_STUDENT_COLUMNS == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    assert [re.fullmatch(r"(.*) \((\d+)\)", h).groups() for h in header[5:]] == [(CHAPTER, "4321")]
    assert lines[1][0] == "Points Possible" and float(lines[1][5]) == assignments[CHAPTER].max_points
    body = {line[0]: line for line in lines[2:]}
    assert list(body) == ["Lee, Ann", "Bob Roe", "Cid Poe", "Dan Ito", "Gus Ng", "Hal Oz"]  # the roster, in order
    totals = {r.file: r.total for r in klass}
    assert body["Lee, Ann"][1:5] == ["501", "S1", "alee", "A"]
    assert float(body["Lee, Ann"][5]) == totals["ann_general_form.ipynb"]
    assert float(body["Bob Roe"][5]) == max(totals["bob/try1.ipynb"], totals["bob/try2.ipynb"])
    assert float(body["Dan Ito"][5]) == totals["dan_general_form.ipynb"] < assignments[CHAPTER].max_points
    assert body["Gus Ng"][5] == "" and body["Hal Oz"][5] == ""  # in the roster, nothing submitted: no grade
    assert not any("eve" in cell.lower() for line in lines for cell in line)
    assert any(w.startswith("eve submitted eve_general_form.ipynb but is not in the roster") for w in table.warnings)
    assert any(w.startswith("bob has 2 files") and "bob/try2.ipynb" in w for w in table.warnings)
    assert any(w.startswith("fay submitted fay_notes.txt but is not in the roster") for w in table.warnings)


def test_missing_as_zero_writes_zero_for_no_submission(klass, roster, assignments, tmp_path):
    table = lms_table(klass, assignments, roster)
    write_canvas(table, tmp_path / "canvas.csv", missing_as_zero=True)
    write_moodle(table, tmp_path / "moodle.csv", missing_as_zero=True)
    canvas = {line[0]: line for line in read_csv(tmp_path / "canvas.csv")[2:]}
    assert read_csv(tmp_path / "canvas.csv")[0][5] == CHAPTER  # no Canvas id given: matched by name
    assert canvas["Gus Ng"][5] == "0"
    moodle = {line[3]: line for line in read_csv(tmp_path / "moodle.csv")[1:]}
    assert moodle["Gus Ng"][4] == "0"


def test_moodle_csv_has_identifiers_and_one_column_per_chapter(klass, roster, assignments, tmp_path):
    table = lms_table(klass, assignments, roster)
    warnings = write_moodle(table, tmp_path / "moodle.csv")
    lines = read_csv(tmp_path / "moodle.csv")
    assert lines[0] == ["ID number", "Username", "Email address", "Full name", CHAPTER]
    body = {line[3]: line for line in lines[1:]}
    assert set(body) == {"Lee, Ann", "Bob Roe", "Cid Poe", "Dan Ito", "Gus Ng"}  # Hal has no Moodle identifier
    assert body["Lee, Ann"][:3] == ["1001", "alee", "ann@uni.example"]
    assert body["Cid Poe"][:3] == ["1003", "cpoe", ""]
    assert float(body["Cid Poe"][4]) == next(r.total for r in klass if r.student == "cid")
    assert body["Gus Ng"][4] == ""
    assert warnings[0] == "hal has no idnumber, username or email in the roster: left out of moodle.csv"
    # Moodle stops an import at a row whose mapped identifier is empty: say which column every row has
    assert warnings[1:] == [
        "moodle.csv: ID number is empty for bob; Moodle stops the import at such a row if users are mapped from it: "
        "map from another column",
        "moodle.csv: Username is empty for bob; Moodle stops the import at such a row if users are mapped from it: "
        "map from another column",
        "moodle.csv: Email address is empty for cid; Moodle stops the import at such a row if users are mapped from "
        "it: map from another column"]
    assert set(warnings) <= set(table.warnings)


# ------------------------------------------------------------------------------ report
def test_a_message_is_grouped_by_its_catalogue_template():
    english = translate(SHAPE, "en", name="softmax", value="list")
    other = translate(SHAPE, "en", name="cosine_score", value="tuple")
    chinese = translate(SHAPE, "zh_CN", name="softmax", value="list")
    assert load("zh_CN").get(SHAPE), "the template has a Chinese translation"
    assert english != other and chinese != english
    assert mistake_key(english) == mistake_key(other) == mistake_key(chinese) == SHAPE
    assert mistake_key("a sentence no check writes, 42") == "a sentence no check writes, N"
    # a check's own words around a catalogue message: still the catalogue's template
    assert mistake_key("weights[0, 1]: " + translate(SQRT, "en")) == SQRT


def test_examples_are_anonymised():
    text = "your code raised OSError: /tmp/scratch-9/alice_general_form.ipynb (alice) for Alice Lee; normal"
    shown = anonymise(text, {"alice", "alice_general_form.ipynb", "Alice Lee", "al"})
    assert "alice" not in shown.lower() and "/tmp" not in shown and "[student]" in shown
    assert shown.endswith("normal"), "a short id is replaced only as a whole word"


def test_report_counts_the_class(klass, assignments):
    [s] = summarise(klass, assignments)
    assert s.chapter == CHAPTER and s.max == assignments[CHAPTER].max_points
    assert len(s.totals) == 5  # ann, bob (best file), cid, dan, eve; fay's text file is no chapter's
    passed = {g: (p, n) for g, p, n in s.exercises}
    assert passed["test_softmax"] == (4, 5) and passed["test_scaled_dot_product_score"] == (3, 5)
    assert passed["test_dot_product_score"] == (5, 5)
    mistakes = {m.key: m for m in s.mistakes}
    # bob's softmax mistake is in his worse file only: not counted; cid's is in Chinese: the same mistake
    assert mistakes[SHAPE].students == {"cid", "eve"}
    assert mistakes[SHAPE].exercises == {"test_softmax": 1, "test_additive_score": 1}
    assert mistakes[SQRT].students == {"cid", "dan"} and mistakes[SQRT].hidden == {"cid"}
    assert mistakes[RAISED].students == {"dan"}
    assert "dan" not in mistakes[RAISED].example and "/tmp" not in mistakes[RAISED].example
    assert s.statuses == {"ok": 3, "timeout": 1, "tampering": 1}
    assert [m.key for m in s.mistakes][:2] == sorted([SHAPE, SQRT])  # two students each, before one


def test_report_page_has_plots_with_alt_text_and_tables(klass, roster, assignments, tmp_path):
    table = lms_table(klass, assignments, roster)
    path = write_report(klass, assignments, tmp_path, table.warnings)
    page = path.read_text(encoding="utf-8")
    images = re.findall(r"<img alt=\"([^\"]+)\"[^>]*src=\"([^\"]+)\"", page)
    assert len(images) == 2 and all(src.startswith("data:image/png;base64,") for _, src in images)
    histogram, rates = (alt for alt, _ in images)
    assert "5 students" in histogram and f"out of {assignments[CHAPTER].max_points:g} points" in histogram
    full = sum(r.total == r.max for r in klass if r.file != "bob/try1.ipynb" and r.max)
    assert f"Full marks: {full};" in histogram
    assert "test_softmax passed by 4 of 5 students (80 %)" in rates
    assert not re.search(r"(src|href)=[\"']https?:", page), "the report must render offline"
    assert page.count("<details>") == 2 and "eve submitted" in page and "not_a_notebook" in page
    import html

    assert f"<tr><td>{html.escape(SQRT)}</td><td>2 (40 %) (1 found by hidden tests)</td>" in page


def test_report_without_graded_chapters_still_renders(assignments):
    row = Row(student="x", file="x.txt")
    row.flag("not_a_notebook", "text")
    page = report_html([row], assignments)
    assert "<img" not in page and "not_a_notebook" in page


# ------------------------------------------------------------------------------ the grader
@pytest.mark.slow
def test_grader_writes_lms_files_and_report(tmp_path):
    sys.path.insert(0, str(ROOT / "tests"))
    from grading_fixtures import course_copy, write_small_class

    course = course_copy(tmp_path)
    subs = tmp_path / "subs"
    write_small_class(subs)
    roster = tmp_path / "roster.csv"
    roster.write_text("student,name,email\nann,Ann,ann@x.example\nbob,Bob,bob@x.example\nzed,Zed,zed@x.example\n",
                      encoding="utf-8")
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "attention_course.grading", str(subs), "--out", str(out), "--course",
                           str(course), "--jobs", "2", "--cell-timeout", "20", "--roster", str(roster)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(out / "gradebook.csv", encoding="utf-8") as handle:
        book = {r["student"]: r for r in csv.DictReader(handle)}
    canvas = {line[0]: line for line in read_csv(out / "canvas.csv")[2:]}
    assert canvas["Ann"][5] == book["ann"]["total"] and canvas["Bob"][5] == book["bob"]["total"]
    assert canvas["Zed"][5] == "" and "cid" not in str(canvas)
    moodle = read_csv(out / "moodle.csv")
    assert [line[2] for line in moodle[1:]] == ["ann@x.example", "bob@x.example", "zed@x.example"]
    log = (out / "grade.log").read_text(encoding="utf-8")
    assert re.search(r"WARNING cid submitted cid_general_form.ipynb but is not in the roster", log)
    page = (out / "report.html").read_text(encoding="utf-8")
    failed = sum(book[s]["test_scaled_dot_product_score"] == "0" for s in book)
    assert failed == 2
    assert f"test_scaled_dot_product_score passed by {3 - failed} of 3 students" in page
    assert "cid submitted" in page


def test_moodle_warning_names_the_column_to_map_users_from(klass, assignments, tmp_path):
    path = tmp_path / "roster.csv"
    path.write_text("student,email,idnumber\nann,ann@x.example,1\nbob,bob@x.example,\n", encoding="utf-8")
    table = lms_table(klass, assignments, read_roster(path))
    assert write_moodle(table, tmp_path / "moodle.csv") == [
        "moodle.csv: ID number is empty for bob; Moodle stops the import at such a row if users are mapped from it: "
        "map from Email address"]


def test_outputs_with_and_without_a_roster(klass, assignments, tmp_path, caplog):
    import time

    from attention_course.grading.cli import write_outputs

    roster = tmp_path / "roster.csv"
    roster.write_text(ROSTER, encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()
    with caplog.at_level("WARNING", logger="attention_course.grading.cli"):
        write_outputs(klass, klass, assignments, out, time.monotonic(),
                      parse_args(["subs", "--out", str(out), "--roster", str(roster)]))
    assert {p.name for p in out.iterdir()} >= {"gradebook.csv", "canvas.csv", "moodle.csv", "report.html"}
    assert any(m.startswith("eve submitted") for m in caplog.messages)  # in grade.log, not only in the report
    write_outputs(klass, klass, assignments, out, time.monotonic(), parse_args(["subs", "--out", str(out)]))
    names = {p.name for p in out.iterdir()}
    assert "report.html" in names and not {"canvas.csv", "moodle.csv"} & names, "stale LMS files must go"

"""The instructor grader (attention_course.grading.cli) on the bad submissions it must survive.

One grading run over a folder of fixture notebooks (built from the Ch. 3 release and solution in a
temporary folder, plus a synthetic torch "probe" assignment that exercises callbacks, generators
and containers changed in place), then one test per case on its gradebook row; a second run checks
idempotence. A third run grades every assignment's student notebook from notebooks/ (zero), and its
self-check grades each assignment's solution (full marks), so chapters added later are covered
automatically.
"""
from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from course_tools import assignments
from grading_fixtures import (HIDDEN_ONLY_MISTAKE, MISTAKES, PROBE, SOURCE, course_copy, probe_notebook, strip_metadata,
                              submission, write)

pytestmark = pytest.mark.slow  # every test here runs the grader over whole notebooks

CELL_TIMEOUT = 4
ZEROS = {  # wrong answers with the right shapes
    "softmax": "def softmax(x, axis=-1):\n    return np.zeros(np.shape(x))\n",
    "dot_product_score": "def dot_product_score(q, K):\n    return np.zeros(np.shape(q)[:-1] + (len(K),))\n",
    "scaled_dot_product_score": "def scaled_dot_product_score(q, K):\n    return np.zeros(np.shape(q)[:-1] + (len(K),))\n",
    "additive_score": "def additive_score(q, K, W_q, W_k, w_v):\n    return np.zeros(np.shape(q)[:-1] + (len(K),))\n",
    "cosine_score": "def cosine_score(q, K):\n    return np.zeros(np.shape(q)[:-1] + (len(K),))\n",
    "bilinear_score": "def bilinear_score(q, K, W):\n    return np.zeros(np.shape(q)[:-1] + (len(K),))\n",
    "attention_pooling": "def attention_pooling(weights, V):\n    return np.zeros(np.shape(weights)[:-1] + np.shape(V)[1:])\n",
}

# A graded function that is, or forwards to, the course's own implementation (the chapters show its
# code with show_source), in each form a student might try.
BORROWED = {
    "direct": {"softmax": "from attention_course.maths.scoring import softmax\n"},
    "alias": {"softmax": "from attention_course.maths import scoring as reference\nsoftmax = reference.softmax\n"},
    "wrapper": {"softmax": "import attention_course.maths.scoring\n\ndef softmax(x, axis=-1):\n"
                           "    return attention_course.maths.scoring.softmax(x, axis=axis)\n"},
    "getattr": {"softmax": "import importlib\n\ndef softmax(x, axis=-1):\n"
                           "    module = importlib.import_module('attention_course.maths.' + 'scoring')\n"
                           "    return getattr(module, 'softmax')(x, axis)\n"},
    "star": {"cosine_score": "from attention_course.maths.scoring import *\n"},
}


def run_grader(submissions: Path, out: Path, course: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "attention_course.grading", str(submissions), "--out", str(out),
                           "--course", str(course), "--cell-timeout", str(CELL_TIMEOUT), "--total-timeout", "90",
                           "--memory-mb", "1536", "--jobs", "2", *extra],
                          capture_output=True, text=True, timeout=900)


def read_rows(out: Path) -> dict[str, dict]:
    with open(out / "gradebook.csv", encoding="utf-8") as handle:
        return {row["file"]: row for row in csv.DictReader(handle)}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("grading")
    course = course_copy(tmp)
    write(course / "solutions" / PROBE, "probe.ipynb", probe_notebook())
    subs = tmp / "submissions"
    solution_file = course / "solutions" / "ch03_general_form" / "general_form.ipynb"
    steal = ("import json\nnb = json.load(open({path!r}))\n"
             "for c in nb['cells']:\n"
             "    src = ''.join(c['source'])\n"
             "    if c['cell_type'] == 'code' and src.lstrip().startswith('def '):\n"
             "        exec(src)\n")
    cases = {
        "ok_general_form.ipynb": submission(),
        "blank_general_form.ipynb": submission(solved=False),
        "malformed_general_form.ipynb": '{"cells": [{"cell_type": "code", "source": "x = 1"',
        "notes_readme.txt": "I could not finish exercise 4, sorry.\n",
        "empty_general_form.ipynb": "",
        "other_encoder.ipynb": {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
            {"cell_type": "code", "id": "a1", "metadata": {"nbgrader": {"grade_id": "encoder_context", "solution": True,
             "grade": False, "locked": False, "schema_version": 3}}, "outputs": [], "execution_count": None,
             "source": "def encode(tokens):\n    return tokens\n"}]},
        "stripped_general_form.ipynb": strip_metadata(submission()),
        "toplevel_general_form.ipynb": submission(extra=[(3, "raise RuntimeError('boom at top level')")]),
        "loop_general_form.ipynb": submission(extra=[(3, "while True:\n    pass")]),
        "sleepy_general_form.ipynb": submission(extra=[(3, "import time\ntime.sleep(600)")]),
        "loud_general_form.ipynb": submission(extra=[(-1, "print('x' * 3_000_000)\nfor i in range(20000):\n    print(i)")]),
        # np.empty takes address space without writing to it: the hog meets the memory limit in a
        # dozen steps however busy the machine is (filling 1.5 GB with zeros took over the 4 s cell
        # limit on a loaded machine, and the hog was graded "timeout").
        "hog_general_form.ipynb": submission(extra=[(-1, "import numpy as np\ndef blow():\n    chunks = []\n"
                                                         "    while True:\n        chunks.append(np.empty(2 ** 27, np.uint8))\n"
                                                         "blow()")]),
        "slowfn_general_form.ipynb": submission({"softmax": "def softmax(x, axis=-1):\n    while True:\n        pass\n"}),
        "vandal_general_form.ipynb": submission(extra=[(-1, (
            "import os, shutil\nopen('my_notes.txt', 'w').write('scratch files are fine')\n"
            f"for target in [{str(solution_file)!r}, {str(subs / 'ok_general_form.ipynb')!r}]:\n"
            "    try:\n        os.remove(target)\n    except OSError as error:\n        print(error)\n"
            f"try:\n    shutil.rmtree({str(course / 'notebooks')!r})\nexcept OSError as error:\n    print(error)\n"
            f"open({str(course / 'hacked.txt')!r}, 'w').write('pwned')"))]),
        "snoop_general_form.ipynb": submission(ZEROS, extra=[(-1, steal.format(path=str(subs / "ok_general_form.ipynb")))]),
        "cheat_general_form.ipynb": submission(ZEROS, extra=[(-1, steal.format(path=str(solution_file)))]),
        "transformer_general_form.ipynb": submission(ZEROS, extra=[(2, (
            "def _no_asserts(lines):\n    return ['pass\\n' if l.lstrip().startswith('assert') else l for l in lines]\n"
            "get_ipython().input_transformers_cleanup.append(_no_asserts)"))]),
        "allclose_general_form.ipynb": submission(ZEROS, extra=[(2, (
            "import numpy as np\nnp.allclose = lambda *a, **k: True\nnp.array_equal = lambda *a, **k: True\n"
            "np.isclose = lambda *a, **k: True\nimport builtins\nbuiltins.AssertionError = type('Nope', (Exception,), {})"))]),
        "mistakes_general_form.ipynb": submission({"softmax": MISTAKES["softmax_global_max"],
                                                   "scaled_dot_product_score": MISTAKES["scaled_dot_product_score"],
                                                   **HIDDEN_ONLY_MISTAKE}),
        # what an old Jupyter/IPython install saves: nbformat 3 (worksheets), written by nbformat itself
        "v3_general_form.ipynb": nbformat.writes(nbformat.convert(nbformat.from_dict(submission()), 3), version=3),
        "invalid_general_form.ipynb": {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
            {"cell_type": "code", "id": "c1", "metadata": {}, "source": "x = 1"}]},
        **{f"borrow{form}_general_form.ipynb": submission(answers) for form, answers in BORROWED.items()},
        "probe_solved.ipynb": probe_notebook(),
        "probeblank_solved.ipynb": probe_notebook(solved=False),
    }
    for name, content in cases.items():
        write(subs, name, content)
    out = tmp / "out"
    proc = run_grader(subs, out, course)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return {"tmp": tmp, "course": course, "subs": subs, "out": out, "rows": read_rows(out), "cases": cases,
            "solution_file": solution_file, "stderr": proc.stderr}


def row(graded, name):
    return graded["rows"][name]


def test_every_file_has_a_row(graded):
    assert set(graded["rows"]) == set(graded["cases"])
    for r in graded["rows"].values():
        assert r["status"] and (r["status"] == "ok" or r["reason"]), r


def test_solution_gets_full_marks_and_blank_zero(graded):
    ok, blank = row(graded, "ok_general_form.ipynb"), row(graded, "blank_general_form.ipynb")
    assert (ok["status"], float(ok["total"]), float(ok["max"])) == ("ok", 15.0, 15.0), ok
    assert ok["student"] == "ok" and ok["chapter"] == "ch03_general_form"
    assert float(blank["total"]) == 0 and "7 of 7 exercises failed" in blank["reason"], blank


@pytest.mark.parametrize("name, status, words", [
    ("malformed_general_form.ipynb", "malformed_notebook", "not valid JSON"),
    ("notes_readme.txt", "not_a_notebook", "not a Jupyter notebook"),
    ("empty_general_form.ipynb", "empty_file", "empty"),
    ("other_encoder.ipynb", "unknown_chapter", "does not match any exercise notebook"),
    ("invalid_general_form.ipynb", "malformed_notebook", "nbformat: 'outputs' is a required property"),
])
def test_unreadable_or_foreign_files(graded, name, status, words):
    r = row(graded, name)
    assert r["status"] == status and words in r["reason"] and float(r["total"]) == 0, r


def test_nbformat3_notebook_is_converted_and_graded(graded):
    saved = json.loads((graded["subs"] / "v3_general_form.ipynb").read_text(encoding="utf-8"))
    assert saved["nbformat"] == 3 and "worksheets" in saved and "cells" not in saved
    r = row(graded, "v3_general_form.ipynb")
    assert (r["status"], r["chapter"], float(r["total"]), float(r["max"])) == ("ok", "ch03_general_form", 15, 15), r
    assert "an nbformat 3 notebook (older Jupyter), converted to nbformat 4 by nbformat" in r["reason"], r


@pytest.mark.parametrize("form, lost, words", [
    ("direct", "test_softmax", "from attention_course.maths.scoring import softmax"),
    ("alias", "test_softmax", "softmax uses reference (from attention_course.maths import scoring)"),
    ("wrapper", "test_softmax", "softmax names attention_course in its code"),
    ("getattr", "test_softmax", "softmax names attention_course in its code"),
    ("star", "test_cosine_score", "cosine_score is the course's reference implementation, not the student's "
                                  "(from attention_course.maths.scoring import *)"),
])
def test_borrowed_reference_implementation_gets_no_points(graded, form, lost, words):
    """Each form of borrowing costs that exercise's points, with a status and a reason; the
    submission's own use of the package (its check cells import attention_course.grading.checks) does not."""
    r = row(graded, f"borrow{form}_general_form.ipynb")
    assert r["status"] == "borrowed_reference" and words in r["reason"] and f"0 points for {lost}" in r["reason"], r
    assert float(r[lost]) == 0 and float(r["total"]) < 15, r
    if form != "star":  # only softmax's own exercise is lost; the others are the student's code
        assert float(r["total"]) == 12, r
    page = (graded["out"] / "feedback" / f"borrow{form}" / "ch03_general_form.html").read_text(encoding="utf-8")
    assert "uses the course&#x27;s own implementation from attention_course" in page
    ok = row(graded, "ok_general_form.ipynb")  # imports attention_course.grading.checks in its check cells
    assert ok["status"] == "ok" and float(ok["total"]) == 15, ok


def test_metadata_removed_and_ids_changed_still_graded(graded):
    r = row(graded, "stripped_general_form.ipynb")
    assert r["chapter"] == "ch03_general_form" and float(r["total"]) == 15, r
    assert r["status"] == "metadata_changed" and "metadata missing" in r["reason"]


@pytest.mark.parametrize("name, status, words", [
    ("toplevel_general_form.ipynb", "cell_error", "RuntimeError: boom at top level"),
    ("loop_general_form.ipynb", "timeout", f"longer than the {CELL_TIMEOUT} s limit"),
    ("sleepy_general_form.ipynb", "timeout", f"longer than the {CELL_TIMEOUT} s limit"),
    ("hog_general_form.ipynb", "memory", "ran out of memory"),
])
def test_broken_cells_do_not_cost_the_rest(graded, name, status, words):
    r = row(graded, name)
    assert r["status"] == status and words in r["reason"], r
    assert float(r["total"]) == 15, r  # the other cells still define correct functions


def test_huge_output_is_truncated(graded):
    r = row(graded, "loud_general_form.ipynb")
    assert float(r["total"]) == 15 and "printed" in r["reason"], r
    assert (graded["out"] / "feedback" / "loud" / "ch03_general_form.html").stat().st_size < 50_000


def test_function_that_never_returns(graded):
    r = row(graded, "slowfn_general_form.ipynb")
    assert float(r["test_softmax"]) == 0 and float(r["total"]) == 12, r


def test_vandal_cannot_delete_or_write_outside_its_folder(graded):
    r = row(graded, "vandal_general_form.ipynb")
    assert r["status"] == "sandbox_violation" and "blocked by the sandbox" in r["reason"], r
    assert graded["solution_file"].exists() and (graded["subs"] / "ok_general_form.ipynb").exists()
    assert (graded["course"] / "notebooks" / "ch03_general_form" / "general_form.ipynb").exists()
    assert not (graded["course"] / "hacked.txt").exists()
    assert float(r["total"]) == 15  # writing in its own scratch folder is allowed


@pytest.mark.parametrize("name", ["snoop_general_form.ipynb", "cheat_general_form.ipynb"])
def test_reading_others_or_the_solutions_gains_nothing(graded, name):
    r = row(graded, name)
    assert float(r["total"]) == 0, r
    assert r["status"] == "sandbox_violation" and "open" in r["reason"], r


@pytest.mark.parametrize("name", ["transformer_general_form.ipynb", "allclose_general_form.ipynb"])
def test_patching_the_checks_in_its_kernel_gains_nothing(graded, name):
    r = row(graded, name)
    assert float(r["total"]) == 0, r
    assert r["status"] == "tampering" and "changed nothing" in r["reason"], r


def test_hidden_tests_catch_what_public_ones_miss(graded):
    r = row(graded, "mistakes_general_form.ipynb")
    assert float(r["test_softmax"]) == 0 and float(r["test_scaled_dot_product_score"]) == 0
    assert float(r["test_attention_pooling"]) == 0
    assert float(r["total"]) == 8 and r["status"] == "ok", r


def test_feedback_shows_public_results_never_hidden_tests(graded):
    source = json.loads(SOURCE.read_text(encoding="utf-8"))
    hidden_lines = []
    for cell in source["cells"]:
        text = "".join(cell["source"])
        if "### BEGIN HIDDEN TESTS" in text:
            block = text.split("### BEGIN HIDDEN TESTS")[1].split("### END HIDDEN TESTS")[0]
            public = text.split("### BEGIN HIDDEN TESTS")[0]
            hidden_lines += [line.strip() for line in block.splitlines()
                             if len(line.strip()) > 25 and line.strip() not in public]
    pages = list((graded["out"] / "feedback").rglob("*.html"))
    assert len(pages) == len(graded["cases"])
    for page in pages:
        text = page.read_text(encoding="utf-8")
        import html as _html

        plain = _html.unescape(text)
        leaked = [line for line in hidden_lines if line in plain or line.split('"')[1:2] and line.split('"')[1] in plain]
        assert not leaked, (page, leaked[:3])
        assert "Traceback" not in plain
    mistakes = (graded["out"] / "feedback" / "mistakes" / "ch03_general_form.html").read_text(encoding="utf-8")
    assert "you divided by d_k = 9" in mistakes  # the public check's own message
    assert "hidden tests found a mistake" in mistakes


# Regraded to show that a second run writes the same rows and feedback. One file of each kind is
# enough: answered (and converted from nbformat 3), blank, with mistakes (public and hidden checks'
# messages), a cell that raises. Left out: the plain answered one (the nbformat 3 one is it,
# converted), the probe chapter (its self-check and its time-limit checks cost about 20 s of the
# rerun's 33 s; a second chapter adds only columns to the gradebook) and the ones that only
# cost their time limits.
RERUN = ("v3_general_form.ipynb", "blank_general_form.ipynb", "mistakes_general_form.ipynb",
         "toplevel_general_form.ipynb")


def test_rerun_is_idempotent(graded):
    subs2, out2 = graded["tmp"] / "rerun", graded["tmp"] / "out2"
    subs2.mkdir()
    for name in RERUN:
        shutil.copy(graded["subs"] / name, subs2 / name)
    proc = run_grader(subs2, out2, graded["course"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    again = read_rows(out2)
    assert set(again) == set(RERUN)
    for name in RERUN:
        first = {k: v for k, v in graded["rows"][name].items() if v not in (None, "")}
        second = {k: v for k, v in again[name].items() if v not in (None, "")}
        assert second == first, name
    first = {p.relative_to(graded["out"]): p.read_bytes() for p in (graded["out"] / "feedback").rglob("*.html")}
    second = {p.relative_to(out2): p.read_bytes() for p in (out2 / "feedback").rglob("*.html")}
    assert second and all(first[path] == content for path, content in second.items())


def test_solutions_are_graded_first_on_every_run(graded):
    """The self-check ran through the same pipeline before the class (and found nothing wrong)."""
    for chapter, points in (("ch03_general_form", "15/15"), (PROBE, "3/3")):
        assert f"self-check: the solution of {chapter} gets {points}" in graded["stderr"], graded["stderr"][-3000:]


def _break_a_check(course: Path) -> None:
    """A check of the course copy that nothing can pass: the solution loses that exercise's points."""
    path = course / "solutions" / "ch03_general_form" / "general_form.ipynb"
    nb = json.loads(path.read_text(encoding="utf-8"))
    cell = next(c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == "test_softmax")
    cell["source"] = "".join(cell["source"]) + "\nassert False, 'a check broken on purpose'\n"
    path.write_text(json.dumps(nb), encoding="utf-8")


@pytest.mark.parametrize("breakage", ["python_without_the_course", "check_that_fails"])
def test_broken_environment_stops_instead_of_zeros(tmp_path, monkeypatch, breakage):
    """A grading environment in which the course's own solution loses points (here: the sandboxed
    processes start a Python that lacks the course, as a borrowed virtual environment did; or a check
    that nothing passes) stops with exit 3 and names the chapter and the score, before any submission
    is graded and without writing a gradebook of zeros."""
    from attention_course.grading import cli as grade

    course = course_copy(tmp_path)
    write(tmp_path / "subs", "ok_general_form.ipynb", submission())
    if breakage == "python_without_the_course":
        monkeypatch.setattr(sys, "executable", str(Path(sys.base_prefix) / "bin" / "python3"))
        # started processes only: forked checkers run the grader's own modules, so cannot differ from it
        monkeypatch.setenv("ATTENTION_COURSE_NO_FORKSERVER", "1")
        expected = "got 0/15, status grader_error"
    else:
        _break_a_check(course)
        expected = "got 12/15, status ok"
    out = tmp_path / "out"
    code = grade.main([str(tmp_path / "subs"), "--out", str(out), "--course", str(course), "--cell-timeout",
                       str(CELL_TIMEOUT), "--total-timeout", "90", "--memory-mb", "1536", "--jobs", "1"])
    log_text = (out / "grade.log").read_text(encoding="utf-8")
    assert code == 3, log_text[-3000:]
    assert "grading stopped" in log_text and "the grading environment is broken" in log_text
    assert f"ch03_general_form: its solution solutions/ch03_general_form/general_form.ipynb {expected}" in log_text, \
        log_text[-3000:]
    if breakage == "check_that_fails":
        assert "test_softmax" in log_text and "a check broken on purpose" in log_text
    assert not (out / "gradebook.csv").exists() and "ok_general_form.ipynb ->" not in log_text


def test_zip_with_student_folders_and_custom_pattern(tmp_path):
    course = course_copy(tmp_path)
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("Ada Lovelace_1001_assignsubmission_file_/general_form.ipynb", json.dumps(submission()))
        zf.writestr("Alan Turing_1002_assignsubmission_file_/my_copy.ipynb",
                    json.dumps(submission({"softmax": MISTAKES["softmax"]})))
        zf.writestr("__MACOSX/._junk", b"\0\1")
    out = tmp_path / "out"
    proc = run_grader(archive, out, course, "--student-pattern", r"^[^/]*_(?P<student>\d+)_assignsubmission")
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {r["student"]: r for r in read_rows(out).values()}
    assert set(rows) == {"1001", "1002"}
    assert float(rows["1001"]["total"]) == 15 and float(rows["1002"]["total"]) == 12
    assert "ignored" in (out / "grade.log").read_text(encoding="utf-8")


def test_callbacks_generators_and_containers_changed_in_place(graded):
    """Functions from the checks passed into the student's code (closures, test-cell classes, bound
    methods, nested calls back into the student's code, exceptions, a callback that never returns),
    torch/numpy Generators and a KV-cache dict changed in place: see PROBE_TESTS."""
    solved, blank = row(graded, "probe_solved.ipynb"), row(graded, "probeblank_solved.ipynb")
    assert (solved["status"], float(solved["total"]), float(solved["max"])) == ("ok", 3.0, 3.0), (solved, graded["stderr"])
    assert float(blank["total"]) == 0, blank
    page = (graded["out"] / "feedback" / "probeblank" / f"{PROBE}.html").read_text(encoding="utf-8")
    assert "sample_next_token is not implemented yet" in page


# ------------------------------------------------------------------------ every chapter's exercises
@pytest.fixture(scope="module")
def chapters(tmp_path_factory):
    """One grading run (instructor defaults, 2 at a time) over every assignment's student notebook
    (notebooks/) as the submissions of a student "blank". Before grading them, the grader's self-check
    grades each of their chapters' solution notebooks through the same pipeline and logs
    "self-check: the solution of <chapter> gets <points>/<max>"; submitting the solutions as well
    would run them a second time."""
    tmp = tmp_path_factory.mktemp("chapters")
    course = course_copy(tmp)
    subs = tmp / "submissions"
    for name in assignments():
        for source in sorted((course / "solutions" / name).glob("*.ipynb")):
            release = course / "notebooks" / name / source.name
            if release.exists():
                write(subs / "blank" / name, source.name, release.read_bytes())
    out = tmp / "out"
    proc = subprocess.run([sys.executable, "-m", "attention_course.grading", str(subs), "--out", str(out),
                           "--course", str(course), "--jobs", "2"], capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return {"course": course, "rows": read_rows(out), "log": (out / "grade.log").read_text(encoding="utf-8")}


def _chapter_rows(chapters, who: str, name: str) -> list[dict]:
    return [r for r in chapters["rows"].values() if r["file"].startswith(f"{who}/{name}/")]


def _log_of(chapters, row: dict) -> str:
    return "\n".join(line for line in chapters["log"].splitlines() if row["file"] in line)[-3000:]


@pytest.mark.parametrize("name", assignments())
def test_every_solution_gets_full_marks(chapters, name):
    """Every solution notebook of the chapter, graded by the self-check: full marks, and the maximum is the
    sum of the points in its nbgrader metadata. (The grader names a chapter's second notebook
    <chapter>/<notebook>.)"""
    checked = {}
    for chapter, points, max_points in re.findall(r"self-check: the solution of (\S+) gets ([\d.]+)/([\d.]+)",
                                                  chapters["log"]):
        if chapter == name or chapter.startswith(f"{name}/"):
            checked[chapter] = (float(points), float(max_points))
    sources = sorted((chapters["course"] / "solutions" / name).glob("*.ipynb"))
    assert sources and len(checked) == len(sources), \
        (f"{len(sources)} solution notebooks in solutions/{name}/, self-checked: {checked}", chapters["log"][-3000:])
    expected = sorted(sum(c["metadata"]["nbgrader"]["points"] for c in json.loads(s.read_text(encoding="utf-8"))["cells"]
                          if c["metadata"].get("nbgrader", {}).get("grade")) for s in sources)
    assert sorted(max_points for _, max_points in checked.values()) == expected, (checked, expected)
    for chapter, (points, max_points) in checked.items():
        assert max_points > 0 and points == max_points, (chapter, points, max_points)


@pytest.mark.parametrize("name", assignments())
def test_every_student_notebook_gets_zero(chapters, name):
    sources = sorted((chapters["course"] / "solutions" / name).glob("*.ipynb"))
    missing = [s.name for s in sources if not (chapters["course"] / "notebooks" / name / s.name).exists()]
    assert not missing, f"notebooks/{name}/ lacks {missing}: run bash scripts/release_notebooks.sh"
    rows = _chapter_rows(chapters, "blank", name)
    assert len(rows) == len(sources)
    for r in rows:
        assert r["chapter"].split("/")[0] == name and float(r["total"]) == 0 and float(r["max"]) > 0, \
            (r, _log_of(chapters, r))

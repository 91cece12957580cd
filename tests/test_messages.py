"""The checks' and the grader's message catalogue (attention_course/grading/messages.py) in use.

* the catalogue is complete (``python -m attention_course.grading.messages check`` exits 0), and its
  check fails on an untranslated, stale or broken message and on a message left unwrapped;
* a Chinese student notebook (zh_CN/notebooks/), executed in a Jupyter kernel with a typical mistake,
  shows the check's Chinese message, the translation of the English one;
* the grader grades a Chinese submission like an English one: the chapter is recognised,
  gradebook.csv stays English with ``language`` = ``zh_CN``, the feedback page is Chinese.

The wrong-answer suite in both languages is tests/test_exercise_messages.py.
"""
from __future__ import annotations

import csv
import html
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from course_tools import ROOT, ExerciseNotebook
from grading_fixtures import MISTAKES, course_copy, solution_code, write
from wrong_answers import notebook, table

CHINESE = re.compile(r"[\u4e00-\u9fff]")


def chinese_text(text: str) -> bool:
    return bool(CHINESE.search(text))


# ---------------------------------------------------------------------------- the catalogue
def test_the_catalogue_is_complete():
    from attention_course.grading import messages

    assert messages.problems() == []
    proc = subprocess.run([sys.executable, "-m", "attention_course.grading.messages", "check"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_english_message_of_the_code_has_a_chinese_translation():
    from attention_course.grading import messages

    chinese = messages.load("zh_CN")
    found = messages.extract()
    assert len(found) > 450
    for msgid in found:
        if re.search(r"[A-Za-z]{2,},? [A-Za-z]{2,}", msgid):
            assert chinese_text(chinese[msgid]), msgid


@pytest.fixture
def catalogue_copy(tmp_path, monkeypatch):
    """A copy of the catalogue that the test may break (``messages.LOCALES`` points to it)."""
    from attention_course.grading import messages

    locales = tmp_path / "locales"
    locales.mkdir()
    shutil.copy(messages.catalogue_path("zh_CN"), locales / "zh_CN.po")
    monkeypatch.setattr(messages, "LOCALES", locales)
    return locales / "zh_CN.po"


def _edit_catalogue(path: Path, edit) -> None:
    from babel.messages.pofile import read_po, write_po

    with open(path, "rb") as handle:
        catalogue = read_po(handle)
    edit(catalogue)
    with open(path, "wb") as handle:
        write_po(handle, catalogue, width=0)


MSGID = "you divided by d_k = 9; divide by its square root, 3"
PLACEHOLDERS = "q is one query {q} and K {K} holds 6 keys as ROWS: multiply q by K.T"


@pytest.mark.parametrize("breakage,reported", [
    ("untranslated", "untranslated: 'you divided by d_k = 9"),
    ("fuzzy", "untranslated: 'you divided by d_k = 9"),
    ("english", "translation has no Chinese: 'you divided by d_k = 9"),
    ("placeholders", "placeholders differ: 'q is one query {q}"),
    ("stale", "stale (no longer in the code): 'a message no check says any more'"),
])
def test_the_check_fails_on_a_broken_catalogue(catalogue_copy, breakage, reported):
    from attention_course.grading import messages

    def edit(catalogue):
        if breakage == "untranslated":
            catalogue[MSGID].string = ""
        elif breakage == "fuzzy":
            catalogue[MSGID].flags.add("fuzzy")
        elif breakage == "english":
            catalogue[MSGID].string = MSGID
        elif breakage == "placeholders":
            catalogue[PLACEHOLDERS].string = catalogue[PLACEHOLDERS].string.replace("{K}", "{keys}")
        else:
            catalogue.add("a message no check says any more", "检查不再说的一句话")

    _edit_catalogue(catalogue_copy, edit)
    found = messages.problems()
    assert len(found) == 1 and found[0].startswith(reported), found
    assert messages.main(["check"]) == 1


def _solutions_copy(tmp_path: Path, extra_check: str) -> Path:
    """solutions/ copied under ``tmp_path``, Chapter 3's first check cell ending with ``extra_check``."""
    root = tmp_path / "course"
    shutil.copytree(ROOT / "solutions", root / "solutions",
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    path = root / "solutions" / "ch03_general_form" / "general_form.ipynb"
    nb = json.loads(path.read_text(encoding="utf-8"))
    cell = next(c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade"))
    source = "".join(cell["source"])
    public, hidden = source.split("### BEGIN HIDDEN TESTS")
    cell["source"] = public + extra_check + "\n### BEGIN HIDDEN TESTS" + hidden
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return root


def test_the_check_fails_on_a_message_left_unwrapped(tmp_path):
    from attention_course.grading import messages

    root = _solutions_copy(tmp_path, 'assert x.shape == (2,), "your scores have the wrong shape for one query"\n')
    found = messages.problems(root=root)
    assert len(found) == 1, found
    assert "ch03_general_form/general_form.ipynb:test_softmax" in found[0], found
    assert "not wrapped in tr(): 'your scores have the wrong shape for one query'" in found[0], found


def test_the_check_fails_on_a_new_message_not_yet_translated(tmp_path):
    from attention_course.grading import messages

    root = _solutions_copy(tmp_path, 'assert x.shape == (2,), tr("your scores have the wrong shape for one query")\n')
    assert messages.problems(root=root) == ["untranslated: 'your scores have the wrong shape for one query'"]


def test_a_broken_translation_falls_back_to_english(catalogue_copy):
    from attention_course.grading import messages

    _edit_catalogue(catalogue_copy, lambda c: setattr(c[PLACEHOLDERS], "string", "q 是 {query}"))
    messages.load.cache_clear()
    try:
        assert messages.translate(PLACEHOLDERS, "zh_CN", q=(4,), K=(6, 4)) == \
            "q is one query (4,) and K (6, 4) holds 6 keys as ROWS: multiply q by K.T"
    finally:
        messages.load.cache_clear()


# ---------------------------------------------------------------------------- a Chinese notebook, executed
ZH_NOTEBOOK = ROOT / "zh_CN" / "notebooks" / "ch04_self_attention" / "self_attention.ipynb"


@pytest.mark.slow
def test_a_chinese_notebook_names_the_mistake_in_chinese(tmp_path):
    """The Chinese Chapter 4 notebook, answered with the solutions but self-attention without 1/sqrt(d_k),
    executed in a kernel: its setup cell sets the language, the check cell shows the Chinese message."""
    import nbformat
    from nbclient import NotebookClient

    from attention_course.grading import messages

    solutions = json.loads((ROOT / "solutions" / "ch04_self_attention" / "self_attention.ipynb").read_text("utf-8"))
    answers = {c["metadata"]["nbgrader"]["grade_id"]: "".join(c["source"]) for c in solutions["cells"]
               if c["metadata"].get("nbgrader", {}).get("solution") and c["cell_type"] == "code"}
    check_id, mistake, _ = table("ch04")["missing 1/sqrt(d_k)"]
    answers["self_attention"] = mistake
    nb = nbformat.read(ZH_NOTEBOOK, as_version=4)
    assert nb.metadata["attention_course"]["language"] == "zh_CN"
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = answers[grade_id]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()

    def error_of(grade_id):
        cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)
        return next((o for o in cell.get("outputs", []) if o.get("output_type") == "error"), None)

    failed = [g for g in ("test_causal_mask", "test_sinusoidal_positional_encoding", "test_is_permutation_equivariant")
              if error_of(g)]
    assert not failed, [(g, error_of(g)["evalue"]) for g in failed]
    error = error_of(check_id)
    assert error and error["ename"] == "AssertionError", error
    shown = error["evalue"]
    assert chinese_text(shown) and "sqrt(d_k)" in shown, shown
    # what the check says in English, in Chinese: the catalogue's translation of each piece
    english = ExerciseNotebook(notebook("ch04")).run(check_id, mistake)
    assert english == "wrong attention weights: you forgot to divide the scores by sqrt(d_k)", english
    assert shown == (messages.translate("wrong attention weights: ", "zh_CN")
                     + messages.translate("you forgot to divide the scores by sqrt(d_k)", "zh_CN")), shown


# ---------------------------------------------------------------------------- the grader, a Chinese submission
def chinese_submission(answers: dict[str, str]) -> dict:
    """The Chinese Chapter 3 notebook (zh_CN/notebooks/) with its solution cells answered."""
    nb = json.loads((ROOT / "zh_CN" / "notebooks" / "ch03_general_form" / "general_form.ipynb").read_text("utf-8"))
    code = {**solution_code(), **answers}
    for cell in nb["cells"]:
        grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if grade_id in code:
            cell["source"] = code[grade_id]
    return nb


@pytest.fixture(scope="module")
def graded_chinese(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("grading_zh")
    course = course_copy(tmp)
    subs = tmp / "submissions"
    cases = {"zhok_general_form.ipynb": chinese_submission({}),
             "zhmistake_general_form.ipynb": chinese_submission(
                 {"scaled_dot_product_score": MISTAKES["scaled_dot_product_score"]})}
    for name, nb in cases.items():
        write(subs, name, nb)
    out = tmp / "out"
    proc = subprocess.run([sys.executable, "-m", "attention_course.grading", str(subs), "--out", str(out),
                           "--course", str(course), "--cell-timeout", "8", "--total-timeout", "120",
                           "--memory-mb", "1536", "--jobs", "2"], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    with open(out / "gradebook.csv", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        rows = {row["file"]: row for row in reader}
        header = reader.fieldnames
    return {"out": out, "rows": rows, "header": header}


@pytest.mark.slow
def test_a_chinese_submission_is_graded_with_an_english_gradebook(graded_chinese):
    rows, header = graded_chinese["rows"], graded_chinese["header"]
    assert header[:4] == ["student", "chapter", "file", "language"]
    assert all(not chinese_text(name) for name in header), header
    ok, mistake = rows["zhok_general_form.ipynb"], rows["zhmistake_general_form.ipynb"]
    for row in (ok, mistake):
        assert row["chapter"] == "ch03_general_form" and row["status"] == "ok" and row["language"] == "zh_CN", row
        assert not any(chinese_text(value) for value in row.values()), row  # notes included: English
    assert float(ok["total"]) == float(ok["max"]) > 0, ok
    assert float(mistake["total"]) < float(mistake["max"]), mistake


@pytest.mark.slow
def test_a_chinese_submission_gets_chinese_feedback(graded_chinese):
    from attention_course.grading import messages

    pages = {p.parent.name: html.unescape(p.read_text(encoding="utf-8"))
             for p in (graded_chinese["out"] / "feedback").rglob("*.html")}
    assert len(pages) == 2, sorted(pages)
    for page in pages.values():
        assert "lang='zh-CN'" in page or 'lang="zh-CN"' in page
        assert chinese_text(page)
    mistake = (graded_chinese["out"] / "feedback" / "zhmistake" / "ch03_general_form.html").read_text(encoding="utf-8")
    mistake = html.unescape(mistake)
    # the public check's own message, in Chinese: the one the wrong-answer table pins in English
    assert messages.translate("you divided by d_k = 9; divide by its square root, 3", "zh_CN") in mistake

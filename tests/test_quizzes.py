"""Self-check questions and "predict first" prompts: well-formed in both languages, placed where
they belong (the self-check before each Summary, a prompt just before the cell that reveals its
answer), and served with no CDN.

Fast checks without a browser; tests/browser/test_self_checks.py answers them in Chromium.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from unittest import mock

import pytest

from attention_course.views import display

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "book").glob("0*.ipynb"))


@pytest.mark.parametrize("notebook", CHAPTERS, ids=lambda p: p.name)
def test_questions_are_well_formed(notebook):
    chapter = "ch" + notebook.name[:2]
    questions = display.load_quiz(chapter)
    assert 3 <= len(questions) <= 6, f"{chapter}: {len(questions)} questions"
    for q in questions:
        assert q["type"] == "multiple_choice" and q["question"].strip()
        assert sum(a["correct"] for a in q["answers"]) == 1, q["question"]
        assert len(q["answers"]) >= 3, q["question"]
        for a in q["answers"]:
            assert a["answer"].strip() and len(a["feedback"]) > 20, (q["question"], a)
            # jupyterquiz hands $...$ to MathJax; the questions use plain text instead.
            assert "$" not in a["answer"] + a["feedback"] + q["question"]


@pytest.mark.parametrize("notebook", CHAPTERS, ids=lambda p: p.name)
def test_self_check_comes_just_before_the_summary(notebook):
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    sources = ["".join(c["source"]) for c in cells]
    quiz = [i for i, s in enumerate(sources) if f'self_check("ch{notebook.name[:2]}")' in s]
    assert len(quiz) == 1, "one self-check cell per chapter"
    assert "## Self-check" in sources[quiz[0] - 1]
    assert sources[quiz[0] + 1].startswith("## Summary")


def test_quiz_script_loads_nothing_from_the_network():
    script = display._quiz_script(display.load_quiz("ch03"), "selfcheckch03")
    assert "https://" not in script and "cdn." not in script
    assert "MathJax.typesetPromise" in script  # the page's own MathJax typesets the quiz
    assert 'setAttribute("aria-live", "polite")' in script


def test_missing_quiz_is_a_clear_error():
    with pytest.raises(FileNotFoundError, match="ch99"):
        display.load_quiz("ch99")


@pytest.mark.parametrize("notebook", CHAPTERS, ids=lambda p: p.name)
def test_chinese_questions_translate_the_english_ones(notebook):
    """Same questions, same answers in the same order, the same one correct; all in Chinese."""
    chapter = "ch" + notebook.name[:2]
    english, chinese = display.load_quiz(chapter), display.load_quiz(chapter, "zh_CN")
    assert len(chinese) == len(english), chapter
    for en, zh in zip(english, chinese):
        assert zh["type"] == en["type"]
        assert [a["correct"] for a in zh["answers"]] == [a["correct"] for a in en["answers"]], en["question"]
        texts = [zh["question"]] + [a["answer"] for a in zh["answers"]] + [a["feedback"] for a in zh["answers"]]
        for text in texts[:1] + texts[len(zh["answers"]) + 1:]:  # the question and every explanation
            assert any("\u4e00" <= ch <= "\u9fff" for ch in text), f"{chapter}: not Chinese: {text!r}"
        assert "$" not in "".join(texts)
        assert len({a["answer"] for a in zh["answers"]}) == len(zh["answers"]), f"{chapter}: two answers alike"


# --- "Predict first" prompts: one question just before the cell that reveals its answer ----------

PREDICT_CALL = re.compile(r'from attention_course\.views\.display import predict\n\npredict\("(ch\d\d)", "([a-z][a-z0-9_]*)"\)')
PREDICT_CHAPTERS = ["ch" + p.name[:2] for p in CHAPTERS]  # issue 27: at least three prompts in every chapter


def _predict_cells(notebook: Path) -> tuple[list[dict], list[tuple[int, str, str]]]:
    """The notebook's cells, and (index, chapter, key) of every cell that calls ``predict``."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    found = []
    for i, cell in enumerate(cells):
        source = "".join(cell["source"])
        if "predict(" in source and "display import" in source:
            match = PREDICT_CALL.fullmatch(source.strip())
            assert cell["cell_type"] == "code" and match, f"{notebook.name}, cell {i}: not just the predict call:\n{source}"
            found.append((i, match.group(1), match.group(2)))
    return cells, found


def _chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def test_predictions_have_both_languages():
    """Same chapters, same prompt ids in the same order, same answers in the same order, the same one
    correct; well-formed jupyterquiz questions whose text is safe as HTML."""
    english = sorted(p.stem for p in display.PREDICT_DIR.glob("*.json"))
    assert english == sorted(p.stem for p in (display.PREDICT_DIR / "zh_CN").glob("*.json"))
    assert set(PREDICT_CHAPTERS) <= set(english)
    for chapter in english:
        en, zh = display.load_predictions(chapter), display.load_predictions(chapter, "zh_CN")
        assert list(zh) == list(en), f"{chapter}: the Chinese prompt ids differ from the English ones"
        for key in en:
            assert re.fullmatch(r"[a-z][a-z0-9_]*", key), f"{chapter}: {key!r} cannot be part of a div id"
            for language, q in (("en", en[key]), ("zh_CN", zh[key])):
                where = f"{chapter}/{key} ({language})"
                assert q["type"] == "multiple_choice" and q["question"].strip(), where
                assert len(q["answers"]) >= 3 and sum(a["correct"] for a in q["answers"]) == 1, where
                texts = [q["question"]] + [a["answer"] for a in q["answers"]] + [a["feedback"] for a in q["answers"]]
                # jupyterquiz inserts the texts as HTML and hands $...$ to MathJax: plain text only.
                assert not any(ch in text for text in texts for ch in "$<>&"), where
                assert all(a["answer"].strip() and len(a["feedback"]) > 20 for a in q["answers"]), where
                answers = [a["answer"].lower() for a in q["answers"]]
                # the browser test picks an answer by its text: no answer may contain another
                assert not any(a in b for a in answers for b in answers if a is not b), where
                if language == "zh_CN":
                    assert all(_chinese(t) for t in [q["question"]] + [a["feedback"] for a in q["answers"]]), where
            assert [a["correct"] for a in zh[key]["answers"]] == [a["correct"] for a in en[key]["answers"]], key
            right = next(a for a in en[key]["answers"] if a["correct"])
            assert right["feedback"].startswith("Right."), f"{chapter}/{key}: say it is right, then what to look for"


@pytest.mark.parametrize("notebook", CHAPTERS, ids=lambda p: p.name)
def test_every_prompt_is_asked_once_in_order(notebook):
    """Every prompt a chapter asks exists, every prompt defined is asked, in the order of the file
    (its place in the file numbers it: "Predict first (2 of 3)")."""
    chapter = "ch" + notebook.name[:2]
    _, found = _predict_cells(notebook)
    assert all(c == chapter for _, c, _ in found), f"{notebook.name} asks another chapter's prompts"
    asked = [key for _, _, key in found]
    defined = list(display.load_predictions(chapter)) if (display.PREDICT_DIR / f"{chapter}.json").is_file() else []
    assert asked == defined, f"{chapter}: asked {asked}, defined {defined}"
    if chapter in PREDICT_CHAPTERS:
        assert len(asked) >= 3, f"{chapter}: {len(asked)} predict prompts, issue 27 asks for three"


@pytest.mark.parametrize("notebook", CHAPTERS, ids=lambda p: p.name)
def test_each_prompt_comes_just_before_its_reveal(notebook):
    """A predict cell shows only its question (remove-input), sits before the Self-check section,
    and the next cell is the code cell whose output reveals the answer (not hidden from the reader)."""
    cells, found = _predict_cells(notebook)
    sources = ["".join(c["source"]) for c in cells]
    self_check_at = next(i for i, s in enumerate(sources) if re.search(r"^## Self-check", s, re.M))
    for i, _, key in found:
        tags = cells[i]["metadata"].get("tags", [])
        assert tags == ["remove-input"], f"{notebook.name}, {key}: tags {tags}"
        assert i < self_check_at, f"{notebook.name}, {key}: inside the Self-check section"
        reveal = cells[i + 1]
        assert reveal["cell_type"] == "code", f"{notebook.name}, {key}: the next cell is not code"
        assert "predict(" not in "".join(reveal["source"]), f"{notebook.name}, {key}: two prompts in a row"
        hidden = {"remove-cell", "remove-output", "hide-output"} & set(reveal["metadata"].get("tags", []))
        assert not hidden, f"{notebook.name}, {key}: the reveal's output is hidden ({hidden})"


def _shown(call) -> list:
    """What ``call()`` displays, as IPython display objects."""
    shown = []
    with mock.patch("IPython.display.display", shown.append):
        call()
    return shown


def test_predict_shows_one_question_in_each_language():
    shown = _shown(lambda: display.predict("ch03", "sqrt_dk"))
    assert [type(o).__name__ for o in shown] == ["HTML", "Javascript", "HTML", "Javascript"]
    english, chinese = shown[0].data, shown[2].data
    keys = list(display.load_predictions("ch03"))
    number = keys.index("sqrt_dk") + 1
    assert f'lang="en" aria-label="Predict first ({number} of {len(keys)}), ch03"' in english
    assert 'id="predictch03_sqrt_dk"' in english and 'data-numquestions="1"' in english
    assert 'lang="zh-CN" aria-label="先预测' in chinese and 'id="predictch03_sqrt_dk_zh_CN"' in chinese
    assert 'class="course-predict-lead">Predict first' in english and 'class="course-predict-lead">先预测' in chinese
    question = display.load_predictions("ch03")["sqrt_dk"]["question"]
    assert json.dumps(question) in shown[1].data and "https://" not in shown[1].data
    assert 'setAttribute("aria-live", "polite")' in shown[3].data


def test_predict_ids_are_unique_and_apart_from_the_self_check():
    """Several prompts and the self-check on one page: no two divs share an id, and none is the
    self-check's (the browser test finds that quiz by #selfcheck<chapter>)."""
    for chapter in PREDICT_CHAPTERS:
        ids = []
        for key in display.load_predictions(chapter):
            ids += re.findall(r'<div id="([^"]+)"', "".join(o.data for o in _shown(lambda: display.predict(chapter, key))
                                                            if type(o).__name__ == "HTML"))
        ids += re.findall(r'<div id="([^"]+)"', "".join(o.data for o in _shown(lambda: display.self_check(chapter))
                                                        if type(o).__name__ == "HTML"))
        assert len(ids) == len(set(ids)), ids
        assert ids[-2:] == [f"selfcheck{chapter}", f"selfcheck{chapter}_zh_CN"]
        assert all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", i) for i in ids), "jupyterquiz uses the id as a JS name"


def test_predict_errors_name_what_exists():
    with pytest.raises(FileNotFoundError, match=r"ch99.*chapters with prompts: .*ch02"):
        display.predict("ch99", "length")
    keys = ", ".join(display.load_predictions("ch02"))
    with pytest.raises(KeyError, match=r"'nope'.*available: " + re.escape(keys)):
        display.predict("ch02", "nope")


def test_a_chinese_notebook_shows_the_chinese_questions_alone(monkeypatch):
    """In Jupyter or Colab a Chinese notebook (set_language("zh_CN")) shows only the Chinese quiz, unhidden."""
    from IPython.core.interactiveshell import InteractiveShell

    from attention_course.views import display

    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(getattr(obj, "data", "")))
    InteractiveShell.instance()
    monkeypatch.setenv("ATTENTION_COURSE_LANGUAGE", "zh_CN")
    display.self_check("ch01")
    html = "".join(s for s in shown if isinstance(s, str))
    regions = re.findall(r'<div role="region" lang="([^"]+)"', html)
    assert regions == ["zh-CN"] and '.course-self-check[lang="en"]' not in html
    shown.clear()
    monkeypatch.setenv("ATTENTION_COURSE_LANGUAGE", "en")
    display.self_check("ch01")
    html = "".join(s for s in shown if isinstance(s, str))
    assert re.findall(r'<div role="region" lang="([^"]+)"', html) == ["en", "zh-CN"]
    assert '.course-self-check[lang="en"]' in html  # the page's language picks

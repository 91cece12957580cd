"""Self-check questions: well-formed, placed before each Summary, and served with no CDN.

Fast checks without a browser; tests/browser/test_self_checks.py answers them in Chromium.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from attention_course import display

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

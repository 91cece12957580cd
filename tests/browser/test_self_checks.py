"""The self-check questions of every chapter work in the static book, offline.

For each chapter page, in both editions: the quiz in the page's language is on the page before
the Summary (the other language's is hidden), has as many questions as its JSON file, and
answering one question right and one wrong (by keyboard for one of them) shows the matching
explanation, with no request beyond localhost and no console error. The chapter pages are the
ones test_rendered_book.py has open (conftest's ``loaded`` fixture): the questions are answered after
that module's checks of the page (``changes_page``: the answers are clicked last). The same holds
for the "predict first" prompts placed before the cells that reveal their answers (every chapter).
"""
from __future__ import annotations

import json

import pytest

from conftest import CHINESE, ROOT, one_per_page

QUIZ_DIR = ROOT / "attention_course" / "views" / "quizzes"
CHAPTERS = {
    "ch01": "book/01_origin.html",
    "ch02": "book/02_bahdanau_attention.html",
    "ch03": "book/03_general_form.html",
    "ch04": "book/04_self_attention.html",
    "ch05": "book/05_multi_head_attention.html",
    "ch06": "book/06_attention_and_llms.html",
    "ch07": "book/07_transformer_on_dates.html",
    "ch08": "book/08_todays_llms.html",
}
CHAPTER_OF = {edition + path: chapter for chapter, path in CHAPTERS.items() for edition in ("", CHINESE)}


def test_every_chapter_has_questions():
    assert sorted(p.stem for p in QUIZ_DIR.glob("ch*.json")) == sorted(CHAPTERS)
    assert sorted(p.stem for p in (QUIZ_DIR / "zh_CN").glob("ch*.json")) == sorted(CHAPTERS)


def _sections(page) -> list[str]:
    return page.eval_on_selector_all("main section:has(> h2)", "ss => ss.map(s => s.id)")


def answer_and_check(page, quiz, question: dict, right: bool, where: str = "") -> None:
    """Answer one jupyterquiz question and check the explanation it shows.

    The right answer is chosen with the mouse; a wrong one from the keyboard: focus the radio button of
    its label (each answer's accessible name is its text), then Space.
    """
    answer = next(a for a in question["answers"] if a["correct"] == right)
    if right:
        quiz.locator("label.MCButton", has_text=answer["answer"]).click()
    else:
        quiz.get_by_role("radio", name=answer["answer"]).focus()
        page.keyboard.press("Space")
    feedback = quiz.locator(".Feedback")
    assert feedback.inner_text().strip() == answer["feedback"], where
    assert ("correct" if right else "incorrect") in feedback.get_attribute("class").split(), where
    assert feedback.get_attribute("aria-live") == "polite", where


@pytest.mark.changes_page
@one_per_page(sorted(CHAPTER_OF))
def test_questions_give_feedback_offline(loaded):
    page, page_path = loaded.page, loaded.path
    chapter, chinese = CHAPTER_OF[page_path], page_path.startswith(CHINESE)
    folder = QUIZ_DIR / "zh_CN" if chinese else QUIZ_DIR
    questions = json.loads((folder / f"{chapter}.json").read_text(encoding="utf-8"))

    shown, hidden = f"#selfcheck{chapter}_zh_CN", f"#selfcheck{chapter}"
    if not chinese:
        shown, hidden = hidden, shown
    quiz = page.locator(shown)
    quiz.wait_for(state="visible", timeout=15000)
    assert quiz.locator(".Quiz").count() == len(questions)
    assert page.locator(hidden).is_hidden(), f"{page_path}: the other language's questions are visible"

    # The section comes just before the Summary (ids come from the English titles in both editions).
    sections = _sections(page)
    here = quiz.evaluate("q => q.closest('main section:has(> h2)').id")
    assert here == "self-check" and sections[sections.index(here) + 1] == "summary", (here, sections)

    answer_and_check(page, quiz.locator(".Quiz").nth(0), questions[0], right=True)  # question 1, by mouse
    answer_and_check(page, quiz.locator(".Quiz").nth(1), questions[1], right=False)  # question 2, by keyboard

    assert not page.blocked, f"requests left localhost: {page.blocked}"
    assert not page.console_errors, page.console_errors


def test_quiz_readable_in_dark_mode(offline_page, book_url):
    """In the theme's dark mode the answers keep dark text on their light buttons."""
    page = offline_page
    page.goto(f"{book_url}/{CHAPTERS['ch03']}", wait_until="load")
    page.evaluate("() => document.documentElement.setAttribute('data-theme', 'dark')")
    button = page.locator("#selfcheckch03 label.MCButton").first
    button.wait_for(state="attached", timeout=15000)
    colours = button.evaluate(
        "el => [getComputedStyle(el).color, getComputedStyle(el).backgroundColor]")
    assert colours == ["rgb(31, 31, 31)", "rgb(247, 247, 247)"], colours


PREDICT_DIR = QUIZ_DIR / "predict"
PREDICT_PAGES = sorted(path for path, chapter in CHAPTER_OF.items() if (PREDICT_DIR / f"{chapter}.json").is_file())


def test_predict_prompts_cover_every_chapter():
    """Issue 27: every chapter page asks predict-first prompts, in both editions."""
    assert PREDICT_PAGES == sorted(CHAPTER_OF)


@pytest.mark.changes_page
@one_per_page(PREDICT_PAGES)
def test_predict_prompts_give_feedback_offline(loaded):
    """Each "predict first" prompt of the page (attention_course.views.display.predict) shows its question in
    the page's language under its visible lead line, the other language's copy hidden, outside the
    Self-check section; prompts in turn are answered right with the mouse and wrong from the keyboard,
    and each shows the matching explanation."""
    page, page_path = loaded.page, loaded.path
    chapter, chinese = CHAPTER_OF[page_path], page_path.startswith(CHINESE)
    folder = PREDICT_DIR / "zh_CN" if chinese else PREDICT_DIR
    prompts = json.loads((folder / f"{chapter}.json").read_text(encoding="utf-8"))
    assert len(prompts) >= 3, f"{chapter}: {len(prompts)} prompts"

    for number, (key, question) in enumerate(prompts.items()):
        shown, hidden = f"#predict{chapter}_{key}_zh_CN", f"#predict{chapter}_{key}"
        if not chinese:
            shown, hidden = hidden, shown
        quiz = page.locator(shown)
        quiz.wait_for(state="visible", timeout=15000)
        assert page.locator(hidden).is_hidden(), f"{page_path}, {key}: the other language's prompt is visible"
        assert quiz.locator(".Quiz").count() == 1, f"{page_path}, {key}"
        assert question["question"] in " ".join(quiz.inner_text().split()), f"{page_path}, {key}"

        region = page.locator(f'[role="region"]:has({shown})')
        n, count = number + 1, len(prompts)
        expected = f"先预测（第 {n} 题，共 {count} 题）, {chapter}" if chinese else f"Predict first ({n} of {count}), {chapter}"
        assert region.get_attribute("aria-label") == expected
        lead = region.locator(".course-predict-lead").inner_text()
        assert lead.startswith("先预测" if chinese else "Predict first"), lead
        here = quiz.evaluate("q => q.closest('main section:has(> h2)').id")
        assert here != "self-check", f"{page_path}, {key}: the prompt is in the Self-check section"

        answer_and_check(page, quiz, question, right=number % 2 == 0, where=f"{page_path}, {key}")

    assert not page.blocked, f"requests left localhost: {page.blocked}"
    assert not page.console_errors, page.console_errors

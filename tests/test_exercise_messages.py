"""Typical wrong answers, one mistake each: the PUBLIC check rejects it and its message names the mistake.

A student sees only the public part of a check cell (the hidden tests are cut off in the release),
so every wrong answer here runs against that part alone: it must raise ``AssertionError`` (never a
raw framework error), and the message must contain the words that name the mistake. The wrong
answers are the chapters' tables in ``tests/wrong_answers/`` (``{name: Wrong(check, source, words)}``),
which the mutant tests (``tests/test_chNN_exercises.py``) run against the whole check cells: here
run the entries that have ``words`` (all expected in the message, case-insensitive; ``()`` only asks
that the public part reject the answer).

The same entries, and Chapters 7 and 8's tables (in their test files), run once more in Chinese
(``ATTENTION_COURSE_LANGUAGE=zh_CN``, what the Chinese notebooks' setup cell sets): the message must
be in Chinese and be the catalogue's translation of the English one, piece by piece, so that it names
the same mistake.
"""
from __future__ import annotations

import re
import textwrap

import pytest

import test_ch07_exercises as ch07
import test_ch08_exercises as ch08
from course_tools import ExerciseNotebook
from wrong_answers import CHAPTERS, notebook, table

EXERCISES = {chapter: ExerciseNotebook(notebook(chapter)) for chapter in CHAPTERS}
# the wrong answers the public part must reject (with words, or () for "rejected" alone)
WRONG = {chapter: {name: wrong for name, wrong in table(chapter).items() if wrong.words is not None}
         for chapter in CHAPTERS}
# ...and those whose message must name the mistake
NAMED = {chapter: {name: wrong for name, wrong in wrong_answers.items() if wrong.words}
         for chapter, wrong_answers in WRONG.items()}


# ---------------------------------------------------------------------------- the tests
CASES = [(chapter, name) for chapter, wrong in WRONG.items() for name in wrong]


def public_check_message(chapter: str, check_id: str, source: str) -> str:
    """Run the public part of a check after the wrong answer; return the AssertionError's message."""
    exercise = EXERCISES[chapter]
    ns = exercise.namespace()
    exec(compile(textwrap.dedent(source), "<wrong answer>", "exec"), ns)
    try:
        exec(compile(exercise.public(check_id), check_id, "exec"), ns)
    except AssertionError as error:
        return str(error)
    except Exception as error:  # a raw error reached the student
        raise AssertionError(f"{check_id} let a raw {type(error).__name__} through: {error}") from None
    raise AssertionError(f"the public part of {check_id} passed this wrong answer")


@pytest.mark.parametrize("chapter,name", CASES, ids=[f"{c}:{n}" for c, n in CASES])
def test_public_check_names_the_mistake(chapter, name):
    check_id, source, words = WRONG[chapter][name]
    message = public_check_message(chapter, check_id, source)
    missing = [w for w in words if w.lower() not in message.lower()]
    assert not missing, f"the message does not name the mistake (missing {missing}):\n{message}"


@pytest.mark.parametrize("chapter", sorted(WRONG))
def test_at_least_eight_wrong_answers_per_chapter(chapter):
    assert len(NAMED[chapter]) >= 8


@pytest.mark.parametrize("chapter", sorted(WRONG))
def test_every_check_rejects_a_named_wrong_answer(chapter):
    """Every check cell of the chapter appears here: none of them is a check that cannot fail."""
    assert {check_id for check_id, _, _ in NAMED[chapter].values()} == set(EXERCISES[chapter].graded)


@pytest.mark.parametrize("chapter", sorted(WRONG))
def test_the_public_checks_pass_the_solution(chapter):
    exercise = EXERCISES[chapter]
    ns = exercise.namespace()
    for check_id in exercise.graded:
        exec(compile(exercise.public(check_id), check_id, "exec"), ns)


# ---------------------------------------------------------------------------- the same, in Chinese
def in_both_languages(monkeypatch, run) -> tuple[str, str, list]:
    """``run()``'s message in English and in Chinese, and the pairs ``(English, Chinese)`` of every message
    the checks translated on the way (:func:`attention_course.grading.messages.recording`)."""
    from attention_course.env import seed_everything
    from attention_course.grading import messages

    monkeypatch.delenv("ATTENTION_COURSE_LANGUAGE", raising=False)
    seed_everything(0)  # the same random data in both runs (some wrong answers draw their own)
    with messages.recording() as english_calls:
        english = run()
    monkeypatch.setenv("ATTENTION_COURSE_LANGUAGE", "zh_CN")
    seed_everything(0)
    with messages.recording() as chinese_calls:
        chinese = run()
    # the k-th translation of a message in one run with its k-th in the other (a module imported, or
    # a table built, during the first run only translates in that run)
    chinese_texts: dict = {}
    for msgid, _, text in chinese_calls:
        chinese_texts.setdefault(msgid, []).append(text)
    seen: dict = {}
    pairs = []
    for msgid, _, text in english_calls:
        k = seen[msgid] = seen.get(msgid, -1) + 1
        if k < len(chinese_texts.get(msgid, ())):
            pairs.append((text, chinese_texts[msgid][k]))
    return english, chinese, pairs


def assert_translated(english: str, chinese: str, pairs: list) -> None:
    """``chinese`` is ``english`` with every translated message in it replaced by its translation (the
    outermost first: a message's text holds the messages filled into it), and holds Chinese."""
    assert english, "the public check passed this wrong answer"
    assert re.search(r"[\u4e00-\u9fff]", chinese), f"no Chinese in the message:\n{chinese}"
    expected = english
    for en, zh in sorted(set(pairs), key=lambda pair: -len(pair[0])):  # whole messages, not inside a name
        if en.strip():
            before = r"(?<![A-Za-z0-9_])" if re.match(r"\w", en) else ""
            after = r"(?![A-Za-z0-9_])" if re.search(r"\w$", en) else ""
            expected = re.sub(before + re.escape(en) + after, lambda _, zh=zh: zh, expected)
    assert chinese == expected, f"English:\n{english}\nChinese:\n{chinese}\nexpected:\n{expected}"


NAMED_CASES = [(chapter, name) for chapter, named in NAMED.items() for name in named]


@pytest.mark.parametrize("chapter,name", NAMED_CASES, ids=[f"{c}:{n}" for c, n in NAMED_CASES])
def test_public_check_names_the_mistake_in_chinese(monkeypatch, chapter, name):
    check_id, source, _ = NAMED[chapter][name]
    assert_translated(*in_both_languages(monkeypatch, lambda: public_check_message(chapter, check_id, source)))


LATER = [("ch07", check_id, name) for check_id, name in ch07.CASES] + \
        [("ch08", exercise, name) for exercise, name in ch08.CASES]


@pytest.mark.parametrize("chapter,exercise,name", LATER, ids=[f"{c}:{e}:{n}" for c, e, n in LATER])
def test_chapter_7_and_8_checks_name_the_mistake_in_chinese(monkeypatch, chapter, exercise, name):
    if chapter == "ch07":
        (source, _), check_id, run = ch07.WRONG[exercise][name], exercise, ch07.run
    else:
        (check_id, source, _), run = ch08.WRONG[exercise][name], ch08.run
    assert_translated(*in_both_languages(monkeypatch, lambda: run(check_id, source)))


# ---------------------------------------------------------------------------- the shared helpers
def test_run_turns_errors_into_sentences_but_lets_the_stub_through():
    import numpy as np

    from attention_course.grading import checks

    def crashes(x):
        return np.ones(3) @ np.ones(4)

    with pytest.raises(AssertionError, match=r"^f stopped with an error\. use K\.T \[Python said: ValueError"):
        checks.run("f", crashes, 1, expect="use K.T")

    def stub(x):
        raise NotImplementedError()

    with pytest.raises(NotImplementedError):
        checks.run("f", stub, 1)


def test_mask_mistake_names_each_masking_mistake():
    import torch

    from attention_course.grading import checks

    allowed = torch.ones(3, 3, dtype=torch.bool).tril()
    scores = torch.randn(3, 3)
    right = torch.softmax(scores.masked_fill(~allowed, float("-inf")), -1)
    assert checks.mask_mistake(right, allowed) is None
    assert "inverted" in checks.mask_mistake(torch.softmax(scores.masked_fill(allowed, float("-inf")), -1), allowed)
    assert "-inf before the softmax" in checks.mask_mistake(torch.softmax(scores.masked_fill(~allowed, 0.0), -1), allowed)
    assert "AFTER" in checks.mask_mistake(torch.softmax(scores, -1) * allowed, allowed)
    assert "cannot be broadcast" in checks.mask_mistake(torch.ones(2, 2), allowed)


def test_earlier_blames_the_earlier_function():
    from attention_course.grading import checks

    checks.earlier("double", lambda x: 2 * x, lambda x: x + x, 3.0)
    with pytest.raises(AssertionError, match="fix double first"):
        checks.earlier("double", lambda x: 3 * x, lambda x: x + x, 3.0, later="quadruple")

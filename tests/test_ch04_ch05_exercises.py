"""The exercise checks of Chapters 4 and 5 can fail: each typical mistake is caught.

The solution cells and the check cells (public and hidden tests) are read from the nbgrader
source notebooks. The correct solution must pass every check; each wrong implementation
(a "mutant", from the chapters' tables of wrong answers in tests/wrong_answers/ch04.py and ch05.py)
replaces one function and must fail its check (public and hidden tests) with an AssertionError, the
way a student would see it. test_exercise_messages.py runs the same tables against the public part.
"""
import textwrap

import pytest

from course_tools import ExerciseNotebook
from wrong_answers import notebook, table
from wrong_answers.ch04 import attention, equivariant
from wrong_answers.ch05 import mha

CHAPTERS = ("ch04", "ch05")
EXERCISES = {chapter: ExerciseNotebook(notebook(chapter)) for chapter in CHAPTERS}
MUTANTS = {chapter: table(chapter) for chapter in CHAPTERS}


def failing_checks(chapter, source=""):
    """Run every check cell after ``source`` (a student's answer); return the ids of the checks that fail."""
    exercise = EXERCISES[chapter]
    failed = []
    for grade_id in exercise.graded:
        ns = exercise.namespace()
        exec(compile(textwrap.dedent(source), "<wrong answer>", "exec"), ns)
        try:
            exec(compile(exercise.sources[grade_id], grade_id, "exec"), ns)
        except Exception:  # an assertion, or a crash that the check lets through
            failed.append(grade_id)
    return failed


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_solution_passes_every_check(chapter):
    assert failing_checks(chapter) == []


@pytest.mark.parametrize("chapter,template", [("ch04", attention()), ("ch04", equivariant()), ("ch05", mha())],
                         ids=["self_attention", "is_permutation_equivariant", "multi_head_attention"])
def test_the_templates_are_correct_when_not_mutated(chapter, template):
    assert failing_checks(chapter, template) == []


def check_catches(chapter, mutant):
    check_id, source, _ = MUTANTS[chapter][mutant]
    ns = EXERCISES[chapter].namespace()
    exec(compile(textwrap.dedent(source), "<wrong answer>", "exec"), ns)
    with pytest.raises(AssertionError):
        exec(compile(EXERCISES[chapter].sources[check_id], check_id, "exec"), ns)


@pytest.mark.parametrize("mutant", list(MUTANTS["ch04"]))
def test_ch04_checks_catch(mutant):
    check_catches("ch04", mutant)


@pytest.mark.parametrize("mutant", list(MUTANTS["ch05"]))
def test_ch05_checks_catch(mutant):
    check_catches("ch05", mutant)


def test_mask_mutants_fail_the_mask_check():
    """The mask mistakes must be caught by the mask check itself (with its message), not by luck."""
    for name in ("mask filled with 0", "mask applied after the softmax", "mask inverted"):
        assert MUTANTS["ch05"][name].check == "test_multi_head_attention_mask", name
        assert "test_multi_head_attention_mask" in failing_checks("ch05", MUTANTS["ch05"][name].source), name
    for name in ("mask filled with 0", "mask applied after the softmax"):
        assert "test_self_attention" in failing_checks("ch04", MUTANTS["ch04"][name].source), name

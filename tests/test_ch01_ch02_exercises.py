"""The checks of exercises 1 and 2 fail on the typical mistakes (mutants) and pass the solutions.

Each check cell (public and hidden tests) of the nbgrader source is run against the
solution and against wrong implementations: the solution must pass, each mutant must
raise an AssertionError, the way a student would see it. The mutants are the chapters'
tables of wrong answers (tests/wrong_answers/ch01.py, ch02.py), which
test_exercise_messages.py runs against the public part of each check.
"""
import textwrap

import pytest

from course_tools import ALLOWED, ExerciseNotebook, course_imports
from wrong_answers import notebook, table
from wrong_answers.ch02 import BIDIR

NOTEBOOKS = {chapter: notebook(chapter) for chapter in ("ch01", "ch02")}
EXERCISES = {chapter: ExerciseNotebook(path) for chapter, path in NOTEBOOKS.items()}
MUTANTS = {chapter: table(chapter) for chapter in NOTEBOOKS}


def namespace(chapter):
    """Run the notebook's imports and solution cells (not the setup cell or the checks)."""
    return EXERCISES[chapter].namespace()


def check(chapter, function):
    return EXERCISES[chapter].sources[f"test_{function}"]


CASES = [(ch, name) for ch, mutants in MUTANTS.items() for name in mutants]
CHECKS = [(ch, check_id[len("test_"):]) for ch in NOTEBOOKS for check_id in EXERCISES[ch].graded]


@pytest.mark.parametrize("chapter,function", CHECKS, ids=lambda x: x)
def test_solution_passes_its_check(chapter, function):
    ns = namespace(chapter)
    exec(check(chapter, function), ns)


def test_the_bidirectional_template_is_correct_when_not_mutated():
    ns = namespace("ch02")
    exec(textwrap.dedent(BIDIR.replace("BACKWARD", "backward_cell(x[:, t], h) * real[:, t, None]")), ns)
    exec(check("ch02", "bidirectional_annotations"), ns)


@pytest.mark.parametrize("chapter,mutant", CASES, ids=[f"{c}:{n}" for c, n in CASES])
def test_check_catches_the_mistake(chapter, mutant):
    check_id, source, _ = MUTANTS[chapter][mutant]
    ns = namespace(chapter)
    exec(textwrap.dedent(source), ns)
    with pytest.raises(AssertionError):
        exec(EXERCISES[chapter].sources[check_id], ns)


def test_every_exercise_has_mutants():
    for chapter in NOTEBOOKS:
        assert {wrong.check for wrong in MUTANTS[chapter].values()} == set(EXERCISES[chapter].graded)


def test_student_notebooks_do_not_import_the_answers():
    for chapter, path in NOTEBOOKS.items():
        assert course_imports(path) <= {*ALLOWED, "attention_course.grading.checks"}, chapter
        assert "seq2seq" not in path.read_text(), chapter

"""The checks of exercises 3 fail on the typical mistakes (mutants) and pass the solutions.

Each check cell (public and hidden tests) of the nbgrader source is run against the solution and
against wrong implementations: the solution must pass, each mutant must raise an AssertionError,
the way a student would see it. Every check cell has at least one mutant, including the three that
issue 17 found passing every public check (scores that work for one query only, pooling as a loop
returning a list). The mutants are the chapter's table of wrong answers (tests/wrong_answers/ch03.py).
"""
import textwrap

import pytest

from course_tools import ALLOWED, ExerciseNotebook, course_imports
from wrong_answers import notebook, table

NOTEBOOK = notebook("ch03")
EXERCISE = ExerciseNotebook(NOTEBOOK)

MUTANTS = table("ch03")
CASES = list(MUTANTS)
# What the hidden tests catch, the public part catches too (only varied data is left to them): the entries
# with words (None: only the hidden tests catch it) run against the public part in test_exercise_messages.py.


def namespace():
    return EXERCISE.namespace()


@pytest.mark.parametrize("check_id", EXERCISE.graded)
def test_solution_passes_its_check(check_id):
    exec(EXERCISE.sources[check_id], namespace())


@pytest.mark.parametrize("mutant", CASES, ids=[f"{MUTANTS[m].check[5:]}:{m}" for m in CASES])
def test_check_catches_the_mistake(mutant):
    check_id, source, _ = MUTANTS[mutant]
    ns = namespace()
    exec(textwrap.dedent(source), ns)
    with pytest.raises(AssertionError):
        exec(EXERCISE.sources[check_id], ns)


def test_every_check_has_mutants():
    assert {wrong.check for wrong in MUTANTS.values()} == set(EXERCISE.graded)


def test_only_varied_data_is_left_to_the_hidden_tests():
    """Every mutant but those named for the hidden tests is rejected by the public part too (words not None)."""
    assert [m for m, wrong in MUTANTS.items() if wrong.words is None] == [m for m in MUTANTS if "hidden tests" in m]


def test_student_notebook_does_not_import_the_answers():
    assert course_imports(NOTEBOOK) <= {*ALLOWED, "attention_course.grading.checks"}

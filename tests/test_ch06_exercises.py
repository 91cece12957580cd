"""The Chapter 6 exercise checks can fail: run them against typical wrong answers.

Each check cell of solutions/ch06_attention_and_llms/attention_and_llms.ipynb (public and hidden
tests) is executed after a deliberately wrong implementation (the chapter's table of wrong answers,
tests/wrong_answers/ch06.py, which test_exercise_messages.py runs against the public part); it must
raise AssertionError. With the reference solution every check must pass.
"""
import textwrap

import pytest

from course_tools import ALLOWED, ExerciseNotebook, course_imports
from wrong_answers import notebook, table
from wrong_answers.ch06 import GOOD_DRAW, cache_step, sampler, transformer

NOTEBOOK = notebook("ch06")
EXERCISE = ExerciseNotebook(NOTEBOOK)
CELLS = EXERCISE.sources  # grade_id -> source
MUTANTS = table("ch06")


def run_check(check_id: str, implementation: str) -> None:
    """Run the whole check cell after ``implementation`` (and the notebook's imports and solutions)."""
    namespace = EXERCISE.namespace()
    exec(textwrap.dedent(implementation), namespace)
    exec(CELLS[check_id], namespace)


def test_the_checks_pass_on_the_reference_solutions():
    run_check("test_transformer_block", CELLS["transformer_block"])
    run_check("test_causal_self_attention_with_cache", CELLS["causal_self_attention_with_cache"])
    run_check("test_sample_next_token", CELLS["sample_next_token"])


def test_the_mutant_scaffolding_is_correct_when_not_mutated():
    run_check("test_transformer_block", transformer())
    run_check("test_causal_self_attention_with_cache", cache_step())
    run_check("test_sample_next_token", sampler(f"if temperature == 0:\n            return logits.argmax(-1)\n"
                                                f"        return {GOOD_DRAW}[:, 0]"))


@pytest.mark.parametrize("name", list(MUTANTS), ids=[f"{MUTANTS[n].check[5:]}:{n}" for n in MUTANTS])
def test_check_catches(name):
    check_id, source, _ = MUTANTS[name]
    with pytest.raises(AssertionError):
        run_check(check_id, source)


def test_last_token_check_can_fail_on_a_pre_norm_block():
    """Issue 17: the check used to add +5 to every feature of the last token, which LayerNorm removes."""
    with pytest.raises(AssertionError, match="changing the LAST token"):
        run_check("test_transformer_block", MUTANTS["mask ignored (the LAST-token check on a pre-norm block, issue 17)"].source)


def test_temperature_zero_division_is_named():
    with pytest.raises(AssertionError, match="greedy"):
        run_check("test_sample_next_token", MUTANTS["temperature 0 divides by zero (issue 17: inf/nan error)"].source)


def test_student_notebook_does_not_import_the_answers():
    assert course_imports(NOTEBOOK) <= {*ALLOWED, "attention_course.grading.checks"}

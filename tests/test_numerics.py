"""The tolerance policy (attention_course.maths.numerics): what it accepts and what it refuses."""
import math

import numpy as np
import pytest
import torch

from attention_course.maths.numerics import assert_agree, machine_epsilon, relative_error, rounding_tolerance


def test_tolerance_grows_with_epsilon_and_the_square_root_of_the_reduction():
    assert machine_epsilon(torch.float32) == 2.0 ** -23 and machine_epsilon(np.float64) == 2.0 ** -52
    assert rounding_tolerance(torch.float32, 576) == pytest.approx(16 * 2.0 ** -23 * 24)
    assert rounding_tolerance(torch.float64, 4) == pytest.approx(2 * rounding_tolerance(torch.float64, 1))
    with pytest.raises(ValueError):
        rounding_tolerance(torch.float32, 0)
    with pytest.raises(TypeError):
        machine_epsilon(torch.int64)


def test_relative_error_is_scaled_by_the_largest_magnitude():
    a = torch.tensor([100.0, 0.001])
    assert relative_error(a + torch.tensor([0.0, 0.001]), a) == pytest.approx(0.001 / 100, rel=1e-3)
    assert relative_error(torch.zeros(3), torch.zeros(3)) == 0.0
    with pytest.raises(ValueError, match="shapes"):
        relative_error(torch.zeros(3), torch.zeros(4))


def test_another_summation_order_agrees_and_a_real_mistake_does_not():
    g = torch.Generator().manual_seed(0)
    x, W = torch.randn(64, 576, generator=g), torch.randn(576, 192, generator=g)
    ours = x @ W
    other = (x.double() @ W.double()).float()  # another rounding of the same sum
    error = assert_agree(ours, other, reduction=576, what="x @ W")
    assert error < rounding_tolerance(torch.float32, 576)
    with pytest.raises(AssertionError, match="x @ W: relative error"):
        assert_agree(ours, x @ (W * (1 + 1e-3)), reduction=576, what="x @ W")  # weights off by 0.1 %
    with pytest.raises(AssertionError, match="shapes differ"):
        assert_agree(ours, ours.T, reduction=576)


def test_float32_is_judged_at_float32_resolution_and_non_finite_values_must_match():
    x = torch.randn(10, dtype=torch.float64)
    assert_agree(x.float(), x)  # float32 rounding of a float64 value is within the float32 budget
    with pytest.raises(AssertionError, match="float64 rounding"):
        assert_agree(x + 1e-9, x)
    with pytest.raises(AssertionError, match="non-finite"):
        assert_agree(torch.tensor([1.0, math.nan]), torch.tensor([1.0, 1.0]))
    assert_agree(torch.tensor([1.0, -math.inf]), torch.tensor([1.0, -math.inf]))


def test_exercise_checks_compare_by_the_same_policy():
    """checks.close: a correct answer in another dtype or summation order passes; a real mistake does not."""
    from attention_course.grading import checks

    g = torch.Generator().manual_seed(1)
    x, W = torch.randn(6, 24, dtype=torch.float64, generator=g), torch.randn(24, 24, dtype=torch.float64, generator=g)
    reference = 30 * (x @ W)  # large values: an absolute 1e-6 would be below float32's resolution here
    student = 30 * (x.float() @ W.float())  # right, in float32
    assert (student.double() - reference).abs().max() > 1e-6 and checks.close(student, reference)
    assert not checks.close(student * (1 + 1e-3), reference)  # 0.1 % off: a real mistake
    assert not checks.close(student[:, :-1], reference)  # shapes differ
    assert not checks.close(torch.full((2,), math.nan), torch.full((2,), math.nan))
    assert checks.close(np.zeros(3), np.full(3, 1e-7)) and not checks.close(np.zeros(3), np.full(3, 1e-5))  # atol floor
    assert checks.close(np.array([1, 2]), [1, 2]) and not checks.close(np.array([1, 2]), [1, 3])  # integers

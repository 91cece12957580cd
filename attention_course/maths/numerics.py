"""When two floating-point computations of the same quantity agree: the course's tolerance policy.

Two correct implementations of the same formula rarely give bit-identical float32 results. They
sum in another order (another kernel, another CPU, another thread count, another library
version), and every addition rounds. The rounding error of a sum of ``n`` terms taken in another
order behaves like a random walk of ``n`` roundings, each at most half a unit in the last place
of the partial sums, so its typical size is about ``eps * sqrt(n) * scale`` (Higham, *Accuracy and
Stability of Numerical Algorithms*, 2nd ed., 2002, §2.8 and §4.2), where ``eps`` is the dtype's
machine epsilon (``torch.finfo(dtype).eps``: 1.19e-7 for float32, 2.2e-16 for float64) and
``scale`` the size of the values.

The policy, used by every test and chapter that compares two implementations:

* the **relative error** of ``actual`` against ``expected`` is ``max |actual - expected|``
  divided by the largest magnitude in either (:func:`relative_error`);
* two implementations **agree** when that relative error is at most
  ``ulps * eps(dtype) * sqrt(reduction)`` (:func:`rounding_tolerance`), where ``reduction`` is the
  length of the longest sum behind one output value (``d_model`` for a projection, the sequence
  length for attention's weighted sum) and ``ulps`` a budget of 16 rounding units by default, which
  leaves room for a chain of a few such sums;
* never an absolute tolerance that ignores the size of the values, and never exact equality
  between two kernels. Exact equality is right only for the *same* code run twice (determinism).

A negative control (a real mistake: a wrong RoPE base, LayerNorm for RMSNorm, a missing scale)
moves results by 1e-3 relative or more, orders of magnitude outside this tolerance.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["DEFAULT_ULPS", "machine_epsilon", "rounding_tolerance", "relative_error", "assert_agree"]

DEFAULT_ULPS = 16.0


def machine_epsilon(dtype) -> float:
    """Machine epsilon of a torch or NumPy floating dtype (float32: ``2**-23``, about 1.19e-7).

    Raises:
        TypeError: if ``dtype`` is not a floating-point dtype.
    """
    if type(dtype).__module__.split(".")[0] == "torch":  # a torch dtype (NumPy ones never import torch)
        import torch

        if not dtype.is_floating_point:
            raise TypeError(f"machine_epsilon: {dtype} is not a floating-point dtype")
        return float(torch.finfo(dtype).eps)
    np_dtype = np.dtype(dtype)
    if np_dtype.kind != "f":
        raise TypeError(f"machine_epsilon: {np_dtype} is not a floating-point dtype")
    return float(np.finfo(np_dtype).eps)


def rounding_tolerance(dtype, reduction: int = 1, ulps: float = DEFAULT_ULPS) -> float:
    """Largest relative error two correct implementations may show: ``ulps * eps * sqrt(reduction)``.

    Args:
        dtype: the dtype the computation ran in (torch or NumPy).
        reduction: length of the longest sum behind one output value (>= 1), e.g. ``d_model`` for
            ``x @ W``.
        ulps: budget in rounding units (default 16).

    Returns:
        A relative tolerance, to be compared with :func:`relative_error`. For float32 and a
        reduction over 576 features: ``16 * 1.19e-7 * 24 = 4.6e-5``.

    Raises:
        ValueError: if ``reduction < 1`` or ``ulps <= 0``.
    """
    if int(reduction) < 1 or ulps <= 0:
        raise ValueError(f"rounding_tolerance: need reduction >= 1 and ulps > 0; got {reduction}, {ulps}")
    return ulps * machine_epsilon(dtype) * math.sqrt(int(reduction))


def _as_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu()
        return x.double().numpy() if x.is_floating_point() else x.numpy()
    return np.asarray(x)


def _floating_dtype(x):
    if hasattr(x, "dtype") and hasattr(x, "detach"):
        return x.dtype
    return np.asarray(x).dtype


def relative_error(actual, expected) -> float:
    """``max |actual - expected| / max(|actual|, |expected|)`` over all elements (0.0 if both are zero).

    Args:
        actual, expected: tensors or arrays of the same shape (any float dtype; compared in float64).

    Raises:
        ValueError: if the shapes differ.
    """
    a, b = _as_numpy(actual).astype(np.float64), _as_numpy(expected).astype(np.float64)
    if a.shape != b.shape:
        raise ValueError(f"relative_error: shapes differ, {a.shape} vs {b.shape}")
    if a.size == 0:
        return 0.0
    scale = max(float(np.abs(a).max()), float(np.abs(b).max()))
    diff = float(np.abs(a - b).max())
    if not math.isfinite(diff):
        return math.inf
    return diff / scale if scale > 0 else 0.0


def assert_agree(actual, expected, *, reduction: int = 1, ulps: float = DEFAULT_ULPS, what: str = "") -> float:
    """Assert that two computations of the same quantity agree within rounding; return the relative error.

    The tolerance is :func:`rounding_tolerance` for the coarser of the two dtypes, so a float32
    result compared with a float64 one is judged at float32's resolution.

    Args:
        actual, expected: tensors or arrays of the same shape.
        reduction: length of the longest sum behind one output value.
        ulps: budget in rounding units.
        what: a name for the message.

    Returns:
        The relative error (:func:`relative_error`), e.g. to print or glue.

    Raises:
        AssertionError: if the shapes differ, a value is NaN or infinite where the other is not,
            or the relative error exceeds the tolerance; the message gives both numbers.
    """
    name = f"{what}: " if what else ""
    a_shape, b_shape = tuple(np.shape(_as_numpy(actual))), tuple(np.shape(_as_numpy(expected)))
    if a_shape != b_shape:
        raise AssertionError(f"{name}shapes differ, {a_shape} vs {b_shape}")
    epsilons = []
    for x in (actual, expected):
        dtype = _floating_dtype(x)
        try:
            epsilons.append((machine_epsilon(dtype), dtype))
        except TypeError:
            pass
    if not epsilons:
        raise AssertionError(f"{name}neither value is floating point; compare integers exactly")
    dtype = max(epsilons, key=lambda pair: pair[0])[1]
    a, b = _as_numpy(actual).astype(np.float64), _as_numpy(expected).astype(np.float64)
    if not np.array_equal(np.isfinite(a), np.isfinite(b)) or not np.array_equal(a[~np.isfinite(a)], b[~np.isfinite(b)]):
        raise AssertionError(f"{name}non-finite values (NaN or inf) differ between the two")
    finite = np.isfinite(a)
    error = relative_error(a[finite], b[finite])
    tolerance = rounding_tolerance(dtype, reduction, ulps)
    if not error <= tolerance:
        raise AssertionError(f"{name}relative error {error:.2e} exceeds the {dtype} rounding tolerance "
                             f"{tolerance:.2e} ({ulps:g} ulps x sqrt({int(reduction)}))")
    return error

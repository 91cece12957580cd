"""Helpers for the exercise notebooks' check cells: every failure becomes a sentence about the mistake.

The check cells of ``solutions/`` (and of the student notebooks generated from them) import this
module, so the same wording serves every exercise notebook (Chapters 7 and 8 add their own helpers in
:mod:`attention_course.grading.checks_transformer` and :mod:`attention_course.grading.checks_modern`):

* :func:`run` calls a student's function and turns any error it raises (a shape mismatch inside
  ``@``, a NumPy ``gufunc`` error, ...) into an ``AssertionError`` that says what the inputs were
  and what convention was expected. ``NotImplementedError`` (the untouched stub) passes through
  unchanged, so an unanswered exercise still reads as "not implemented".
* :func:`array` and :func:`tensor` check the promised return type, dtype and shape, one condition
  per assertion.
* :func:`mask_mistake` names the usual masking mistakes (inverted mask, 0 instead of ``-inf``,
  mask applied after the softmax) from the weights alone.
* :func:`close` says whether a student's result agrees with a reference up to rounding, by the
  course's tolerance policy (:mod:`attention_course.maths.numerics`): the allowed difference grows with the
  size of the values and the coarser dtype of the two, so a correct float32 answer is not rejected
  because it sums in another order than the float64 (or float32) reference.
* :func:`first_match` picks the explanation whose wrong answer equals the student's result.
* :func:`earlier` checks an earlier exercise's function against a reference when a later one fails,
  so that the message blames the function that is actually wrong.

Every helper raises ``AssertionError`` (what a failing check raises) or returns normally.
"""
from __future__ import annotations

import math

import numpy as np

from attention_course.maths.numerics import machine_epsilon, rounding_tolerance

#: The length of the longest sum that :func:`close` assumes behind one value. The exercises compute
#: chains of short sums (d_model <= 24, d_ff <= 40, at most a dozen positions), so 64 covers them.
REDUCTION = 64

# Errors that must reach the caller unchanged: the untouched stub, and the grader's own
# (a time limit, a worker that died) which it reports itself.
_PASS_THROUGH = {"NotImplementedError", "StudentNotImplemented", "StudentTimeout", "WorkerGone", "CellTimeout"}


def _numpy(x):
    """A NumPy copy of an array, tensor, list or number (for comparisons only)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu()
        if hasattr(x, "double") and x.is_floating_point():
            x = x.double()
        return x.numpy()
    return np.asarray(x)


def _shape(x) -> tuple:
    return tuple(np.shape(x)) if not hasattr(x, "shape") else tuple(x.shape)


def describe(x) -> str:
    """A short description of a value: type, shape and dtype (for messages)."""
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        kind = "tensor" if hasattr(x, "detach") else type(x).__name__
        return f"{kind} of shape {tuple(x.shape)} ({x.dtype})"
    if isinstance(x, (list, tuple)):
        return f"{type(x).__name__} of length {len(x)}"
    return type(x).__name__


def run(name: str, function, *args, expect: str = "", **kwargs):
    """Call ``function(*args, **kwargs)``; if it raises, fail with a message a student can act on.

    Args:
        name: the function's name as the exercise gives it (the message starts with it).
        function: the student's function.
        expect: what the inputs were and which convention the exercise asks for; it is the part of
            the message that explains the mistake (the error itself follows in brackets).

    Returns:
        What the function returned.

    Raises:
        AssertionError: the function raised an error (other than ``NotImplementedError``).
        NotImplementedError: the function is still the stub.
    """
    try:
        return function(*args, **kwargs)
    except Exception as error:  # noqa: BLE001 - every error becomes a sentence, except the stub's
        if type(error).__name__ in _PASS_THROUGH or isinstance(error, NotImplementedError):
            raise
        detail = str(error).strip().splitlines()[0] if str(error).strip() else ""
        detail = detail if len(detail) <= 160 else detail[:157] + "..."
        raise AssertionError(f"{name} stopped with an error. {expect}".rstrip()
                             + f" [Python said: {type(error).__name__}: {detail}]") from None


def array(value, name: str, shape=None, float_dtype: bool = True):
    """Check that ``value`` is a NumPy array (of ``shape``, of a float dtype); return it."""
    assert isinstance(value, np.ndarray), (
        f"{name} must return a NumPy array; yours returned a {describe(value)}. "
        "Build the result with NumPy (np.array(...), np.full(...), @) instead of a Python list.")
    if float_dtype:
        assert np.issubdtype(value.dtype, np.floating), (
            f"{name} must return floats; yours has dtype {value.dtype} "
            "(an int array cannot hold 0.5 or np.nan: start from np.full(K, np.nan) or use dtype=float)")
    if shape is not None:
        assert value.shape == tuple(shape), f"{name} must return shape {tuple(shape)}; yours has shape {value.shape}"
    return value


def tensor(value, name: str, shape=None, dtype=None):
    """Check that ``value`` is a ``torch.Tensor`` (of ``shape`` and ``dtype``); return it."""
    import torch

    assert isinstance(value, torch.Tensor), (
        f"{name} must return a torch tensor; yours returned a {describe(value)}")
    if shape is not None:
        assert tuple(value.shape) == tuple(shape), \
            f"{name} must return shape {tuple(shape)}; yours has shape {tuple(value.shape)}"
    if dtype is not None:
        assert value.dtype == dtype, f"{name} must return dtype {dtype}; yours has dtype {value.dtype}"
    return value


def _float_dtype(x):
    """The floating dtype of a tensor, array, list or number; None if not floating.

    NumPy values are looked up with NumPy, so that a NumPy-only check does not import torch.
    """
    if hasattr(x, "detach"):  # a torch tensor (torch is imported already)
        return x.dtype if x.dtype.is_floating_point else None
    try:
        dtype = x.dtype if isinstance(x, (np.ndarray, np.generic)) else np.asarray(x).dtype
    except (TypeError, ValueError):
        return None
    return dtype if dtype.kind == "f" else None


def close(got, want, atol: float = 1e-6, *, reduction: int = REDUCTION, equal_nan: bool = False) -> bool:
    """True if ``got`` has ``want``'s shape and agrees with it up to rounding (arrays, tensors or numbers).

    Two correct implementations differ by rounding, which grows with the size of the values and with
    the coarser of the two dtypes (a float32 answer against a float64 reference is judged at float32's
    resolution): the course's policy, :mod:`attention_course.maths.numerics`. So ``got`` agrees with ``want``
    when ``max |got - want| <= max(atol, rounding_tolerance(dtype, reduction) * scale)``, where
    ``dtype`` is the coarser of the two and ``scale`` the largest magnitude in either. ``atol`` is a
    floor, for values near zero (and the whole tolerance for integer arrays). NaN agrees with
    nothing, unless ``equal_nan`` (then NaN agrees with NaN at the same places, e.g. a typical
    mistake's NaNs); infinities must match.

    Args:
        got, want: the student's result and the reference (or a typical wrong answer).
        atol: the smallest allowed difference.
        reduction: the length of the longest sum behind one value (:data:`REDUCTION` by default).
        equal_nan: NaN in both at the same places agrees.
    """
    dtypes = [d for d in (_float_dtype(got), _float_dtype(want)) if d is not None]
    got, want = _numpy(got), _numpy(want)
    if got.shape != want.shape:
        return False
    try:
        a, b = got.astype(np.float64), want.astype(np.float64)
    except (TypeError, ValueError):  # not numbers
        return False
    nan = np.isnan(a)
    if nan.any() or np.isnan(b).any():
        if not equal_nan or not np.array_equal(nan, np.isnan(b)):
            return False
        a, b = a[~nan], b[~nan]
    finite = np.isfinite(a)
    if not np.array_equal(finite, np.isfinite(b)) or not np.array_equal(a[~finite], b[~finite]):
        return False
    if not finite.any():
        return True
    a, b = a[finite], b[finite]
    tolerance = atol
    if dtypes:  # the rounding tolerance of the coarser dtype, times the scale
        scale = max(float(np.abs(a).max()), float(np.abs(b).max()))
        tolerance = max(atol, rounding_tolerance(max(dtypes, key=machine_epsilon), reduction) * scale)
    return bool(np.abs(a - b).max() <= tolerance)


def first_match(got, wrong_answers: dict, default: str, atol: float = 1e-6, *, reduction: int = REDUCTION,
                equal_nan: bool = False) -> str:
    """The explanation of the first wrong answer that ``got`` equals (:func:`close`), else ``default``.

    ``wrong_answers`` maps an explanation to the result that mistake produces (or to a function of
    no arguments that computes it; a function that fails is skipped, and NumPy's warnings while it
    runs are silenced: a wrong answer may well overflow). ``equal_nan`` is passed on to :func:`close`.
    """
    for explanation, wrong in wrong_answers.items():
        if callable(wrong):
            try:
                with np.errstate(all="ignore"):
                    wrong = wrong()
            except Exception:  # noqa: BLE001 - that mistake is impossible for these shapes
                continue
        if close(got, wrong, atol, reduction=reduction, equal_nan=equal_nan):
            return explanation
    return default


def mask_mistake(weights, allowed, *, fill_hint: str = "scores.masked_fill(~mask, float('-inf'))") -> str | None:
    """Name the masking mistake visible in attention ``weights`` (None if the mask is obeyed).

    ``allowed`` is the boolean mask of the exercises: True where a query MAY attend (the opposite
    of ``nn.MultiheadAttention``'s boolean ``attn_mask``; ``F.scaled_dot_product_attention`` reads a
    boolean mask as we do), broadcastable to the weights' shape.
    """
    w = _numpy(weights).astype(float)
    try:
        ok = np.broadcast_to(_numpy(allowed).astype(bool), w.shape)
    except ValueError:
        return (f"the attention weights have shape {w.shape}, which the mask of shape {_shape(allowed)} cannot be "
                "broadcast to: keep one weight per (query, key) pair, in the shape of the scores")
    if np.isnan(w).any():
        nan_rows = np.isnan(w).all(-1)
        if nan_rows.any():
            return ("some rows of the weights are entirely NaN: every key of those rows was set to -inf. "
                    "If you filled where the mask is True you inverted it: True means MAY attend (the opposite "
                    f"of nn.MultiheadAttention's boolean attn_mask), so fill ~mask: {fill_hint}")
        return "the weights contain NaN: set the disallowed scores to -inf, not to NaN, before the softmax"
    on_allowed, on_blocked = w[ok], w[~ok]
    if on_blocked.size and on_blocked.max() > 0 and on_allowed.size and np.allclose(on_allowed, 0):
        return ("the mask is inverted: the allowed positions (mask True) got weight 0 and the blocked ones got it all. "
                "True means MAY attend (the opposite of nn.MultiheadAttention's boolean attn_mask): fill ~mask, " + fill_hint)
    rows = w.sum(-1)
    if on_blocked.size and on_blocked.max() > 0:
        if np.allclose(rows, 1):
            return ("blocked positions (mask False) got weight above 0 although each row sums to 1: their scores "
                    "must become -inf before the softmax (a score of 0 still gets weight): " + fill_hint)
        return "blocked positions (mask False) got weight above 0: mask the scores before the softmax, " + fill_hint
    if not np.allclose(rows, 1):
        return ("the blocked positions have weight 0 but the rows no longer sum to 1: you zeroed the weights AFTER "
                "the softmax; set the scores to -inf BEFORE it, " + fill_hint)
    return None


def earlier(name: str, function, reference, *args, exercise: str = "", later: str = "", atol: float = 1e-5,
            reduction: int = REDUCTION) -> None:
    """Fail, naming the earlier function, if ``function(*args)`` differs from ``reference(*args)`` (:func:`close`).

    Used when a later exercise fails: if it builds on an earlier function that is wrong, the message
    says to fix that one first, instead of blaming the later function.
    """
    where = f" ({exercise})" if exercise else ""
    uses = f"{later} uses your {name}, and " if later else ""
    try:
        got = function(*args)
    except Exception as error:  # noqa: BLE001
        if type(error).__name__ in _PASS_THROUGH or isinstance(error, NotImplementedError):
            raise
        raise AssertionError(f"{uses}your {name}{where} raises {type(error).__name__} on these inputs: "
                             f"fix {name} first (run its check)") from None
    want = reference(*args)
    if isinstance(want, tuple):
        same = isinstance(got, tuple) and len(got) == len(want) and all(
            close(g, w, atol, reduction=reduction) for g, w in zip(got, want))
    else:
        same = close(got, want, atol, reduction=reduction)
    assert same, (f"{uses}your {name}{where} gives wrong results on these inputs: fix {name} first "
                  "(its check cell shows what is wrong), then run this check again")


def torch_multi_head(X, W_q, W_k, W_v, W_o, num_heads: int, allowed=None, real=None):
    """``torch.nn.MultiheadAttention`` holding the exercises' weights: the reference of the checks.

    Args:
        X: ``(batch, seq_len, d_model)``.
        W_q, W_k, W_v, W_o: ``(d_model, d_model)``, multiplying rows (``X @ W_q``); PyTorch stores
            them transposed, so they are copied in as ``W.T``.
        num_heads: heads of width ``d_model // num_heads``.
        allowed: optional bool ``(seq_len, seq_len)``, True where query i MAY attend to key j (the
            exercises' convention); ``nn.MultiheadAttention``'s boolean ``attn_mask`` means the opposite, so it gets
            ``~allowed``.
        real: optional bool ``(batch, seq_len)``, True at real tokens; passed as
            ``key_padding_mask=~real``.

    Returns:
        ``(output, weights)``: ``(batch, seq_len, d_model)`` and ``(batch, num_heads, seq_len, seq_len)``.
    """
    import torch

    d_model = X.shape[-1]
    mha = torch.nn.MultiheadAttention(d_model, num_heads, bias=False, batch_first=True, dtype=X.dtype)
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.cat([W_q.T, W_k.T, W_v.T]))
        mha.out_proj.weight.copy_(W_o.T)
        return mha(X, X, X, average_attn_weights=False,
                   attn_mask=None if allowed is None else ~allowed,
                   key_padding_mask=None if real is None else ~real)




# The RoPE checks moved with their exercises to Chapter 8 (issue 27): attention_course.grading.checks_modern.
# A Chapter 6 student notebook released before the move gets a message that says where they went
# (this module does not import checks_modern, which builds on it: no import cycle).
_MOVED_TO_CHECKS_MODERN = {"ROPE_PAIRINGS", "rope_reference", "rope_mistakes", "rope_pairing", "rope_check",
                           "rope_ok", "rope_earlier", "rope_attention_reference", "rope_attention_mistakes",
                           "rope_attention_check"}


def __getattr__(name: str):
    if name in _MOVED_TO_CHECKS_MODERN:
        raise AttributeError(
            f"checks.{name} moved with the RoPE exercises to Chapter 8: use attention_course.grading.checks_modern."
            f"{name}, or download the current exercise notebooks (Chapter 6's no longer has RoPE; "
            f"Chapter 8's, notebooks/ch08_todays_llms/todays_llms.ipynb, does)")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

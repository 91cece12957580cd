"""Helpers for the exercise notebooks' check cells: every failure becomes a sentence about the mistake.

The check cells of ``solutions/`` (and of the student notebooks generated from them) import this
module, so the same wording serves all six exercise notebooks:

* :func:`run` calls a student's function and turns any error it raises (a shape mismatch inside
  ``@``, a NumPy ``gufunc`` error, ...) into an ``AssertionError`` that says what the inputs were
  and what convention was expected. ``NotImplementedError`` (the untouched stub) passes through
  unchanged, so an unanswered exercise still reads as "not implemented".
* :func:`array` and :func:`tensor` check the promised return type, dtype and shape, one condition
  per assertion.
* :func:`mask_mistake` names the usual masking mistakes (inverted mask, 0 instead of ``-inf``,
  mask applied after the softmax) from the weights alone.
* :func:`first_match` picks the explanation whose wrong answer equals the student's result.
* :func:`earlier` checks an earlier exercise's function against a reference when a later one fails,
  so that the message blames the function that is actually wrong.

Every helper raises ``AssertionError`` (what a failing check raises) or returns normally.
"""
from __future__ import annotations

import numpy as np

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


def close(got, want, atol: float = 1e-6) -> bool:
    """True if ``got`` has ``want``'s shape and equals it within ``atol`` (arrays or tensors)."""
    got, want = _numpy(got), _numpy(want)
    return got.shape == want.shape and bool(np.allclose(got, want, atol=atol, rtol=0, equal_nan=False))


def first_match(got, wrong_answers: dict, default: str, atol: float = 1e-6) -> str:
    """The explanation of the first wrong answer that ``got`` equals, else ``default``.

    ``wrong_answers`` maps an explanation to the result that mistake produces (or to a function of
    no arguments that computes it; a function that fails is skipped).
    """
    for explanation, wrong in wrong_answers.items():
        if callable(wrong):
            try:
                wrong = wrong()
            except Exception:  # noqa: BLE001 - that mistake is impossible for these shapes
                continue
        if close(got, wrong, atol):
            return explanation
    return default


def mask_mistake(weights, allowed, *, fill_hint: str = "scores.masked_fill(~mask, float('-inf'))") -> str | None:
    """Name the masking mistake visible in attention ``weights`` (None if the mask is obeyed).

    ``allowed`` is the boolean mask of the exercises: True where a query MAY attend (the opposite
    of PyTorch's boolean ``attn_mask``), broadcastable to the weights' shape.
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
                    f"of PyTorch's boolean attn_mask), so fill ~mask: {fill_hint}")
        return "the weights contain NaN: set the disallowed scores to -inf, not to NaN, before the softmax"
    on_allowed, on_blocked = w[ok], w[~ok]
    if on_blocked.size and on_blocked.max() > 0 and on_allowed.size and np.allclose(on_allowed, 0):
        return ("the mask is inverted: the allowed positions (mask True) got weight 0 and the blocked ones got it all. "
                "True means MAY attend (the opposite of PyTorch's boolean attn_mask): fill ~mask, " + fill_hint)
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


def earlier(name: str, function, reference, *args, exercise: str = "", later: str = "", atol: float = 1e-5) -> None:
    """Fail, naming the earlier function, if ``function(*args)`` differs from ``reference(*args)``.

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
        same = isinstance(got, tuple) and len(got) == len(want) and all(close(g, w, atol) for g, w in zip(got, want))
    else:
        same = close(got, want, atol)
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
            exercises' convention); PyTorch's boolean ``attn_mask`` means the opposite, so it gets
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

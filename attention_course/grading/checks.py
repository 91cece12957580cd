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
* The check cells' own helpers, one section per chapter (2: the decoder step's references and
  :func:`bahdanau_blame_earlier`; 4: :func:`loop_attention`, :func:`self_attention_diagnose`,
  :func:`equivariance_verdict`; 5: :func:`multi_head_attend`, :func:`multi_head_diagnose`; 6:
  :func:`transformer_block_check`, :func:`kv_cache_check`, :func:`sampling_frequencies`): a check cell
  imports them instead of defining them, so two cells never carry two copies of one helper.

Every helper raises ``AssertionError`` (what a failing check raises) or returns normally.
"""
from __future__ import annotations

import math

import numpy as np

from attention_course.grading.messages import tr
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
        raise AssertionError(tr("{name} stopped with an error. {expect}", name=name, expect=expect).rstrip()
                             + tr(" [Python said: {error_type}: {detail}]", error_type=type(error).__name__,
                                  detail=detail)) from None


def array(value, name: str, shape=None, float_dtype: bool = True):
    """Check that ``value`` is a NumPy array (of ``shape``, of a float dtype); return it."""
    assert isinstance(value, np.ndarray), (
        tr("{name} must return a NumPy array; yours returned a {value}. Build the result with NumPy (np.array(...), "
           "np.full(...), @) instead of a Python list.", name=name, value=describe(value)))
    if float_dtype:
        assert np.issubdtype(value.dtype, np.floating), (
            tr("{name} must return floats; yours has dtype {dtype_value} (an int array cannot hold 0.5 or np.nan: start from "
               "np.full(K, np.nan) or use dtype=float)", name=name, dtype_value=value.dtype))
    if shape is not None:
        assert value.shape == tuple(shape), tr("{name} must return shape {shape}; yours has shape {value_shape}", name=name,
                                               shape=tuple(shape),
                                               value_shape=value.shape)
    return value


def tensor(value, name: str, shape=None, dtype=None):
    """Check that ``value`` is a ``torch.Tensor`` (of ``shape`` and ``dtype``); return it."""
    import torch

    assert isinstance(value, torch.Tensor), (
        tr("{name} must return a torch tensor; yours returned a {value}", name=name, value=describe(value)))
    if shape is not None:
        assert tuple(value.shape) == tuple(shape), \
            tr("{name} must return shape {shape}; yours has shape {value_shape}", name=name, shape=tuple(shape),
               value_shape=tuple(value.shape))
    if dtype is not None:
        assert value.dtype == dtype, tr("{name} must return dtype {dtype}; yours has dtype {dtype_value}", name=name,
                                        dtype=dtype, dtype_value=value.dtype)
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
        return (tr("the attention weights have shape {weights_shape}, which the mask of shape {mask_shape} cannot be "
                   "broadcast to: keep one weight per (query, key) pair, in the shape of the scores", weights_shape=w.shape,
                   mask_shape=_shape(allowed)))
    if np.isnan(w).any():
        nan_rows = np.isnan(w).all(-1)
        if nan_rows.any():
            return (tr("some rows of the weights are entirely NaN: every key of those rows was set to -inf. If you filled "
                       "where the mask is True you inverted it: True means MAY attend (the opposite of "
                       "nn.MultiheadAttention's boolean attn_mask), so fill ~mask: {fill_hint}",
                       fill_hint=fill_hint))
        return tr("the weights contain NaN: set the disallowed scores to -inf, not to NaN, before the softmax")
    on_allowed, on_blocked = w[ok], w[~ok]
    if on_blocked.size and on_blocked.max() > 0 and on_allowed.size and np.allclose(on_allowed, 0):
        return (tr("the mask is inverted: the allowed positions (mask True) got weight 0 and the blocked ones got it all. "
                   "True means MAY attend (the opposite of nn.MultiheadAttention's boolean attn_mask): fill ~mask, ") + fill_hint)
    rows = w.sum(-1)
    if on_blocked.size and on_blocked.max() > 0:
        if np.allclose(rows, 1):
            return (tr("blocked positions (mask False) got weight above 0 although each row sums to 1: their scores must "
                       "become -inf before the softmax (a score of 0 still gets weight): ") + fill_hint)
        return tr("blocked positions (mask False) got weight above 0: mask the scores before the softmax, ") + fill_hint
    if not np.allclose(rows, 1):
        return (tr("the blocked positions have weight 0 but the rows no longer sum to 1: you zeroed the weights AFTER the "
                   "softmax; set the scores to -inf BEFORE it, ") + fill_hint)
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
        raise AssertionError(tr("{uses}your {name}{where} raises {error_type} on these inputs: fix {name} first (run its "
                                "check)", uses=uses, name=name, where=where,
                                error_type=type(error).__name__)) from None
    want = reference(*args)
    if isinstance(want, tuple):
        same = isinstance(got, tuple) and len(got) == len(want) and all(
            close(g, w, atol, reduction=reduction) for g, w in zip(got, want))
    else:
        same = close(got, want, atol, reduction=reduction)
    assert same, (tr("{uses}your {name}{where} gives wrong results on these inputs: fix {name} first (its check cell shows "
                     "what is wrong), then run this check again", uses=uses, name=name, where=where))


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
# ---------------------------------------------------------------------------- Chapter 2: the decoder step
def bahdanau_reference_score(s, H, W_s, W_h, v):
    """Exercise 2's additive scores, one sentence at a time (the decoder step's reference)."""
    import torch

    return torch.stack([torch.tanh(W_s @ s[b] + H[b] @ W_h.T) @ v for b in range(s.shape[0])])


def bahdanau_reference_softmax(e, mask):
    """Exercise 3's masked softmax (the decoder step's reference)."""
    import torch

    return torch.softmax(e.masked_fill(~mask, float("-inf")), -1)


def bahdanau_reference_context(alpha, H):
    """Exercise 4's context vectors (the decoder step's reference)."""
    import torch

    return torch.einsum("bt,btd->bd", alpha, H)


def bahdanau_blame_earlier(additive_score, masked_softmax, context_vector, s_prev, H, mask, W_s, W_h, v) -> None:
    """Fail naming additive_score, masked_softmax or context_vector if one of them is wrong here."""
    e = bahdanau_reference_score(s_prev, H, W_s, W_h, v)
    earlier("additive_score", additive_score, bahdanau_reference_score, s_prev, H, W_s, W_h, v,
            exercise="exercise 2", later="decoder_step")
    earlier("masked_softmax", masked_softmax, bahdanau_reference_softmax, e, mask, exercise="exercise 3",
            later="decoder_step")
    earlier("context_vector", context_vector, bahdanau_reference_context, bahdanau_reference_softmax(e, mask), H,
            exercise="exercise 4", later="decoder_step")


# ---------------------------------------------------------------------------- Chapter 4: self-attention
def loop_attention(X, W_q, W_k, W_v, allowed=None):
    """Slow reference: one query and one key at a time."""
    import torch

    batch, n, _ = X.shape
    d_k = W_q.shape[1]
    out = torch.zeros(batch, n, W_v.shape[1], dtype=X.dtype)
    weights = torch.zeros(batch, n, n, dtype=X.dtype)
    for b_ in range(batch):
        for i in range(n):
            scores = torch.stack([(X[b_, i] @ W_q) @ (X[b_, j] @ W_k) / math.sqrt(d_k) for j in range(n)])
            if allowed is not None:
                scores = torch.where(allowed[i], scores, torch.tensor(float("-inf"), dtype=X.dtype))
            weights[b_, i] = torch.softmax(scores, dim=0)
            out[b_, i] = sum(weights[b_, i, j] * (X[b_, j] @ W_v) for j in range(n))
    return out, weights


def self_attention_diagnose(X, W_q, W_k, W_v, weights) -> str:
    """Name the usual self-attention mistake if the weights match one."""
    import torch

    Q, K = X @ W_q, X @ W_k
    raw = Q @ K.transpose(-2, -1)
    if torch.allclose(weights, torch.softmax(raw, dim=-1), atol=1e-6):
        return tr("you forgot to divide the scores by sqrt(d_k)")
    if torch.allclose(weights, torch.softmax(raw / math.sqrt(X.shape[-1]), dim=-1), atol=1e-6):
        return tr("you divided by sqrt(d_model); divide by sqrt(d_k), the width of Q and K (W_q.shape[1])")
    if torch.allclose(weights, torch.softmax(raw / math.sqrt(W_v.shape[1]), dim=-1), atol=1e-6):
        return tr("you divided by sqrt(d_v); divide by sqrt(d_k), the width of Q and K")
    if torch.allclose(weights, torch.softmax(raw.transpose(-2, -1) / math.sqrt(W_q.shape[1]), dim=-1), atol=1e-6):
        return tr("your weights are transposed (row i must hold the weights of QUERY i): use Q @ K^T, not K @ Q^T")
    if torch.allclose(weights, torch.softmax(raw, dim=-2), atol=1e-6) or \
            torch.allclose(weights, torch.softmax(raw / math.sqrt(W_q.shape[1]), dim=-2), atol=1e-6):
        return tr("the softmax must run along the last axis (over the keys), so that each row sums to 1")
    return tr("compare your Q K^T / sqrt(d_k) and softmax with the formula above")


def plain_attention(Z):
    """Self-attention with no learned weights: equivariant."""
    import torch

    return torch.softmax(Z @ Z.transpose(-2, -1) / math.sqrt(Z.shape[-1]), dim=-1) @ Z


def causal_attention(Z):
    """The same with a causal mask: NOT equivariant."""
    import torch

    n = Z.shape[1]
    scores = (Z @ Z.transpose(-2, -1)).masked_fill(~torch.ones(n, n, dtype=torch.bool).tril(), float("-inf"))
    return torch.softmax(scores, dim=-1) @ Z


def equivariance_verdict(is_permutation_equivariant, fn, X, atol=1e-6, what="") -> bool:
    """The student's answer for ``fn`` on ``X``, as a bool; fail if it is not one answer for the whole X."""
    import torch

    answer = run("is_permutation_equivariant", is_permutation_equivariant, fn, X, atol=atol,
                 expect=tr("fn maps (batch, seq_len, d) to (batch, seq_len, d_out); X is {X_shape}. {what}",
                           X_shape=tuple(X.shape), what=what))
    assert isinstance(answer, bool) or (isinstance(answer, torch.Tensor) and answer.numel() == 1), \
        tr("return True or False (one answer for the whole X, e.g. torch.allclose); yours returned a {answer}",
           answer=describe(answer))
    return bool(answer)


# ---------------------------------------------------------------------------- Chapter 5: multi-head attention
def reference_split(X, num_heads):
    """Exercise 1's split_heads: (batch, seq_len, d_model) -> (batch, num_heads, seq_len, d_k)."""
    batch, seq_len, d_model = X.shape
    return X.reshape(batch, seq_len, num_heads, d_model // num_heads).transpose(1, 2)


def reference_merge(H):
    """Exercise 2's merge_heads: (batch, num_heads, seq_len, d_k) -> (batch, seq_len, d_model)."""
    batch, num_heads, seq_len, d_k = H.shape
    return H.transpose(1, 2).reshape(batch, seq_len, num_heads * d_k)


def heads_blame_earlier(split_heads, merge_heads, X, num_heads) -> None:
    """If split_heads or merge_heads (exercises 1 and 2) is wrong, say so instead of blaming this one."""
    earlier("split_heads", split_heads, reference_split, X, num_heads, exercise="exercise 1",
            later="multi_head_attention")
    earlier("merge_heads", merge_heads, reference_merge, reference_split(X, num_heads), exercise="exercise 2",
            later="multi_head_attention")


def multi_head_attend(multi_head_attention, split_heads, merge_heads, X, W_q, W_k, W_v, W_o, num_heads, mask=None,
                      real=None, what=""):
    """Call the student's function; if the result is not the reference, first check the earlier exercises.

    The reference gets either the (seq_len, seq_len) mask or, for padding, the (batch, seq_len) real tokens.
    Returns ``(result, reference)``, both pairs (output, weights).
    """
    result = run("multi_head_attention", multi_head_attention, X, W_q, W_k, W_v, W_o, num_heads, mask=mask,
                 expect=tr("X is (batch, seq_len, d_model) = {X_shape}, the four weights (d_model, d_model), num_heads = "
                           "{num_heads}, so d_k = {d_k}. {what}", X_shape=tuple(X.shape),
                           num_heads=num_heads, d_k=X.shape[-1] // num_heads, what=what))
    ref = torch_multi_head(X, W_q, W_k, W_v, W_o, num_heads, allowed=None if real is not None else mask, real=real)
    if not (isinstance(result, tuple) and len(result) == 2 and close(result[0], ref[0]) and close(result[1], ref[1])):
        heads_blame_earlier(split_heads, merge_heads, X, num_heads)
    assert isinstance(result, tuple) and len(result) == 2, \
        tr("return the pair (output, weights); yours returned a {result}", result=describe(result))
    return result, ref


def multi_head_diagnose(X, W_q, W_k, W_v, W_o, num_heads, out, weights) -> str:
    """Name the usual multi-head mistake if the result matches one."""
    import torch

    d_model = X.shape[-1]
    d_k = d_model // num_heads
    heads = lambda W: X.matmul(W).reshape(X.shape[0], X.shape[1], num_heads, d_k).transpose(1, 2)  # noqa: E731
    raw = heads(W_q) @ heads(W_k).transpose(-2, -1)
    concat = (torch.softmax(raw / math.sqrt(d_k), -1) @ heads(W_v)).transpose(1, 2).reshape(X.shape)
    if out.shape == X.shape and torch.allclose(out, concat, atol=1e-6):
        return tr("you forgot the final projection: multiply the merged heads by W_o")
    if weights.shape == raw.shape and torch.allclose(weights, torch.softmax(raw / math.sqrt(d_model), -1), atol=1e-6):
        return tr("you divided by sqrt(d_model); divide by sqrt(d_k) = sqrt(d_model // num_heads), the width of one head")
    if weights.shape == raw.shape and torch.allclose(weights, torch.softmax(raw, -1), atol=1e-6):
        return tr("you forgot to divide the scores by sqrt(d_k)")
    mixed = lambda W: X.matmul(W).reshape(X.shape[0], num_heads, X.shape[1], d_k)  # noqa: E731
    if weights.shape == raw.shape and torch.allclose(
            weights, torch.softmax(mixed(W_q) @ mixed(W_k).transpose(-2, -1) / math.sqrt(d_k), -1), atol=1e-6):
        return (tr("your heads mix different positions: reshape the feature axis to (num_heads, d_k) and then transpose(1, "
                   "2); a plain reshape to (batch, num_heads, seq_len, d_k) splits along the wrong axis"))
    return tr("check each step: split_heads of X @ W_q etc., softmax(Q K^T / sqrt(d_k)) over the last axis, merge_heads, @ "
              "W_o")


# ---------------------------------------------------------------------------- Chapter 6: the GPT block, the KV cache, sampling
def _block_reference_layer(d, h, d_ff, seed):
    """PyTorch's pre-norm encoder layer with random weights, and the same weights as a params dict."""
    import torch

    torch.manual_seed(seed)
    layer = torch.nn.TransformerEncoderLayer(d, h, d_ff, dropout=0.0, activation="gelu",
                                             batch_first=True, norm_first=True).eval()
    with torch.no_grad():
        layer.self_attn.in_proj_bias.zero_()
        layer.self_attn.out_proj.bias.zero_()
        for ln in (layer.norm1, layer.norm2):  # non-trivial LayerNorm parameters
            ln.weight.uniform_(0.5, 1.5)
            ln.bias.uniform_(-0.5, 0.5)
    W_q, W_k, W_v = layer.self_attn.in_proj_weight.detach().T.chunk(3, dim=1)
    params = dict(num_heads=h, W_q=W_q.contiguous(), W_k=W_k.contiguous(), W_v=W_v.contiguous(),
                  W_o=layer.self_attn.out_proj.weight.detach().T.contiguous(),
                  ln1_weight=layer.norm1.weight.detach(), ln1_bias=layer.norm1.bias.detach(),
                  ln2_weight=layer.norm2.weight.detach(), ln2_bias=layer.norm2.bias.detach(),
                  W_1=layer.linear1.weight.detach().T.contiguous(), b_1=layer.linear1.bias.detach(),
                  W_2=layer.linear2.weight.detach().T.contiguous(), b_2=layer.linear2.bias.detach())
    return layer, params


def _block_variants(x, p, mask):
    """The block with one typical mistake each, to name the student's."""
    import torch
    import torch.nn.functional as F

    batch, n, d = x.shape
    h = p["num_heads"]
    heads = lambda t: t.reshape(batch, n, h, d // h).transpose(1, 2)
    ln = lambda z, i: F.layer_norm(z, (d,), p[f"ln{i}_weight"], p[f"ln{i}_bias"], eps=1e-5)
    ffn = lambda z: F.gelu(z @ p["W_1"] + p["b_1"]) @ p["W_2"] + p["b_2"]

    def attention(z, scale=math.sqrt(d // h), use_mask=True):
        s = heads(z @ p["W_q"]) @ heads(z @ p["W_k"]).transpose(-2, -1) / scale
        if mask is not None and use_mask:
            s = s.masked_fill(~mask, float("-inf"))
        return (torch.softmax(s, -1) @ heads(z @ p["W_v"])).transpose(1, 2).reshape(batch, n, d) @ p["W_o"]

    def residual_after_norm():
        z = ln(x, 1)
        y = z + attention(z)
        z = ln(y, 2)
        return z + ffn(z)

    def pre_norm(**kw):
        y = x + attention(ln(x, 1), **kw)
        return y + ffn(ln(y, 2))

    return {
        tr("the residual adds the sublayer to the NORMALISED input (z = LN(x); x = z + attention(z)); in a pre-norm block it "
           "adds it to the original x: x = x + attention(LN1(x))"): residual_after_norm,
        tr("this is a post-norm block (LayerNorm after the addition); pre-norm normalises the sublayer's INPUT: x = x + "
           "attention(LN1(x)), then x = x + FFN(LN2(x))"): lambda: (lambda y: ln(y + ffn(y), 2))(ln(x + attention(x), 1)),
        tr("the MLP has no residual: y = h + FFN(LN2(h)), not FFN(LN2(h))"): lambda: ffn(ln(x + attention(ln(x, 1)), 2)),
        tr("the attention has no residual: h = x + MHA(LN1(x))"): lambda: (lambda y: y + ffn(ln(y, 2)))(attention(ln(x, 1))),
        tr("the scores are not divided by sqrt(d_k)"): lambda: pre_norm(scale=1.0),
        tr("you divided by sqrt(d_model); divide by sqrt(d_k) with d_k = d_model // num_heads"):
            lambda: pre_norm(scale=math.sqrt(d)),
        tr("the mask is ignored: set the scores where mask is False to -inf before the softmax"):
            lambda: pre_norm(use_mask=False),
    }


def transformer_block_check(transformer_block, d, h, d_ff, n, seed) -> None:
    """Chapter 6, exercise 1: the student's pre-norm block against PyTorch's encoder layer, with and without a
    causal mask; a wrong result is named by the typical mistake it matches."""
    import torch

    layer, params = _block_reference_layer(d, h, d_ff, seed)
    x = 3 * torch.randn(2, n, d) + 1  # not normalised: a residual stream has any mean and scale
    causal = torch.ones(n, n, dtype=torch.bool).tril()
    shapes = (tr("x is (batch, seq_len, d_model) = {x_shape}, num_heads = {h} (d_k = {d_h}), W_q ... W_o ({d}, {d}), W_1 "
                 "({d}, {d_ff}), W_2 ({d_ff}, {d}); a token is a row, so project with z @ W",
                 x_shape=tuple(x.shape), h=h, d_h=d // h, d=d, d_ff=d_ff))
    with torch.no_grad():
        expected = layer(x)
        expected_causal = layer(x, src_mask=~causal)  # PyTorch's bool mask: True = NOT allowed
        out = run("transformer_block", transformer_block, x, params, expect=shapes)
        out_causal = run("transformer_block", transformer_block, x, params, causal,
                                expect=shapes + tr("; mask is a bool ({n}, {n}) causal mask, True = may attend", n=n))
    tensor(out, "transformer_block", shape=tuple(x.shape))
    assert torch.allclose(out, expected, atol=1e-5), (
        tr("without a mask your block differs from PyTorch's pre-norm layer by {difference:.2e}: ",
           difference=(out - expected).abs().max().item()) + first_match(out, _block_variants(x, params, None), (
            tr("check the pre-norm order x = x + attention(LN1(x)), then x = x + FFN(LN2(x)); scores divided by sqrt(d_k) "
               "with d_k = d_model // num_heads; heads as consecutive column slices; GELU; eps=1e-5")), atol=1e-5))
    tensor(out_causal, "transformer_block", shape=tuple(x.shape))
    assert torch.isfinite(out_causal).all(), (
        tr("with the causal mask your block returned NaN: a whole row of scores was -inf. Did you fill where the mask is "
           "True? True means MAY attend (the opposite of nn.MultiheadAttention's attn_mask): scores.masked_fill(~mask, "
           "float('-inf'))"))
    later = x.clone()
    later[:, -1] = 3 * torch.randn(2, d, generator=torch.Generator().manual_seed(seed + 100))  # a different last token
    with torch.no_grad():
        out_later = run("transformer_block", transformer_block, later, params, causal, expect=shapes)
    assert torch.allclose(out_causal[:, :-1], out_later[:, :-1], atol=1e-5), \
        tr("with the causal mask, changing the LAST token changed the outputs of earlier tokens: apply the mask "
           "(scores.masked_fill(~mask, -inf)) before the softmax")
    assert torch.allclose(out_causal, expected_causal, atol=1e-5), \
        tr("with the causal mask your block differs from PyTorch's by {difference:.2e}: set the scores where "
           "mask is False to -inf before the softmax (True = may attend)",
           difference=(out_causal - expected_causal).abs().max().item())


def kv_cache_check(causal_self_attention_with_cache, batch, n, d, h, prompt, seed) -> None:
    """Chapter 6, exercise 2: the whole sequence at once, then a prompt and one token at a time with the cache,
    against causal multi-head attention."""
    import torch

    g = torch.Generator().manual_seed(seed)
    W_q, W_k, W_v, W_o = (torch.randn(d, d, generator=g) / math.sqrt(d) for _ in range(4))
    x = torch.randn(batch, n, d, generator=g)
    expected = torch_multi_head(x, W_q, W_k, W_v, W_o, h, allowed=torch.ones(n, n, dtype=torch.bool).tril())[0]
    shapes = (tr("x_t is (batch, n_new, d_model), here batch = {batch}, d_model = {d}; num_heads = {h}, so d_k = {d_h}; the "
                 "weights are ({d}, {d}) and multiply rows (x_t @ W_q)", batch=batch, d=d, h=h, d_h=d // h))
    with torch.no_grad():
        all_at_once = run("causal_self_attention_with_cache", causal_self_attention_with_cache,
                                 x, {}, W_q, W_k, W_v, W_o, h,
                                 expect=shapes + tr("; first call: an empty cache and all {n} positions", n=n))
    tensor(all_at_once, "causal_self_attention_with_cache", shape=(batch, n, d))
    assert torch.allclose(all_at_once, expected, atol=1e-5), \
        tr("with an empty cache and the whole sequence, your output differs from causal self-attention by "
           "{difference:.2e}. Is the causal mask applied? Position i may only see positions <= i, even on the "
           "first call with the whole prompt.", difference=(all_at_once - expected).abs().max().item())
    cache = {}
    with torch.no_grad():
        first = run("causal_self_attention_with_cache", causal_self_attention_with_cache,
                           x[:, :prompt], cache, W_q, W_k, W_v, W_o, h,
                           expect=shapes + tr("; first call with a prompt of {prompt} tokens and an empty cache", prompt=prompt))
        tensor(first, "causal_self_attention_with_cache", shape=(batch, prompt, d))
        assert cache, \
            tr("the cache is still empty after the first call: update the dict you were given in place, cache['k'] = ... and "
               "cache['v'] = ...; writing cache = {{...}} only rebinds your local name")
        assert "k" in cache and "v" in cache, \
            tr("store the keys and values under cache[\"k\"] and cache[\"v\"]; your cache has the keys {cache}",
               cache=sorted(cache))
        pieces = [first]
        for t in range(prompt, n):
            piece = run("causal_self_attention_with_cache", causal_self_attention_with_cache,
                               x[:, t:t + 1], cache, W_q, W_k, W_v, W_o, h,
                               expect=shapes + tr("; call for position {t}: ONE new token, {t} positions already cached", t=t))
            assert describe(piece).startswith("tensor") and piece.shape[1] == 1, \
                tr("one new token must give one output, (batch, 1, d_model) = {want_shape}; yours returned a {piece}: "
                   "return the outputs of the NEW positions only, not of every position so far",
                   want_shape=(batch, 1, d), piece=describe(piece))
            tensor(piece, "causal_self_attention_with_cache", shape=(batch, 1, d))
            pieces.append(piece)
    assert tuple(cache["k"].shape) == (batch, h, n, d // h), \
        tr("after {n} positions the cache must hold {n} keys, (batch, num_heads, {n}, d_k) = {want_shape}; yours holds "
           "{cache_shape}: append the new keys on every call, cache['k'] = torch.cat([cache['k'], k], dim=2)", n=n,
           want_shape=(batch, h, n, d // h), cache_shape=tuple(cache['k'].shape))
    assert tuple(cache["v"].shape) == (batch, h, n, d // h), \
        tr("after {n} positions the cache must hold {n} values, (batch, num_heads, {n}, d_k) = {want_shape}; yours holds "
           "{cache_shape}: append the new values on every call", n=n, want_shape=(batch, h, n, d // h),
           cache_shape=tuple(cache['v'].shape))
    incremental = torch.cat(pieces, dim=1)
    assert torch.allclose(incremental, expected, atol=1e-5), \
        tr("feeding the prompt of {prompt} tokens and then one token at a time must give the same outputs as the whole "
           "sequence at once; the largest difference is {difference:.2e}. The new token must attend to ALL cached "
           "keys and values plus its own, and a new position t_before + i may see positions 0 .. t_before + i (offset the "
           "causal mask by the cached length).", prompt=prompt,
           difference=(incremental - expected).abs().max().item())


def sampling_frequencies(sample_next_token, logits, temperature, draws, seed):
    """How often the student's sampler picks each token of each row: draws copies of every row in one batch,
    so one call samples each row draws times; returns (batch, vocab) frequencies."""
    import torch

    g = torch.Generator().manual_seed(seed)
    tokens = sample_next_token(logits.repeat(draws, 1), temperature, g).reshape(draws, -1)  # (draws, batch)
    return torch.stack([torch.bincount(tokens[:, b], minlength=logits.shape[1]) for b in range(logits.shape[0])]) / draws


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

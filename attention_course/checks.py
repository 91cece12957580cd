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
* :func:`close` says whether a student's result agrees with a reference up to rounding, by the
  course's tolerance policy (:mod:`attention_course.numerics`): the allowed difference grows with the
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

from .numerics import machine_epsilon, rounding_tolerance

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
    resolution): the course's policy, :mod:`attention_course.numerics`. So ``got`` agrees with ``want``
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


#: RoPE's two pairings of features, both right (issue 27, item 1): what the checks call each.
ROPE_PAIRINGS = {
    "half": "the halves: feature i with feature i + d/2 (x1 = x[..., :d//2], x2 = x[..., d//2:]), the layout of "
            "Hugging Face's rotate_half (SmolLM2, and LLaMA's checkpoints on the Hugging Face Hub)",
    "interleaved": "neighbouring features: 2i with 2i+1 (x[..., 0::2], x[..., 1::2]), the layout of the RoFormer "
                   "paper and of Meta's LLaMA reference code",
}
_ROPE_FORMULA = {
    "half": "x1' = x1*cos - x2*sin and x2' = x2*cos + x1*sin, i.e. x * cos + rotate_half(x) * sin with "
            "rotate_half(x) = torch.cat([-x2, x1], dim=-1)",
    "interleaved": "x[2i]' = x[2i]*cos - x[2i+1]*sin and x[2i+1]' = x[2i+1]*cos + x[2i]*sin",
}


def _rope_pairs(x, pairing: str):
    """The two members of every pair, each ``(..., d/2)``."""
    half = x.shape[-1] // 2
    return (x[..., :half], x[..., half:]) if pairing == "half" else (x[..., 0::2], x[..., 1::2])


def _rope_unpair(a, b, pairing: str):
    """The inverse of :func:`_rope_pairs`."""
    import torch

    return torch.cat([a, b], dim=-1) if pairing == "half" else torch.stack([a, b], dim=-1).flatten(-2)


def _rope_angles(positions, d: int, base: float, exponent: float = 2.0):
    """The ``(seq_len, d/2)`` table ``positions[m] * base ** (-exponent * i / d)``, in float64."""
    import torch

    theta = float(base) ** (-exponent * torch.arange(d // 2, dtype=torch.float64) / d)
    return torch.as_tensor(positions).double()[:, None] * theta


def rope_reference(x, positions, base: float = 10000.0, *, pairing: str = "half", direction: int = 1,
                   exponent: float = 2.0, swap: bool = False, angles=None):
    """Rotary position embedding computed as a complex multiplication: the reference of the RoPE checks.

    Pair ``i`` of a vector at position ``m`` is read as the complex number ``x_a + i x_b`` and
    multiplied by ``exp(i * direction * m * theta_i)`` with ``theta_i = base^(-exponent * i / d)``.
    The correct rotation (Su et al. 2021) is the default, in either pairing; the keyword arguments
    produce the typical mistakes, for the checks to recognise them.

    Args:
        x: ``(..., seq_len, d)`` with ``d`` even.
        positions: ``(seq_len,)`` integer positions.
        base: RoPE's base.
        pairing: ``"half"`` pairs feature ``i`` with ``i + d/2`` (Hugging Face's ``rotate_half``);
            ``"interleaved"`` pairs ``2i`` with ``2i+1`` (RoFormer, Meta's LLaMA code). Both are right:
            they are the same rotation after permuting the output features of ``W_q`` and ``W_k``.
        direction: ``1``, or ``-1`` for a rotation the wrong way round.
        exponent: ``2`` (correct) or ``1`` (``theta_i = base^(-i/d)``, a common slip).
        swap: use sine where cosine belongs and vice versa.
        angles: a ``(seq_len, d/2)`` table of angles to use instead of ``positions[m] * theta_i``.

    Returns:
        A tensor shaped like ``x`` (its dtype).
    """
    d = x.shape[-1]
    a, b = _rope_pairs(x.detach().double(), pairing)
    angle = direction * (_rope_angles(positions, d, base, exponent) if angles is None else angles)
    cos, sin = (angle.sin(), angle.cos()) if swap else (angle.cos(), angle.sin())
    return _rope_unpair(a * cos - b * sin, b * cos + a * sin, pairing).to(x.dtype)


def rope_mistakes(x, positions, base: float = 10000.0, pairing: str = "half") -> dict:
    """Explanation -> the result of that typical ``apply_rope`` mistake in ``pairing`` (for :func:`first_match`).

    A mistake that gives the right answer on these inputs (10000 for ``base`` when ``base`` is 10000,
    ``torch.arange`` for positions that start at 0) is left out.
    """
    import torch

    d = x.shape[-1]
    p = torch.as_tensor(positions)
    halves = pairing == "half"
    formula = _ROPE_FORMULA[pairing]
    angles = _rope_angles(p, d, base)
    theta = _rope_angles([1], d, base)[0]  # (d/2,)

    def ref(**change):
        return lambda: rope_reference(x, p, base, pairing=pairing, **change)

    def pairwise(rotate):  # the pair (a, b) becomes rotate(a, b, cos, sin)
        def result():
            a, b = _rope_pairs(x.detach().double(), pairing)
            return _rope_unpair(*rotate(a, b, angles.cos(), angles.sin()), pairing).to(x.dtype)
        return result

    def mixed():  # the rotation of one pairing with the angles laid out for the other
        xd = x.detach().double()
        spread = angles.repeat_interleave(2, dim=-1) if halves else torch.cat([angles, angles], dim=-1)
        a, b = _rope_pairs(xd, pairing)
        partner = _rope_unpair(-b, a, pairing)
        return (xd * spread.cos() + partner * spread.sin()).to(x.dtype)

    second = "x2' = x2*cos + x1*sin" if halves else "x[2i+1]' = x[2i+1]*cos + x[2i]*sin"
    mistakes = {
        f"you rotated each pair the WRONG WAY (by minus the angle): {formula}": ref(direction=-1),
        f"cos and sin are swapped: {formula}": ref(swap=True),
        "wrong frequencies: yours look like theta_i = base ** (-i / d); the frequencies are base ** (-2i / d) for "
        "i = 0 .. d/2 - 1 (torch.arange(0, d, 2) / d)": ref(exponent=1.0),
        "your frequencies grow with i: the minus sign of the exponent is missing. theta_i = base ** (-2i / d) = "
        "1 / base ** (2i / d), from 1 down to almost 1/base": ref(exponent=-2.0),
        "every pair turns at the same frequency (theta_i = 1): the exponent 2i/d was computed with integers "
        "(// or integer tensors) and became 0; use torch.arange(0, d, 2, dtype=torch.float64) / d":
            ref(angles=p.double()[:, None].expand(-1, d // 2)),
    }
    if float(base) != 10000.0:
        mistakes[f"you used 10000 instead of the base argument ({base}): theta_i = base ** (-2i / d) with the "
                 "base you were given"] = ref(angles=_rope_angles(p, d, 10000.0))
    if len(p) and int(p[0]) != 0:
        mistakes["you used the positions 0 .. seq_len-1 (torch.arange) instead of the positions argument (after "
                 "a KV cache the new tokens do not start at 0): the angle is positions[m] * theta_i"] = \
            ref(angles=_rope_angles(torch.arange(len(p)), d, base))
    mistakes.update({
        "your positions are off by one (positions + 1): the token at positions[m] turns by positions[m] * theta_i":
            ref(angles=_rope_angles(p + 1, d, base)),
        "every token was turned by the same angle theta_i: the angle must grow with the position, "
        "positions[m] * theta_i": ref(angles=theta.expand(len(p), -1)),
        "you added the position to theta_i: the angle is the product positions[m] * theta_i":
            ref(angles=p.double()[:, None] + theta),
        ("you mixed two conventions: you rotate the halves (x1 = x[..., :d//2] with x2 = x[..., d//2:]) but laid "
         "the d/2 angles out for neighbouring pairs (repeat_interleave). With the halves, features i and i + d/2 "
         "share angle i: torch.cat([angles, angles], dim=-1)") if halves else
        ("you mixed two conventions: you rotate neighbouring pairs (2i, 2i+1) but laid the d/2 angles out for the "
         "halves (torch.cat([angles, angles], dim=-1)). With neighbours, features 2i and 2i+1 share angle i: "
         "angles.repeat_interleave(2, dim=-1)"): mixed,
        f"the sine term multiplies x itself: it must multiply each feature's partner in its pair, with the "
        f"partner's sign: {formula}": pairwise(lambda a, b, c, s: (a * c + a * s, b * c + b * s)),
        f"your partner term lost its minus sign: torch.cat([x2, x1]) is a reflection, not a rotation; use "
        f"torch.cat([-x2, x1], dim=-1) ({formula})": pairwise(lambda a, b, c, s: (a * c + b * s, b * c + a * s)),
        f"only the first member of each pair was rotated: the second {'half' if halves else 'member'} must turn "
        f"too, {second}":
            pairwise(lambda a, b, c, s: (a * c - b * s, b)),
        ("the two halves of your result are swapped: return x1' first, then x2', torch.cat([x1', x2'], dim=-1)"
         if halves else "the two members of each pair are swapped in your result: x[2i]' comes first, then "
         "x[2i+1]'"): pairwise(lambda a, b, c, s: (b * c + a * s, a * c - b * s)),
        f"x2' was computed from the already rotated x1': compute both from the original x1 and x2, {second}":
            pairwise(lambda a, b, c, s: (a * c - b * s, b * c + (a * c - b * s) * s)),
        "nothing was rotated: you returned x unchanged": lambda: x,
    })
    return mistakes


def _rope_close(got, want) -> bool:
    """:func:`close` at float32's resolution at least: RoPE's angles may be computed in float32 (Hugging Face,
    Meta and ``attention_course.modern`` do), which is right for a float64 ``x`` too."""
    return close(got, want.float() if hasattr(want, "float") else want)


def _rope_setting(x, positions, base) -> str:
    p = [int(i) for i in positions]
    shown = f"torch.arange({p[0]}, {p[-1] + 1})" if p == list(range(p[0], p[0] + len(p))) else str(p)
    return f"x is (batch, heads, seq_len, d) = {tuple(x.shape)} ({x.dtype}), positions = {shown}, base = {base}"


def _torch_error(error: Exception) -> str:
    detail = str(error).strip().splitlines()[0] if str(error).strip() else ""
    detail = detail if len(detail) <= 160 else detail[:157] + "..."
    return f"[Python said: {type(error).__name__}: {detail}]"


def _rope_error_sentence(error: Exception, x) -> str | None:
    """What a typical error inside apply_rope means, in words (None if it is not a typical one)."""
    import re

    text = str(error)
    shape = tuple(x.shape)
    batch, heads, n, d = (shape + (0,) * 4)[:4] if len(shape) == 4 else (0, 0, shape[-2], shape[-1])
    sizes = re.search(r"size of tensor a \((\d+)\) must match the size of tensor b \((\d+)\)", text)
    if sizes:
        found = {int(sizes.group(1)), int(sizes.group(2))}
        if found == {n, d // 2}:
            return (f"positions ({n},) times theta ({d // 2},) do not broadcast: make the angles a (seq_len, d/2) = "
                    f"({n}, {d // 2}) table with positions[:, None] * theta, one row per token and one column per pair")
        if found == {d // 2, d}:
            return (f"cos and sin have d/2 = {d // 2} columns but x has d = {d} features: repeat the d/2 angles to d "
                    "columns (torch.cat([angles, angles], dim=-1) for the halves, angles.repeat_interleave(2, dim=-1) "
                    "for neighbouring pairs), or multiply the d/2-wide halves x1 and x2 instead of x")
        if found == {n, d}:
            return (f"cos and sin look transposed, (d, seq_len) = ({d}, {n}): they must be (seq_len, d) = ({n}, {d}), "
                    "one row per token, to broadcast against the last two axes of x")
        if n in found and (found - {n}) & {heads, batch}:
            axis = "heads" if heads in found - {n} else "batch"
            return (f"the seq_len axis of cos and sin ({n}) lines up with the {axis} axis of x: cos and sin must be "
                    f"(seq_len, d) = ({n}, {d}), or (1, 1, {n}, {d}), so that they broadcast against the last two axes "
                    f"of x {shape}; an extra axis such as cos[:, None, :] moves seq_len onto the {axis} axis")
        return (f"the shapes do not broadcast: cos and sin must be (seq_len, d) = ({n}, {d}) to multiply x {shape} "
                "(or d/2 columns to multiply the halves x1, x2)")
    if "cannot be converted to Scalar" in text:
        return ("you called .item() on a tensor of many numbers (positions holds seq_len positions, the angles a "
                "whole table): .item() takes one number. Keep tensors: angles = positions[:, None] * theta")
    if "only one element tensors can be converted" in text or "must be real number, not Tensor" in text:
        return ("math.cos, math.sin, math.pow or float() got a tensor of many numbers; they take one number. "
                "Use torch.cos and torch.sin (or angles.cos(), angles.sin()), which work on whole tensors")
    if "values to unpack" in text:
        return (f"x is 4-D, (batch, heads, seq_len, d) = {shape}, so unpacking x.shape into another number of "
                "names fails: take d = x.shape[-1] and seq_len = x.shape[-2], which work for any number of axes")
    return None


def rope_pairing(out, x, positions, base: float = 10000.0) -> str | None:
    """``"half"`` or ``"interleaved"``: the pairing in which ``out`` is ``x`` rotated right (None if neither)."""
    for pairing in ROPE_PAIRINGS:
        if _rope_close(out, rope_reference(x, positions, base, pairing=pairing)):
            return pairing
    return None


def _rope_what_is_wrong(out, x, positions, base) -> str:
    """The named mistake behind a wrong ``out``, or what the result shows (a rotation by wrong angles, or none)."""
    import math

    import torch

    for pairing in ROPE_PAIRINGS:  # judged at float32's resolution, as the right answer (_rope_close)
        named = first_match(out.float(), rope_mistakes(x, positions, base, pairing), "")
        if named:
            return named
    xd, od = x.detach().double(), out.detach().double()
    d, p = x.shape[-1], torch.as_tensor(positions)
    for pairing in ROPE_PAIRINGS:
        a, b = _rope_pairs(xd, pairing)
        ra, rb = _rope_pairs(od, pairing)
        if not _rope_close((ra ** 2 + rb ** 2).sqrt(), (a ** 2 + b ** 2).sqrt()):
            continue
        dims = tuple(range(a.dim() - 2))
        turned = torch.atan2((a * rb - b * ra).sum(dims), (a * ra + b * rb).sum(dims))  # (seq_len, d/2)
        want = _rope_angles(p, d, base)
        gap = torch.remainder(turned - want + math.pi, 2 * math.pi) - math.pi
        m, i = divmod(int(gap.abs().argmax()), d // 2)
        layout = "halves (i, i + d/2)" if pairing == "half" else "neighbouring pairs (2i, 2i+1)"
        return (f"your result is a rotation of the {layout}, but by the wrong angles: pair i = {i} of the token at "
                f"position {int(p[m])} turned by {float(turned[m, i]):.4f} rad, where positions[m] * theta_i = "
                f"{int(p[m])} * {base} ** (-2*{i}/{d}) = {float(want[m, i]):.4f} rad (mod 2 pi). Check the "
                "frequencies theta_i = base ** (-2i / d) and the angles positions[m] * theta_i")
    return ("your result is not a rotation of x: some pairs changed length, in either pairing ((i, i + d/2) or "
            f"(2i, 2i+1)). Each pair must turn by one angle: {_ROPE_FORMULA['half']} (or, for neighbours, "
            f"{_ROPE_FORMULA['interleaved']}), with cos and sin of the same angle positions[m] * theta_i")


def rope_check(apply_rope, x, positions, base: float = 10000.0) -> str:
    """Check ``apply_rope(x, positions, base)``; return the pairing it uses (``"half"`` or ``"interleaved"``).

    The function runs on copies of ``x`` and ``positions``, so that a change made to them in place is
    seen (and named) apart from the values, which are judged against the untouched ``x``. Errors it
    raises, a wrong type, shape or dtype, and wrong values become sentences that name the mistake
    (:func:`rope_mistakes`, either pairing).

    Raises:
        AssertionError: the answer is wrong; the message says how.
        NotImplementedError: the stub.
    """
    import torch

    setting = _rope_setting(x, positions, base)
    x_in, p_in = x.clone(), torch.as_tensor(positions).clone()
    try:
        out = apply_rope(x_in, p_in, base)
    except Exception as error:  # noqa: BLE001 - named when it is a typical one, else the inputs and the convention
        if type(error).__name__ in _PASS_THROUGH or isinstance(error, NotImplementedError):
            raise
        sentence = _rope_error_sentence(error, x) or (
            "check the shapes: the angles are a (seq_len, d/2) table positions[:, None] * theta, and cos and sin "
            "(seq_len, d) broadcast against x")
        raise AssertionError(f"apply_rope stopped with an error: {sentence} ({setting}) {_torch_error(error)}") from None
    shape = tuple(x.shape)
    if isinstance(out, (tuple, list)):
        raise AssertionError(f"apply_rope must return one tensor shaped like x {shape}; yours returned a "
                             f"{describe(out)}: join the rotated halves into one tensor, torch.cat([x1', x2'], dim=-1)")
    tensor(out, "apply_rope")
    if tuple(out.shape) != shape:
        both = (" (only one half: return both halves, torch.cat([x1', x2'], dim=-1))"
                if tuple(out.shape) == shape[:-1] + (shape[-1] // 2,) else "")
        raise AssertionError(f"apply_rope must return x's shape {shape}; yours has shape {tuple(out.shape)}{both}")
    if out.dtype != x.dtype:
        why = (" A tensor made without a dtype (torch.empty(x.shape), torch.zeros(...)) is float32, and so are "
               "angles made with .float(): make new tensors with x's dtype (torch.empty_like(x)) or cast the result "
               "with .to(x.dtype)" if x.dtype == torch.float64 else
               " cos and sin computed in float64 turn x * cos into float64: cast them with .to(x.dtype)")
        raise AssertionError(f"apply_rope must keep x's dtype, {x.dtype}; yours returned {out.dtype} ({setting})." + why)
    pairing = rope_pairing(out, x, positions, base)
    if not torch.equal(x_in, x):
        values = ("apply_rope changed its input x in place: your values are right, but" if pairing else
                  "apply_rope changed its input x in place, and its values are wrong too "
                  f"({_rope_what_is_wrong(out, x, positions, base)}). In place,")
        raise AssertionError(
            f"{values} the caller's x (the queries or the keys) is rotated too, and rotating it again "
            "rotates twice. Compute the result in new tensors: x[..., :d//2] and "
            "x[..., d//2:] are views of x, so writing into them (x[..., :d//2] = ..., x1.mul_(...), x *= ...) "
            f"writes into x ({setting})")
    if pairing:
        return pairing
    raise AssertionError(f"apply_rope gives wrong values ({setting}): {_rope_what_is_wrong(out, x, positions, base)}")


def rope_ok(pairing: str) -> str:
    """The success message of the RoPE check: which convention the student used, and that the other is equivalent."""
    other = "interleaved" if pairing == "half" else "half"
    return (f"apply_rope: OK. You paired {ROPE_PAIRINGS[pairing]}. The other convention, {ROPE_PAIRINGS[other]}, "
            "is equally right: it is the same rotation once the output features of W_q and W_k are permuted "
            "(Hugging Face's conversion of Meta's LLaMA weights permutes them, so that rotate_half computes the "
            "same scores). Use one convention throughout a model.")


def rope_earlier(apply_rope, x, positions, base: float = 10000.0, *, later: str = "rope_attention") -> str:
    """Run :func:`rope_check` for a later exercise: if apply_rope is wrong, fail naming it (exercise 4) and how.

    Returns:
        The pairing apply_rope uses, for the later exercise's reference.
    """
    try:
        return rope_check(apply_rope, x, positions, base)
    except AssertionError as error:
        raise AssertionError(f"{later} uses your apply_rope (exercise 4), which is wrong on these inputs: fix "
                             f"apply_rope first (run its check), then run this check again. What is wrong: {error}") from None


def rope_attention_reference(q, k, v, positions, base: float = 10000.0, *, rotate=("q", "k"),
                             causal: bool = True, scale: bool = True, pairing: str = "half", divisor=None,
                             allowed: str = "tril", fill: float = float("-inf"), mask_after: bool = False,
                             dim: int = -1, rope_base=None):
    """Causal attention after rotating queries and keys with :func:`rope_reference` (the RoPE checks' reference).

    Args:
        q, k, v: ``(batch, heads, seq_len, d)``.
        positions: ``(seq_len,)``.
        rotate: which of ``"q"``, ``"k"``, ``"v"`` are rotated (correct: queries and keys only).
        causal: apply the causal mask (query ``i`` sees keys ``j <= i``).
        scale: divide the scores by ``sqrt(d)``.
        pairing: the pairing of :func:`rope_reference` (either is right, if apply_rope uses it).
        divisor: divide the scores by this instead (a typical mistake: ``d``, ``sqrt(heads)``).
        allowed: the mask's allowed pairs, ``"tril"`` (correct: ``j <= i``) or ``"triu"`` (``j >= i``).
        fill: the value of the blocked scores (correct: ``-inf``).
        mask_after: zero the blocked weights after the softmax instead.
        dim: the softmax's axis (correct: ``-1``, the keys).
        rope_base: the base of the rotation, if not ``base`` (10000: base not passed on).

    Returns:
        ``(batch, heads, seq_len, d)``.
    """
    import math

    import torch

    rb = base if rope_base is None else rope_base
    q, k, v = (rope_reference(t, positions, rb, pairing=pairing) if name in rotate else t
               for name, t in (("q", q), ("k", k), ("v", v)))
    n, d = q.shape[-2], q.shape[-1]
    scores = q @ k.transpose(-2, -1) / (divisor if divisor is not None else math.sqrt(d) if scale else 1.0)
    keep = torch.ones(n, n, dtype=torch.bool)
    keep = keep.tril() if allowed == "tril" else keep.triu()
    if causal and not mask_after:
        scores = scores.masked_fill(~keep, fill)
    weights = torch.softmax(scores, dim=dim)
    if causal and mask_after:
        weights = weights * keep
    return weights @ v


def rope_attention_mistakes(q, k, v, positions, base: float = 10000.0, pairing: str = "half") -> dict:
    """Explanation -> the output of :func:`rope_attention_reference` with that mistake (apply_rope in ``pairing``)."""
    import math

    heads, n, d = q.shape[-3], q.shape[-2], q.shape[-1]

    def ref(**change):
        return lambda: rope_attention_reference(q, k, v, positions, base, pairing=pairing, **change)

    mistakes = {
        "you rotated the VALUES too: RoPE rotates only the queries and the keys (it is there to make the SCORE "
        "depend on the distance); the values are averaged as they are": ref(rotate=("q", "k", "v")),
        "you rotated the values, and the keys are not rotated: rotate the queries and the keys with apply_rope and "
        "leave the values as they are": ref(rotate=("q", "v")),
        "the keys are not rotated: rotate both the queries and the keys with apply_rope": ref(rotate=("q",)),
        "the queries are not rotated: rotate both the queries and the keys with apply_rope": ref(rotate=("k",)),
        "nothing is rotated: call apply_rope on the queries and on the keys before the scores": ref(rotate=()),
        "the causal mask is missing: token i may only attend to tokens j <= i; set the other scores to -inf "
        "before the softmax": ref(causal=False),
        "your mask lets token i see the tokens after it (j >= i) and hides those before it: the causal mask keeps "
        "j <= i, allowed = torch.ones(n, n, dtype=torch.bool).tril()": ref(allowed="triu"),
        "the masked scores were set to 0, and a score of 0 still gets weight after the softmax: set them to -inf, "
        "scores.masked_fill(~allowed, float('-inf'))": ref(fill=0.0),
        "you applied the mask after the softmax: the weights of the blocked keys were zeroed, so the rows no longer "
        "sum to 1; set the blocked scores to -inf before the softmax": ref(mask_after=True),
        "the scores are not divided by sqrt(d)": ref(scale=False),
        f"the scores were divided by d = {d} instead of sqrt(d) = {math.sqrt(d):.4g}": ref(divisor=float(d)),
        f"the scores were divided by sqrt({heads}), the square root of the number of heads (q.shape[1]): d is "
        "the size of one head, q.shape[-1]": ref(divisor=math.sqrt(heads)),
        f"the scores were divided by sqrt(seq_len) = sqrt({n}): d is the size of one head, q.shape[-1]":
            ref(divisor=math.sqrt(n)),
        "the softmax ran over the queries (dim=-2): each query's weights over the keys must sum to 1, "
        "torch.softmax(scores, dim=-1)": ref(dim=-2),
    }
    if float(base) != 10000.0:
        mistakes[f"you did not pass base on to apply_rope: apply_rope(q, positions) uses its default 10000, but "
                 f"this call has base = {base}; write apply_rope(q, positions, base) and the same for k"] = \
            ref(rope_base=10000.0)
    return mistakes


def rope_attention_check(rope_attention, apply_rope, q, k, v, positions, base: float = 10000.0):
    """Check ``rope_attention(q, k, v, positions, base)`` (exercise 5); return its output.

    First checks apply_rope on these queries (:func:`rope_earlier`), which names exercise 4 when that
    one is wrong and gives the pairing apply_rope uses: the reference rotates with the same pairing,
    so either convention is right if used throughout. The function runs on copies of its inputs.
    """
    import torch

    pairing = rope_earlier(apply_rope, q, positions, base)
    setting = (f"q, k, v are (batch, heads, seq_len, d) = {tuple(q.shape)} ({q.dtype}), "
               + _rope_setting(q, positions, base).split("), ", 1)[1])
    copies = [t.clone() for t in (q, k, v)]
    try:
        out = rope_attention(*copies, torch.as_tensor(positions).clone(), base)
    except Exception as error:  # noqa: BLE001
        if type(error).__name__ in _PASS_THROUGH or isinstance(error, NotImplementedError):
            raise
        raise AssertionError(
            "rope_attention stopped with an error: the shapes do not fit together. q and k are (batch, heads, "
            "seq_len, d): the scores are q @ k.transpose(-2, -1), which swaps only the last two axes of k (k.T "
            "reverses all four axes of a 4-D tensor), and the causal mask is (seq_len, seq_len) "
            f"({setting}) {_torch_error(error)}") from None
    if isinstance(out, (tuple, list)):
        raise AssertionError(f"rope_attention must return only the output, one tensor {tuple(q.shape)}; yours "
                             f"returned a {describe(out)}: leave the attention weights out")
    tensor(out, "rope_attention", shape=tuple(q.shape))
    assert out.dtype == q.dtype, f"rope_attention must keep the dtype of q, {q.dtype}; yours returned {out.dtype}"
    changed = [name for name, copy, t in zip("qkv", copies, (q, k, v)) if not torch.equal(copy, t)]
    assert not changed, (f"rope_attention changed its input {' and '.join(changed)} in place: rotate into new "
                         "tensors (q = apply_rope(q, positions, base) rebinds the name, it does not write into q)")
    expected = rope_attention_reference(q, k, v, positions, base, pairing=pairing)
    if _rope_close(out, expected):
        return out
    gap = f"rope_attention differs from causal attention with RoPE ({setting})"
    nan_rows = torch.isnan(out).flatten(0, -3).any(0).any(-1)  # (seq_len,): which queries got NaN
    if nan_rows.any():
        if nan_rows[-1] and not nan_rows[0]:
            raise AssertionError(
                f"{gap}: the causal mask is inverted: the last token's scores were all -inf (its softmax is NaN) "
                "because you blocked j <= i and allowed j > i. Token i may attend to tokens j <= i: allowed = "
                "torch.ones(n, n, dtype=torch.bool).tril(), then scores.masked_fill(~allowed, float('-inf'))")
        if nan_rows[0]:
            raise AssertionError(
                f"{gap}: the first token got NaN: all its scores are -inf, so your mask does not let a token see "
                "itself. Token i may attend to tokens j <= i, itself included: torch.ones(n, n, "
                "dtype=torch.bool).tril() (not tril(-1)), and fill the scores where it is False")
        raise AssertionError(f"{gap}: the output contains NaN: some query had every score at -inf")
    named = first_match(out.float(), rope_attention_mistakes(q, k, v, positions, base, pairing), "")
    raise AssertionError(f"{gap}: " + (named or (
        "rotate q and k with apply_rope(t, positions, base), scores q @ k.transpose(-2, -1) / sqrt(d), the "
        "causal mask (-inf where j > i) before the softmax over the keys (dim=-1), then multiply by v")))

"""Check helpers of Chapter 7's exercise notebook (the whole Transformer on the date task).

The check cells of ``solutions/ch07_transformer_on_dates/transformer_on_dates.ipynb`` import this
module next to :mod:`attention_course.grading.checks` (whose shared helpers it uses: :func:`~attention_course.grading.checks.run`,
:func:`~attention_course.grading.checks.close`, :func:`~attention_course.grading.checks.first_match`,
:func:`~attention_course.grading.checks.mask_mistake`, :func:`~attention_course.grading.checks.earlier`). For each
exercise it holds the reference the checks compare with and the typical wrong answers, computed, so
that a failing check names the student's mistake instead of printing a difference:

* cross-attention with a padding mask built from the source lengths (:func:`cross_attention_reference`,
  :func:`cross_attention_mistakes`);
* the learning rate of Vaswani et al. 2017, Eq. 3 (:func:`noam_reference`, :func:`noam_mistakes`), and the
  course's warm-up followed by a linear decay (:func:`linear_warmup_reference`,
  :func:`linear_warmup_mistakes`), both as :mod:`attention_course.models.date_transformer` computes them;
* the label-smoothed cross-entropy over the real target positions (:func:`smoothing_reference`,
  :func:`smoothing_mistakes`), with the chapter's convention: ``epsilon / V`` on every class;
* greedy decoding with a KV cache (:class:`RecordingDecoder`, :func:`check_greedy`): a small
  :class:`attention_course.models.date_transformer.DateTransformer` whose decoder step records how it was
  called, so that the check can say which call was wrong.

Masks follow the course: a boolean mask is True where a query MAY attend. PyTorch's
``nn.MultiheadAttention`` reads its boolean ``attn_mask`` and ``key_padding_mask`` the other way round
(True = NOT allowed), so the reference hands it ``~real``; ``F.scaled_dot_product_attention``'s boolean
``attn_mask`` means True = may attend, as the course's masks do.

Every check helper raises ``AssertionError`` (what a failing check raises) or returns normally.
"""
from __future__ import annotations

import math

import numpy as np

from attention_course.grading import checks
from attention_course.grading.messages import Text, tr


# ---------------------------------------------------------------------------- shared
def unchanged(name: str, before, after) -> None:
    """Fail if the function changed one of its inputs in place (the check passed it a copy)."""
    import torch

    for i, (b, a) in enumerate(zip(before, after)):
        if isinstance(b, torch.Tensor) and not (b.shape == a.shape and torch.equal(b, a)):
            raise AssertionError(tr("{name} changed its argument number {i} in place (for example with masked_fill_ or +=): "
                                    "the caller's tensor is no longer what it passed. Work on new tensors (masked_fill "
                                    "without the underscore, x = x + ...) instead", name=name,
                                    i=i + 1))


# ---------------------------------------------------------------------------- exercise 1: cross-attention
def real_positions(source_lengths, T: int):
    """Bool ``(B, T)``: True at the real (non-padding) source positions, ``j < source_lengths[b]``."""
    import torch

    return torch.arange(T)[None, :] < torch.as_tensor(source_lengths)[:, None]


def cross_attention_reference(queries, memory, W_q, W_k, W_v, W_o, num_heads: int, source_lengths):
    """Multi-head cross-attention computed by ``torch.nn.MultiheadAttention``: the exercise's reference.

    Queries come from the decoder, keys and values from the encoder's memory; padded source positions
    are left out with ``key_padding_mask``. PyTorch's boolean masks mean True = NOT allowed (the
    opposite of the course's), so it gets ``~real``.

    Args:
        queries: ``(B, L, d)``; memory: ``(B, T, d)``; W_*: ``(d, d)`` multiplying rows (``x @ W``).
        num_heads: heads of width ``d // num_heads``.
        source_lengths: ``(B,)`` real source positions of each row, ``1 .. T``.

    Returns:
        ``(output, weights)``: ``(B, L, d)`` and ``(B, num_heads, L, T)``, in ``queries``' dtype.
    """
    import torch

    d = queries.shape[-1]
    mha = torch.nn.MultiheadAttention(d, num_heads, bias=False, batch_first=True, dtype=queries.dtype)
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.cat([W_q.T, W_k.T, W_v.T]))
        mha.out_proj.weight.copy_(W_o.T)
        real = real_positions(source_lengths, memory.shape[1])  # (B, T), True = real
        return mha(queries, memory, memory, key_padding_mask=~real, average_attn_weights=False)


def _cross(queries, memory, W_q, W_k, W_v, W_o, h, lengths, *, keys_from="memory", mask="keys", fill="-inf",
           scale="d_k", softmax_dim=-1, split="heads", merge="heads", use_W_o=True, length_shift=0):
    """Cross-attention written out, with one switch per typical mistake (float64; the wrong answers)."""
    import torch

    q, m = queries.double(), memory.double()
    Wq, Wk, Wv, Wo = (w.double() for w in (W_q, W_k, W_v, W_o))
    B, L, d = q.shape
    d_k = d // h
    source = m if keys_from == "memory" else q

    def heads(x):  # (B, n, d) -> (B, h, n, d_k)
        if split == "interleaved":
            return x.reshape(B, x.shape[1], d_k, h).permute(0, 3, 1, 2)
        if split == "no_transpose":
            return x.reshape(B, h, x.shape[1], d_k)
        return x.reshape(B, x.shape[1], h, d_k).transpose(1, 2)

    Q, K, V = heads(q @ Wq), heads(source @ Wk), heads(source @ Wv)
    scores = Q @ K.transpose(-2, -1) / {"d_k": math.sqrt(d_k), "d_model": math.sqrt(d), "none": 1.0}[scale]
    n_keys = K.shape[2]
    real = torch.arange(n_keys)[None, :] < (torch.as_tensor(lengths)[:, None] + length_shift)  # (B, n_keys)
    if mask == "keys":
        allowed = real[:, None, None, :]
    elif mask == "inverted":
        allowed = ~real[:, None, None, :]
    elif mask == "queries":
        allowed = (torch.arange(L)[None, :] < torch.as_tensor(lengths)[:, None])[:, None, :, None]
    else:
        allowed = None
    if mask == "after":
        weights = torch.softmax(scores, dim=softmax_dim) * real[:, None, None, :]
    else:
        if allowed is not None:
            scores = scores.masked_fill(~allowed, float("-inf") if fill == "-inf" else 0.0)
        weights = torch.softmax(scores, dim=softmax_dim)
    out = weights @ V  # (B, h, L, d_k)
    if merge == "no_transpose":
        out = out.reshape(B, L, d)
    else:
        out = out.transpose(1, 2).reshape(B, L, d)
    return (out @ Wo if use_W_o else out), weights


def cross_attention_mistakes(queries, memory, W_q, W_k, W_v, W_o, num_heads: int, source_lengths) -> dict:
    """Explanation -> ``(output, weights)`` of that mistake (for :func:`check_cross_attention`)."""
    args = (queries, memory, W_q, W_k, W_v, W_o, num_heads, source_lengths)

    def wrong(**kw):
        return lambda: _cross(*args, **kw)

    return {
        tr("the padding mask is over the wrong axis: you masked the QUERIES (the decoder's rows of the scores) instead of "
           "the KEYS. Padding is in the SOURCE, so the mask must hide key columns j >= source_lengths[b]: allowed = "
           "(torch.arange(T) < source_lengths[:, None])[:, None, None, :], shape (B, 1, 1, T)"):
            wrong(mask="queries"),
        tr("the mask is inverted: you set the REAL source positions to -inf and kept the padding. The course's masks are "
           "True where a query MAY attend (True = a real source position); PyTorch's nn.MultiheadAttention key_padding_mask "
           "means the opposite, which is why its users pass ~mask. Fill where the mask is False: "
           "scores.masked_fill(~allowed, float('-inf'))"):
            wrong(mask="inverted"),
        tr("the padding mask is applied AFTER the softmax (weights multiplied by the mask): the rows no longer sum to 1. Set "
           "the padded scores to -inf BEFORE the softmax"): wrong(mask="after"),
        tr("the padded scores were set to 0, not to -inf: a score of 0 still gets weight after the softmax. Use "
           "scores.masked_fill(~allowed, float('-inf'))"): wrong(fill="zero"),
        tr("there is no padding mask: the padded source positions get weight. Set their scores to -inf before the softmax"):
            wrong(mask="none"),
        tr("the keys and values come from the QUERIES (decoder): that is self-attention. In cross-attention the queries come "
           "from the decoder and the keys and values from the encoder's memory: K = memory @ W_k, V = memory @ W_v"):
            wrong(keys_from="queries"),
        tr("the scores are not divided by sqrt(d_k)"): wrong(scale="none"),
        tr("you divided by sqrt(d_model); divide by sqrt(d_k) with d_k = d_model // num_heads"): wrong(scale="d_model"),
        tr("the softmax runs over the wrong axis (over the queries, dim=-2): each query's weights over the source keys must "
           "sum to 1, softmax(scores, dim=-1)"): wrong(softmax_dim=-2),
        tr("the heads are split wrongly: reshape to (B, n, num_heads, d_k) and THEN transpose(1, 2), so that head h gets the "
           "consecutive columns h*d_k:(h+1)*d_k; yours interleaves them (reshape to (B, n, d_k, num_heads))"):
            wrong(split="interleaved"),
        tr("the heads are split wrongly: reshape(B, num_heads, n, d_k) without a transpose mixes positions into the heads; "
           "reshape to (B, n, num_heads, d_k), then transpose(1, 2)"): wrong(split="no_transpose"),
        tr("the heads are put back wrongly: transpose the output (B, h, L, d_k) to (B, L, h, d_k) before reshape(B, L, "
           "d_model)"): wrong(merge="no_transpose"),
        tr("the lengths are off by one: the mask keeps one padding position too many (j <= length). Source position j is "
           "real when j < source_lengths[b] (positions 0 .. length-1)"): wrong(length_shift=1),
        tr("the lengths are off by one: the mask hides the last real source position (j < length - 1). Source position j is "
           "real when j < source_lengths[b] (positions 0 .. length-1)"): wrong(length_shift=-1),
        tr("W_o is not applied: put the heads side by side, then multiply by W_o"): wrong(use_W_o=False),
    }


def check_cross_attention(cross_attention, B: int, L: int, T: int, d: int, h: int, lengths, seed: int,
                          dtype=None) -> None:
    """Run the student's ``cross_attention`` on one case and compare it with the reference, naming mistakes."""
    import torch

    dtype = dtype or torch.float32
    g = torch.Generator().manual_seed(seed)
    queries = torch.randn(B, L, d, generator=g, dtype=torch.float64).to(dtype)
    memory = (2 * torch.randn(B, T, d, generator=g, dtype=torch.float64)).to(dtype)
    W = [(torch.randn(d, d, generator=g, dtype=torch.float64) / math.sqrt(d)).to(dtype) for _ in range(4)]
    lengths = torch.tensor(lengths, dtype=torch.int64)
    args = (queries, memory, *W, h, lengths)
    copies = [a.clone() if isinstance(a, torch.Tensor) else a for a in args]
    shapes = (tr("queries (B, L, d_model) = {queries_shape}, memory (B, T, d_model) = {memory_shape}, W_q ... W_o ({d}, "
                 "{d}), num_heads = {h} (d_k = {d_h}), source_lengths = {lengths} ({dtype}); K and V come from the "
                 "memory, the padding mask is over the keys, (B, 1, 1, T)", queries_shape=tuple(queries.shape),
                 memory_shape=tuple(memory.shape), d=d, h=h, d_h=d // h, lengths=lengths.tolist(),
                 dtype=dtype))
    with torch.no_grad():
        result = checks.run("cross_attention", cross_attention, *copies, expect=shapes)
    unchanged("cross_attention", args, copies)
    assert isinstance(result, (tuple, list)) and len(result) == 2, (
        tr("cross_attention must return a pair (output, weights); yours returned a {result}",
           result=checks.describe(result)))
    out, weights = result
    checks.tensor(out, "cross_attention", shape=(B, L, d), dtype=dtype)
    if isinstance(weights, torch.Tensor) and tuple(weights.shape) in ((B, L, T), (B, T)):
        raise AssertionError(tr("cross_attention must return one weight map per head, (B, num_heads, L, T) = {want_shape}; yours "
                                "has shape {weights_shape}: do not average the heads",
                                want_shape=(B, h, L, T), weights_shape=tuple(weights.shape)))
    checks.tensor(weights, "cross_attention (as its weights)", shape=(B, h, L, T), dtype=dtype)
    want_out, want_w = cross_attention_reference(*args)
    if checks.close(out, want_out) and checks.close(weights, want_w):
        return
    mistakes = cross_attention_mistakes(*args)
    named = checks.first_match(weights, {k: (lambda f=f: f()[1]) for k, f in mistakes.items()}, "", equal_nan=True)
    if named and checks.first_match(out, {named: lambda: mistakes[named]()[0]}, "", equal_nan=True):
        raise AssertionError(f"cross_attention ({shapes}): {named}")
    named = checks.first_match(out, {k: (lambda f=f: f()[0]) for k, f in mistakes.items()}, "", equal_nan=True)
    if named:
        raise AssertionError(f"cross_attention ({shapes}): {named}")
    allowed = real_positions(lengths, T)[:, None, None, :]
    masking = checks.mask_mistake(weights, allowed, fill_hint="scores.masked_fill(~allowed, float('-inf'))")
    if masking:
        raise AssertionError(f"cross_attention's weights ({shapes}): {masking}")
    if not checks.close(weights, want_w):
        raise AssertionError(
            tr("cross_attention's weights differ from the reference by {difference:.2e} ({shapes}): softmax(Q K^T / "
               "sqrt(d_k)) over the keys, Q = queries @ W_q, K = memory @ W_k, heads as consecutive column slices, the "
               "padded keys set to -inf before the softmax", difference=(weights - want_w).abs().max().item(),
               shapes=shapes))
    raise AssertionError(
        tr("cross_attention's weights are right, but its output differs from the reference by {difference:.2e} ({shapes}): "
           "multiply the weights by V = memory @ W_v (split into heads), put the heads back side by side (transpose(1, 2), "
           "reshape(B, L, d_model)), then multiply by W_o", difference=(out - want_out).abs().max().item(),
           shapes=shapes))


# ---------------------------------------------------------------------------- exercises 2 and 3: learning rates
def noam_reference(step, d_model: int, warmup: int, *, branch="min", d_power=-0.5, ramp_power=-1.5,
                   decay_power=-0.5, shift=0):
    """Vaswani et al. 2017, Eq. 3 (:func:`attention_course.training.date_training.noam_lr`), with switches for mistakes."""
    s = np.asarray(step, dtype=np.float64) + shift
    with np.errstate(all="ignore"):
        ramp, decay = s * float(warmup) ** ramp_power, s ** decay_power
        both = {"min": np.minimum(ramp, decay), "max": np.maximum(ramp, decay), "ramp": ramp, "decay": decay}[branch]
        return float(d_model) ** d_power * both


def noam_mistakes(step, d_model: int, warmup: int) -> dict:
    """Explanation -> the learning rates of that mistake (for :func:`checks.first_match`)."""
    def wrong(**kw):
        return lambda: noam_reference(step, d_model, warmup, **kw)

    return {
        tr("you took the max of the two branches: Eq. 3 takes the MIN, d_model**-0.5 * min(step**-0.5, step * warmup**-1.5), "
           "so the rate rises during the warm-up and falls after it"): wrong(branch="max"),
        tr("the steps are counted from 0 (you used step - 1): Eq. 3 counts them from 1, and the first step's rate is "
           "d_model**-0.5 * warmup**-1.5, not 0"): wrong(shift=-1),
        tr("the steps are off by one (you used step + 1): use the step as given, counted from 1"): wrong(shift=1),
        tr("the factor d_model**-0.5 is missing"): wrong(d_power=0.0),
        tr("the factor is d_model**0.5 (the embeddings' scale); the rate has d_model**-0.5"): wrong(d_power=0.5),
        tr("the warm-up branch has warmup**-0.5; it is step * warmup**-1.5 (the exponents -1.5 and -0.5 are mixed up), so "
           "that the two branches meet at step = warmup"): wrong(ramp_power=-0.5),
        tr("the decay branch has step**-1.5; it is step**-0.5 (the exponents -1.5 and -0.5 are mixed up)"):
            wrong(decay_power=-1.5),
        tr("the rate never decays: after the warm-up it must fall like step**-0.5 (min of the two branches)"):
            wrong(branch="ramp"),
        tr("there is no warm-up: for step < warmup the rate must grow linearly, step * warmup**-1.5 (min of the two "
           "branches; a warmup**1.5 without the minus sign also loses the warm-up)"): wrong(branch="decay"),
    }


def linear_warmup_reference(step, d_model: int, warmup: int, total_steps: int, *, ramp=True, start="warmup",
                            end="after", clip=True, combine="min", shift=0, d_power=-0.5, decay="linear"):
    """The course's schedule (``scheduled_lr`` with ``decay="linear"``), with switches for mistakes."""
    s = np.asarray(step, dtype=np.float64) + shift
    peak = float(d_model) ** d_power * float(warmup) ** -0.5
    up = (np.minimum(1.0, s / warmup) if combine == "min" else s / warmup) if ramp else np.ones_like(s)
    if decay == "eq3":
        with np.errstate(all="ignore"):
            return noam_reference(s, d_model, warmup)
    if start == "one":  # a straight line from step 1
        fall = (total_steps - s + 1) / total_steps
    elif end == "after":
        fall = (total_steps - s + 1) / (total_steps - warmup + 1)
    else:
        fall = (total_steps - s) / (total_steps - warmup)
    if clip:
        fall = np.clip(fall, 0.0, 1.0)
    lr = peak * (np.minimum(up, fall) if combine == "min" else up * fall)
    return lr


def linear_warmup_mistakes(step, d_model: int, warmup: int, total_steps: int) -> dict:
    """Explanation -> the learning rates of that mistake."""
    def wrong(**kw):
        return lambda: linear_warmup_reference(step, d_model, warmup, total_steps, **kw)

    return {
        tr("the decay does not start after the warm-up: yours falls from step 1 on. The straight line goes from the peak at "
           "step warmup to 0 after the last step: (total_steps - step + 1) / (total_steps - warmup + 1)"):
            wrong(start="one"),
        tr("the rate is already 0 AT the last step (off by one at the end), so the last update is wasted: it must reach 0 "
           "only AFTER step total_steps, (total_steps - step + 1) / (total_steps - warmup + 1)"):
            wrong(end="at"),
        tr("after total_steps the rate goes negative: clip the decay at 0 (np.clip(..., 0, 1) or np.maximum(..., 0))"):
            wrong(clip=False),
        tr("you multiplied the warm-up by the decay; take the smaller of the two (np.minimum): during the warm-up the rate "
           "is Eq. 3's, after it the straight line"): wrong(combine="product"),
        tr("after the warm-up your rate follows Eq. 3's decay (step**-0.5): the course replaces it by a straight line to 0 "
           "after the last step"): wrong(decay="eq3"),
        tr("there is no warm-up: the first steps have the peak rate. For step <= warmup the rate is Eq. 3's warm-up, "
           "noam_lr(step, d_model, warmup)"): wrong(ramp=False),
        tr("the steps are counted from 0 (you used step - 1): they are counted from 1"): wrong(shift=-1),
        tr("the peak lacks the factor d_model**-0.5: the peak is noam_lr(warmup, d_model, warmup) = (d_model * warmup)**-0.5"):
            wrong(d_power=0.0),
    }


def _scalar(value):
    """A float from a Python or NumPy number or a 0-d array; None otherwise."""
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "fi":
        return float(value)
    if hasattr(value, "detach") and getattr(value, "ndim", 1) == 0:
        return float(value)
    return None


def check_schedule(name: str, function, args: tuple, reference, mistakes, *, promise: str) -> None:
    """Check a learning-rate function on one step (an int) and on arrays of steps (int64, int32, float64).

    ``args`` are the arguments after ``step``; ``reference(step, *args)`` and ``mistakes(step, *args)``
    give the right rates and the wrong answers. A function that takes one step but not an array is told
    why (Python's ``min`` or an ``if`` on an array).
    """
    steps = np.array(sorted({1, 2, args[1] - 1, args[1], args[1] + 1, 2 * args[1] + 3}
                            | ({args[2] - 1, args[2], args[2] + 1, args[2] + 5} if len(args) > 2 else set())))
    steps = steps[steps >= 1]
    expect = tr("{call} with {promise}", call=f"{name}(step, {', '.join(map(str, args))})", promise=promise)
    for one in (1, int(args[1]), int(steps[-1])):
        got = checks.run(name, function, one, *args, expect=expect + tr("; here step = {one}, a Python int", one=one))
        value = _scalar(got)
        assert value is not None, (tr("{name} must return a number (a float) for one step; for step = {one} yours returned a "
                                      "{got}", name=name, one=one,
                                      got=checks.describe(got)))
        want = float(reference(one, *args))
        if not checks.close(value, want, atol=0.0, reduction=4):
            try:  # the student's rates at every test step, one call each, tell the mistakes apart best
                values = np.array([_scalar(function(int(s), *args)) for s in steps], dtype=float)
                named = checks.first_match(values, mistakes(steps, *args), "", atol=0.0, reduction=4)
            except Exception:  # noqa: BLE001 - then judge this one step
                named = ""
            named = named or checks.first_match(
                value, {k: (lambda f=f: float(f())) for k, f in mistakes(one, *args).items()}, "", atol=0.0, reduction=4)
            raise AssertionError(f"{name}(step={one}, {', '.join(map(str, args))}) = {value:.6g}, expected {want:.6g}"
                                 + (f": {named}" if named else ""))
    for dtype in (np.int64, np.int32, np.float64):
        array = steps.astype(dtype)
        try:
            got = function(array.copy(), *args)
        except NotImplementedError:
            raise
        except Exception as error:  # noqa: BLE001 - named below
            text = f"{type(error).__name__}: {str(error).strip().splitlines()[0][:120] if str(error).strip() else ''}"
            raise AssertionError(
                tr("{name} works for one step but stopped with an error for a NumPy array of steps ({steps_dtype}): Python's "
                   "min() or max(), an `if step < warmup`, or math.sqrt cannot work element by element. Use np.minimum / "
                   "np.maximum / np.clip and ** on the whole array [Python said: {text}]", name=name,
                   steps_dtype=array.dtype, text=text)) from None
        assert isinstance(got, np.ndarray), (
            tr("{name} must return a NumPy array for an array of steps; yours returned a {got}", name=name,
               got=checks.describe(got)))
        assert got.shape == array.shape, (
            tr("{name} must return one rate per step, shape {want_shape}; yours has shape {got_shape}", name=name,
               want_shape=array.shape, got_shape=got.shape))
        assert got.dtype.kind == "f", (
            tr("{name} must return floats for steps of dtype {steps_dtype}; yours has dtype {dtype}", name=name,
               steps_dtype=array.dtype, dtype=got.dtype))
        want = reference(array, *args)
        if not checks.close(got, want, atol=0.0, reduction=4):
            bad = int(np.argmax(np.abs(got - want) / np.maximum(np.abs(want), 1e-300)))
            named = checks.first_match(got, mistakes(array, *args), "", atol=0.0, reduction=4)
            raise AssertionError(
                tr("{name} for the steps {steps} ({steps_dtype}): at step {step} yours is {got:.6g}, "
                   "expected {want:.6g}", name=name, steps=array.tolist(), steps_dtype=array.dtype,
                   step=array[bad], got=got[bad], want=want[bad]) + (f": {named}" if named else
                                                tr("; a dtype or overflow problem? convert the steps with np.asarray(step, "
                                                   "dtype=float)")))


# ---------------------------------------------------------------------------- exercise 4: label smoothing
def smoothing_reference(logits, targets, epsilon: float, pad: int = 0, *, spread="V", pad_mode="exclude",
                        vocab_reduce="sum", positions="mean", log="log_softmax", sign=1.0, on_logits=False,
                        right=None):
    """Label-smoothed cross-entropy averaged over the real target positions, with switches for mistakes.

    Correct: ``q = (1 - eps) onehot + eps / V`` (the chapter's Eq. ``eq-ch7-smoothing``: ``eps / V`` on every
    class, the right one included), ``L = -sum_v q(v) log_softmax(z)_v``, mean over positions with
    ``targets != pad``. Equals ``F.cross_entropy(logits[keep], targets[keep], label_smoothing=eps)``.
    """
    import torch
    import torch.nn.functional as F

    z = logits.detach().double()
    V = z.shape[-1]
    if on_logits:
        z = (1 - epsilon) * z + epsilon / V
        epsilon = 0.0
    if log == "log_softmax":
        logp = F.log_softmax(z, dim=-1)
    elif log == "probabilities":
        logp = torch.softmax(z, dim=-1)
    else:
        logp = torch.log(torch.softmax(z, dim=-1))
    onehot = F.one_hot(targets, V).double()
    if spread == "V":
        q = (1 - epsilon) * onehot + epsilon / V
    elif spread == "V-1":
        q = (1 - epsilon) * onehot + (1 - onehot) * epsilon / (V - 1)
    elif spread == "none":
        q = (1 - epsilon) * onehot
    elif spread == "swapped":
        q = epsilon * onehot + (1 - epsilon) / V
    else:
        raise ValueError(spread)
    per = -(q * logp)
    per = per.sum(-1) if vocab_reduce == "sum" else per.mean(-1)  # (B, L)
    keep = targets != pad
    if pad_mode == "include":
        keep = torch.ones_like(keep)
    elif pad_mode == "zero_id":
        keep = targets != 0
    if positions == "mean":
        loss = per[keep].mean()
    elif positions == "all":
        loss = (per * keep).sum() / keep.numel()
    else:
        loss = per[keep].sum()
    return (sign * loss).to(logits.dtype)


def smoothing_mistakes(logits, targets, epsilon: float, pad: int = 0) -> dict:
    """Explanation -> the loss of that mistake."""
    def wrong(**kw):
        return lambda: smoothing_reference(logits, targets, epsilon, pad, **kw)

    return {
        tr("you spread epsilon over the V - 1 WRONG classes (eps / (V - 1) each, 1 - eps on the right one). That is another "
           "convention; this exercise follows the chapter, Szegedy et al. and F.cross_entropy(label_smoothing=): eps / V on "
           "EVERY class, the right one included, so the right class gets 1 - eps + eps / V"):
            wrong(spread="V-1"),
        tr("the padding positions are not left out: average only over the positions where targets != pad"):
            wrong(pad_mode="include"),
        tr("the padding positions count in the average (their loss is zeroed but you divided by all B * L positions): divide "
           "by the number of REAL target positions, (targets != pad).sum()"): wrong(positions="all"),
        tr("the pad argument is ignored (you left out id 0): leave out the positions where targets == pad"):
            wrong(pad_mode="zero_id"),
        tr("you took the mean over the vocabulary; the cross-entropy is a SUM over the V classes, -(q * log_p).sum(-1), then "
           "a mean over the real positions"): wrong(vocab_reduce="mean"),
        tr("you summed over the positions; the loss is the MEAN over the real target positions"): wrong(positions="sum"),
        tr("the sign is wrong: the loss is MINUS sum_v q(v) log p(v), a positive number"): wrong(sign=-1.0),
        tr("there is no smoothing: this is the plain cross-entropy. The target is (1 - eps) * onehot + eps / V"):
            lambda: smoothing_reference(logits, targets, 0.0, pad),
        tr("you smoothed the LOGITS ((1 - eps) * z + eps / V); smooth the TARGET distribution instead, q = (1 - eps) * "
           "onehot + eps / V, and keep log_softmax(z)"): wrong(on_logits=True),
        tr("the smoothed target does not sum to 1: you put 1 - eps on the right class but forgot eps / V on every class"):
            wrong(spread="none"),
        tr("epsilon and 1 - epsilon are swapped: the right class gets 1 - eps (+ eps / V), the mass eps is spread over all V "
           "classes"): wrong(spread="swapped"),
        tr("you used the probabilities where the LOG-probabilities belong: L = -sum_v q(v) log p(v), with log p = "
           "F.log_softmax(logits, dim=-1)"): wrong(log="probabilities"),
    }


def check_smoothing(label_smoothing_loss, B: int, L: int, V: int, epsilon: float, pad: int, lengths, seed: int,
                    dtype=None, scale: float = 2.0) -> None:
    """Run the student's ``label_smoothing_loss`` on one batch and compare it with the reference, naming mistakes."""
    import torch

    dtype = dtype or torch.float32
    g = torch.Generator().manual_seed(seed)
    logits = (scale * torch.randn(B, L, V, generator=g, dtype=torch.float64)).to(dtype)
    targets = torch.randint(0, V, (B, L), generator=g)
    targets[targets == pad] = (pad + 1) % V  # real positions never hold the pad id
    for b, n in enumerate(lengths):
        targets[b, n:] = pad
    shapes = (tr("logits (B, L, V) = {logits_shape} ({dtype}), targets (B, L) int64 with pad id {pad} at {padded} "
                 "position(s), epsilon = {epsilon}", logits_shape=tuple(logits.shape), dtype=dtype, pad=pad,
                 padded=int((targets == pad).sum()), epsilon=epsilon))
    given = logits.clone().requires_grad_(True)
    target_copy = targets.clone()
    loss = checks.run("label_smoothing_loss", label_smoothing_loss, given, target_copy, epsilon, pad, expect=shapes)
    unchanged("label_smoothing_loss", (targets,), (target_copy,))
    assert isinstance(loss, torch.Tensor), (
        tr("label_smoothing_loss must return a torch tensor (the training loop calls loss.backward()); yours returned a "
           "{loss}. Do not convert it with .item(), float() or NumPy", loss=checks.describe(loss)))
    assert loss.dim() == 0, (
        tr("label_smoothing_loss must return ONE number, a 0-d tensor: the mean over the real target positions; yours has "
           "shape {loss_shape}", loss_shape=tuple(loss.shape))
        + (tr(" (one loss per position: average them over the positions where targets != pad)") if loss.numel() > 1
           else tr(" (use .mean() or [0])")))
    assert loss.requires_grad, (
        tr("label_smoothing_loss's result does not depend on the logits for autograd (requires_grad is False): compute it "
           "from the logits with torch operations, without .detach(), .item(), torch.tensor(...) or NumPy"))
    assert loss.dtype == dtype, tr("label_smoothing_loss must return dtype {dtype} (the logits'); yours is {dtype_loss}",
                                   dtype=dtype, dtype_loss=loss.dtype)
    want = smoothing_reference(logits, targets, epsilon, pad)
    if not torch.isfinite(loss):
        unstable = smoothing_reference(logits, targets, epsilon, pad, log="log_of_softmax")
        hint = (tr("torch.log(torch.softmax(...)) underflows: the probability of a class far below the best is 0 in {dtype}, "
                   "and log(0) = -inf. Use F.log_softmax(logits, dim=-1), which computes z - logsumexp(z) without forming "
                   "the probabilities", dtype=dtype) if not torch.isfinite(unstable)
                else tr("check for a division by zero or a log of 0; use F.log_softmax(logits, dim=-1)"))
        raise AssertionError(tr("label_smoothing_loss returned {loss} for logits of size up to {largest_logit:.0f} ({shapes}): "
                                "{hint}", loss=loss.item(), largest_logit=logits.abs().max().item(),
                                shapes=shapes, hint=hint))
    if checks.close(loss, want):
        return
    named = checks.first_match(loss, smoothing_mistakes(logits, targets, epsilon, pad), "")
    raise AssertionError(f"label_smoothing_loss = {loss.item():.6g}, expected {want.item():.6g} ({shapes})"
                         + (f": {named}" if named else
                            tr(": -sum_v q(v) log_softmax(z)_v with q = (1 - eps) * onehot + eps / V, averaged over the "
                               "positions where targets != pad")))


# ---------------------------------------------------------------------------- exercise 5: greedy decoding
class RecordingDecoder:
    """The decoder step the greedy-decoding check hands to the student, recording every call.

    A small :class:`attention_course.models.date_transformer.DateTransformer` (random weights, one encoder and
    one decoder block, the paper's plain input) has encoded a random source batch once; a call

        ``logits, present = decoder.step(tokens, positions, past)``

    runs the decoder on the new ``tokens`` ``(B, n)`` at the absolute ``positions`` ``(n,)``, attending to
    the keys and values in ``past`` (``None`` or what the previous call returned as ``present``, which
    holds every position so far) and to the memory. ``logits`` is ``(B, n, V)``. Without a past and with
    the whole prefix, it is the DateTransformer's own teacher-forced ``decode`` (tests/test_ch07_exercises.py
    checks that), so cached decoding must give the same tokens as decoding without the cache.

    So that every row stops at its own, known time, the logit of ``EOS`` gets ``+gain`` at query position ``p >= stops[b] - 1``
    and ``-gain`` before (so row ``b`` writes EOS as its token number ``stops[b]``), and the
    padding and ``BOS`` ids are never the best token. The check reads ``calls``: one record per call.
    """

    BOS, EOS, PAD = 1, 2, 0

    def __init__(self, batch: int, stops, *, vocab: int = 11, d_model: int = 16, num_heads: int = 2,
                 source_len: int = 7, seed: int = 0, dtype=None, gain: float = 40.0):
        import torch

        from attention_course.models.date_transformer import TransformerConfig, build_transformer

        self.torch = torch
        dtype = dtype or torch.float32
        config = TransformerConfig(d_model=d_model, num_heads=num_heads, d_ff=2 * d_model, enc_layers=1,
                                   dec_layers=1, max_len=128, seed=seed)
        self.model = build_transformer(config, vocab, vocab).to(dtype).eval()
        g = torch.Generator().manual_seed(seed + 1000)
        with torch.no_grad():
            for p in self.model.parameters():  # larger weights than the init: varied, confident tokens
                p.add_(0.5 * torch.randn(p.shape, generator=g, dtype=torch.float64).to(dtype))
        self.batch, self.vocab, self.dtype, self.gain = batch, vocab, dtype, gain
        self.stops = torch.as_tensor(stops, dtype=torch.long)
        lengths = torch.randint(2, source_len + 1, (batch,), generator=g)
        lengths[0] = source_len
        src = torch.randint(3, vocab, (batch, source_len), generator=g)
        src[torch.arange(source_len)[None, :] >= lengths[:, None]] = 0
        with torch.no_grad():
            self.memory, self.mask, _ = self.model.encode(src, lengths)  # (B, T, d), (B, 1, 1, T)
        self.calls: list[dict] = []

    # the step, as the student calls it: the bound method ``decoder.step`` (the course's grader runs a
    # bound method of the checks in the checks' process, where it records the call; an instance would be copied)
    def step(self, tokens, positions, past=None):
        torch = self.torch
        record = {"tokens": tokens, "positions": positions, "past": None if past is None else self._past_len(past)}
        self.calls.append(record)
        tokens, positions = torch.as_tensor(tokens), torch.as_tensor(positions)
        if tokens.dim() != 2 or tokens.shape[0] != self.batch:
            raise ValueError(f"step: tokens must be (batch, n) = ({self.batch}, n) token ids; got shape "
                             f"{tuple(tokens.shape)}")
        if positions.dim() != 1 or positions.shape[0] != tokens.shape[1]:
            raise ValueError(f"step: positions must be (n,), one per new token; got shape {tuple(positions.shape)} "
                             f"for tokens of shape {tuple(tokens.shape)}")
        if tokens.dtype not in (torch.int64, torch.int32) or positions.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"step: tokens and positions must be integer tensors; got {tokens.dtype} and "
                             f"{positions.dtype}")
        if int(tokens.min()) < 0 or int(tokens.max()) >= self.vocab or int(positions.min()) < 0 \
                or int(positions.max()) >= self.model.config.max_len:
            raise ValueError(f"step: token ids must lie in 0 .. {self.vocab - 1} and positions in 0 .. "
                             f"{self.model.config.max_len - 1}; got tokens {tokens.tolist()}, positions {positions.tolist()}")
        with torch.no_grad():
            return self._run(tokens.long(), positions.long(), past)

    def _past_len(self, past):
        try:
            return int(past[0][0].shape[2])
        except Exception:  # noqa: BLE001 - not what a previous call returned
            return -1

    def _run(self, tokens, positions, past):
        # The model's own decoder blocks and KV cache (one decoder path): the student's ``past`` is the
        # cache's per-layer keys and values; only the embedding takes the positions the student gave.
        from attention_course.maths.multi_head import KVCache

        m = self.model
        if past is not None and self._past_len(past) < 0:
            raise ValueError("step: past must be None or the `present` a previous call returned")
        cache = KVCache() if past is None else KVCache(keys=[k for k, _ in past], values=[v for _, v in past])
        x = m.tgt_embed(tokens) * math.sqrt(m.config.d_model) + m.pe[positions].to(self.dtype)  # (B, n, d)
        for layer, block in enumerate(m.decoder):
            x, _, _ = block(x, self.memory, self.mask, cache=cache, layer=layer)  # (B, n, d)
        logits = m.out(m.dec_norm(x))  # (B, n, V)
        return self._shape_logits(logits, positions), tuple(zip(cache.keys, cache.values))

    def _shape_logits(self, logits, positions):
        torch = self.torch
        # EOS wins at query position p = stops[b] - 1 and after (the token at index stops[b] - 1), never before
        late = positions[None, :] + 1 >= self.stops[:, None]  # (B, n)
        eos = torch.where(late, self.gain, -self.gain).to(logits.dtype)
        logits = logits.clone()
        logits[..., self.EOS] = logits[..., self.EOS].clamp(-5, 5) + eos
        logits[..., self.PAD] = -1e4
        logits[..., self.BOS] = -1e4
        return logits

    # references
    def decode(self, max_len: int, *, cache=True, stop="all", include_eos=True, pad_after=True,
               include_bos=False, extra=0):
        """Greedy decoding through this step (cached or not), with switches for the wrong answers.

        Does not record its calls. Returns ``(B, L')`` int64.
        """
        torch = self.torch
        calls, self.calls = self.calls, []
        try:
            B = self.batch
            out, done, past = [], torch.zeros(B, dtype=torch.bool), None
            prefix = torch.full((B, 1), self.BOS, dtype=torch.long)
            for t in range(max_len + extra):
                if cache:
                    logits, past = self.step(prefix[:, -1:], torch.tensor([t]), past)
                else:
                    logits, _ = self.step(prefix, torch.arange(t + 1), None)
                y = logits[:, -1].argmax(-1)  # (B,)
                if pad_after:
                    y = y.masked_fill(done, self.PAD)
                out.append(y)
                prefix = torch.cat([prefix, y[:, None]], 1)
                done |= y == self.EOS
                if (stop == "all" and bool(done.all())) or (stop == "any" and bool(done.any())):
                    break
            ids = torch.stack(out, 1)
            if not include_eos:
                ids = ids.masked_fill(ids == self.EOS, self.PAD)
            if include_bos:
                ids = torch.cat([torch.full((B, 1), self.BOS, dtype=torch.long), ids], 1)
            return ids
        finally:
            self.calls = calls


def _greedy_first_call_mistake(tokens, positions, past, batch: int, bos: int) -> str | None:
    """Name what is wrong in the first call of the decoding loop (BOS alone, position 0, no cache), None if right."""
    shape = tuple(tokens.shape)
    if shape != (batch, 1) or not bool((tokens == bos).all()):
        return (tr("the first call must feed BOS alone: tokens = torch.full((batch, 1), bos) = a ({batch}, 1) tensor of "
                   "{bos}, at positions torch.tensor([0]), with past=None; yours fed tokens of shape {shape}: {tokens}",
                   batch=batch, bos=bos, shape=shape, tokens=tokens.tolist()))
    if positions.tolist() != [0]:
        return (tr("the positions are off by one: BOS sits at position 0, so the first call's positions are "
                   "torch.tensor([0]) and the token fed at call t + 1 sits at position t; yours were {positions}",
                   positions=positions.tolist())
                if positions.tolist() == [1] else
                tr("BOS sits at position 0: the first call's positions must be torch.tensor([0]); yours were "
                   "{positions}", positions=positions.tolist()))
    if past is not None:
        return tr("the first call has nothing cached yet: pass past=None")
    return None


def _greedy_tokens_mistake(t: int, shape: tuple, past, batch: int, vocab: int) -> str | None:
    """Name what is wrong with the tokens fed at call ``t + 1`` (t >= 1): the argmax axis, the whole prefix, the
    shape; None if they are one token per row."""
    if len(shape) == 2 and shape[0] == vocab and shape[0] != batch:
        return (tr("call {t} fed tokens of shape {shape}: {vocab} rows is the vocabulary size, not the batch. Did you take "
                   "the argmax over the batch axis? The next token of each row is the argmax over the VOCABULARY, the last "
                   "axis: logits[:, -1].argmax(dim=-1), shape (batch,)", t=t + 1, shape=shape, vocab=vocab))
    if len(shape) == 2 and shape[0] == batch and shape[1] == vocab and vocab != t + 1:
        return (tr("call {t} fed tokens of shape {shape}: one per vocabulary entry. Did you take the argmax over the "
                   "positions axis of the (batch, 1, V) logits? Take it over the VOCABULARY, the last axis: logits[:, "
                   "-1].argmax(dim=-1), then [:, None] to feed it", t=t + 1, shape=shape))
    if len(shape) == 2 and shape[0] == batch and shape[1] == t + 1:
        if past is None:
            return (tr("call {t} fed the whole prefix ({t} tokens) with past=None: that is decoding WITHOUT the cache, which "
                       "recomputes every earlier position at every step. Feed only the newest token and pass the `present` "
                       "of the previous call as past", t=t + 1))
        return (tr("call {t} fed the whole prefix ({t} tokens) AND the cache: the past already holds the keys and values of "
                   "the earlier tokens, so they are counted twice. With a cache, feed only the newest token, tokens of shape "
                   "(batch, 1)", t=t + 1))
    if shape != (batch, 1):
        return (tr("call {t} fed tokens of shape {shape}; each call after the first feeds the token just chosen for every "
                   "row, shape (batch, 1) = ({batch}, 1)", t=t + 1, shape=shape, batch=batch))
    return None


def _greedy_cache_mistake(t: int, past) -> str | None:
    """Name what is wrong with the past passed at call ``t + 1`` (t >= 1; it must hold t positions), None if right."""
    if past is None:
        return (tr("the cache is not updated: call {t} passed past=None, so the step saw only the newest token. Keep the "
                   "`present` each call returns and pass it as past to the next call: logits, past = step(tokens, positions, "
                   "past)", t=t + 1))
    if past != t:
        return (tr("the cache is not updated: call {call} passed a past holding {past} position(s), but {fed} tokens were fed "
                   "before it. Pass the `present` the PREVIOUS call returned: logits, past = step(tokens, positions, past)",
                   call=t + 1, past=past, fed=t))
    return None


def _greedy_position_mistake(t: int, got: list) -> str | None:
    """Name what is wrong with the positions ``got`` of call ``t + 1`` (t >= 1; it must be [t]), None if right."""
    if got == [t]:
        return None
    if got == [0]:
        return (tr("the positions restart at 0 at every step: call {call} feeds the token at position {position} (BOS is at "
                   "0), so positions = torch.tensor([{position}]); with a cache the step cannot count them itself", call=t + 1,
                   position=t))
    if got in ([t + 1], [t - 1]):
        return (tr("the positions are off by one: call {call} feeds the token at position {position} (BOS is at 0, the first "
                   "written token at 1); yours was {got}", call=t + 1, position=t, got=got))
    return tr("call {call} feeds the token at position {position}: positions = torch.tensor([{position}]); yours was {got}",
              call=t + 1, position=t, got=got)


def _greedy_call_mistake(calls: list, batch: int, bos: int, vocab: int) -> str | None:
    """Name what is wrong in the calls the student's decoding loop made, None if they look right.

    Each call is checked in turn (the first by :func:`_greedy_first_call_mistake`, the others by the tokens,
    the cache and the positions they were given); the first mistake found is named.
    """
    import torch

    if not calls:
        return (tr("greedy_decode never called step: call logits, present = step(tokens, positions, past) once per new token"))
    for t, call in enumerate(calls):
        tokens, positions, past = call["tokens"], call["positions"], call["past"]
        if not isinstance(tokens, torch.Tensor) or not isinstance(positions, torch.Tensor):
            return (tr("call {t} of step got tokens as a {tokens} and positions as a {positions}: pass "
                       "int64 tensors, tokens (batch, 1) and positions (1,)", t=t + 1,
                       tokens=checks.describe(tokens),
                       positions=checks.describe(positions)))
        if t == 0:
            mistake = _greedy_first_call_mistake(tokens, positions, past, batch, bos)
        else:
            mistake = (_greedy_tokens_mistake(t, tuple(tokens.shape), past, batch, vocab)
                       or _greedy_cache_mistake(t, past) or _greedy_position_mistake(t, positions.tolist()))
        if mistake:
            return mistake
    return None


def check_greedy(greedy_decode, batch: int, stops, max_len: int, seed: int, dtype=None, **sizes) -> None:
    """Run the student's ``greedy_decode`` with a :class:`RecordingDecoder` and name what went wrong."""
    import torch

    step = RecordingDecoder(batch, stops, seed=seed, dtype=dtype, **sizes)
    bos, eos, vocab = step.BOS, step.EOS, step.vocab
    given = step.step  # a bound method: see RecordingDecoder.step
    shapes = (tr("batch_size = {batch}, bos = {bos}, eos = {eos}, max_len = {max_len}; step(tokens, positions, past) takes "
                 "tokens (batch, n) int64 and positions (n,) int64 and returns (logits (batch, n, {vocab}), present)",
                 batch=batch, bos=bos, eos=eos, max_len=max_len, vocab=vocab))
    try:
        out = checks.run("greedy_decode", greedy_decode, given, batch, bos, eos, max_len, expect=shapes)
    except AssertionError as error:
        named = _greedy_call_mistake(step.calls, batch, bos, vocab)
        if not named and f"({vocab})" in str(error) and f"({batch})" in str(error):
            named = (tr("the error pairs the batch size {batch} with the vocabulary size {vocab}: did you take the argmax "
                        "over the wrong axis (the batch or the positions axis)? The next token of each row is the argmax "
                        "over the VOCABULARY, the last axis: logits[:, -1].argmax(dim=-1), shape (batch,)",
                        batch=batch, vocab=vocab))
        raise AssertionError(tr("{error}\nWhat went wrong: {named}", error=error, named=named) if named else str(error)) from None
    named = _greedy_call_mistake(step.calls, batch, bos, vocab)
    if named:
        raise AssertionError(f"greedy_decode ({shapes}): {named}")
    want = step.decode(max_len)
    checks.tensor(out, "greedy_decode", dtype=torch.int64)
    assert out.dim() == 2 and out.shape[0] == batch, (
        tr("greedy_decode must return the written tokens as (batch, L) = ({batch}, L); yours has shape {out_shape}",
           batch=batch, out_shape=tuple(out.shape)))
    if out.shape == want.shape and torch.equal(out, want):
        if len(step.calls) != want.shape[1]:
            raise AssertionError(tr("greedy_decode called step {calls} times for {tokens} tokens: call it once per "
                                    "written token and stop when every row has written EOS",
                                    calls=len(step.calls), tokens=want.shape[1]))
        return
    wrong = {
        tr("you stopped as soon as ONE row had written EOS; stop when EVERY row has (done |= next == eos; if done.all(): "
           "break), and pad the rows that finished earlier"): step.decode(max_len, stop="any"),
        tr("you did not stop when every row had written EOS: the loop must end then (or after max_len tokens)"):
            step.decode(max_len, stop="never"),
        tr("the tokens after a row's EOS must be padding (id 0): once a row has written EOS, write 0 in it (next = "
           "next.masked_fill(done, 0))"): step.decode(max_len, pad_after=False),
        tr("EOS is missing from the output: keep it, the output of each row runs up to AND INCLUDING its EOS"):
            step.decode(max_len, include_eos=False),
        tr("the output starts with BOS: return only the tokens written after it"): step.decode(max_len, include_bos=True),
        tr("you wrote more than max_len = {max_len} tokens: stop after max_len tokens even if a row has not written EOS",
           max_len=max_len): step.decode(max_len, extra=1, stop="all"),
        tr("you wrote fewer than max_len = {max_len} tokens although a row had not written EOS (off by one in the loop: "
           "range(max_len))", max_len=max_len): step.decode(max_len - 1),
    }
    named = next((why for why, ids in wrong.items() if ids.shape == out.shape and torch.equal(ids, out)), None)
    if named:
        raise AssertionError(f"greedy_decode ({shapes}): {named}")
    if out.shape != want.shape:
        raise AssertionError(tr("greedy_decode returned {out_shape}, expected {want_shape} ({shapes}): one column per "
                                "written token, up to the step at which every row has written EOS",
                                out_shape=tuple(out.shape), want_shape=tuple(want.shape), shapes=shapes))
    first = int((out != want).nonzero()[0, 1])
    raise AssertionError(
        tr("greedy_decode's tokens differ from greedy decoding without the cache from column {first} on ({shapes}): yours "
           "{out}, expected {want}. The next token of each row is the argmax over the vocabulary of the LAST "
           "position's logits, logits[:, -1].argmax(dim=-1)", first=first, shapes=shapes, out=out.tolist(),
           want=want.tolist()))


#: What exercise 3's check promises about the steps it passes to linear_warmup_lr.
LINEAR_WARMUP_PROMISE = Text("steps counted from 1: a Python int, or a NumPy array of steps (int64, int32, float64)")


def linear_warmup_check(linear_warmup_lr, noam_lr, *args) -> None:
    """Check ``linear_warmup_lr(*args)`` (d_model, warmup, total_steps) with :func:`check_schedule`; if it is wrong
    because the ``noam_lr`` it uses (exercise 2) is wrong, name that first."""
    try:
        check_schedule("linear_warmup_lr", linear_warmup_lr, args, linear_warmup_reference,
                       linear_warmup_mistakes, promise=LINEAR_WARMUP_PROMISE)
    except AssertionError:  # if it uses a wrong noam_lr, say that first
        checks.earlier("noam_lr", noam_lr, noam_reference, np.arange(1, 40), 16, 10, exercise="exercise 2",
                       later="linear_warmup_lr", atol=0.0)
        raise

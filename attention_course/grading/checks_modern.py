"""Check helpers of Chapter 8's exercise notebook (today's LLMs): RMSNorm, RoPE, grouped-query attention.

The check cells of ``solutions/ch08_todays_llms/todays_llms.ipynb`` import this module next to
:mod:`attention_course.grading.checks`, whose shared helpers it uses (:func:`~attention_course.grading.checks.run`,
:func:`~attention_course.grading.checks.close`, :func:`~attention_course.grading.checks.first_match`,
:func:`~attention_course.grading.checks.mask_mistake`). For each exercise it holds the reference the checks compare
with and the typical wrong answers, computed, so that a failing check names the student's mistake instead of
printing a difference:

* RMSNorm (Zhang & Sennrich 2019), against :func:`attention_course.maths.modern.rms_norm`
  (:func:`rms_norm_check`, :func:`rms_norm_mistakes`);
* rotary position embeddings (Su et al. 2021) in either pairing of the features, the halves of Hugging
  Face's ``rotate_half`` or the neighbours of RoFormer and Meta's LLaMA code (:func:`rope_check`,
  :func:`rope_mistakes`), and causal attention that uses them (:func:`rope_attention_check`);
* grouped-query attention (Ainslie et al. 2023), against
  :func:`attention_course.maths.modern.grouped_query_attention` (:func:`gqa_check`, :func:`gqa_mistakes`,
  :func:`gqa_refusal_check`).

Masks follow the course: a boolean mask is True where a query MAY attend, as
``F.scaled_dot_product_attention`` reads its boolean ``attn_mask``; ``nn.MultiheadAttention`` reads its
boolean ``attn_mask`` the other way round (True = NOT allowed).

Every check helper raises ``AssertionError`` (what a failing check raises) or returns normally; the
untouched stub's ``NotImplementedError`` passes through.
"""
from __future__ import annotations

import math
import re

from attention_course.grading.checks import _PASS_THROUGH, close, describe, first_match, mask_mistake, tensor
from attention_course.grading.messages import Text, tr


def _stub_or_grader(error: Exception) -> bool:
    """True for the errors that must reach the caller unchanged (the stub, the grader's own)."""
    return type(error).__name__ in _PASS_THROUGH or isinstance(error, NotImplementedError)


def _torch_error(error: Exception) -> str:
    detail = str(error).strip().splitlines()[0] if str(error).strip() else ""
    detail = detail if len(detail) <= 160 else detail[:157] + "..."
    return f"[Python said: {type(error).__name__}: {detail}]"


def _changed(names, before, after) -> list[str]:
    """The names of the tensors that a function changed in place (``after`` were its arguments)."""
    import torch

    return [name for name, b, a in zip(names, before, after)
            if isinstance(b, torch.Tensor) and not (b.shape == a.shape and torch.equal(b, a))]


# ---------------------------------------------------------------------------- exercise 1: RMSNorm
def rms_norm_reference(x, weight, eps: float = 1e-6):
    """RMSNorm as :func:`attention_course.maths.modern.rms_norm` computes it: the exercise's reference.

    ``x / sqrt(mean(x^2) + eps) * weight`` over the last axis (Zhang & Sennrich 2019, Eq. 4), the mean
    square taken in float32 at least (float16 and bfloat16 inputs are upcast, as LLaMA does).

    Args:
        x: ``(..., d_model)``; weight: ``(d_model,)``, the gain.
        eps: added to the mean square, inside the square root.

    Returns:
        The shape of ``x``, in the dtype ``weight * x`` has (``x``'s when ``weight`` shares it).
    """
    from attention_course.maths.modern import rms_norm

    return rms_norm(x, weight, eps)


def _rms(x, weight, eps, *, center=False, stat="ms", eps_inside=True, use_eps=None, dim=-1, gain="mul",
         root=True, invert=False, gain_first=False, dtype=None):
    """RMSNorm written out with one switch per typical mistake (float64 unless ``dtype``; the wrong answers)."""
    import torch

    work = dtype or torch.float64
    xd, w = x.detach().to(work), weight.detach().to(work)
    if gain_first:
        xd = xd * w
    e = eps if use_eps is None else use_eps
    centred = xd - xd.mean(-1, keepdim=True)
    dims = tuple(range(xd.dim())) if dim == "all" else dim
    if stat == "ms":
        s = xd.pow(2).mean(dims, keepdim=True)
    elif stat == "sum":
        s = xd.pow(2).sum(dims, keepdim=True)
    elif stat == "var":
        s = centred.pow(2).mean(dims, keepdim=True)
    else:  # "var_unbiased"
        s = centred.pow(2).sum(dims, keepdim=True) / (xd.shape[-1] - 1)
    numerator = centred if center else xd
    if not root:
        scale = s + e
    elif eps_inside:
        scale = (s + e).sqrt()
    else:
        scale = s.sqrt() + e
    y = numerator * scale if invert else numerator / scale
    if not gain_first:
        y = {"mul": y * w, "none": y, "add": y + w}[gain]
    return y.to(x.dtype) if dtype is not None else y


def rms_norm_mistakes(x, weight, eps: float = 1e-6) -> list[tuple[str, object]]:
    """``(explanation, function of no arguments)`` for each typical ``rms_norm`` mistake, in the order to try.

    A mistake that gives the right answer on these inputs (eps ignored when eps is tiny, float16 arithmetic
    for a float32 ``x``) is tried all the same: the right answer is recognised before the mistakes are.
    """
    import torch

    def wrong(**change):
        return lambda: _rms(x, weight, eps, **change)

    formula = "x / torch.sqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps) * weight"
    layer_norm = (tr("you subtracted the mean and divided by the standard deviation: that is LayerNorm. RMSNorm divides x "
                     "itself by its root mean square, without centring it (Zhang & Sennrich 2019): ") + formula)
    std = (tr("you divided by the standard deviation (x.std() or the root of x.var(), which subtract the mean first); "
              "RMSNorm divides by the root of the mean of the squares, mean(x**2), with no mean subtracted: ") + formula)
    out = []
    for stat in ("var", "var_unbiased"):  # with eps inside the root, outside it, or none
        for change in ({}, {"eps_inside": False}, {"use_eps": 0.0}):
            out.append((layer_norm, wrong(center=True, stat=stat, **change)))
    for stat in ("var", "var_unbiased"):
        for change in ({}, {"eps_inside": False}, {"use_eps": 0.0}):
            out.append((std, wrong(stat=stat, **change)))
    out += [
        ("you divided by the mean square without taking its square root: divide by sqrt(mean(x**2) + eps) (or "
         f"multiply by torch.rsqrt(...)): {formula}", wrong(root=False)),
        ("you multiplied by the root mean square instead of dividing by it (torch.sqrt where torch.rsqrt belongs, "
         f"or the other way round): {formula}", wrong(invert=True)),
        (f"eps is added outside the square root, sqrt(mean(x**2)) + eps; it belongs inside, sqrt(mean(x**2) + eps) "
         f"(this check uses eps = {eps}): {formula}", wrong(eps_inside=False)),
        ("you took the mean over the wrong axis (dim=-2, the tokens): each token is normalised by the mean of its "
         f"own d_model features, the last axis: {formula}", wrong(dim=-2)),
        ("you took the mean over the whole tensor (no dim): each token is normalised by the mean of its own "
         f"d_model features, mean(dim=-1, keepdim=True): {formula}", wrong(dim="all")),
        ("you summed the squares instead of averaging them (that divides by the length of x, sqrt(sum x**2), not "
         f"by its root MEAN square): {formula}", wrong(stat="sum")),
        ("the gain is missing: multiply the normalised x by weight (a learned gain per feature, not all ones in "
         "this check)", wrong(gain="none")),
        ("you ADDED the gain, like a bias; RMSNorm has no bias, and its gain MULTIPLIES the normalised x: "
         f"{formula}", wrong(gain="add")),
        ("you multiplied x by the gain BEFORE taking the root mean square; normalise x first, then multiply by "
         f"weight: {formula}", wrong(gain_first=True)),
    ]
    for value in (0.0, 1e-6, 1e-5, 1e-8):
        if not math.isclose(value, eps):
            out.append((f"you did not use the eps argument (your result is the one for eps = {value}, not for the eps = "
                        f"{eps} of this call; when eps is not passed, the signature's default 1e-6 applies): add eps "
                        f"inside the square root, {formula}", wrong(use_eps=value)))
    if x.dtype in (torch.float16, torch.bfloat16):
        out.append((f"you computed in {x.dtype} itself: x**2 overflows {x.dtype} (its largest number is "
                    f"{torch.finfo(x.dtype).max:.0f}) or loses digits. Compute the mean square in float32, "
                    "xf = x.float(), then return the result in x's dtype with .to(x.dtype)", wrong(dtype=x.dtype)))
    return out


def _rms_setting(x, weight, eps) -> str:
    return f"x is {tuple(x.shape)} ({x.dtype}), weight ({weight.shape[0]},) ({weight.dtype}), eps = {eps}"


def _rms_error_sentence(error: Exception, x) -> str | None:
    """What a typical error inside rms_norm means, in words (None if it is not a typical one)."""
    text = str(error)
    *lead, n, d = tuple(x.shape)
    sizes = re.search(r"size of tensor a \((\d+)\) must match the size of tensor b \((\d+)\)", text)
    if sizes and {int(sizes.group(1)), int(sizes.group(2))} == {n, d}:
        return (tr("the mean square has lost its last axis: x.pow(2).mean(dim=-1) is ({mean_shape}) and does not line up with "
                   "x {x_shape}. Keep the axis, mean(dim=-1, keepdim=True), so that there is one mean square per token, "
                   "shaped (..., 1)", mean_shape=', '.join(map(str, lead + [n])), x_shape=tuple(x.shape)))
    if "only one element tensors can be converted" in text or "must be real number, not Tensor" in text:
        return (tr("math.sqrt (or math.pow, float()) got a tensor of many numbers; it takes one number. Use torch.sqrt or "
                   "torch.rsqrt, which work on whole tensors"))
    if "values to unpack" in text:
        return (tr("x has {axes} axes here, {x_shape}; rms_norm must work for any number of leading axes: take d_model = "
                   "x.shape[-1] and reduce over dim=-1", axes=x.dim(), x_shape=tuple(x.shape)))
    return None


def rms_norm_check(rms_norm, x, weight, eps: float = 1e-6, *, pass_eps: bool = True) -> None:
    """Check ``rms_norm(x, weight, eps)`` on one input; fail naming the mistake.

    The function runs on copies (a change made to them in place is named). Its result must have the
    shape and dtype of ``x`` and agree with :func:`rms_norm_reference` at float32's resolution or finer (the
    coarser of float32 and ``x``'s dtype): computing in float32 is right for a float64 ``x`` too.

    Args:
        pass_eps: call ``rms_norm(x, weight)`` (the default eps, 1e-6) instead of passing ``eps``.

    Raises:
        AssertionError: the answer is wrong; the message says how.
        NotImplementedError: the stub.
    """
    setting = _rms_setting(x, weight, eps)
    x_in, w_in = x.clone(), weight.clone()
    out = _rms_call(rms_norm, x, x_in, w_in, eps, pass_eps, setting)
    if isinstance(out, (tuple, list)):
        raise AssertionError(tr("rms_norm must return one tensor shaped like x {x_shape}; yours returned a {out}",
                                x_shape=tuple(x.shape), out=describe(out)))
    tensor(out, "rms_norm", shape=tuple(x.shape))
    _rms_dtype(out, x, setting)
    changed = _changed(("x", "weight"), (x, weight), (x_in, w_in))
    want = rms_norm_reference(x, weight, eps)
    right = _rms_close(out, want, x)
    if changed:
        what = tr("your values are right, but") if right else tr("and its values are wrong too; in place,")
        raise AssertionError(tr("rms_norm changed its input {changed} in place: {what} the caller's tensor is no longer what "
                                "it passed. x.mul_(...), x /= ... and x[...] = ... write into x; compute the result in a new "
                                "tensor instead, y = x / ... ({setting})",
                                changed=' and '.join(changed), what=what, setting=setting))
    if not right:
        _rms_name_the_mistake(out, want, x, weight, eps, setting)


def _rms_call(rms_norm, x, x_in, w_in, eps, pass_eps: bool, setting: str):
    """``rms_norm(x_in, w_in[, eps])`` on the copies of ``x`` and the weight; an error it raises (other than the
    stub's or the grader's) becomes a sentence about ``x``."""
    try:
        return rms_norm(x_in, w_in, eps) if pass_eps else rms_norm(x_in, w_in)
    except Exception as error:  # noqa: BLE001
        if _stub_or_grader(error):
            raise
        sentence = _rms_error_sentence(error, x) or tr(
            "compute one mean square per token over the last axis, x.pow(2).mean(dim=-1, keepdim=True), and "
            "broadcast it against x")
        raise AssertionError(tr("rms_norm stopped with an error: {sentence} ({setting}) {error}", sentence=sentence,
                                setting=setting, error=_torch_error(error))) from None


def _rms_dtype(out, x, setting: str) -> None:
    """Fail if ``out`` does not have ``x``'s dtype, saying how the dtype was lost."""
    import torch

    if out.dtype != x.dtype:
        if out.dtype == torch.float32 and x.dtype in (torch.float16, torch.bfloat16):
            why = tr(" You computed in float32, which is right, but cast the result back: .to(x.dtype)")
        elif out.dtype == torch.float32:
            why = (tr(" x.float() turns a float64 x into float32: compute in x.to(torch.promote_types(x.dtype, "
                      "torch.float32)), which keeps float64, or cast the result back with .to(x.dtype)"))
        else:
            why = tr(" Cast the result back to x's dtype with .to(x.dtype)")
        raise AssertionError(tr("rms_norm must return x's dtype, {dtype_x}; yours returned {dtype_out} ({setting}).",
                                dtype_x=x.dtype, dtype_out=out.dtype, setting=setting) + why)


def _rms_name_the_mistake(out, want, x, weight, eps, setting: str) -> None:
    """Fail on a wrong ``out``: name an overflow or a typical mistake (:func:`rms_norm_mistakes`), else the gap."""
    import torch

    if not torch.isfinite(out).all() or (out == 0).all(-1).any():
        if x.dtype in (torch.float16, torch.bfloat16):
            raise AssertionError(
                tr("rms_norm returned inf, NaN or a row of zeros ({setting}): x**2 overflowed {dtype_x}, whose largest "
                   "number is {largest:.0f}. Compute the mean square in float32 (xf = x.float()), then cast the result "
                   "back with .to(x.dtype)", setting=setting, dtype_x=x.dtype,
                   largest=torch.finfo(x.dtype).max))
    for explanation, wrong in rms_norm_mistakes(x, weight, eps):
        try:
            value = wrong()
        except Exception:  # noqa: BLE001 - that mistake is impossible on these inputs
            continue
        if _rms_close(out, value, x):
            raise AssertionError(tr("rms_norm gives wrong values ({setting}): {explanation}", setting=setting,
                                    explanation=explanation))
    raise AssertionError(
        tr("rms_norm differs from RMSNorm by {difference:.2e} ({setting}): divide each token's features by the root of their "
           "mean square, sqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps), then multiply by weight; compute in float32 if x "
           "is float16 or bfloat16", difference=(out.double() - want.double()).abs().max().item(), setting=setting))


def _rms_close(got, want, x) -> bool:
    """:func:`close` at float32's resolution at least (the mean square may be taken in float32), over d_model terms."""
    import torch

    coarse = max((got.dtype, torch.float32), key=lambda t: torch.finfo(t).eps)
    return close(got.to(coarse), want.to(coarse), reduction=max(x.shape[-1], 1))


# ---------------------------------------------------------------------------- exercises 2 and 3: RoPE
#: RoPE's two pairings of features, both right (issue 27, item 1): what the checks call each.
#: Each a ``Text``: English, shown in the course's language by the success message (a ``Text`` among tr()'s values is translated).
ROPE_PAIRINGS = {
    "half": Text("the halves: feature i with feature i + d/2 (x1 = x[..., :d//2], x2 = x[..., d//2:]), the layout of "
                 "Hugging Face's rotate_half (SmolLM2, and LLaMA's checkpoints on the Hugging Face Hub)"),
    "interleaved": Text("neighbouring features: 2i with 2i+1 (x[..., 0::2], x[..., 1::2]), the layout of the RoFormer "
                        "paper and of Meta's LLaMA reference code"),
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
    ``torch.arange`` for positions that start at 0) is left out. The order is :func:`first_match`'s: the
    frequency mistakes, the arguments ignored, the angles, then the rotation of the pairs.
    """
    import torch

    d = x.shape[-1]
    p = torch.as_tensor(positions)

    def ref(**change):
        return lambda: rope_reference(x, p, base, pairing=pairing, **change)

    mistakes = _rope_frequency_mistakes(ref, p, d, _ROPE_FORMULA[pairing])
    mistakes.update(_rope_argument_mistakes(ref, p, d, base))
    mistakes.update(_rope_angle_mistakes(ref, p, d, base))
    mistakes.update(_rope_rotation_mistakes(x, _rope_angles(p, d, base), pairing))
    return mistakes


def _rope_frequency_mistakes(ref, p, d: int, formula: str) -> dict:
    """The rotation turned the wrong way or with cos and sin swapped, and the wrong frequencies theta_i."""
    return {
        tr("you rotated each pair the WRONG WAY (by minus the angle): {formula}", formula=formula): ref(direction=-1),
        tr("cos and sin are swapped: {formula}", formula=formula): ref(swap=True),
        tr("wrong frequencies: yours look like theta_i = base ** (-i / d); the frequencies are base ** (-2i / d) for i = 0 "
           ".. d/2 - 1 (torch.arange(0, d, 2) / d)"): ref(exponent=1.0),
        tr("your frequencies grow with i: the minus sign of the exponent is missing. theta_i = base ** (-2i / d) = 1 / base "
           "** (2i / d), from 1 down to almost 1/base"): ref(exponent=-2.0),
        tr("every pair turns at the same frequency (theta_i = 1): the exponent 2i/d was computed with integers (// or "
           "integer tensors) and became 0; use torch.arange(0, d, 2, dtype=torch.float64) / d"):
            ref(angles=p.double()[:, None].expand(-1, d // 2)),
    }


def _rope_argument_mistakes(ref, p, d: int, base: float) -> dict:
    """The base or the positions argument ignored, where that changes the result on these inputs."""
    import torch

    mistakes = {}
    if float(base) != 10000.0:
        mistakes[f"you used 10000 instead of the base argument ({base}): theta_i = base ** (-2i / d) with the "
                 "base you were given"] = ref(angles=_rope_angles(p, d, 10000.0))
    if len(p) and int(p[0]) != 0:
        mistakes["you used the positions 0 .. seq_len-1 (torch.arange) instead of the positions argument (after "
                 "a KV cache the new tokens do not start at 0): the angle is positions[m] * theta_i"] = \
            ref(angles=_rope_angles(torch.arange(len(p)), d, base))
    return mistakes


def _rope_angle_mistakes(ref, p, d: int, base: float) -> dict:
    """The angle positions[m] * theta_i computed wrongly: off by one, the same for every token, a sum."""
    theta = _rope_angles([1], d, base)[0]  # (d/2,)
    return {
        tr("your positions are off by one (positions + 1): the token at positions[m] turns by positions[m] * theta_i"):
            ref(angles=_rope_angles(p + 1, d, base)),
        tr("every token was turned by the same angle theta_i: the angle must grow with the position, positions[m] * theta_i"):
            ref(angles=theta.expand(len(p), -1)),
        tr("you added the position to theta_i: the angle is the product positions[m] * theta_i"):
            ref(angles=p.double()[:, None] + theta),
    }


def _rope_rotation_mistakes(x, angles, pairing: str) -> dict:
    """The pairs rotated wrongly with the right ``angles``: the two conventions mixed, the partner term wrong,
    one member left as it was or the members swapped, and nothing rotated at all."""
    import torch

    halves = pairing == "half"
    formula = _ROPE_FORMULA[pairing]

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
    return {
        (tr("you mixed two conventions: you rotate the halves (x1 = x[..., :d//2] with x2 = x[..., d//2:]) but laid the d/2 "
            "angles out for neighbouring pairs (repeat_interleave). With the halves, features i and i + d/2 share angle i: "
            "torch.cat([angles, angles], dim=-1)")) if halves else
        (tr("you mixed two conventions: you rotate neighbouring pairs (2i, 2i+1) but laid the d/2 angles out for the halves "
            "(torch.cat([angles, angles], dim=-1)). With neighbours, features 2i and 2i+1 share angle i: "
            "angles.repeat_interleave(2, dim=-1)")): mixed,
        tr("the sine term multiplies x itself: it must multiply each feature's partner in its pair, with the partner's sign: "
           "{formula}", formula=formula): pairwise(lambda a, b, c, s: (a * c + a * s, b * c + b * s)),
        tr("your partner term lost its minus sign: torch.cat([x2, x1]) is a reflection, not a rotation; use torch.cat([-x2, "
           "x1], dim=-1) ({formula})", formula=formula): pairwise(lambda a, b, c, s: (a * c + b * s, b * c + a * s)),
        tr("only the first member of each pair was rotated: the second {part} must turn too, {second}",
           part=tr("half") if halves else tr("member"), second=second):
            pairwise(lambda a, b, c, s: (a * c - b * s, b)),
        (tr("the two halves of your result are swapped: return x1' first, then x2', torch.cat([x1', x2'], dim=-1)")
         if halves else tr("the two members of each pair are swapped in your result: x[2i]' comes first, then x[2i+1]'")):
            pairwise(lambda a, b, c, s: (b * c + a * s, a * c - b * s)),
        tr("x2' was computed from the already rotated x1': compute both from the original x1 and x2, {second}", second=second):
            pairwise(lambda a, b, c, s: (a * c - b * s, b * c + (a * c - b * s) * s)),
        tr("nothing was rotated: you returned x unchanged"): lambda: x,
    }


def _rope_close(got, want) -> bool:
    """:func:`close` at float32's resolution at least: RoPE's angles may be computed in float32 (Hugging Face,
    Meta and ``attention_course.maths.modern`` do), which is right for a float64 ``x`` too."""
    return close(got, want.float() if hasattr(want, "float") else want)


def _shown_positions(positions) -> str:
    """The positions as a student wrote them: ``torch.arange(a, b)`` if they are consecutive."""
    p = [int(i) for i in positions]
    return f"torch.arange({p[0]}, {p[-1] + 1})" if p == list(range(p[0], p[0] + len(p))) else str(p)


def _rope_setting(x, positions, base) -> str:
    return tr("x is (batch, heads, seq_len, d) = {x_shape} ({dtype_x}), positions = {shown}, base = {base}",
              x_shape=tuple(x.shape), dtype_x=x.dtype, shown=_shown_positions(positions), base=base)


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
            return (tr("positions ({n},) times theta ({d},) do not broadcast: make the angles a (seq_len, d/2) = ({n}, {d}) "
                       "table with positions[:, None] * theta, one row per token and one column per pair",
                       n=n, d=d // 2))
        if found == {d // 2, d}:
            return (tr("cos and sin have d/2 = {half} columns but x has d = {d} features: repeat the d/2 angles to d columns "
                       "(torch.cat([angles, angles], dim=-1) for the halves, angles.repeat_interleave(2, dim=-1) for "
                       "neighbouring pairs), or multiply the d/2-wide halves x1 and x2 instead of x",
                       half=d // 2, d=d))
        if found == {n, d}:
            return (tr("cos and sin look transposed, (d, seq_len) = ({d}, {n}): they must be (seq_len, d) = ({n}, {d}), one "
                       "row per token, to broadcast against the last two axes of x", d=d, n=n))
        if n in found and (found - {n}) & {heads, batch}:
            axis = "heads" if heads in found - {n} else "batch"
            return (tr("the seq_len axis of cos and sin ({n}) lines up with the {axis} axis of x: cos and sin must be "
                       "(seq_len, d) = ({n}, {d}), or (1, 1, {n}, {d}), so that they broadcast against the last two axes of "
                       "x {shape}; an extra axis such as cos[:, None, :] moves seq_len onto the {axis} axis",
                       n=n, axis=axis, d=d, shape=shape))
        return (tr("the shapes do not broadcast: cos and sin must be (seq_len, d) = ({n}, {d}) to multiply x {shape} (or d/2 "
                   "columns to multiply the halves x1, x2)", n=n, d=d, shape=shape))
    if "cannot be converted to Scalar" in text:
        return (tr("you called .item() on a tensor of many numbers (positions holds seq_len positions, the angles a whole "
                   "table): .item() takes one number. Keep tensors: angles = positions[:, None] * theta"))
    if "only one element tensors can be converted" in text or "must be real number, not Tensor" in text:
        return (tr("math.cos, math.sin, math.pow or float() got a tensor of many numbers; they take one number. Use "
                   "torch.cos and torch.sin (or angles.cos(), angles.sin()), which work on whole tensors"))
    if "values to unpack" in text:
        return (tr("x is 4-D, (batch, heads, seq_len, d) = {shape}, so unpacking x.shape into another number of names fails: "
                   "take d = x.shape[-1] and seq_len = x.shape[-2], which work for any number of axes",
                   shape=shape))
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
        return (tr("your result is a rotation of the {layout}, but by the wrong angles: pair i = {i} of the token at "
                   "position {position} turned by {got:.4f} rad, where positions[m] * theta_i = {position} * {base} ** "
                   "(-2*{i}/{d}) = {want:.4f} rad (mod 2 pi). Check the frequencies theta_i = base ** (-2i / d) and the "
                   "angles positions[m] * theta_i", layout=layout, i=i, position=int(p[m]),
                   got=float(turned[m, i]), base=base, d=d, want=float(want[m, i])))
    return (tr("your result is not a rotation of x: some pairs changed length, in either pairing ((i, i + d/2) or (2i, "
               "2i+1)). Each pair must turn by one angle: {half_formula} (or, for neighbours, {interleaved_formula}), "
               "with cos and sin of the same angle positions[m] * theta_i", half_formula=_ROPE_FORMULA['half'],
               interleaved_formula=_ROPE_FORMULA['interleaved']))


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
        sentence = _rope_error_sentence(error, x) or tr(
            "check the shapes: the angles are a (seq_len, d/2) table positions[:, None] * theta, and cos and sin "
            "(seq_len, d) broadcast against x")
        raise AssertionError(tr("apply_rope stopped with an error: {sentence} ({setting}) {error}",
                                sentence=sentence, setting=setting,
                                error=_torch_error(error))) from None
    shape = tuple(x.shape)
    if isinstance(out, (tuple, list)):
        raise AssertionError(tr("apply_rope must return one tensor shaped like x {shape}; yours returned a {out}: "
                                "join the rotated halves into one tensor, torch.cat([x1', x2'], dim=-1)",
                                shape=shape, out=describe(out)))
    tensor(out, "apply_rope")
    if tuple(out.shape) != shape:
        both = (tr(" (only one half: return both halves, torch.cat([x1', x2'], dim=-1))")
                if tuple(out.shape) == shape[:-1] + (shape[-1] // 2,) else "")
        raise AssertionError(tr("apply_rope must return x's shape {shape}; yours has shape {out_shape}{both}", shape=shape,
                                out_shape=tuple(out.shape), both=both))
    if out.dtype != x.dtype:
        why = (tr(" A tensor made without a dtype (torch.empty(x.shape), torch.zeros(...)) is float32, and so are angles "
                  "made with .float(): make new tensors with x's dtype (torch.empty_like(x)) or cast the result with "
                  ".to(x.dtype)") if x.dtype == torch.float64 else
               tr(" cos and sin computed in float64 turn x * cos into float64: cast them with .to(x.dtype)"))
        raise AssertionError(tr("apply_rope must keep x's dtype, {dtype_x}; yours returned {dtype_out} ({setting}).",
                                dtype_x=x.dtype, dtype_out=out.dtype, setting=setting) + why)
    pairing = rope_pairing(out, x, positions, base)
    if not torch.equal(x_in, x):
        values = (tr("apply_rope changed its input x in place: your values are right, but") if pairing else
                  tr("apply_rope changed its input x in place, and its values are wrong too ({diagnosis}). In "
                     "place,", diagnosis=_rope_what_is_wrong(out, x, positions, base)))
        raise AssertionError(
            tr("{values} the caller's x (the queries or the keys) is rotated too, and rotating it again rotates twice. "
               "Compute the result in new tensors: x[..., :d//2] and x[..., d//2:] are views of x, so writing into them "
               "(x[..., :d//2] = ..., x1.mul_(...), x *= ...) writes into x ({setting})", values=values,
               setting=setting))
    if pairing:
        return pairing
    raise AssertionError(tr("apply_rope gives wrong values ({setting}): {diagnosis}", setting=setting,
                            diagnosis=_rope_what_is_wrong(out, x, positions, base)))


def rope_ok(pairing: str) -> str:
    """The success message of the RoPE check: which convention the student used, and that the other is equivalent."""
    other = "interleaved" if pairing == "half" else "half"
    return (tr("apply_rope: OK. You paired {pairing}. The other convention, {other}, is equally "
               "right: it is the same rotation once the output features of W_q and W_k are permuted (Hugging Face's "
               "conversion of Meta's LLaMA weights permutes them, so that rotate_half computes the same scores). Use one "
               "convention throughout a model.", pairing=ROPE_PAIRINGS[pairing],
               other=ROPE_PAIRINGS[other]))


def rope_earlier(apply_rope, x, positions, base: float = 10000.0, *, later: str = "rope_attention",
                 exercise: str = "exercise 2") -> str:
    """Run :func:`rope_check` for a later exercise: if apply_rope is wrong, fail naming it (``exercise``) and how.

    Returns:
        The pairing apply_rope uses, for the later exercise's reference.
    """
    try:
        return rope_check(apply_rope, x, positions, base)
    except AssertionError as error:
        raise AssertionError(tr("{later} uses your apply_rope ({exercise}), which is wrong on these inputs: fix apply_rope "
                                "first (run its check), then run this check again. What is wrong: {error}",
                                later=later, exercise=exercise, error=error)) from None


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
        tr("you rotated the VALUES too: RoPE rotates only the queries and the keys (it is there to make the SCORE depend on "
           "the distance); the values are averaged as they are"): ref(rotate=("q", "k", "v")),
        tr("you rotated the values, and the keys are not rotated: rotate the queries and the keys with apply_rope and leave "
           "the values as they are"): ref(rotate=("q", "v")),
        tr("the keys are not rotated: rotate both the queries and the keys with apply_rope"): ref(rotate=("q",)),
        tr("the queries are not rotated: rotate both the queries and the keys with apply_rope"): ref(rotate=("k",)),
        tr("nothing is rotated: call apply_rope on the queries and on the keys before the scores"): ref(rotate=()),
        tr("the causal mask is missing: token i may only attend to tokens j <= i; set the other scores to -inf before the "
           "softmax"): ref(causal=False),
        tr("your mask lets token i see the tokens after it (j >= i) and hides those before it: the causal mask keeps j <= i, "
           "allowed = torch.ones(n, n, dtype=torch.bool).tril()"): ref(allowed="triu"),
        tr("the masked scores were set to 0, and a score of 0 still gets weight after the softmax: set them to -inf, "
           "scores.masked_fill(~allowed, float('-inf'))"): ref(fill=0.0),
        tr("you applied the mask after the softmax: the weights of the blocked keys were zeroed, so the rows no longer sum "
           "to 1; set the blocked scores to -inf before the softmax"): ref(mask_after=True),
        tr("the scores are not divided by sqrt(d)"): ref(scale=False),
        tr("the scores were divided by d = {d} instead of sqrt(d) = {sqrt_d:.4g}", d=d, sqrt_d=math.sqrt(d)):
            ref(divisor=float(d)),
        tr("the scores were divided by sqrt({heads}), the square root of the number of heads (q.shape[1]): d is the size of "
           "one head, q.shape[-1]", heads=heads): ref(divisor=math.sqrt(heads)),
        tr("the scores were divided by sqrt(seq_len) = sqrt({n}): d is the size of one head, q.shape[-1]", n=n):
            ref(divisor=math.sqrt(n)),
        tr("the softmax ran over the queries (dim=-2): each query's weights over the keys must sum to 1, "
           "torch.softmax(scores, dim=-1)"): ref(dim=-2),
    }
    if float(base) != 10000.0:
        mistakes[f"you did not pass base on to apply_rope: apply_rope(q, positions) uses its default 10000, but "
                 f"this call has base = {base}; write apply_rope(q, positions, base) and the same for k"] = \
            ref(rope_base=10000.0)
    return mistakes


def rope_attention_check(rope_attention, apply_rope, q, k, v, positions, base: float = 10000.0):
    """Check ``rope_attention(q, k, v, positions, base)`` (exercise 3); return its output.

    First checks apply_rope on these queries (:func:`rope_earlier`), which names exercise 2 when that
    one is wrong and gives the pairing apply_rope uses: the reference rotates with the same pairing,
    so either convention is right if used throughout. The function runs on copies of its inputs.
    """
    import torch

    pairing = rope_earlier(apply_rope, q, positions, base)
    setting = tr("q, k, v are (batch, heads, seq_len, d) = {q_shape} ({dtype_q}), positions = {shown}, base = {base}",
                 q_shape=tuple(q.shape), dtype_q=q.dtype, shown=_shown_positions(positions), base=base)
    copies = [t.clone() for t in (q, k, v)]
    try:
        out = rope_attention(*copies, torch.as_tensor(positions).clone(), base)
    except Exception as error:  # noqa: BLE001
        if type(error).__name__ in _PASS_THROUGH or isinstance(error, NotImplementedError):
            raise
        raise AssertionError(
            tr("rope_attention stopped with an error: the shapes do not fit together. q and k are (batch, heads, seq_len, "
               "d): the scores are q @ k.transpose(-2, -1), which swaps only the last two axes of k (k.T reverses all four "
               "axes of a 4-D tensor), and the causal mask is (seq_len, seq_len) ({setting}) {error}",
               setting=setting, error=_torch_error(error))) from None
    if isinstance(out, (tuple, list)):
        raise AssertionError(tr("rope_attention must return only the output, one tensor {q_shape}; yours returned a "
                                "{out}: leave the attention weights out",
                                q_shape=tuple(q.shape), out=describe(out)))
    tensor(out, "rope_attention", shape=tuple(q.shape))
    assert out.dtype == q.dtype, tr("rope_attention must keep the dtype of q, {dtype_q}; yours returned {dtype_out}",
                                    dtype_q=q.dtype, dtype_out=out.dtype)
    changed = [name for name, copy, t in zip("qkv", copies, (q, k, v)) if not torch.equal(copy, t)]
    assert not changed, (tr("rope_attention changed its input {changed} in place: rotate into new tensors (q = apply_rope(q, "
                            "positions, base) rebinds the name, it does not write into q)",
                            changed=' and '.join(changed)))
    expected = rope_attention_reference(q, k, v, positions, base, pairing=pairing)
    if _rope_close(out, expected):
        return out
    gap = tr("rope_attention differs from causal attention with RoPE ({setting})", setting=setting)
    nan_rows = torch.isnan(out).flatten(0, -3).any(0).any(-1)  # (seq_len,): which queries got NaN
    if nan_rows.any():
        if nan_rows[-1] and not nan_rows[0]:
            raise AssertionError(
                tr("{gap}: the causal mask is inverted: the last token's scores were all -inf (its softmax is NaN) because "
                   "you blocked j <= i and allowed j > i. Token i may attend to tokens j <= i: allowed = torch.ones(n, n, "
                   "dtype=torch.bool).tril(), then scores.masked_fill(~allowed, float('-inf'))", gap=gap))
        if nan_rows[0]:
            raise AssertionError(
                tr("{gap}: the first token got NaN: all its scores are -inf, so your mask does not let a token see itself. "
                   "Token i may attend to tokens j <= i, itself included: torch.ones(n, n, dtype=torch.bool).tril() (not "
                   "tril(-1)), and fill the scores where it is False", gap=gap))
        raise AssertionError(tr("{gap}: the output contains NaN: some query had every score at -inf", gap=gap))
    named = first_match(out.float(), rope_attention_mistakes(q, k, v, positions, base, pairing), "")
    raise AssertionError(tr("{gap}: {explanation}", gap=gap, explanation=named or tr(
        "rotate q and k with apply_rope(t, positions, base), scores q @ k.transpose(-2, -1) / sqrt(d), the "
        "causal mask (-inf where j > i) before the softmax over the keys (dim=-1), then multiply by v")))


# ---------------------------------------------------------------------------- exercise 4: grouped-query attention
def gqa_reference(x, W_q, W_k, W_v, W_o, num_heads: int, num_kv_heads: int):
    """Causal grouped-query attention computed by :func:`attention_course.maths.modern.grouped_query_attention`.

    No rotary positions (``rope_base=None``): the exercise is about sharing key/value heads. Query head ``j``
    uses key/value head ``floor(j * g / h) = j // (h // g)`` (:func:`attention_course.maths.modern.repeat_kv`).

    Args:
        x: ``(batch, seq_len, d_model)``; W_q: ``(d_model, h * d_k)``; W_k, W_v: ``(d_model, g * d_k)``;
            W_o: ``(h * d_k, d_model)``.
        num_heads, num_kv_heads: ``h`` and ``g``; ``g`` must divide ``h``.

    Returns:
        ``(output, weights)``: ``(batch, seq_len, d_model)`` and ``(batch, h, seq_len, seq_len)``.

    Raises:
        ValueError: if ``g`` does not divide ``h`` or the shapes do not fit.
    """
    from attention_course.maths.modern import grouped_query_attention

    return grouped_query_attention(x, W_q, W_k, W_v, W_o, num_heads, num_kv_heads, rope_base=None)


def _gqa(x, W_q, W_k, W_v, W_o, h, g, *, share="interleave", scale="d_k", softmax_dim=-1, allowed="tril",
         fill="-inf", mask_after=False, split="heads", merge="heads", use_W_o=True):
    """Grouped-query attention written out, one switch per typical mistake (float64; the wrong answers)."""
    import torch

    xd = x.detach().double()
    Wq, Wk, Wv, Wo = (w.detach().double() for w in (W_q, W_k, W_v, W_o))
    B, n, d = xd.shape
    d_k = Wq.shape[1] // h
    r = h // g

    def heads(t, count):  # (B, n, count * d_k) -> (B, count, n, d_k)
        if split == "interleaved":
            return t.reshape(B, n, d_k, count).permute(0, 3, 1, 2)
        if split == "no_transpose":
            return t.reshape(B, count, n, d_k)
        return t.reshape(B, n, count, d_k).transpose(1, 2)

    Q, K, V = heads(xd @ Wq, h), heads(xd @ Wk, g), heads(xd @ Wv, g)
    if share == "tile":
        K, V = K.repeat(1, r, 1, 1), V.repeat(1, r, 1, 1)
    elif share == "keys_only":
        K = K.repeat_interleave(r, dim=1)
    elif share == "values_only":
        V = V.repeat_interleave(r, dim=1)
    else:
        K, V = K.repeat_interleave(r, dim=1), V.repeat_interleave(r, dim=1)
    divisor = {"d_k": math.sqrt(d_k), "d_model": math.sqrt(d), "none": 1.0, "d_k_no_root": float(d_k)}[scale]
    scores = Q @ K.transpose(-2, -1) / divisor  # (B, h, n, n)
    ones = torch.ones(n, n, dtype=torch.bool)
    keep = {"tril": ones.tril(), "tril-1": ones.tril(-1), "triu": ones.triu(), "tril+1": ones.tril(1),
            "inverted": ~ones.tril(), "none": ones}[allowed]
    if mask_after:
        weights = torch.softmax(scores, dim=softmax_dim) * keep
    else:
        weights = torch.softmax(scores.masked_fill(~keep, float("-inf") if fill == "-inf" else 0.0), dim=softmax_dim)
    out = weights @ V  # (B, h, n, d_k)
    if merge == "no_transpose":
        out = out.reshape(B, n, h * d_k)
    elif merge == "interleaved":
        out = out.permute(0, 2, 3, 1).reshape(B, n, h * d_k)
    else:
        out = out.transpose(1, 2).reshape(B, n, h * d_k)
    return (out @ Wo if use_W_o else out), weights


def gqa_mistakes(x, W_q, W_k, W_v, W_o, num_heads: int, num_kv_heads: int) -> dict:
    """Explanation -> a function of no arguments giving ``(output, weights)`` of that mistake."""
    h, g = num_heads, num_kv_heads
    d_k = W_q.shape[1] // h
    args = (x, W_q, W_k, W_v, W_o, h, g)

    def wrong(**change):
        return lambda: _gqa(*args, **change)

    fill = "scores.masked_fill(~allowed, float('-inf'))"
    return {
        tr("query head j used key/value head j mod g (with h = {h}, g = {g}: heads 0, 1, 2, ... got key/value heads {kv_heads}, "
           "...): torch's .repeat TILES the heads. Each key/value head serves h/g = {group_size} CONSECUTIVE query heads, head j "
           "uses key/value head floor(j*g/h) = j // (h // g): K.repeat_interleave(h // g, dim=1), and the same for V",
           h=h, g=g, kv_heads=', '.join((str(j % g) for j in range(min(h, 4)))), group_size=h // g): wrong(share="tile"),
        tr("the scores are not divided by sqrt(d_k) (d_k = {d_k}, the width of one head)", d_k=d_k): wrong(scale="none"),
        tr("you divided the scores by sqrt(d_model) = sqrt({d_model}); divide by sqrt(d_k) = sqrt({d_k}), the width of one head",
           d_model=x.shape[-1], d_k=d_k): wrong(scale="d_model"),
        tr("you divided the scores by d_k = {d_k}; divide by its square root, sqrt(d_k)", d_k=d_k): wrong(scale="d_k_no_root"),
        tr("the softmax ran over the queries (dim=-2): each query's weights over the keys must sum to 1, "
           "torch.softmax(scores, dim=-1)"): wrong(softmax_dim=-2),
        tr("the causal mask is missing: token i may attend only to tokens j <= i; set the other scores to -inf before the "
           "softmax, {fill}", fill=fill): wrong(allowed="none"),
        tr("the causal mask is inverted: you set the ALLOWED scores to -inf. The course's mask is True where a query MAY "
           "attend, allowed = torch.ones(n, n, dtype=torch.bool).tril() (F.scaled_dot_product_attention reads a boolean "
           "attn_mask the same way; nn.MultiheadAttention's boolean attn_mask means the opposite), so fill where it is "
           "False: {fill}", fill=fill): wrong(allowed="inverted"),
        tr("your mask does not let a token see itself (tril(-1)): token i may attend to tokens j <= i, itself included: "
           "torch.ones(n, n, dtype=torch.bool).tril()"): wrong(allowed="tril-1"),
        tr("your mask lets token i see the tokens AFTER it (j >= i) and hides those before it: the causal mask keeps j <= i, "
           "torch.ones(n, n, dtype=torch.bool).tril() (not triu)"): wrong(allowed="triu"),
        tr("your mask lets each token see the NEXT token too (tril(1)): token i may attend to tokens j <= i, torch.ones(n, "
           "n, dtype=torch.bool).tril()"): wrong(allowed="tril+1"),
        tr("the masked scores were set to 0, and a score of 0 still gets weight after the softmax: set them to -inf, {fill}",
           fill=fill): wrong(fill="zero"),
        tr("you applied the mask after the softmax: the weights of the blocked keys were zeroed, so the rows no longer sum "
           "to 1; set the blocked scores to -inf before the softmax"): wrong(mask_after=True),
        tr("the heads are split wrongly: reshape to (batch, seq_len, heads, d_k) and THEN transpose(1, 2), so that head j "
           "gets the consecutive columns j*d_k:(j+1)*d_k; yours interleaves them (reshape to (batch, seq_len, d_k, heads))"):
            wrong(split="interleaved"),
        tr("the heads are split wrongly: reshape(batch, heads, seq_len, d_k) without a transpose mixes positions into the "
           "heads; reshape to (batch, seq_len, heads, d_k), then transpose(1, 2)"): wrong(split="no_transpose"),
        tr("the heads are put back in the wrong order: transpose the output (batch, h, seq_len, d_k) to (batch, seq_len, h, "
           "d_k) BEFORE reshape(batch, seq_len, h * d_k), so that head j fills columns j*d_k:(j+1)*d_k of the row that W_o "
           "multiplies"): wrong(merge="no_transpose"),
        tr("the heads are put back in the wrong order: yours interleaves their features (permute to (batch, seq_len, d_k, "
           "h)); head j must fill the consecutive columns j*d_k:(j+1)*d_k: out.transpose(1, 2).reshape(batch, seq_len, h * "
           "d_k)"): wrong(merge="interleaved"),
        tr("W_o is not applied: put the heads side by side, then multiply by W_o"): wrong(use_W_o=False),
    }


def _gqa_error_variants(x, W_q, W_k, W_v, W_o, h, g) -> list[tuple[str, object]]:
    """Typical mistakes that raise on these inputs: (explanation, function that raises the same error)."""
    import torch

    B, n, _ = x.shape
    d_k = W_q.shape[1] // h
    r = h // g
    Q = (x @ W_q).reshape(B, n, h, d_k).transpose(1, 2)
    K = (x @ W_k).reshape(B, n, g, d_k).transpose(1, 2)
    V = (x @ W_v).reshape(B, n, g, d_k).transpose(1, 2)
    Kr = K.repeat_interleave(r, dim=1)
    weights = torch.softmax(Q @ Kr.transpose(-2, -1) / math.sqrt(d_k), dim=-1)
    not_repeated = (tr("the keys or the values were not repeated (or were repeated along another axis than the heads): Q and "
                       "the weights have h = {h} heads, K and V only g = {g}. Repeat BOTH to h heads along the heads axis, "
                       "dim=1 of (batch, g, seq_len, d_k): K.repeat_interleave(h // g, dim=1) before Q @ K.transpose(-2, "
                       "-1), and V.repeat_interleave(h // g, dim=1) before weights @ V", h=h, g=g))
    transposed = (tr("the keys are transposed wrongly: K.T reverses ALL four axes of a (batch, heads, seq_len, d_k) tensor "
                     "and K.transpose(1, 2) swaps the heads and the positions; the scores are Q @ K.transpose(-2, -1), which "
                     "swaps only the last two axes"))
    return [
        (not_repeated, lambda: Q @ K.transpose(-2, -1)),
        (not_repeated, lambda: weights @ V),
        (not_repeated, lambda: Q @ K.repeat_interleave(r, dim=2).transpose(-2, -1)),
        (f"you split the keys or values into num_heads = {h} heads, but W_k and W_v have only g * d_k = {g * d_k} "
         f"columns: split them into num_kv_heads = {g} heads of d_k = {d_k}, reshape(batch, seq_len, num_kv_heads, "
         "d_k), then repeat them", lambda: (x @ W_k).reshape(B, n, h, d_k)),
        (f"h / g is a float ({h / g}); repeat_interleave needs a whole number of repeats: h // g",
         lambda: K.repeat_interleave(h / g, dim=1)),
        (transposed, lambda: Q @ Kr.permute(3, 2, 1, 0)),
        (transposed, lambda: Q @ Kr.transpose(1, 2)),
        ("the keys are not transposed: the scores are Q @ K.transpose(-2, -1), (seq_len, d_k) @ (d_k, seq_len) per "
         "head", lambda: Q @ Kr),
    ]


def _failing_line(error: Exception) -> str:
    """`` (the line that failed: ...)`` from the innermost frame of the student's own code, if its source is known."""
    import linecache
    import traceback

    here = __name__.split(".")[0]
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        name = frame.filename.replace("\\", "/")
        if "/torch/" in name or f"/{here}/" in name or name.startswith("<frozen"):
            continue
        line = (frame.line or linecache.getline(frame.filename, frame.lineno or 0)).strip()
        return tr(" (the line that failed: {line})", line=line) if line else ""
    return ""


def _same_error(error: Exception, variants) -> str | None:
    """The explanation of the first variant that raises exactly the student's error (type and message)."""
    said = (type(error).__name__, str(error))
    for explanation, fn in variants:
        try:
            fn()
        except Exception as other:  # noqa: BLE001 - the variant is meant to raise
            if (type(other).__name__, str(other)) == said:
                return explanation
    return None


def _gqa_inputs(batch: int, n: int, d_model: int, h: int, g: int, seed: int, dtype):
    """Random x and weights for one check (float64 draws, cast to ``dtype``)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    d_k = d_model // h

    def draw(*shape, scale=1.0):
        return (scale * torch.randn(*shape, generator=gen, dtype=torch.float64)).to(dtype)

    return (draw(batch, n, d_model, scale=1.5), draw(d_model, h * d_k, scale=d_model ** -0.5),
            draw(d_model, g * d_k, scale=d_model ** -0.5), draw(d_model, g * d_k, scale=d_model ** -0.5),
            draw(h * d_k, d_model, scale=(h * d_k) ** -0.5))


def _gqa_head_map(weights, x, W_q, W_k, h: int, g: int) -> str | None:
    """Which key/value head each query head of ``weights`` attended with, where it is the wrong one."""
    import torch

    xd = x.detach().double()
    B, n, _ = xd.shape
    d_k = W_q.shape[1] // h
    Q = (xd @ W_q.double()).reshape(B, n, h, d_k).transpose(1, 2)
    K = (xd @ W_k.double()).reshape(B, n, g, d_k).transpose(1, 2)
    blocked = ~torch.ones(n, n, dtype=torch.bool).tril()
    wrong = []
    for j in range(h):
        for m in range(g):
            w = torch.softmax((Q[:, j] @ K[:, m].transpose(-2, -1) / math.sqrt(d_k)).masked_fill(blocked, float("-inf")), -1)
            if close(weights[:, j], w):
                if m != j * g // h:
                    wrong.append(f"query head {j} used key/value head {m}, not floor({j}*{g}/{h}) = {j * g // h}")
                break
    if not wrong:
        return None
    return (tr("your weights are right head by head, but some query heads attend with the wrong key/value head: ")
            + "; ".join(wrong[:3]) + tr(". Head j uses key/value head floor(j*g/h) = j // (h // g): K.repeat_interleave(h // "
                                        "g, dim=1), and the same for V"))


def _gqa_setting(x, W_q, W_k, h: int, g: int) -> str:
    d_k = W_q.shape[1] // h
    return (tr("x is (batch, seq_len, d_model) = {x_shape} ({dtype_x}), W_q ({W_q_rows}, {W_q_cols}), W_k and W_v "
               "({W_k_rows}, {W_k_cols}), num_heads h = {h}, num_kv_heads g = {g}, d_k = {d_k}: each key/value head serves "
               "{group_size} {query_heads}",
               x_shape=tuple(x.shape), dtype_x=x.dtype, W_q_rows=W_q.shape[0], W_q_cols=W_q.shape[1], W_k_rows=W_k.shape[0],
               W_k_cols=W_k.shape[1], h=h, g=g, d_k=d_k, group_size=h // g,
               query_heads=tr("query heads") if h // g > 1 else tr("query head")))


def gqa_check(grouped_query_attention, batch: int, n: int, d_model: int, num_heads: int, num_kv_heads: int,
              seed: int, dtype=None) -> None:
    """Check the student's ``grouped_query_attention`` on one random case against :func:`gqa_reference`.

    The function runs on copies of its inputs (a change made in place is named). A wrong result is named
    from the weights first, then from the output (:func:`gqa_mistakes`), then by what the weights show
    (a masking mistake, a query head that used the wrong key/value head); an error it raises is named when
    a typical mistake raises the same one.

    Raises:
        AssertionError: the answer is wrong; the message says how.
        NotImplementedError: the stub.
    """
    import torch

    h, g = num_heads, num_kv_heads
    dtype = dtype or torch.float32
    args = _gqa_inputs(batch, n, d_model, h, g, seed, dtype)
    x, W_q, W_k, W_v, W_o = args
    setting = _gqa_setting(x, W_q, W_k, h, g)
    result = _gqa_call(grouped_query_attention, args, h, g, setting)
    out, weights = _gqa_result(result, batch, n, d_model, h, g, dtype, setting)
    with torch.no_grad():
        want_out, want_w = gqa_reference(*args, h, g)
    if close(out, want_out) and close(weights, want_w):
        return
    _gqa_name_the_mistake(out, weights, want_out, want_w, args, h, g, setting)


def _gqa_call(grouped_query_attention, args, h: int, g: int, setting: str):
    """Run the student's function on copies of ``args``; name an error it raises, or a change made in place."""
    import torch

    copies = [a.clone() for a in args]
    try:
        with torch.no_grad():
            result = grouped_query_attention(*copies, h, g)
    except Exception as error:  # noqa: BLE001
        if _stub_or_grader(error):
            raise
        named = _same_error(error, _gqa_error_variants(*args, h, g)) or tr(
            "check the shapes: Q is (batch, h, seq_len, d_k); K and V are (batch, g, seq_len, d_k) until you repeat "
            "them to h heads with repeat_interleave(h // g, dim=1); the scores are Q @ K.transpose(-2, -1)")
        raise AssertionError(tr("grouped_query_attention stopped with an error{failing_line}: {named} ({setting}) "
                                "{error}", failing_line=_failing_line(error),
                                named=named, setting=setting,
                                error=_torch_error(error))) from None
    changed = _changed(("x", "W_q", "W_k", "W_v", "W_o"), args, copies)
    assert not changed, (tr("grouped_query_attention changed its argument {changed} in place (for example with masked_fill_, "
                            "+=, or by writing into a view): the caller's tensor is no longer what it passed. Work on new "
                            "tensors instead", changed=' and '.join(changed)))
    return result


def _gqa_result(result, batch: int, n: int, d_model: int, h: int, g: int, dtype, setting: str):
    """The pair (output, weights) of ``result``; fail naming a missing pair, a wrong shape or dtype."""
    import torch

    if isinstance(result, torch.Tensor) and tuple(result.shape) == (batch, n, d_model):
        raise AssertionError(tr("grouped_query_attention must return a pair (output, weights); yours returned only one "
                                "tensor: return the output AND the attention weights of every query head"))
    assert isinstance(result, (tuple, list)) and len(result) == 2, (
        tr("grouped_query_attention must return a pair (output, weights); yours returned a {result}",
           result=describe(result)))
    out, weights = result
    tensor(out, "grouped_query_attention (as its output)", shape=(batch, n, d_model))
    if isinstance(weights, torch.Tensor) and tuple(weights.shape) == (batch, g, n, n) and g != h:
        raise AssertionError(tr("grouped_query_attention's weights have one map per KEY/VALUE head, (batch, g, seq_len, "
                                "seq_len) = {per_kv_head}; every query head has its own: (batch, h, seq_len, seq_len) = "
                                "{per_query_head}. Repeat K to h heads before the scores ({setting})",
                                per_kv_head=(batch, g, n, n), per_query_head=(batch, h, n, n),
                                setting=setting))
    if isinstance(weights, torch.Tensor) and tuple(weights.shape) == (batch, n, n):
        raise AssertionError(tr("grouped_query_attention must return one weight map per query head, (batch, h, seq_len, "
                                "seq_len) = {want_shape}; yours has shape {weights_shape}: do not average the heads",
                                want_shape=(batch, h, n, n), weights_shape=tuple(weights.shape)))
    tensor(weights, "grouped_query_attention (as its weights)", shape=(batch, h, n, n))
    for name, value in (("output", out), ("weights", weights)):
        assert value.dtype == dtype, (tr("grouped_query_attention's {name} must keep x's dtype, {dtype}; yours are "
                                         "{dtype_value}: make new tensors with x's dtype ({setting})",
                                         name=name, dtype=dtype, dtype_value=value.dtype,
                                         setting=setting))
    return out, weights


def _gqa_name_the_mistake(out, weights, want_out, want_w, args, h: int, g: int, setting: str) -> None:
    """Fail on a wrong result: a typical mistake (:func:`gqa_mistakes`, weights first), a masking mistake, a
    query head with the wrong key/value head, else how far the weights or the output are from the reference."""
    import torch

    x, W_q, W_k, _, _ = args
    n = x.shape[1]
    mistakes = gqa_mistakes(*args, h, g)
    named = first_match(weights, {k: (lambda f=f: f()[1]) for k, f in mistakes.items()}, "", equal_nan=True)
    if named and first_match(out, {named: lambda: mistakes[named]()[0]}, "", equal_nan=True):
        raise AssertionError(f"grouped_query_attention ({setting}): {named}")
    named = first_match(out, {k: (lambda f=f: f()[0]) for k, f in mistakes.items()}, "", equal_nan=True)
    if named:
        raise AssertionError(f"grouped_query_attention ({setting}): {named}")
    allowed = torch.ones(n, n, dtype=torch.bool).tril()
    masking = mask_mistake(weights, allowed, fill_hint="scores.masked_fill(~allowed, float('-inf'))")
    if masking:
        raise AssertionError(f"grouped_query_attention's weights ({setting}): {masking}")
    mapping = _gqa_head_map(weights, x, W_q, W_k, h, g)
    if mapping:
        raise AssertionError(f"grouped_query_attention ({setting}): {mapping}")
    if not close(weights, want_w):
        raise AssertionError(
            tr("grouped_query_attention's weights differ from the reference by {difference:.2e} ({setting}): softmax(Q "
               "K^T / sqrt(d_k)) over the keys, with Q = x @ W_q split into h heads, K = x @ W_k split into g heads and "
               "repeated with repeat_interleave(h // g, dim=1), and the causal mask before the softmax",
               difference=(weights.double() - want_w.double()).abs().max().item(), setting=setting))
    raise AssertionError(
        tr("grouped_query_attention's weights are right, but its output differs from the reference by {difference:.2e} "
           "({setting}): multiply the weights by V = x @ W_v (split into g heads, repeated like K), put the heads back side "
           "by side (transpose(1, 2), reshape(batch, seq_len, h * d_k)), then multiply by W_o",
           difference=(out.double() - want_out.double()).abs().max().item(), setting=setting))


def gqa_refusal_check(grouped_query_attention, num_heads: int, num_kv_heads: int, *, batch: int = 1, n: int = 3,
                      d_k: int = 2) -> None:
    """Check that the function refuses ``num_kv_heads`` that does not divide ``num_heads`` with a ``ValueError``.

    The weights have the shapes the two numbers imply (``W_k``: ``(d_model, g * d_k)``), so only the
    division is wrong. A function that returns, or fails with another error from inside the computation,
    fails the check with a sentence.
    """
    import torch

    h, g = num_heads, num_kv_heads
    assert h % g, tr("gqa_refusal_check needs num_kv_heads that does not divide num_heads")
    gen = torch.Generator().manual_seed(h * 10 + g)
    d_model = h * d_k
    x = torch.randn(batch, n, d_model, generator=gen)
    W_q, W_o = torch.randn(d_model, h * d_k, generator=gen), torch.randn(h * d_k, d_model, generator=gen)
    W_k, W_v = torch.randn(d_model, g * d_k, generator=gen), torch.randn(d_model, g * d_k, generator=gen)
    ask = (tr("num_heads = {h} and num_kv_heads = {g}: {g} does not divide {h}, so the query heads cannot be shared out "
              "equally. Check it first and refuse, e.g. if num_heads % num_kv_heads != 0: raise "
              "ValueError(f\"num_kv_heads={{num_kv_heads}} must divide num_heads={{num_heads}}\")", h=h, g=g))
    try:
        with torch.no_grad():
            grouped_query_attention(x, W_q, W_k, W_v, W_o, h, g)
    except ValueError:
        return
    except AssertionError as error:
        raise AssertionError(tr("grouped_query_attention refused with an assert; raise ValueError instead (an assert is "
                                "skipped under python -O, and reads as a failed check): {ask} [{error}]",
                                ask=ask, error=str(error)[:100])) from None
    except Exception as error:  # noqa: BLE001
        if _stub_or_grader(error):
            raise
        raise AssertionError(tr("grouped_query_attention did not refuse with a clear error: it stopped inside the "
                                "computation instead. {ask} {error}", ask=ask,
                                error=_torch_error(error))) from None
    raise AssertionError(tr("grouped_query_attention accepted {ask}", ask=ask))


# ---------------------------------------------------------------------------- the check cells' random cases
def rms_case(shape, seed, dtype=None, scale=1.0):
    """x with a mean that is not 0 (as a residual stream has) and a gain that is not all ones (float32 by default)."""
    import torch

    dtype = dtype or torch.float32
    g = torch.Generator().manual_seed(seed)
    x = (scale * (torch.randn(*shape, generator=g, dtype=torch.float64) + 0.5)).to(dtype)
    weight = (0.5 + torch.rand(shape[-1], generator=g, dtype=torch.float64)).to(dtype)
    return x, weight


def rope_case_check(apply_rope, batch, heads, n, d, base, start, seed, dtype=None) -> str:
    """apply_rope on a random x at positions start .. start+n-1 (:func:`rope_check`); returns the pairing it uses."""
    import torch

    dtype = dtype or torch.float32
    g = torch.Generator().manual_seed(seed)
    x = (2 * torch.randn(batch, heads, n, d, generator=g, dtype=torch.float64)).to(dtype)
    positions = torch.arange(start, start + n)
    return rope_check(apply_rope, x, positions, base)


def rope_attention_case_check(rope_attention, apply_rope, batch, heads, n, d, base, start, seed, dtype=None) -> None:
    """rope_attention on random q, k, v (:func:`rope_attention_check`), then the same sequence 10 positions further:
    with RoPE the output must not change."""
    import torch

    from attention_course.grading.checks import run

    dtype = dtype or torch.float32
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(batch, heads, n, d, generator=g, dtype=torch.float64).to(dtype) for _ in range(3))
    positions = torch.arange(start, start + n)
    out = rope_attention_check(rope_attention, apply_rope, q, k, v, positions, base)
    moved = run("rope_attention", rope_attention, q.clone(), k.clone(), v.clone(), positions + 10, base)
    assert close(moved.float(), out.float()), (  # float32's resolution: angles may be computed in float32
        tr("moving the whole sequence 10 positions further changed the output, but with RoPE a score depends only on the "
           "DISTANCE between two tokens. Did you rotate the values too? Rotate only the queries and the keys."))

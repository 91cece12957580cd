"""The Chapter 8 exercise checks can fail, and say why: run them against typical wrong answers.

Each check cell of solutions/ch08_todays_llms/todays_llms.ipynb (RMSNorm, RoPE, attention with RoPE,
grouped-query attention) runs after a deliberately wrong implementation. Its PUBLIC part (what a student
sees; the hidden tests are cut off in the release) must raise AssertionError whose message names the mistake
(the words listed with each wrong answer, case-insensitive), never let a raw framework error through (the
whole cell starts with the public part, so it rejects them too). With the reference solution, and with other
right answers (either RoPE pairing, Meta's and Hugging Face's code, other spellings of RMSNorm and GQA), every
check passes, hidden tests included. At least eight wrong answers per exercise.
"""
from __future__ import annotations

import textwrap

import pytest

from course_tools import ALLOWED, ROOT, ExerciseNotebook, course_imports, rope_source

NOTEBOOK = ROOT / "solutions" / "ch08_todays_llms" / "todays_llms.ipynb"
EXERCISE = ExerciseNotebook(NOTEBOOK)
CELLS = EXERCISE.sources  # grade_id -> source


run = EXERCISE.run  # the check's message after a given answer ("" if it passed)


def fill(template: str, good: dict, change: dict) -> str:
    """``template`` with each <<NAME>> replaced by the good part, or by the changed one."""
    for key, value in {**good, **change}.items():
        template = template.replace(f"<<{key}>>", value)
    assert "<<" not in template, template
    return template


# ---------------------------------------------------------------------------- 1. RMSNorm
RMS = """
def rms_norm(x, weight, eps=<<DEFAULT>>):
    xf = <<UPCAST>>
    ms = <<MS>>
    normed = <<NORMED>>
    return <<RESULT>>
"""
GOOD_RMS = {
    "DEFAULT": "1e-6",
    "UPCAST": "x.to(torch.promote_types(x.dtype, torch.float32))",
    "MS": "xf.pow(2).mean(dim=-1, keepdim=True)",
    "NORMED": "xf / torch.sqrt(ms + eps)",
    "RESULT": "(normed * weight.to(xf.dtype)).to(x.dtype)",
}


def rms(**change) -> str:
    return fill(RMS, GOOD_RMS, change)


CORRECT_RMS = {
    "the solution's spelling (promote_types, sqrt)": rms(),
    "Hugging Face's LlamaRMSNorm (float32 always, the gain after the cast)": """
        def rms_norm(x, weight, eps=1e-6):
            hidden = x.to(torch.float32)
            variance = hidden.pow(2).mean(-1, keepdim=True)
            hidden = hidden * torch.rsqrt(variance + eps)
            return weight * hidden.to(x.dtype)
    """,
    "one line with torch.linalg.vector_norm": """
        def rms_norm(x, weight, eps=1e-6):
            xf = x.double() if x.dtype == torch.float64 else x.float()
            rms = torch.sqrt(torch.linalg.vector_norm(xf, dim=-1, keepdim=True) ** 2 / x.shape[-1] + eps)
            return (xf / rms * weight).to(x.dtype)
    """,
}

RMS_WRONG = {
    "LayerNorm (mean subtracted)": (rms(
        MS="(xf - xf.mean(-1, keepdim=True)).pow(2).mean(dim=-1, keepdim=True)",
        NORMED="(xf - xf.mean(-1, keepdim=True)) / torch.sqrt(ms + eps)"), ("subtracted the mean", "layernorm")),
    "F.layer_norm": ("""
        def rms_norm(x, weight, eps=1e-6):
            return F.layer_norm(x, (x.shape[-1],), weight, eps=eps)
    """, ("layernorm",)),
    "divided by x.std()": (rms(NORMED="xf / xf.std(dim=-1, keepdim=True)"), ("x.std()", "mean(x**2)")),
    "divided by the root of the variance": (rms(MS="xf.var(dim=-1, keepdim=True, unbiased=False)"),
                                            ("standard deviation", "mean(x**2)")),
    "no square root": (rms(NORMED="xf / (ms + eps)"), ("without taking its square root",)),
    "multiplied by the RMS": (rms(NORMED="xf * torch.sqrt(ms + eps)"), ("multiplied by the root mean square",)),
    "eps outside the square root": (rms(NORMED="xf / (torch.sqrt(ms) + eps)"), ("outside the square root",)),
    "eps ignored": (rms(NORMED="xf / torch.sqrt(ms)"), ("did not use the eps argument", "eps = 0.0")),
    "eps hard-coded to 1e-5": (rms(NORMED="xf / torch.sqrt(ms + 1e-5)"), ("did not use the eps argument",)),
    "default eps 1e-5 in the signature": (rms(DEFAULT="1e-5"), ("did not use the eps argument", "1e-05")),
    "mean over the tokens (dim=-2)": (rms(MS="xf.pow(2).mean(dim=-2, keepdim=True)"), ("wrong axis", "dim=-2")),
    "mean over the whole tensor": (rms(MS="xf.pow(2).mean()"), ("whole tensor",)),
    "keepdim forgotten (raw broadcast error before)": (rms(MS="xf.pow(2).mean(dim=-1)"), ("keepdim=True",)),
    "sum of squares (L2 norm)": (rms(MS="xf.pow(2).sum(dim=-1, keepdim=True)"), ("summed the squares",)),
    "gain forgotten": (rms(RESULT="normed.to(x.dtype)"), ("gain is missing",)),
    "gain added like a bias": (rms(RESULT="(normed + weight).to(x.dtype)"), ("added the gain", "no bias")),
    "gain applied before the RMS": ("""
        def rms_norm(x, weight, eps=1e-6):
            xf = x.to(torch.promote_types(x.dtype, torch.float32)) * weight
            return (xf / torch.sqrt(xf.pow(2).mean(dim=-1, keepdim=True) + eps)).to(x.dtype)
    """, ("before taking the root mean square",)),
    "float16 not upcast: x**2 overflows": (rms(UPCAST="x"), ("overflowed", "float32")),
    "result left in float32": (rms(RESULT="normed * weight.to(xf.dtype)"), ("torch.float16", "cast the result back")),
    "float32 always, float32 returned": (rms(UPCAST="x.float()", RESULT="normed * weight.float()"),
                                         ("torch.float64", "x.float() turns a float64 x into float32")),
    "right values, x changed in place": ("""
        def rms_norm(x, weight, eps=1e-6):
            xf = x.to(torch.promote_types(x.dtype, torch.float32))
            scale = torch.rsqrt(xf.pow(2).mean(dim=-1, keepdim=True) + eps)
            return x.mul_(scale.to(x.dtype)).mul_(weight)
    """, ("in place",)),
    "math.sqrt on a tensor": (rms(NORMED="xf / math.sqrt(ms + eps)"), ("math.sqrt", "torch.sqrt")),
    "x taken to be 3-D (batch, seq_len, d_model)": ("""
        def rms_norm(x, weight, eps=1e-6):
            batch, n, d = x.shape
            xf = x.to(torch.promote_types(x.dtype, torch.float32))
            return (xf / torch.sqrt(xf.pow(2).sum(dim=2, keepdim=True) / d + eps) * weight).to(x.dtype)
    """, ("any number of leading axes", "dim=-1")),
}


# ---------------------------------------------------------------------------- 2 and 3. RoPE, and attention with it
# (moved from Chapter 6 with the exercises, issue 27). Both pairings are right: the halves (i, i + d/2) of Hugging
# Face's rotate_half and the neighbours (2i, 2i+1) of RoFormer and Meta's LLaMA code.
def half(**change):
    """A correct apply_rope that pairs the halves (course_tools.ROPE_TEMPLATE), except the parts changed."""
    return rope_source(**change)


NEIGHBOURS_TEMPLATE = """
def apply_rope(x, positions, base=10000.0):
    d = x.shape[-1]
    theta = BASE ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    angles = POSITIONS.to(torch.float64)[:, None] * theta
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    a, b = x[..., 0::2], x[..., 1::2]
    return torch.stack(ROTATED, dim=-1).flatten(-2)
"""


def neighbours(base="base", positions="positions", rotated="[a * cos - b * sin, b * cos + a * sin]"):
    """A correct apply_rope that pairs neighbours (2i, 2i+1), except the parts changed."""
    return NEIGHBOURS_TEMPLATE.replace("BASE", base).replace("POSITIONS", positions).replace("ROTATED", rotated)


def half_body(body):
    """apply_rope with the halves' cos and sin (each (seq_len, d)), x1, x2, then ``body``."""
    return rope_source().replace("    return x * cos + torch.cat([-x2, x1], dim=-1) * sin\n",
                                 textwrap.indent(textwrap.dedent(body).strip("\n"), "    ") + "\n")


CORRECT_ROPE = {
    "the halves (i, i + d/2)": half(),
    "neighbours (2i, 2i+1)": neighbours(),
    "Meta's LLaMA code (complex numbers, float32)": """
        def apply_rope(x, positions, base=10000.0):
            d = x.shape[-1]
            theta = 1.0 / (base ** (torch.arange(0, d, 2).float() / d))
            freqs = torch.polar(torch.ones(len(positions), d // 2), positions.float()[:, None] * theta)
            xc = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2).contiguous())
            return torch.view_as_real(xc * freqs).flatten(-2).type_as(x)
    """,
    "Hugging Face's code (rotate_half, float32 angles)": """
        def rotate_half(x):
            x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
            return torch.cat((-x2, x1), dim=-1)

        def apply_rope(x, positions, base=10000.0):
            d = x.shape[-1]
            inv_freq = 1.0 / (base ** (torch.arange(0, d, 2, dtype=torch.int64).float() / d))
            emb = torch.cat([positions[:, None].float() * inv_freq] * 2, dim=-1)
            return x * emb.cos().to(x.dtype) + rotate_half(x) * emb.sin().to(x.dtype)
    """,
}

ROPE_WRONG = {
    "rotate_half with the signs the wrong way round": half(ROTATED="x * cos + torch.cat([x2, -x1], dim=-1) * sin"),
    "rotated by minus the angle": half(POSITIONS="(-positions)"),
    "cos and sin swapped": half(ROTATED="x * sin + torch.cat([-x2, x1], dim=-1) * cos"),
    "base argument ignored (10000)": half(BASE="10000.0"),
    "frequencies base ** (-i / d)": half().replace("torch.arange(0, d, 2, dtype=torch.float64) / d",
                                                   "torch.arange(d // 2, dtype=torch.float64) / d"),
    "frequencies base ** (+2i / d), minus sign forgotten": half().replace("base ** (-torch.arange", "base ** (torch.arange"),
    "exponent in integers (//): every theta is 1": half().replace("torch.arange(0, d, 2, dtype=torch.float64) / d",
                                                                  "(torch.arange(0, d, 2) // d)"),
    "positions replaced by arange": half(POSITIONS="torch.arange(x.shape[-2])"),
    "positions off by one": half(POSITIONS="(positions + 1)"),
    "angle not multiplied by the position": half().replace(
        "angles = positions.to(torch.float64)[:, None] * theta", "angles = theta.expand(x.shape[-2], -1)"),
    "position added to theta instead of multiplied": half().replace("[:, None] * theta", "[:, None] + theta"),
    "halves rotated with the neighbours' angle layout (repeat_interleave)": half().replace(
        "torch.cat([angles, angles], dim=-1)", "angles.repeat_interleave(2, dim=-1)"),
    "neighbours rotated with the halves' angle layout (cat)": """
        def apply_rope(x, positions, base=10000.0):
            d = x.shape[-1]
            theta = base ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
            angles = positions.to(torch.float64)[:, None] * theta
            angles = torch.cat([angles, angles], dim=-1)
            cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
            rotated = torch.stack([-x[..., 1::2], x[..., 0::2]], dim=-1).flatten(-2)
            return x * cos + rotated * sin
    """,
    "sine term multiplies x instead of rotate_half(x)": half(ROTATED="x * cos + x * sin"),
    "rotate_half without the minus sign": half(ROTATED="x * cos + torch.cat([x2, x1], dim=-1) * sin"),
    "only the first half rotated": half(ROTATED="torch.cat([x1 * cos[..., :d // 2] - x2 * sin[..., :d // 2], x2], dim=-1)"),
    "the two halves of the result swapped": half_body("""
        y = x * cos + torch.cat([-x2, x1], dim=-1) * sin
        return torch.cat([y[..., d // 2:], y[..., :d // 2]], dim=-1)
    """),
    "x2 rotated with the already rotated x1": half_body("""
        c, s = cos[..., :d // 2], sin[..., :d // 2]
        y1 = x1 * c - x2 * s
        y2 = x2 * c + y1 * s
        return torch.cat([y1, y2], dim=-1)
    """),
    "right values, written into x in place": half_body("""
        c, s = cos[..., :d // 2], sin[..., :d // 2]
        y1, y2 = x1 * c - x2 * s, x2 * c + x1 * s
        x[..., :d // 2] = y1
        x[..., d // 2:] = y2
        return x
    """),
    "x rotated in place, half by half": half_body("""
        c, s = cos[..., :d // 2], sin[..., :d // 2]
        x1.mul_(c).sub_(x2 * s)
        x2.mul_(c).add_(x1 * s)
        return x
    """),
    "float32 result for a float64 x": half_body("""
        out = torch.empty(x.shape)
        out[..., :d // 2] = x1 * cos[..., :d // 2] - x2 * sin[..., :d // 2]
        out[..., d // 2:] = x2 * cos[..., d // 2:] + x1 * sin[..., d // 2:]
        return out
    """),
    "float64 result for a float32 x": half(ROTATED="x * angles.cos() + torch.cat([-x2, x1], dim=-1) * angles.sin()"),
    ".item() on the positions": half().replace("positions.to(torch.float64)[:, None]", "positions.item()"),
    "math.cos on a tensor": half().replace("angles.cos().to(x.dtype), angles.sin().to(x.dtype)",
                                           "math.cos(angles), math.sin(angles)"),
    "cos and sin not repeated: d/2 columns": half().replace("    angles = torch.cat([angles, angles], dim=-1)\n", ""),
    "positions not broadcast against theta": half().replace("positions.to(torch.float64)[:, None]",
                                                            "positions.to(torch.float64)"),
    "cos and sin transposed (d, seq_len)": half().replace(
        "angles = positions.to(torch.float64)[:, None] * theta", "angles = theta[:, None] * positions.to(torch.float64)").replace(
        "torch.cat([angles, angles], dim=-1)", "torch.cat([angles, angles], dim=0)"),
    "cos and sin with the seq_len axis against the heads": half().replace(
        "cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)",
        "cos, sin = angles.cos().to(x.dtype)[:, None, :], angles.sin().to(x.dtype)[:, None, :]"),
    "x taken to be 3-D (batch, seq_len, d)": half().replace("    d = x.shape[-1]\n", "    batch, n, d = x.shape\n"),
    "returns the two halves as a tuple": half_body("""
        c, s = cos[..., :d // 2], sin[..., :d // 2]
        return x1 * c - x2 * s, x2 * c + x1 * s
    """),
    "returns only the first half": half_body("""
        c, s = cos[..., :d // 2], sin[..., :d // 2]
        return x1 * c - x2 * s
    """),
    "neighbours rotated the wrong way": neighbours(rotated="[a * cos + b * sin, b * cos - a * sin]"),
    "neighbours with the positions replaced by arange": neighbours(positions="torch.arange(x.shape[-2])"),
    "neighbours with base 10000 whatever the argument": neighbours(base="10000.0"),
}
ROPE_WORDS = {
    "rotate_half with the signs the wrong way round": ("wrong way",),
    "rotated by minus the angle": ("wrong way",),
    "cos and sin swapped": ("cos and sin are swapped",),
    "base argument ignored (10000)": ("10000", "base argument", "100.0"),
    "frequencies base ** (-i / d)": ("base ** (-i / d)", "-2i / d"),
    "frequencies base ** (+2i / d), minus sign forgotten": ("minus sign",),
    "exponent in integers (//): every theta is 1": ("theta_i = 1", "//"),
    "positions replaced by arange": ("positions argument", "torch.arange"),
    "positions off by one": ("off by one",),
    "angle not multiplied by the position": ("same angle", "positions[m] * theta_i"),
    "position added to theta instead of multiplied": ("added", "positions[m] * theta_i"),
    "halves rotated with the neighbours' angle layout (repeat_interleave)": ("mixed", "torch.cat([angles, angles]"),
    "neighbours rotated with the halves' angle layout (cat)": ("mixed", "repeat_interleave"),
    "sine term multiplies x instead of rotate_half(x)": ("sine term", "rotate_half(x)"),
    "rotate_half without the minus sign": ("minus sign", "torch.cat([-x2, x1]"),
    "only the first half rotated": ("second half",),
    "the two halves of the result swapped": ("halves of your result are swapped",),
    "x2 rotated with the already rotated x1": ("already rotated",),
    "right values, written into x in place": ("in place", "values are right"),
    "x rotated in place, half by half": ("in place", "views"),
    "float32 result for a float64 x": ("dtype", "torch.float64", "torch.empty"),
    "float64 result for a float32 x": ("dtype", "torch.float32", ".to(x.dtype)"),
    ".item() on the positions": (".item()", "seq_len positions"),
    "math.cos on a tensor": ("math.cos", "torch.cos"),
    "cos and sin not repeated: d/2 columns": ("d/2 = 4", "d = 8"),
    "positions not broadcast against theta": ("positions[:, None]",),
    "cos and sin transposed (d, seq_len)": ("transposed", "(seq_len, d)"),
    "cos and sin with the seq_len axis against the heads": ("heads axis", "(seq_len, d)"),
    "x taken to be 3-D (batch, seq_len, d)": ("4-d", "x.shape[-1]"),
    "returns the two halves as a tuple": ("one tensor", "torch.cat"),
    "returns only the first half": ("both halves",),
    "neighbours rotated the wrong way": ("wrong way", "2i+1"),
    "neighbours with the positions replaced by arange": ("positions argument",),
    "neighbours with base 10000 whatever the argument": ("base argument",),
}

ROPE_ATTENTION_TEMPLATE = """
def rope_attention(q, k, v, positions, base=10000.0):
    ROTATE
    n, d = q.shape[-2], q.shape[-1]
    scores = SCORES
    scores = MASKED
    return torch.softmax(scores, dim=DIM) @ v
"""
GOOD_ROTATE = "q, k = apply_rope(q, positions, base), apply_rope(k, positions, base)"


def rope_attention(rotate=GOOD_ROTATE, scores="q @ k.transpose(-2, -1) / math.sqrt(d)",
                   masked="scores.masked_fill(~torch.ones(n, n, dtype=torch.bool).tril(), float('-inf'))", dim="-1"):
    return (ROPE_ATTENTION_TEMPLATE.replace("ROTATE", rotate).replace("SCORES", scores).replace("MASKED", masked)
            .replace("DIM", dim))


ROPE_ATTENTION_WRONG = {
    "values rotated too": rope_attention(rotate="q, k, v = (apply_rope(t, positions, base) for t in (q, k, v))"),
    "values rotated instead of the keys": rope_attention(
        rotate="q, v = apply_rope(q, positions, base), apply_rope(v, positions, base)"),
    "keys not rotated": rope_attention(rotate="q = apply_rope(q, positions, base)"),
    "queries not rotated": rope_attention(rotate="k = apply_rope(k, positions, base)"),
    "nothing rotated": rope_attention(rotate="pass"),
    "base not passed on to apply_rope": rope_attention(rotate="q, k = apply_rope(q, positions), apply_rope(k, positions)"),
    "no causal mask": rope_attention(masked="scores"),
    "causal mask inverted": rope_attention(masked="scores.masked_fill(torch.ones(n, n, dtype=torch.bool).tril(), float('-inf'))"),
    "a token may not see itself (tril(-1))": rope_attention(
        masked="scores.masked_fill(~torch.ones(n, n, dtype=torch.bool).tril(-1), float('-inf'))"),
    "mask lets each token see the future, not the past (triu)": rope_attention(
        masked="scores.masked_fill(~torch.ones(n, n, dtype=torch.bool).triu(), float('-inf'))"),
    "masked scores set to 0 instead of -inf": rope_attention(
        masked="scores.masked_fill(~torch.ones(n, n, dtype=torch.bool).tril(), 0.0)"),
    "mask applied after the softmax": rope_attention(masked="scores").replace(
        "return torch.softmax(scores, dim=-1) @ v",
        "return (torch.softmax(scores, dim=-1) * torch.ones(n, n).tril()) @ v"),
    "scores not divided by sqrt(d)": rope_attention(scores="q @ k.transpose(-2, -1)"),
    "scores divided by d": rope_attention(scores="q @ k.transpose(-2, -1) / d"),
    "scores divided by sqrt(heads) (q.shape[1])": rope_attention(scores="q @ k.transpose(-2, -1) / math.sqrt(q.shape[1])"),
    "softmax over the queries (dim=-2)": rope_attention(dim="-2"),
    # what k.T does, without its warning
    "k.T on a 4-D tensor": rope_attention(scores="q @ k.permute(3, 2, 1, 0) / math.sqrt(d)"),
    "returns (output, weights)": rope_attention().replace(
        "return torch.softmax(scores, dim=-1) @ v", "w = torch.softmax(scores, dim=-1)\n    return w @ v, w"),
    "a wrong apply_rope (wrong way) is blamed first": half(
        ROTATED="x * cos + torch.cat([x2, -x1], dim=-1) * sin") + rope_attention(),
    "an apply_rope that changes the dtype is blamed first": ROPE_WRONG["float32 result for a float64 x"] + rope_attention(),
    "an apply_rope that rotates in place is blamed first": ROPE_WRONG["right values, written into x in place"] + rope_attention(),
}
ROPE_ATTENTION_WORDS = {
    "values rotated too": ("values",  "only the queries and the keys"),
    "values rotated instead of the keys": ("values", "keys are not"),
    "keys not rotated": ("keys are not rotated",),
    "queries not rotated": ("queries are not rotated",),
    "nothing rotated": ("nothing is rotated",),
    "base not passed on to apply_rope": ("base", "apply_rope(q, positions, base)"),
    "no causal mask": ("causal mask is missing",),
    "causal mask inverted": ("inverted",),
    "a token may not see itself (tril(-1))": ("itself", "tril()"),
    "mask lets each token see the future, not the past (triu)": ("after it", "tril"),
    "masked scores set to 0 instead of -inf": ("-inf", "score of 0"),
    "mask applied after the softmax": ("after the softmax",),
    "scores not divided by sqrt(d)": ("not divided by sqrt(d)",),
    "scores divided by d": ("divided by d = 8",),
    "scores divided by sqrt(heads) (q.shape[1])": ("heads",),
    "softmax over the queries (dim=-2)": ("dim=-1",),
    "k.T on a 4-D tensor": ("k.transpose(-2, -1)",),
    "returns (output, weights)": ("only the output",),
    "a wrong apply_rope (wrong way) is blamed first": ("fix apply_rope first", "exercise 2", "wrong way"),
    "an apply_rope that changes the dtype is blamed first": ("fix apply_rope first", "exercise 2", "dtype"),
    "an apply_rope that rotates in place is blamed first": ("fix apply_rope first", "exercise 2", "in place"),
}


# ---------------------------------------------------------------------------- 4. grouped-query attention
GQA = """
def grouped_query_attention(x, W_q, W_k, W_v, W_o, num_heads, num_kv_heads):
    <<CHECK>>
    batch, n, _ = x.shape
    d_k = W_q.shape[1] // num_heads
    group = <<GROUP>>
    def heads(t, count):
        return <<SPLIT>>
    Q = heads(x @ W_q, num_heads)
    K = <<SHARE_K>>
    V = <<SHARE_V>>
    allowed = <<ALLOWED>>
    scores = Q @ <<KT>> / <<SCALE>>
    weights = <<WEIGHTS>>
    out = <<MERGE>>
    return <<RESULT>>
"""
GOOD_GQA = {
    "CHECK": "if num_heads % num_kv_heads:\n        raise ValueError('num_kv_heads must divide num_heads')",
    "GROUP": "num_heads // num_kv_heads",
    "SPLIT": "t.reshape(batch, n, count, d_k).transpose(1, 2)",
    "SHARE_K": "heads(x @ W_k, num_kv_heads).repeat_interleave(group, dim=1)",
    "SHARE_V": "heads(x @ W_v, num_kv_heads).repeat_interleave(group, dim=1)",
    "ALLOWED": "torch.ones(n, n, dtype=torch.bool).tril()",
    "KT": "K.transpose(-2, -1)",
    "SCALE": "math.sqrt(d_k)",
    "WEIGHTS": "torch.softmax(scores.masked_fill(~allowed, float('-inf')), dim=-1)",
    "MERGE": "(weights @ V).transpose(1, 2).reshape(batch, n, num_heads * d_k)",
    "RESULT": "out @ W_o, weights",
}


def gqa(**change) -> str:
    return fill(GQA, GOOD_GQA, change)


CORRECT_GQA = {
    "the solution's spelling": gqa(),
    "key/value head of each query head by index, floor(j*g/h)": gqa(
        SHARE_K="heads(x @ W_k, num_kv_heads)[:, torch.arange(num_heads) * num_kv_heads // num_heads]",
        SHARE_V="heads(x @ W_v, num_kv_heads)[:, torch.arange(num_heads) * num_kv_heads // num_heads]"),
    "expand and reshape (Hugging Face's repeat_kv), the output by F.scaled_dot_product_attention": """
        def grouped_query_attention(x, W_q, W_k, W_v, W_o, num_heads, num_kv_heads):
            if num_heads % num_kv_heads:
                raise ValueError(f"{num_kv_heads} key/value heads cannot serve {num_heads} query heads")
            b, n, _ = x.shape
            d_k = W_q.shape[1] // num_heads
            r = num_heads // num_kv_heads
            def kv(W):
                t = (x @ W).view(b, n, num_kv_heads, d_k).transpose(1, 2)
                return t[:, :, None].expand(b, num_kv_heads, r, n, d_k).reshape(b, num_heads, n, d_k)
            q = (x @ W_q).view(b, n, num_heads, d_k).transpose(1, 2)
            k, v = kv(W_k), kv(W_v)
            allowed = torch.ones(n, n, dtype=torch.bool).tril()
            weights = torch.softmax((q @ k.transpose(-2, -1) / d_k ** 0.5).masked_fill(~allowed, -torch.inf), -1)
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
            return out.transpose(1, 2).reshape(b, n, -1) @ W_o, weights
    """,
}

GQA_WRONG = {
    "repeat (tiling) instead of repeat_interleave": (gqa(
        SHARE_K="heads(x @ W_k, num_kv_heads).repeat(1, group, 1, 1)",
        SHARE_V="heads(x @ W_v, num_kv_heads).repeat(1, group, 1, 1)"), ("tiles", "repeat_interleave", "j mod g")),
    "every query head uses key/value head 0": (gqa(
        SHARE_K="heads(x @ W_k, num_kv_heads)[:, :1].expand(-1, num_heads, -1, -1)",
        SHARE_V="heads(x @ W_v, num_kv_heads)[:, :1].expand(-1, num_heads, -1, -1)"),
        ("query head 2 used key/value head 0", "floor(2*2/4) = 1")),
    "keys not repeated (raw size error before)": (gqa(SHARE_K="heads(x @ W_k, num_kv_heads)"),
                                                  ("keys or the values were not repeated", "repeat_interleave(h // g, dim=1)")),
    "keys repeated but not the values (raw size error before)": (gqa(SHARE_V="heads(x @ W_v, num_kv_heads)"),
                                                                 ("keys or the values were not repeated",)),
    "repeated along the positions (dim=2)": (gqa(
        SHARE_K="heads(x @ W_k, num_kv_heads).repeat_interleave(group, dim=2)",
        SHARE_V="heads(x @ W_v, num_kv_heads).repeat_interleave(group, dim=2)"), ("dim=1",)),
    "h / g as a float": (gqa(GROUP="num_heads / num_kv_heads"), ("whole number", "h // g")),
    "keys and values split into num_heads heads": (gqa(
        SHARE_K="heads(x @ W_k, num_heads)", SHARE_V="heads(x @ W_v, num_heads)"), ("num_kv_heads = 2 heads",)),
    "scores not scaled": (gqa(SCALE="1.0"), ("not divided by sqrt(d_k)",)),
    "scaled by sqrt(d_model)": (gqa(SCALE="math.sqrt(x.shape[-1])"), ("sqrt(d_model)",)),
    "scaled by d_k": (gqa(SCALE="d_k"), ("divided the scores by d_k",)),
    "softmax over the queries": (gqa(WEIGHTS="torch.softmax(scores.masked_fill(~allowed, float('-inf')), dim=-2)"),
                                 ("dim=-2", "dim=-1")),
    "no causal mask": (gqa(WEIGHTS="torch.softmax(scores, dim=-1)"), ("causal mask is missing",)),
    "mask with the wrong sign (filled where allowed)": (gqa(
        WEIGHTS="torch.softmax(scores.masked_fill(allowed, float('-inf')), dim=-1)"), ("inverted", "nn.multiheadattention")),
    "mask diagonal: a token may not see itself (tril(-1))": (gqa(ALLOWED="torch.ones(n, n, dtype=torch.bool).tril(-1)"),
                                                             ("itself",)),
    "mask the wrong way (triu)": (gqa(ALLOWED="torch.ones(n, n, dtype=torch.bool).triu()"), ("after it", "not triu")),
    "mask one diagonal too far (tril(1))": (gqa(ALLOWED="torch.ones(n, n, dtype=torch.bool).tril(1)"), ("next token",)),
    "masked scores set to 0": (gqa(WEIGHTS="torch.softmax(scores.masked_fill(~allowed, 0.0), dim=-1)"), ("score of 0",)),
    "mask after the softmax": (gqa(WEIGHTS="torch.softmax(scores, dim=-1) * allowed"), ("after the softmax",)),
    "keys transposed with K.T (all four axes)": (gqa(KT="K.permute(3, 2, 1, 0)"), ("k.t", "transpose(-2, -1)")),
    "keys transposed with transpose(1, 2)": (gqa(KT="K.transpose(1, 2)"), ("transposed wrongly", "transpose(-2, -1)")),
    "heads split interleaved": (gqa(SPLIT="t.reshape(batch, n, d_k, count).permute(0, 3, 1, 2)"),
                                ("split wrongly", "interleaves")),
    "heads concatenated without the transpose": (gqa(MERGE="(weights @ V).reshape(batch, n, num_heads * d_k)"),
                                                 ("wrong order", "transpose")),
    "heads concatenated feature by feature": (gqa(MERGE="(weights @ V).permute(0, 2, 3, 1).reshape(batch, n, -1)"),
                                              ("wrong order", "interleaves")),
    "W_o not applied": (gqa(RESULT="out, weights"), ("w_o is not applied",)),
    "only the output returned": (gqa(RESULT="out @ W_o"), ("pair (output, weights)", "only one tensor")),
    "weights averaged over the heads": (gqa(RESULT="out @ W_o, weights.mean(1)"), ("do not average",)),
    "h not divisible by g not refused": (gqa(CHECK="pass"), ("did not refuse", "valueerror")),
    "refused with an assert": (gqa(CHECK="assert num_heads % num_kv_heads == 0, 'g must divide h'"),
                               ("assert", "raise valueerror")),
    "scale folded into W_q in place": (gqa(CHECK="W_q /= math.sqrt(W_q.shape[1] // num_heads)", SCALE="1.0"),
                                       ("in place", "w_q")),
}

WRONG = {
    "rms_norm": {name: ("test_rms_norm", source, words) for name, (source, words) in RMS_WRONG.items()},
    "apply_rope": {name: ("test_apply_rope", source, ROPE_WORDS[name]) for name, source in ROPE_WRONG.items()},
    "rope_attention": {name: ("test_rope_attention", source, ROPE_ATTENTION_WORDS[name])
                       for name, source in ROPE_ATTENTION_WRONG.items()},
    "grouped_query_attention": {name: ("test_grouped_query_attention", source, words)
                                for name, (source, words) in GQA_WRONG.items()},
}
CASES = [(exercise, name) for exercise, wrong in WRONG.items() for name in wrong]


# ---------------------------------------------------------------------------- the tests
def test_the_checks_pass_the_solution_hidden_tests_included():
    ns = EXERCISE.namespace()
    for check_id in EXERCISE.graded:
        exec(compile(CELLS[check_id], check_id, "exec"), ns)


@pytest.mark.parametrize("exercise,name", CASES, ids=[f"{e}:{n}" for e, n in CASES])
def test_public_check_names_the_mistake(exercise, name):
    check_id, source, words = WRONG[exercise][name]
    message = run(check_id, source)
    assert message, f"the public part of {check_id} passed this wrong answer"
    missing = [w for w in words if w.lower() not in message.lower()]
    assert not missing, f"the message does not name the mistake (missing {missing}):\n{message}"


@pytest.mark.parametrize("exercise", sorted(WRONG))
def test_at_least_eight_wrong_answers_per_exercise(exercise):
    assert len(WRONG[exercise]) >= 8


def test_every_check_rejects_a_named_wrong_answer():
    """Every check cell appears here: none of them is a check that cannot fail."""
    assert {check_id for wrong in WRONG.values() for check_id, _, _ in wrong.values()} == set(EXERCISE.graded)


@pytest.mark.parametrize("name", sorted(CORRECT_RMS))
def test_other_right_rms_norms_pass(name):
    assert run("test_rms_norm", CORRECT_RMS[name], public=False) == ""


@pytest.mark.parametrize("name", sorted(CORRECT_GQA))
def test_other_right_gqas_pass(name):
    assert run("test_grouped_query_attention", CORRECT_GQA[name], public=False) == ""


def test_every_rope_answer_in_either_pairing_passes_both_checks(capsys):
    for name, source in CORRECT_ROPE.items():
        assert run("test_apply_rope", source, public=False) == "", name
        said = capsys.readouterr().out
        pairing = "neighbouring features" if "neighbours" in name or "Meta" in name else "the halves"
        assert f"You paired {pairing}" in said and "equally right" in said, (name, said)
        assert run("test_rope_attention", textwrap.dedent(source) + "\n" + CELLS["rope_attention"], public=False) == ""


@pytest.mark.parametrize("name", sorted(ROPE_WRONG))
def test_rope_attention_check_blames_every_wrong_apply_rope(name):
    """Issue 27: when apply_rope (exercise 2) is wrong, the later check names it instead of blaming itself."""
    message = run("test_rope_attention", textwrap.dedent(ROPE_WRONG[name]) + "\n" + CELLS["rope_attention"])
    assert "rope_attention uses your apply_rope (exercise 2)" in message, message


def test_rope_attention_accepts_sdpa_with_either_mask_spelling():
    for call in ("F.scaled_dot_product_attention(q, k, v, is_causal=True)",
                 "F.scaled_dot_product_attention(q, k, v, attn_mask=torch.ones(q.shape[-2], q.shape[-2], "
                 "dtype=torch.bool).tril())"):
        assert run("test_rope_attention", CELLS["apply_rope"] + f"""
def rope_attention(q, k, v, positions, base=10000.0):
    q, k = apply_rope(q, positions, base), apply_rope(k, positions, base)
    return {call}
""", public=False) == ""


def test_rope_check_describes_an_unforeseen_mistake():
    """A mistake outside the catalogue: a rotation by wrong angles is told which pair turned by how much."""
    import torch

    from attention_course.grading import checks_modern

    def doubled(x, positions, base=10000.0):  # every angle twice too large
        return checks_modern.rope_reference(x, 2 * positions, base)

    x = torch.randn(1, 2, 5, 8, generator=torch.Generator().manual_seed(0))
    with pytest.raises(AssertionError, match=r"a rotation of the halves .* but by the wrong angles: pair i = \d"):
        checks_modern.rope_check(doubled, x, torch.arange(3, 8), 100.0)

    def stretched(x, positions, base=10000.0):  # not a rotation
        return 1.5 * checks_modern.rope_reference(x, positions, base)

    with pytest.raises(AssertionError, match="not a rotation of x"):
        checks_modern.rope_check(stretched, x, torch.arange(3, 8), 100.0)


def test_rope_reference_pairings_give_the_same_scores_after_permuting_the_features():
    """Both pairings are RoPE: moving feature 2i to i and 2i+1 to i + d/2 (a permutation of W_q's and W_k's output
    features, as Hugging Face's conversion of Meta's LLaMA weights does) turns one into the other."""
    import torch

    from attention_course.grading import checks_modern

    g = torch.Generator().manual_seed(0)
    q, k = (torch.randn(2, 3, 6, 8, generator=g, dtype=torch.float64) for _ in range(2))
    positions = torch.arange(4, 10)
    perm = torch.cat([torch.arange(0, 8, 2), torch.arange(1, 8, 2)])  # neighbours' order -> halves' order
    neighbours = checks_modern.rope_reference(q, positions, pairing="interleaved")
    halves = checks_modern.rope_reference(q[..., perm], positions, pairing="half")
    assert torch.allclose(halves, neighbours[..., perm], rtol=0, atol=1e-12)

    def scores(pairing, p=None):
        qq, kk = (t if p is None else t[..., p] for t in (q, k))
        return (checks_modern.rope_reference(qq, positions, pairing=pairing)
                @ checks_modern.rope_reference(kk, positions, pairing=pairing).transpose(-2, -1))

    assert torch.allclose(scores("interleaved"), scores("half", perm), rtol=0, atol=1e-12)


def test_the_rms_norm_reference_is_the_chapters_and_the_wrong_answers_are_wrong():
    """The check's reference is attention_course.maths.modern.rms_norm; every mistake it names moves the result far
    outside rounding on the public check's input (so that naming it cannot hit a right answer)."""
    import torch

    from attention_course.grading import checks, checks_modern
    from attention_course.maths import modern

    g = torch.Generator().manual_seed(1)
    x = 0.3 * (torch.randn(2, 5, 16, generator=g, dtype=torch.float64) + 0.5)
    weight = 0.5 + torch.rand(16, generator=g, dtype=torch.float64)
    want = modern.rms_norm(x, weight, 0.05)
    assert torch.equal(checks_modern.rms_norm_reference(x, weight, 0.05), want)
    assert checks.close(checks_modern._rms(x, weight, 0.05), want.float())
    for explanation, wrong in checks_modern.rms_norm_mistakes(x, weight, 0.05):
        assert not checks_modern._rms_close(wrong(), want, x), explanation


def test_the_gqa_reference_is_the_chapters_and_the_wrong_answers_are_wrong():
    import torch

    from attention_course.grading import checks, checks_modern
    from attention_course.maths import modern, positions

    args = checks_modern._gqa_inputs(2, 5, 16, 4, 2, 0, torch.float64)
    want_out, want_w = modern.grouped_query_attention(*args, 4, 2, rope_base=None)
    out, weights = checks_modern._gqa(*args, 4, 2)
    assert checks.close(out, want_out) and checks.close(weights, want_w)
    K = (args[0] @ args[2]).reshape(2, 5, 2, 4).transpose(1, 2)
    assert torch.equal(positions.repeat_kv(K, 2)[:, [0, 1, 2, 3]], K[:, [0, 0, 1, 1]])  # head j -> floor(j*g/h)
    for explanation, wrong in checks_modern.gqa_mistakes(*args, 4, 2).items():
        o, w = wrong()
        assert not (checks.close(o, want_out, equal_nan=True) and checks.close(w, want_w, equal_nan=True)), explanation


def test_student_notebook_does_not_import_the_answers():
    assert course_imports(NOTEBOOK) <= {*ALLOWED, "attention_course.grading.checks", "attention_course.grading.checks_modern"}


def test_old_chapter_6_rope_names_say_where_the_checks_went():
    """A Chapter 6 notebook released before the move asks checks for the RoPE checks: it is told where
    they are now (checks does not import checks_modern, which builds on it: no import cycle)."""
    from attention_course.grading import checks, checks_modern

    with pytest.raises(AttributeError, match=r"moved with the RoPE exercises to Chapter 8.*checks_modern\.rope_check"):
        checks.rope_check
    assert callable(checks_modern.rope_check)
    with pytest.raises(AttributeError, match="has no attribute 'no_such_check'"):
        checks.no_such_check

"""attention_course.maths.modern without SmolLM2: shapes, errors and the properties each piece promises."""
import math

import pytest
import torch

from attention_course.maths import modern
from attention_course.maths.multi_head import multi_head_attention
from attention_course.maths.numerics import assert_agree, relative_error, rounding_tolerance
from attention_course.maths.self_attention import causal_mask
from attention_course.maths import positions


def test_rms_norm_has_unit_root_mean_square_and_checks_shapes():
    x = 3 * torch.randn(2, 5, 8) + 2
    y = modern.rms_norm(x, torch.ones(8), eps=0.0)
    assert (y.pow(2).mean(-1) - 1).abs().max() <= rounding_tolerance(y.dtype, 8)  # a mean of 8 squares, about 1
    assert not torch.allclose(y.mean(-1), torch.zeros(2, 5), atol=1e-2)  # the mean is kept, unlike LayerNorm
    assert modern.RMSNorm(8)(x).shape == x.shape
    with pytest.raises(ValueError, match=r"\(d_model,\) = \(8,\)"):
        modern.rms_norm(x, torch.ones(7))


def test_rope_keeps_lengths_leaves_position_zero_and_depends_on_distance_only():
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(1, 2, 6, 8, generator=g), torch.randn(1, 2, 6, 8, generator=g)
    cos, sin = positions.rope_cos_sin(torch.arange(6), 8)
    q_rot = positions.apply_rope(q, cos, sin)
    assert_agree(q_rot.norm(dim=-1), q.norm(dim=-1), reduction=8, what="lengths after the rotation")
    assert_agree(q_rot[:, :, 0], q[:, :, 0], what="position 0 (angle 0)")
    # the same query and key placed at (m, n) and at (m + 7, n + 7) give the same score
    def score(m, n):
        c, s = positions.rope_cos_sin(torch.tensor([m, n]), 8)
        a = positions.apply_rope(q[:, :, :1].expand(1, 2, 2, 8), c, s)[:, :, 0]
        b = positions.apply_rope(k[:, :, :1].expand(1, 2, 2, 8), c, s)[:, :, 1]
        return (a * b).sum(-1)
    assert_agree(score(3, 1), score(10, 8), reduction=8, what="the same distance 2 at other positions")
    assert not torch.allclose(score(3, 1), score(1, 3), atol=1e-3)


def test_rope_equals_complex_multiplication_with_half_split_pairs():
    x = torch.randn(1, 1, 4, 6, dtype=torch.float64)
    cos, sin = positions.rope_cos_sin(torch.arange(4), 6, base=100.0)
    theta = 100.0 ** (-torch.arange(0, 6, 2, dtype=torch.float64) / 6)
    z = torch.complex(x[..., :3], x[..., 3:]) * torch.polar(torch.ones(4, 3, dtype=torch.float64),
                                                            torch.arange(4.0, dtype=torch.float64)[:, None] * theta)
    want = torch.cat([z.real, z.imag], -1)
    # rope_cos_sin's tables are float32 (angles, cos and sin), so the float64 rotation agrees with the
    # exact one to float32's resolution; each output is a sum of 2 products, x1 cos - x2 sin
    error = relative_error(positions.apply_rope(x, cos.double(), sin.double()), want)
    assert error <= rounding_tolerance(torch.float32, 2), error
    with pytest.raises(ValueError, match="seq_len, head_dim"):
        positions.apply_rope(x, cos[:3], sin[:3])
    with pytest.raises(ValueError, match="even head_dim"):
        positions.rope_frequencies(5)


@pytest.mark.numerics
def test_gqa_with_as_many_kv_heads_is_multi_head_attention():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 12)
    W_q, W_k, W_v, W_o = (torch.randn(12, 12) / math.sqrt(12) for _ in range(4))
    ours, w = modern.grouped_query_attention(x, W_q, W_k, W_v, W_o, 3, 3, rope_base=None)
    ref, w_ref = multi_head_attention(x, W_q, W_k, W_v, W_o, 3, causal_mask(5))
    assert_agree(ours, ref, reduction=12, what="GQA output vs multi_head_attention")  # d_model = 12
    assert_agree(w, w_ref, reduction=12, what="GQA weights vs multi_head_attention")


@pytest.mark.numerics
def test_gqa_shares_kv_heads_between_groups_of_query_heads():
    torch.manual_seed(0)
    x = torch.randn(1, 4, 8)
    attn = modern.GroupedQueryAttention(8, num_heads=4, num_kv_heads=2, head_dim=2, rope_base=None)
    # widen the KV projections by repeating each KV head's columns for its 2 query heads: plain MHA
    W_k = torch.cat([attn.W_k.detach()[:, h * 2:(h + 1) * 2] for h in (0, 0, 1, 1)], 1)
    W_v = torch.cat([attn.W_v.detach()[:, h * 2:(h + 1) * 2] for h in (0, 0, 1, 1)], 1)
    with torch.no_grad():
        ours = attn(x)[0]
        ref = multi_head_attention(x, attn.W_q, W_k, W_v, attn.W_o, 4, causal_mask(4))[0]
    assert_agree(ours, ref, reduction=8, what="GQA vs MHA with repeated KV heads")  # d_model = 8
    assert sum(p.numel() for p in attn.parameters()) == 8 * 8 + 2 * 8 * 4 + 8 * 8
    with pytest.raises(ValueError, match="must divide num_heads"):
        modern.GroupedQueryAttention(8, 4, 3)
    with pytest.raises(ValueError, match=r"W_k must be \(8, 4\)"):
        modern.grouped_query_attention(x, attn.W_q, W_k, attn.W_v, attn.W_o, 4, 2)


@pytest.mark.numerics
def test_swiglu_is_gate_times_up_then_down():
    torch.manual_seed(0)
    mlp = modern.SwiGLU(6, 10)
    x = torch.randn(3, 6)
    gate, up = x @ mlp.gate.weight.T, x @ mlp.up.weight.T
    want = (gate * torch.sigmoid(gate) * up) @ mlp.down.weight.T
    assert_agree(mlp(x), want, reduction=10, what="SwiGLU vs its formula")  # down sums over 10 hidden units
    assert modern.SwiGLU(576).down.in_features == 1536  # 8/3 * 576, as SmolLM2
    with pytest.raises(ValueError, match="d_model=6"):
        mlp(torch.randn(2, 5))


def test_kv_cache_bytes():
    assert modern.kv_cache_bytes(2, 3, 4, 5) == 2 * 2 * 3 * 4 * 5 * 4

"""Tiled attention with an online softmax (FlashAttention's forward pass) equals naive attention, and its
typical mistakes do not; Chapter 8's explorer carries what the browser recomputes from."""
from __future__ import annotations

import json
import math

import pytest
import torch

from attention_course.views import online_softmax_viewer
from attention_course.maths.numerics import assert_agree, relative_error, rounding_tolerance
from attention_course.maths.online_softmax import (MISTAKES, attention_mask, example, naive_attention, negative_controls,
                                             tiled_attention)
from attention_course.maths.self_attention import causal_mask, scaled_dot_product_attention


def random_qkv(dtype, n=5, N=13, d_k=8, d_v=6, lead=(2, 3), seed=0, q_scale=1.5):
    generator = torch.Generator().manual_seed(seed)
    q = q_scale * torch.randn(*lead, n, d_k, generator=generator, dtype=torch.float64)
    k = 1.5 * torch.randn(*lead, N, d_k, generator=generator, dtype=torch.float64)
    v = torch.randn(*lead, N, d_v, generator=generator, dtype=torch.float64)
    return q.to(dtype), k.to(dtype), v.to(dtype)


def reduction(q, k):
    """The longest sum behind one output value: a score over d_k features, the output over N keys."""
    return max(k.shape[-2], q.shape[-1])


@pytest.mark.numerics
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("block_size", [1, 4, 5, 13, 20], ids=lambda b: f"B{b}")  # 1, divides no 13, N, > N
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
def test_tiled_attention_equals_naive_attention(dtype, block_size, causal):
    q, k, v = random_qkv(dtype)
    output, trace = tiled_attention(q, k, v, block_size, causal=causal)
    assert output.dtype == dtype and output.shape == (2, 3, 5, 6)
    assert len(trace) == math.ceil(13 / block_size)
    assert_agree(output, naive_attention(q, k, v, causal=causal), reduction=reduction(q, k), what="tiled vs naive")
    assert torch.equal(trace[-1].output, output)  # the last partial output is the output


@pytest.mark.numerics
def test_naive_reference_is_the_courses_attention():
    """Our reference is Chapter 4's softmax(QK^T/sqrt(d_k))V, with the usual causal mask when n == N."""
    q, k, v = random_qkv(torch.float64, n=13)
    expected, _ = scaled_dot_product_attention(q, k, v, causal_mask(13))
    assert_agree(naive_attention(q, k, v, causal=True), expected, reduction=reduction(q, k))
    out, _ = tiled_attention(q, k, v, 4, causal=True)
    assert_agree(out, expected, reduction=reduction(q, k))
    # and PyTorch's own kernel (a FlashAttention-style kernel on CPU), n == N so the causal conventions agree
    fused = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert_agree(out, fused, reduction=reduction(q, k))


def test_causal_queries_are_the_last_positions():
    mask = attention_mask(2, 5)
    assert mask.tolist() == [[True, True, True, True, False], [True] * 5]
    assert torch.equal(attention_mask(4, 4), causal_mask(4))
    # The last query sees every key: causal or not, its output is the same.
    q, k, v = random_qkv(torch.float64, n=3)
    full, _ = tiled_attention(q, k, v, 4)
    causal, _ = tiled_attention(q, k, v, 4, causal=True)
    assert_agree(causal[..., -1, :], full[..., -1, :], reduction=reduction(q, k))
    assert relative_error(causal[..., 0, :], full[..., 0, :]) > 1e-3


@pytest.mark.numerics
@pytest.mark.parametrize("dtype, size", [(torch.float32, 60.0), (torch.float64, 500.0)], ids=["float32", "float64"])
def test_large_scores_that_overflow_a_plain_softmax(dtype, size):
    q, k, v = random_qkv(dtype, q_scale=size, seed=1)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    with torch.no_grad():
        plain = torch.exp(scores) / torch.exp(scores).sum(-1, keepdim=True)  # softmax without subtracting the max
    assert not torch.isfinite(plain @ v).all(), "the scores should be large enough to overflow a plain exp"
    expected = naive_attention(q, k, v)
    # A score of size |s| carries an absolute rounding error of about eps |s|, which exp turns into a relative
    # error of the weight, so the budget grows with the largest score (as a temperature below 1 does in Ch. 3).
    ulps = 16 * float(scores.abs().max())
    for block_size in (1, 3, 13):
        output, trace = tiled_attention(q, k, v, block_size)
        assert torch.isfinite(output).all() and all(torch.isfinite(s.l).all() for s in trace)
        assert all(float(s.l.max()) <= s.stop for s in trace)  # every term exp(s - m) <= 1
        assert_agree(output, expected, reduction=reduction(q, k), ulps=ulps, what=f"block size {block_size}")


def test_trace_records_each_step():
    q, k, v = example()  # 3 queries, 12 keys
    output, trace = tiled_attention(q, k, v, 5)
    assert [(s.block, s.start, s.stop) for s in trace] == [(0, 0, 5), (1, 5, 10), (2, 10, 12)]
    scores = q @ k.T / 2  # d_k = 4
    for s in trace:
        assert_agree(s.scores, scores[:, s.start:s.stop], reduction=4)  # another matmul: equal within rounding
        assert_agree(s.block_max, s.scores.amax(-1))
        # the running maximum and sum are those of the keys seen so far
        seen = scores[:, :s.stop]
        assert_agree(s.m, seen.amax(-1), reduction=4)
        assert_agree(s.l, torch.exp(seen - s.m[:, None]).sum(-1), reduction=max(4, s.stop))
        assert_agree(s.output, torch.softmax(seen, -1) @ v[:s.stop], reduction=max(4, s.stop))
        assert_agree(s.unnormalised, s.output * s.l[:, None], reduction=max(4, s.stop))
        assert torch.equal(s.rescale, torch.exp(s.m_old - s.m))
        assert (s.rescale <= 1).all()
    assert torch.isinf(trace[0].m_old).all() and (trace[0].rescale == 0).all()
    # the example shows the trick: for every query the maximum grows after its first block
    grew = torch.stack([s.m > s.m_old for s in trace[1:]]).any(0)
    assert grew.all(), "the example should make every query rescale at least once"
    json.dumps(trace[1].as_lists())  # plain data


@pytest.mark.numerics
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("block_size", [1, 4, 5])
def test_typical_mistakes_land_far_outside_the_tolerance(dtype, block_size):
    q, k, v = random_qkv(dtype)
    tolerance = rounding_tolerance(dtype, reduction(q, k))
    errors = negative_controls(q, k, v, block_size)
    assert set(errors) == set(MISTAKES)
    for name, error in errors.items():
        assert error > 1000 * tolerance and error > 1e-2, f"{name}: relative error {error:.1e} ({MISTAKES[name]})"
    # With one block there is nothing to rescale: every variant is the ordinary stable softmax.
    assert max(negative_controls(q, k, v, 13).values()) <= tolerance


def test_errors_name_the_shapes():
    q, k, v = random_qkv(torch.float64, lead=())
    with pytest.raises(ValueError, match=r"expected q \(\.\.\., n, d_k\), k \(\.\.\., N, d_k\), v \(\.\.\., N, d_v\); "
                                         r"got q \(5, 8\), k \(13, 7\)"):
        tiled_attention(q, k[:, :7], v, 4)
    with pytest.raises(ValueError, match=r"got q \(5, 8\), k \(13, 8\), v \(12, 6\)"):
        tiled_attention(q, k, v[:12], 4)
    with pytest.raises(ValueError, match="do not broadcast"):
        tiled_attention(q.expand(2, 5, 8), k.expand(3, 13, 8), v, 4)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        tiled_attention(q[0], k, v, 4)
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="block_size must be a positive integer"):
            tiled_attention(q, k, v, bad)
    with pytest.raises(TypeError, match="share one dtype"):
        tiled_attention(q.float(), k, v, 4)
    with pytest.raises(TypeError, match="floating point"):
        tiled_attention(q.long(), k.long(), v.long(), 4)
    with pytest.raises(ValueError, match="at least as many keys as queries"):
        tiled_attention(k, q, q[:, :6], 4, causal=True)
    with pytest.raises(ValueError, match="scale must be a positive finite number"):
        naive_attention(q, k, v, scale=0.0)
    with pytest.raises(ValueError, match="unknown mistake"):
        from attention_course.maths.online_softmax import _tiled
        _tiled(q, k, v, 4, False, None, "typo")


def test_explorer_carries_what_the_browser_recomputes_from():
    widget = online_softmax_viewer.widget(block_size=4)
    assert isinstance(widget, online_softmax_viewer.OnlineSoftmaxExplorer) and widget.kind == "online_softmax"
    data = widget.data
    json.dumps(data)  # saved in the page as it is
    q, k, v = example()
    assert torch.equal(torch.tensor(data["q"], dtype=torch.float64), q)  # the same float64 numbers
    assert (len(data["q"]), len(data["k"]), len(data["v"][0])) == (3, 12, 3)
    assert data["block_sizes"] == list(range(1, 13)) and data["scale"] == 0.5 and data["causal"] is False
    assert widget.controls == {"block_size": 4, "step": 0, "query": 0}
    assert widget.alt.startswith("Scores of 3 queries against 12 keys, cut into 3 blocks of 4")
    last = online_softmax_viewer.widget(block_size=4, step=2).alt
    assert "the tiled output equals naive attention" in last
    # float32 inputs go into the page as float64 without changing them
    q32 = q.float()
    assert online_softmax_viewer.widget(q32, k.float(), v.float()).data["q"] == q32.double().tolist()


def test_widget_rejects_what_the_drawing_cannot_show():
    q, k, v = example()
    with pytest.raises(ValueError, match="block_size 13 is not among the options"):
        online_softmax_viewer.widget(q, k, v, block_size=13)
    with pytest.raises(ValueError, match="at most 6 queries, 32 keys"):
        online_softmax_viewer.widget(*example(N=40))
    with pytest.raises(ValueError, match=r"q \(\.\.\., n, d_k\)"):
        online_softmax_viewer.widget(q, k[:, :3], v)
    with pytest.raises(ValueError, match="step must lie in"):
        online_softmax_viewer.widget(block_size=4, step=3)
    with pytest.raises(ValueError, match="all of q, k and v"):
        online_softmax_viewer.widget(q)
    with pytest.raises(ValueError, match="must be a matrix"):
        online_softmax_viewer.widget(q[None], k, v)


def test_maths_module_imports_no_widgets():
    """online_softmax is a lower layer: the explorer imports it, never the other way round."""
    import ast
    import inspect

    from attention_course.maths import online_softmax

    imported = {node.module for node in ast.walk(ast.parse(inspect.getsource(online_softmax)))
                if isinstance(node, ast.ImportFrom)}
    assert imported <= {"__future__", "dataclasses", "attention_course.maths.self_attention",
                        "attention_course.maths.numerics"}, imported

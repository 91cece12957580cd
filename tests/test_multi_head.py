"""Multi-head attention equals torch.nn.MultiheadAttention with the same weights."""
import pytest
import torch
import torch.nn.functional as F

from attention_course.maths.multi_head import MultiHeadSelfAttention, merge_heads, multi_head_attention, split_heads
from attention_course.maths.numerics import assert_agree
from attention_course.maths.self_attention import causal_mask

G = torch.Generator().manual_seed(0)


def rand(*shape):
    return torch.randn(*shape, generator=G, dtype=torch.float64)


def test_split_and_merge_are_inverse_and_slice_features():
    X = rand(2, 5, 12)
    H = split_heads(X, 3)
    assert H.shape == (2, 3, 5, 4)
    # a reshape moves values and computes nothing: exactly equal
    assert torch.equal(H[:, 1], X[..., 4:8])  # head 1 = features 4..7 of every position
    assert torch.equal(merge_heads(H), X)
    with pytest.raises(ValueError, match="divisible"):
        split_heads(X, 5)


@pytest.mark.numerics
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("masked", [False, True])
def test_equals_torch_multihead_attention(masked, dtype):
    d_model, h, n = 8, 2, 6
    X = rand(3, n, d_model).to(dtype)
    W_q, W_k, W_v, W_o = (rand(d_model, d_model).to(dtype) for _ in range(4))
    mha = torch.nn.MultiheadAttention(d_model, h, bias=False, batch_first=True, dtype=dtype)
    with torch.no_grad():  # torch stores W^T (out, in) and packs q, k, v in one matrix
        mha.in_proj_weight.copy_(torch.cat([W_q.T, W_k.T, W_v.T]))
        mha.out_proj.weight.copy_(W_o.T)
    allowed = causal_mask(n) if masked else None
    ours, weights = multi_head_attention(X, W_q, W_k, W_v, W_o, h, allowed)
    ref, ref_weights = mha(X, X, X, attn_mask=None if allowed is None else ~allowed,  # torch: True = blocked
                           need_weights=True, average_attn_weights=False)
    # longest sum behind an output: the projections over d_model (the weighted sum runs over n = 6 < 8)
    assert_agree(ours, ref, reduction=d_model, what="output vs nn.MultiheadAttention")
    assert_agree(weights, ref_weights, reduction=d_model, what="weights vs nn.MultiheadAttention")
    # and with F.scaled_dot_product_attention per head
    Q, K, V = (split_heads(X @ W, h) for W in (W_q, W_k, W_v))
    sdpa = merge_heads(F.scaled_dot_product_attention(Q, K, V, attn_mask=allowed)) @ W_o
    assert_agree(ours, sdpa, reduction=d_model, what="output vs F.scaled_dot_product_attention")


def test_module_parameter_count_and_cross_attention():
    module = MultiHeadSelfAttention(16, 4)
    assert sum(p.numel() for p in module.parameters()) == 4 * 16 * 16
    out, weights = module(torch.randn(2, 3, 16), memory=torch.randn(2, 7, 16))
    assert out.shape == (2, 3, 16) and weights.shape == (2, 4, 3, 7)
    with pytest.raises(ValueError):
        MultiHeadSelfAttention(10, 3)


@pytest.mark.numerics
def test_cache_keeps_the_memory_keys_of_cross_attention():
    """With a KVCache, cross-attention projects the memory once and reads it back at later steps
    (Chapter 7's greedy decoding); the outputs equal those without a cache."""
    from attention_course.maths.multi_head import KVCache

    d_model, h = 8, 2
    W_q, W_k, W_v, W_o = (rand(d_model, d_model) for _ in range(4))
    memory, X = rand(3, 5, d_model), rand(3, 4, d_model)
    padding = torch.tensor([5, 3, 1])[:, None] > torch.arange(5)  # (3, 5): real source positions
    mask = padding[:, None, None, :]  # (3, 1, 1, 5)
    whole, whole_w = multi_head_attention(X, W_q, W_k, W_v, W_o, h, mask, memory)
    cache, calls = KVCache(), []
    project = cache.memory_kv

    def counting(layer, mem, fn):  # count the projections the cache asks for
        return project(layer, mem, lambda m: calls.append(layer) or fn(m))

    cache.memory_kv = counting
    for t in range(X.shape[1]):  # one query position at a time
        out, w = multi_head_attention(X[:, t:t + 1], W_q, W_k, W_v, W_o, h, mask, memory, cache=cache)
        assert_agree(out[:, 0], whole[:, t], reduction=d_model, what=f"cached cross-attention, step {t}")
        assert_agree(w[:, :, 0], whole_w[:, :, t], reduction=d_model, what=f"cached cross weights, step {t}")
    assert calls == [0] and cache.length == 0  # projected once; no self-attention positions counted
    assert [tuple(K.shape) for K in cache.memory_keys] == [(3, h, 5, d_model // h)]
    assert_agree(cache.memory_values[0], split_heads(memory @ W_v, h), reduction=d_model, what="kept values")
    with pytest.raises(ValueError, match="keeps the keys of a memory"):
        multi_head_attention(X[:, :1], W_q, W_k, W_v, W_o, h, None, memory[:, :4], cache=cache)
    with pytest.raises(ValueError, match="before layer"):
        KVCache().memory_kv(1, memory, lambda m: (m, m))
    with pytest.raises(ValueError, match="rope"):
        multi_head_attention(X, W_q, W_k, W_v, W_o, h, memory=memory, rope=(torch.ones(4, 4), torch.zeros(4, 4)))

"""Tests for attention_course.maths.transformer (Chapter 6)."""
import pytest
import torch
from torch import nn

from attention_course.maths.numerics import assert_agree, rounding_tolerance
from attention_course.maths.self_attention import causal_mask
from attention_course.maths.transformer import (DecoderBlock, PositionwiseMLP, TransformerBlock,
                                          label_smoothing_loss, params_from_block, transformer_block)


def _torch_layer(block: TransformerBlock, norm_first: bool) -> nn.TransformerEncoderLayer:
    """PyTorch's own encoder layer holding the same weights (attention biases zero)."""
    d = block.attn.d_model
    layer = nn.TransformerEncoderLayer(d, block.attn.num_heads, dim_feedforward=block.mlp.fc1.out_features,
                                       dropout=0.0, activation="gelu", batch_first=True,
                                       norm_first=norm_first)
    with torch.no_grad():
        a = block.attn
        layer.self_attn.in_proj_weight.copy_(torch.cat([a.W_q.T, a.W_k.T, a.W_v.T]))
        layer.self_attn.in_proj_bias.zero_()
        layer.self_attn.out_proj.weight.copy_(a.W_o.T)
        layer.self_attn.out_proj.bias.zero_()
        for mine, theirs in ((block.mlp.fc1, layer.linear1), (block.mlp.fc2, layer.linear2),
                             (block.ln1, layer.norm1), (block.ln2, layer.norm2)):
            theirs.weight.copy_(mine.weight)
            theirs.bias.copy_(mine.bias)
    return layer.eval()


@pytest.mark.numerics
@pytest.mark.parametrize("norm_first", [True, False])
def test_block_matches_pytorch_encoder_layer(norm_first):
    torch.manual_seed(0)
    block = TransformerBlock(16, 4, norm_first=norm_first).eval()
    with torch.no_grad():
        block.ln1.weight.uniform_(0.5, 1.5)
        block.ln2.bias.uniform_(-0.5, 0.5)
    x = torch.randn(2, 7, 16)
    mask = causal_mask(7)
    with torch.no_grad():
        ours, weights = block(x, mask)
        theirs = _torch_layer(block, norm_first)(x, src_mask=~mask)  # PyTorch: True = blocked
        functional = transformer_block(x, params_from_block(block), mask, norm_first=norm_first)
    # longest sum behind an output: the MLP's second layer, over d_ff = 64 hidden units
    assert_agree(ours, theirs, reduction=block.mlp.fc1.out_features, what="block vs nn.TransformerEncoderLayer")
    # transformer_block is not a second implementation: it runs TransformerBlock itself on the same
    # weights (torch.func.functional_call), the same code on the same inputs, so exactly equal
    assert torch.equal(functional, ours)
    assert weights.shape == (2, 4, 7, 7)
    assert torch.all(weights.triu(1) == 0)


def test_pre_and_post_norm_differ_and_post_norm_output_is_normalised():
    torch.manual_seed(1)
    pre, post = TransformerBlock(16, 2, norm_first=True), TransformerBlock(16, 2, norm_first=False)
    post.load_state_dict(pre.state_dict())
    x = 3 * torch.randn(1, 5, 16) + 2
    with torch.no_grad():
        y_pre, y_post = pre(x)[0], post(x)[0]
    assert not torch.allclose(y_pre, y_post)
    # last op is LayerNorm: the mean over 16 features is 0 up to the rounding of values of y_post's size
    assert y_post.mean(-1).abs().max() <= rounding_tolerance(y_post.dtype, 16) * y_post.abs().max()
    assert y_pre.mean(-1).abs().max() > 0.5  # the residual stream keeps the input's offset


@pytest.mark.numerics
def test_mlp_is_position_wise():
    torch.manual_seed(2)
    mlp = PositionwiseMLP(8, 32)
    x = torch.randn(1, 6, 8)
    with torch.no_grad():
        whole = mlp(x)
        one_by_one = torch.cat([mlp(x[:, i:i + 1]) for i in range(6)], dim=1)
    assert_agree(whole, one_by_one, reduction=32, what="6 positions at once vs one by one")  # d_ff = 32
    with pytest.raises(ValueError, match="activation"):
        PositionwiseMLP(8, activation="tanh")


def test_decoder_block_cross_attention_shapes_and_causality():
    torch.manual_seed(3)
    dec = DecoderBlock(16, 4).eval()
    y, memory = torch.randn(2, 5, 16), torch.randn(2, 9, 16)
    with torch.no_grad():
        out, self_w, cross_w = dec(y, memory)
        # changing a later target token must not change earlier outputs
        y2 = y.clone()
        y2[:, -1] += 1
        out2 = dec(y2, memory)[0]
    assert out.shape == (2, 5, 16) and self_w.shape == (2, 4, 5, 5) and cross_w.shape == (2, 4, 5, 9)
    assert torch.all(self_w.triu(1) == 0)
    assert (cross_w.sum(-1) - 1).abs().max() <= rounding_tolerance(cross_w.dtype, 9)  # 9 weights in [0, 1]
    assert_agree(out[:, :-1], out2[:, :-1], reduction=dec.mlp.fc1.out_features, what="outputs before the changed token")
    with pytest.raises(ValueError, match="memory"):
        dec(y, torch.randn(2, 9, 8))


@pytest.mark.numerics
@pytest.mark.parametrize("need_weights", [True, False], ids=["weights", "fused"])
def test_decoder_block_with_a_cache_equals_teacher_forcing(need_weights):
    """The same DecoderBlock code, fed one new position at a time with a KVCache (Chapter 7's greedy
    decoding), gives what it gives on the whole target at once."""
    from attention_course.maths.multi_head import KVCache

    torch.manual_seed(4)
    dec = DecoderBlock(16, 4, d_ff=32).eval()
    y, memory = torch.randn(2, 6, 16), torch.randn(2, 9, 16)
    mask = (torch.tensor([9, 4])[:, None] > torch.arange(9))[:, None, None, :]  # (2, 1, 1, 9)
    cache = KVCache()
    with torch.no_grad():
        whole, self_w, cross_w = dec(y, memory, mask, need_weights)
        steps = [dec(y[:, t:t + 1], memory, mask, need_weights, cache=cache) for t in range(6)]
        # and two positions after the first (a chunk: the causal mask is shifted past the cached one)
        chunk_cache = KVCache()
        dec(y[:, :1], memory, mask, need_weights, cache=chunk_cache)
        chunk, chunk_self, _ = dec(y[:, 1:3], memory, mask, need_weights, cache=chunk_cache)
    reduction = 32  # the longest sum: the MLP's second layer over d_ff
    assert_agree(torch.cat([out for out, _, _ in steps], 1), whole, reduction=reduction, what="cached steps vs all at once")
    assert_agree(chunk, whole[:, 1:3], reduction=reduction, what="a cached chunk of two vs all at once")
    assert cache.length == 6 and len(cache.memory_keys) == 1 and cache.memory_keys[0].shape == (2, 4, 9, 4)
    if need_weights:
        for t, (_, s, c) in enumerate(steps):
            assert s.shape == (2, 4, 1, t + 1) and c.shape == (2, 4, 1, 9)
            assert_agree(s[:, :, 0], self_w[:, :, t, :t + 1], reduction=reduction, what=f"self weights, step {t}")
            assert_agree(c[:, :, 0], cross_w[:, :, t], reduction=reduction, what=f"cross weights, step {t}")
        assert_agree(chunk_self, self_w[:, :, 1:3, :3], reduction=reduction, what="the chunk's self weights")
        assert float(chunk_self[:, :, 0, 2].abs().max()) == 0.0  # position 1 does not see position 2
    else:
        assert all(s is None and c is None for _, s, c in steps)


@pytest.mark.numerics
def test_label_smoothing_matches_pytorch():
    torch.manual_seed(4)
    logits, targets = torch.randn(10, 7), torch.randint(0, 7, (10,))
    for eps in (0.0, 0.1, 0.3):
        expected = nn.functional.cross_entropy(logits, targets, label_smoothing=eps)
        # a mean over 10 examples of sums over 7 classes
        assert_agree(label_smoothing_loss(logits, targets, eps), expected, reduction=10 * 7,
                     what=f"label smoothing {eps} vs F.cross_entropy")
    with pytest.raises(ValueError):
        label_smoothing_loss(logits, targets, 1.0)


def test_block_rejects_wrong_width_and_missing_params():
    block = TransformerBlock(16, 4)
    with pytest.raises(ValueError, match="16"):
        block(torch.randn(1, 3, 8))
    with pytest.raises(KeyError, match="W_1"):
        transformer_block(torch.randn(1, 3, 16), {k: v for k, v in params_from_block(block).items() if k != "W_1"})

"""Chapter 8's position experiment: the three ways of giving positions, and the loss by position."""
import pytest
import torch

from attention_course.training import extrapolation as ex
from attention_course.training.gpt_training import train_gpt
from attention_course.maths.numerics import assert_agree


def small(positions, **changes):
    torch.manual_seed(0)
    sizes = dict(vocab_size=11, block_size=8, n_layer=1, num_heads=2, d_model=8, max_positions=32,
                 positions=positions)
    return ex.PositionGPT(ex.PositionConfig(**{**sizes, **changes}))


@pytest.mark.parametrize("changes, message", [
    (dict(positions="alibi"), "positions must be one of"),
    (dict(positions="learned", max_positions=4), "max_positions=4 must be >= block_size=8"),
    (dict(positions="rope", d_model=6, num_heads=2), "even head width"),
])
def test_bad_configurations_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        small(**changes)


def test_forward_refuses_what_the_model_cannot_do():
    model = small("rope")
    with pytest.raises(ValueError, match="n <= max_positions=32"):
        model(torch.zeros(1, 33, dtype=torch.long))
    with pytest.raises(ValueError, match="no KV cache"):
        model(torch.zeros(1, 4, dtype=torch.long), need_weights=True)


@pytest.mark.parametrize("positions", ex.POSITION_KINDS)
def test_every_kind_reads_past_its_training_length(positions):
    model = small(positions)
    logits, loss = model(torch.randint(11, (2, 32)), torch.randint(11, (2, 32)))
    assert logits.shape == (2, 32, 11) and torch.isfinite(loss)


def test_learned_rows_past_the_training_length_are_never_trained():
    """No gradient reaches the table's rows 8..31: AdamW's weight decay only shrinks them, all by one
    factor, so they stay the random vectors they were drawn as; rows 0..7 are trained (Chapter 8)."""
    model = small("learned")
    before = model.pos_emb.weight.detach().clone()
    data = torch.randint(11, (400,))
    train_gpt(model, data, data, steps=3, batch_size=4, eval_every=10, eval_windows=2, progress=False,
              use_cache=False)
    after = model.pos_emb.weight.detach()
    ratio = after[8:] / before[8:]
    assert ratio.max() - ratio.min() < 1e-6 and 0.99 < ratio.min() and ratio.max() < 1  # one decay factor
    trained = after[:8] / before[:8]
    assert (trained.max() - trained.min()) > 1e-3  # moved by the gradient, not only decayed


def test_only_the_position_part_differs():
    """Same seed, same token embeddings and blocks: the kinds differ in how positions enter, nothing else."""
    a, b = small("learned"), small("rope")
    assert torch.equal(a.tok_emb.weight, b.tok_emb.weight)
    assert torch.equal(a.blocks[0].attn.W_q, b.blocks[0].attn.W_q)
    assert not hasattr(b, "pos_emb") and a.pos_emb.weight.shape == (32, 8)


def test_rope_model_scores_depend_on_distance_only():
    """Without added positions, a RoPE model sees a repeated token the same way wherever it sits:
    a text of one repeated character gives the same logits at every position past the first few,
    up to float rounding (the causal prefix is all alike and the scores depend on distance only)."""
    model = small("rope")
    model.eval()
    ids = torch.full((1, 32), 3)
    with torch.no_grad():
        logits, _ = model(ids)
    assert_agree(logits[0, 20], logits[0, 31], reduction=32, ulps=64, what="same prefix, other positions")


@pytest.mark.parametrize("positions", ex.POSITION_KINDS)
def test_loss_by_position_averages_to_the_models_loss(positions):
    model = small(positions)
    model.eval()
    data = torch.randint(11, (1000,))
    losses = ex.loss_by_position(model, data, 16, windows=20, batch_size=7)
    assert losses.shape == (16,) and losses.dtype == torch.float64
    x, y = data[:320].view(20, 16), data[1:321].view(20, 16)
    with torch.no_grad():
        _, loss = model(x, y)
    assert_agree(losses.mean().float(), loss, reduction=11 * 320, what="mean loss by position vs forward's loss")


def test_loss_by_position_and_buckets_refuse_bad_input():
    model = small("learned")
    with pytest.raises(ValueError, match="length must be in 1..32"):
        ex.loss_by_position(model, torch.zeros(1000, dtype=torch.long), 33)
    with pytest.raises(ValueError, match="fewer than 64 windows"):
        ex.loss_by_position(model, torch.zeros(100, dtype=torch.long), 16)
    assert ex.bucket_means(torch.arange(4.0), [0, 2, 4]) == [0.5, 2.5]
    with pytest.raises(ValueError, match="edges must increase"):
        ex.bucket_means(torch.arange(4.0), [0, 3, 2])

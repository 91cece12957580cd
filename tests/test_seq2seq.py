"""The encoder-decoder models of Chapters 1 and 2 and their reference functions."""
import numpy as np
import pytest
import torch
from torch import nn

from attention_course.data import dates
from attention_course.maths import bahdanau
from attention_course.maths.bahdanau import (additive_score, bidirectional_annotations, context_vector, decoder_step,
                                             final_context)
from attention_course.maths.numerics import assert_agree, rounding_tolerance
from attention_course.maths.self_attention import masked_softmax
from attention_course.models import seq2seq
from attention_course.models.seq2seq import ModelConfig
from attention_course.training import seq2seq_metrics
from attention_course.training.seq2seq_metrics import accuracy_by_length
from attention_course.training.seq2seq_training import encode_batch, train_model, translate


@pytest.fixture()
def gen():
    return torch.Generator().manual_seed(0)


@pytest.mark.numerics
def test_additive_score_matches_the_formula(gen):
    B, T, d_s, d_H, d_a = 3, 5, 4, 6, 7
    s, H = torch.randn(B, d_s, generator=gen), torch.randn(B, T, d_H, generator=gen)
    W_s, W_h, v = torch.randn(d_a, d_s, generator=gen), torch.randn(d_a, d_H, generator=gen), torch.randn(d_a, generator=gen)
    e = additive_score(s, H, W_s, W_h, v)
    assert e.shape == (B, T)
    expected = torch.tensor([[float(v @ torch.tanh(W_s @ s[b] + W_h @ H[b, j])) for j in range(T)] for b in range(B)])
    assert_agree(e, expected, reduction=d_a, what="additive_score vs the formula, one pair at a time")  # v . tanh(...)
    with pytest.raises(ValueError, match="W_s"):
        additive_score(s, H, W_s.T, W_h, v)
    with pytest.raises(ValueError, match="H"):
        additive_score(s, H[:2], W_s, W_h, v)


@pytest.mark.numerics
def test_masked_softmax_gives_padding_exactly_zero(gen):
    scores = torch.randn(2, 5, generator=gen) * 10
    mask = torch.tensor([[True, True, True, False, False], [True] * 5])
    w = masked_softmax(scores, mask)
    assert torch.all(w[0, 3:] == 0.0)
    assert (w.sum(-1) - 1).abs().max() <= rounding_tolerance(w.dtype, 5)  # 5 weights in [0, 1]
    assert_agree(w[0, :3], torch.softmax(scores[0, :3], -1), reduction=5, what="masked row vs softmax of its real part")
    with pytest.raises(ValueError, match="mask"):
        masked_softmax(scores, mask[:, :4])
    with pytest.raises(ValueError, match="mask"):
        masked_softmax(scores, mask.float())
    # the package's one documented behaviour on a row with nothing to attend to: zero weights, no NaN
    none = masked_softmax(scores, torch.tensor([[False] * 5, [True] * 5]))
    assert torch.equal(none[0], torch.zeros(5))
    assert_agree(none[1], torch.softmax(scores[1], -1), reduction=5, what="unmasked row vs softmax")


def test_one_masked_softmax_and_one_additive_score_serve_the_package(gen):
    """RNNsearch scores with Chapter 2's additive_score / decoder_step; every masked softmax is the same one."""
    import inspect

    from attention_course.maths import self_attention

    assert bahdanau.masked_softmax is self_attention.masked_softmax
    assert "decoder_step(" in inspect.getsource(seq2seq.RNNsearch.advance)
    assert "@ self.v" not in inspect.getsource(seq2seq.RNNsearch)  # no second copy of the score
    B, T, d_s, d_H, d_a = 2, 5, 4, 6, 3
    s, H = torch.randn(B, d_s, generator=gen), torch.randn(B, T, d_H, generator=gen)
    W_s, W_h, v = torch.randn(d_a, d_s, generator=gen), torch.randn(d_a, d_H, generator=gen), torch.randn(d_a, generator=gen)
    # exactly equal: additive_score computes keys = H @ W_h.T itself, the same code on the same inputs
    assert torch.equal(additive_score(s, H, W_s, W_h, v), additive_score(s, H, W_s, W_h, v, keys=H @ W_h.T))


@pytest.mark.numerics
def test_context_vector_and_errors(gen):
    H = torch.randn(2, 4, 3, generator=gen)
    w = torch.tensor([[0, 1.0, 0, 0], [0.25] * 4])
    c = context_vector(w, H)
    assert torch.equal(c[0], H[0, 1])  # exact by construction: 0 * h + 1 * h_1 + 0 * h + 0 * h = h_1
    assert_agree(c[1], H[1].mean(0), reduction=4, what="uniform weights vs the mean")
    with pytest.raises(ValueError, match="context_vector"):
        context_vector(w[:, :3], H)


@pytest.mark.numerics
def test_decoder_step_scores_with_the_previous_state(gen):
    B, T, d_y, d_H, d_s, d_a = 2, 4, 3, 6, 5, 4
    cell = nn.GRUCell(d_y + d_H, d_s)
    y, s_prev = torch.randn(B, d_y, generator=gen), torch.randn(B, d_s, generator=gen)
    H = torch.randn(B, T, d_H, generator=gen)
    mask = torch.tensor([[True, True, False, False], [True] * 4])
    W_s, W_h, v = torch.randn(d_a, d_s, generator=gen), torch.randn(d_a, d_H, generator=gen), torch.randn(d_a, generator=gen)
    s, c, alpha = decoder_step(y, s_prev, H, mask, W_s, W_h, v, cell)
    assert s.shape == (B, d_s) and c.shape == (B, d_H) and alpha.shape == (B, T)
    assert_agree(alpha, masked_softmax(additive_score(s_prev, H, W_s, W_h, v), mask), reduction=d_s,
                 what="alpha vs the scores of s_prev")  # the longest sum: W_s s_prev, over d_s
    assert_agree(s, cell(torch.cat([y, c], -1), s_prev), reduction=d_y + d_H, what="s vs the GRU cell")
    assert torch.all(alpha[0, 2:] == 0)


@pytest.mark.numerics
def test_encoder_equals_the_explicit_bidirectional_recurrence(gen):
    enc = seq2seq.Encoder(vocab_size=10, embed=3, hidden=4)
    src = torch.randint(4, 10, (3, 6), generator=gen)
    lengths = torch.tensor([6, 2, 4])
    src[1, 2:] = 0
    src[2, 4:] = 0
    H, mask = enc(src, lengths)
    fwd, bwd = nn.GRUCell(3, 4), nn.GRUCell(3, 4)
    for cell, rnn in ((fwd, enc.forward_rnn), (bwd, enc.backward_rnn)):
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(cell, name).data.copy_(getattr(rnn, f"{name}_l0").data)
    explicit = bidirectional_annotations(enc.embed(src), lengths, fwd, bwd)
    # nn.GRU against GRUCell steps: up to 6 steps, each summing over embed + hidden = 7 inputs
    assert_agree(H, explicit, reduction=6 * (3 + 4), what="nn.GRU vs the explicit recurrence")
    assert torch.all(H[1, 2:] == 0) and mask.tolist()[1] == [True, True] + [False] * 4


def test_final_context_takes_the_last_real_position():
    out = torch.arange(2 * 4 * 1, dtype=torch.float).reshape(2, 4, 1)
    assert final_context(out, torch.tensor([4, 2])).flatten().tolist() == [3.0, 5.0]
    with pytest.raises(ValueError, match="lengths"):
        final_context(out, torch.tensor([5, 1]))
    with pytest.raises(ValueError, match="lengths"):
        final_context(out, torch.tensor([1, 1, 1]))


def test_accuracy_by_length():
    preds, targets = ["a", "b", "x", "d", "e"], ["a", "b", "c", "d", "z"]
    acc = accuracy_by_length(preds, targets, [1, 2, 3, 5, 9], bins=[0, 3, 6, 9])
    assert np.allclose(acc[:2], [1.0, 0.5]) and np.isnan(acc[2])  # 9 lies outside [6, 9)
    with pytest.raises(ValueError):
        accuracy_by_length(preds, targets[:4], [1, 2, 3, 4, 5], bins=[0, 9])
    with pytest.raises(ValueError):
        accuracy_by_length(preds, targets, [1, 2, 3, 4, 5], bins=[5, 1])


@pytest.mark.numerics
@pytest.mark.parametrize("attention", [True, False])
def test_models_shapes_and_padding_independence(attention, gen):
    data = dates.make_date_data(n_train=64, n_test=8, seed=1)
    config = ModelConfig(attention=attention, embed=8, enc_hidden=8, dec_hidden=16, align=8)
    model = seq2seq.build_model(config, len(data.source_vocab), len(data.target_vocab)).eval()
    src, lengths, tgt_in, tgt_out = encode_batch(data.train[:5], data.source_vocab, data.target_vocab)
    logits, attn = model(src, lengths, tgt_in)
    assert logits.shape == (5, tgt_in.shape[1], len(data.target_vocab))
    if attention:
        assert attn.shape == (5, tgt_in.shape[1], src.shape[1])
        pad = ~(torch.arange(src.shape[1])[None] < lengths[:, None])  # (B, T)
        assert torch.all(attn.masked_select(pad[:, None, :].expand_as(attn)) == 0)
        assert (attn.sum(-1) - 1).abs().max() <= rounding_tolerance(attn.dtype, src.shape[1])  # weights in [0, 1]
    else:
        assert attn is None
    # a sentence's output does not depend on how much padding its batch adds
    alone, _ = model(src[:1, : int(lengths[0])], lengths[:1], tgt_in[:1])
    # the longest sum behind a logit: the deep output over [y; s; c]
    deep_output = config.embed + config.dec_hidden + 2 * config.enc_hidden
    assert_agree(alone, logits[:1, : alone.shape[1]], reduction=deep_output, what="one sentence alone vs in a batch")


@pytest.mark.slow  # trains or generates for tens of seconds: not in the contributor tier
@pytest.mark.parametrize("attention", [True, False])
def test_tiny_overfit_and_translate(attention, tmp_path, monkeypatch):
    monkeypatch.setenv("ATTENTION_COURSE_CACHE", str(tmp_path))
    data = dates.make_date_data(n_train=8, n_test=4, seed=2, max_dates=1)
    config = ModelConfig(attention=attention, embed=16, enc_hidden=32, dec_hidden=64, align=16,
                         batch_size=8, steps=150, lr=1e-2, checkpoints=(0, 50))
    result = train_model(data, config, progress=False)
    assert result.losses[-1] < 0.05 < result.losses[0]
    assert set(result.checkpoints) == {0, 50, 150} and not result.cached
    texts, attentions = translate(result.model, [s for s, _ in data.train], data)
    assert texts == [t for _, t in data.train]
    if attention:
        assert attentions[0].shape == (len(texts[0]) + 1, len(data.train[0][0]))
    # the cache returns the identical model, and retraining reproduces it exactly
    again = train_model(data, config, progress=False)
    assert again.cached and again.losses == result.losses
    fresh = train_model(data, config, progress=False, use_cache=False)
    for k, v in fresh.model.state_dict().items():
        assert torch.equal(v, result.model.state_dict()[k]), k


def test_quality_by_length_and_bleu():
    rows = seq2seq_metrics.quality_by_length(["2024-03-01", "1999-12-31;2000-01-01"],
                                     ["2024-03-01", "1999-12-31;2000-01-02"], [1, 2])
    assert [r["group"] for r in rows] == [1, 2]
    assert rows[0]["exact"] == 100.0 and rows[0]["bleu"] == pytest.approx(100.0)
    assert rows[1]["exact"] == 0.0 and 50 < rows[1]["bleu"] < 100


def test_alignment_viewer(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from attention_course.views.alignment_viewer import AlignmentViewer, plot_alignment
    from attention_course.views.plotting import use_course_style

    use_course_style()  # CJK fallback font for the Chinese labels
    monkeypatch.setenv("ATTENTION_COURSE_CACHE", str(tmp_path))
    data = dates.make_date_data(n_train=16, n_test=4, seed=2, max_dates=2)
    config = ModelConfig(attention=True, embed=8, enc_hidden=8, dec_hidden=16, align=8,
                         batch_size=8, steps=3, checkpoints=(0, 2))
    result = train_model(data, config, progress=False)
    viewer = AlignmentViewer(result, data, ["2024年3月1日", "3/1/24"])
    assert viewer.steps == [0, 2, 3]
    output, weights, rows = viewer.align("2024年3月1日", step=0)
    assert weights.shape == (len(rows), len("2024年3月1日"))
    assert np.abs(weights.sum(1) - 1).max() <= rounding_tolerance(np.float32, weights.shape[1])  # weights in [0, 1]
    assert "2024年3月1日" in viewer.describe("2024年3月1日")
    plt.close(viewer.figure("3/1/24", step=2))
    explorer = viewer.widget(static=tmp_path)  # the explorer; its models exported to tmp_path
    assert explorer.kind == "alignment" and sorted(explorer.data["models"]) == ["0", "2", "3"]
    # with a kernel, typed dates are translated by Python, answered with new data
    viewer._answer(explorer, {"type": "translate", "request": 1, "source": "3/1/24", "step": 2})
    answer = explorer.data["answer"]
    assert answer["output"] == viewer.align("3/1/24", 2)[0] and answer["request"] == 1
    assert explorer.data["examples"] and explorer.data["models"]  # the rest of the data is kept
    with pytest.raises(ValueError, match="checkpoint"):
        viewer.align("3/1/24", step=1)
    with pytest.raises(ValueError):
        AlignmentViewer(train_model(data, ModelConfig(attention=False, embed=8, enc_hidden=8, dec_hidden=16,
                                                      batch_size=8, steps=1, checkpoints=(0,)),
                                    progress=False), data, ["x"])
    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match="plot_alignment"):
        plot_alignment(ax, "abc", ["1", "⟨eos⟩"], np.ones((3, 3)))
    plt.close(fig)


def test_encoder_rejects_mismatched_lengths():
    enc = seq2seq.Encoder(vocab_size=10, embed=3, hidden=4)
    src = torch.ones(2, 5, dtype=torch.long)
    with pytest.raises(ValueError, match=r"lengths must lie in 1\.\.5"):
        enc(src, torch.tensor([6, 1]))
    with pytest.raises(ValueError, match=r"lengths \(B,\)"):
        enc(src, torch.tensor([5]))


def test_torch_threads_sets_and_restores_the_thread_count():
    from attention_course.env import torch_threads

    original = torch.get_num_threads()
    torch.set_num_threads(3)  # not 1, whatever the environment set (scripts/test.sh sets 1)
    try:
        with torch_threads(1):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 3
        with torch_threads(None):
            assert torch.get_num_threads() == 3
        with pytest.raises(RuntimeError, match="inside"):
            with torch_threads(1):
                raise RuntimeError("inside")
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(original)

"""The encoder-decoder Transformer of Chapter 7 (attention_course.models.date_transformer)."""
import functools
import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from attention_course.data import dates
from attention_course.models import date_transformer as dt
from attention_course.training import date_training
from attention_course.maths import self_attention
from attention_course.maths.numerics import assert_agree, rounding_tolerance
from attention_course.maths.transformer import label_smoothing_loss

SMALL = dt.TransformerConfig(d_model=16, num_heads=2, d_ff=32, enc_layers=2, dec_layers=2,
                             max_len=64, batch_size=8, steps=4, warmup=2)


@pytest.fixture(scope="module")
def data():
    return dates.make_date_data(n_train=40, n_test=8, seed=3, max_dates=2)


#: the same with Chapter 7's date-index features (segment embedding, positions within each date)
SEGMENTED = dt.TransformerConfig(**{**SMALL.__dict__, "segments": True, "segment_positions": True})


def build(config, data):
    return dt.build_transformer(config, len(data.source_vocab), len(data.target_vocab),
                                dt.separator_ids(data)).eval()


@pytest.fixture(params=[SMALL, SEGMENTED], ids=["plain", "segments"])
def model(data, request):
    return build(request.param, data)


def batch(data, pairs):
    from attention_course.training.seq2seq_training import encode_batch

    return encode_batch(pairs, data.source_vocab, data.target_vocab)


def test_shapes(model, data):
    src, lengths, tgt_in, tgt_out = batch(data, data.train[:5])
    B, T = src.shape
    L = tgt_in.shape[1]
    SMALL = model.config  # noqa: N806 (the sizes are the same in both configurations)
    logits, cross = model(src, lengths, tgt_in)
    assert logits.shape == (B, L, len(data.target_vocab))
    assert cross.shape == (B, SMALL.dec_layers, SMALL.num_heads, L, T)
    memory, mask, enc_w = model.encode(src, lengths)
    assert memory.shape == (B, T, SMALL.d_model) and mask.shape == (B, 1, 1, T)
    assert [w.shape for w in enc_w] == [(B, SMALL.num_heads, T, T)] * SMALL.enc_layers
    _, self_w, _ = model.decode(tgt_in, memory, mask)
    assert [w.shape for w in self_w] == [(B, SMALL.num_heads, L, L)] * SMALL.dec_layers
    assert (cross.sum(-1) - 1).abs().max() <= rounding_tolerance(cross.dtype, T)  # T weights in [0, 1]


def test_decoder_is_causal(model, data):
    """Changing the target at position k changes no output before k; the weights above the diagonal are 0."""
    src, lengths, tgt_in, _ = batch(data, data.train[:3])
    k = 4
    changed = tgt_in.clone()
    changed[:, k:] = (changed[:, k:] + 3) % len(data.target_vocab)
    with torch.no_grad():
        a, _ = model(src, lengths, tgt_in)
        b, _ = model(src, lengths, changed)
        memory, mask, _ = model.encode(src, lengths)
        _, self_w, _ = model.decode(tgt_in, memory, mask)
    # the longest sum behind a logit: the MLP's second layer, over d_ff
    assert_agree(a[:, :k], b[:, :k], reduction=model.config.d_ff, what="logits before the changed targets")
    assert not torch.allclose(a[:, k:], b[:, k:], atol=1e-3)
    L = tgt_in.shape[1]
    upper = ~torch.ones(L, L, dtype=torch.bool).tril()
    assert all(float(w[..., upper].abs().max()) == 0.0 for w in self_w)


@pytest.mark.numerics
def test_padding_is_masked_in_cross_attention(model, data):
    """Padding gets exactly zero cross-attention, and batching with a longer input changes nothing."""
    short, long = sorted(data.train[:10], key=lambda p: len(p[0]))[::9][:2]
    src, lengths, tgt_in, _ = batch(data, [short, long])
    assert lengths[0] < src.shape[1]
    with torch.no_grad():
        logits, cross = model(src, lengths, tgt_in)
        alone_src, alone_len, alone_in, _ = batch(data, [short])
        alone, alone_cross = model(alone_src, alone_len, alone_in)
    assert float(cross[0, ..., int(lengths[0]):].abs().max()) == 0.0
    n = alone_in.shape[1]
    # one sentence in a batch vs alone; the longest sum behind a logit: the MLP's second layer, over d_ff
    assert_agree(logits[0, :n], alone[0], reduction=model.config.d_ff, what="logits in a batch vs alone")
    assert_agree(cross[0, :, :, :n, :int(lengths[0])], alone_cross[0], reduction=model.config.d_ff,
                 what="cross-attention in a batch vs alone")


@pytest.mark.numerics
@pytest.mark.parametrize("config", [SMALL, SEGMENTED], ids=["plain", "segments"])
@pytest.mark.parametrize("use_cache", [True, False], ids=["kv-cache", "recompute"])
@pytest.mark.parametrize("trained", [False, True], ids=["random", "trained"])
def test_greedy_equals_teacher_forced_argmax(data, trained, use_cache, config):
    if trained:
        result = date_training.train_transformer(data, config, progress=False, use_cache=False)
        model = result.model
    else:
        model = build(config, data)
    src, lengths, _, _ = batch(data, data.test[:6])
    tv = data.target_vocab
    out, cross = model.greedy(src, lengths, max_len=12, bos=tv.BOS, eos=tv.EOS, use_cache=use_cache)
    tgt_in = torch.cat([torch.full((src.shape[0], 1), tv.BOS), out[:, :-1]], dim=1)
    with torch.no_grad():
        logits, teacher_cross = model(src, lengths, tgt_in)
    for b in range(src.shape[0]):
        row = out[b].tolist()
        n = row.index(tv.EOS) + 1 if tv.EOS in row else len(row)
        assert row[:n] == logits[b, :n].argmax(-1).tolist()
        # step by step (with or without the KV cache) vs all positions at once
        assert_agree(cross[b, :, :, :n], teacher_cross[b, :, :, :n], reduction=config.d_ff,
                     what="greedy cross-attention vs teacher forcing")
        assert bool((cross[b, ..., int(lengths[b]):] == 0).all())  # padding: no weight


@pytest.fixture(scope="module", params=["features", "plain-2-layers"])
def trained(request, data):
    """Chapter 7's sizes with its date features (one decoder block), and the paper's input with two
    decoder blocks, trained for 60 steps on the date task: they write dates with separators and stop."""
    changes = {} if request.param == "features" else dict(segments=False, segment_positions=False, dec_layers=2)
    config = dt.course_transformer_config(steps=60, warmup=20, checkpoints=(), **changes)
    return date_training.train_transformer(data, config, progress=False, use_cache=False).model.eval()


@pytest.mark.numerics
def test_cached_greedy_equals_full_redecoding_on_real_inputs(trained, data, monkeypatch):
    """translate (greedy decoding with the KV cache) writes what re-decoding the whole prefix at every
    step writes, with the same cross-attention maps up to float rounding, on held-out dates."""
    model = trained
    sources = [s for s, _ in data.test] + ["3 March 2021; 12/05/1999", "1. März 2024", "17.06.91; 1999年12月31日"]
    cached_texts, cached_maps = date_training.translate(model, sources, data, batch_size=5)
    full_greedy = functools.partial(dt.DateTransformer.greedy, model, use_cache=False)
    monkeypatch.setattr(model, "greedy", full_greedy)  # translate's own loop, without the cache
    texts, maps = date_training.translate(model, sources, data, batch_size=5)
    assert cached_texts == texts and any(";" in t for t in texts), texts
    for source, a, b in zip(sources, cached_maps, maps):
        assert a.shape == b.shape
        # the longest sum behind a weight: the MLP's second layer, over d_ff
        assert_agree(a, b, reduction=model.config.d_ff, what=f"cross-attention with vs without the cache, {source!r}")


@pytest.mark.numerics
def test_cached_decode_runs_the_decoder_blocks_one_position_at_a_time(trained, data, monkeypatch):
    """With a KVCache, decode() sends only the new position through the same DecoderBlock.forward as
    teacher forcing, and its logits are teacher forcing's at that position."""
    from attention_course.maths.multi_head import KVCache
    from attention_course.maths.transformer import DecoderBlock

    model = trained
    src, lengths, tgt_in, _ = batch(data, data.test[:4])
    seen, forward = [], DecoderBlock.forward

    def recording(block, y, *args, **kwargs):
        seen.append((y.shape[1], kwargs.get("cache") is not None, kwargs.get("layer")))
        return forward(block, y, *args, **kwargs)

    with torch.no_grad():
        memory, mask, _ = model.encode(src, lengths)
        whole, _, whole_cross = model.decode(tgt_in, memory, mask)
        monkeypatch.setattr(DecoderBlock, "forward", recording)
        cache = KVCache()
        steps = [model.decode(tgt_in[:, :t + 1], memory, mask, cache=cache) for t in range(tgt_in.shape[1])]
    layers, L = model.config.dec_layers, tgt_in.shape[1]
    assert seen == [(1, True, layer) for _ in range(L) for layer in range(layers)]
    assert cache.length == L and len(cache.memory_keys) == layers
    for t, (logits, self_w, cross) in enumerate(steps):
        assert logits.shape == (4, 1, whole.shape[-1]) and self_w[0].shape[-2:] == (1, t + 1)
        assert_agree(logits[:, 0], whole[:, t], reduction=model.config.d_ff, what=f"cached logits, position {t}")
        for layer in range(layers):
            assert_agree(cross[layer][:, :, 0], whole_cross[layer][:, :, t], reduction=model.config.d_ff,
                         what=f"cached cross-attention, position {t}, layer {layer}")
    assert not hasattr(dt.DateTransformer, "_step") and not hasattr(dt.DateTransformer, "_cross_cache")
    with pytest.raises(ValueError, match="start"):  # every position already cached
        model.decode(tgt_in, memory, mask, cache=cache)


def test_translate_returns_maps_of_every_head(model, data):
    sources = [s for s, _ in data.test[:4]]
    texts, maps = date_training.translate(model, sources, data, batch_size=3, max_len=10)
    assert len(texts) == len(maps) == 4
    for source, w in zip(sources, maps):
        assert w.shape[:2] == (model.config.dec_layers, SMALL.num_heads) and w.shape[3] == len(source)
        assert np.abs(w.sum(-1) - 1).max() <= rounding_tolerance(np.float32, len(source))  # weights in [0, 1]


def test_noam_schedule_values():
    d, warmup = 64, 200
    assert date_training.noam_lr(1, d, warmup) == pytest.approx(d ** -0.5 * warmup ** -1.5)
    assert date_training.noam_lr(warmup, d, warmup) == pytest.approx((d * warmup) ** -0.5)  # the peak
    assert date_training.noam_lr(100, d, warmup) == pytest.approx(date_training.noam_lr(200, d, warmup) / 2)  # linear ramp
    assert date_training.noam_lr(800, d, warmup) == pytest.approx(date_training.noam_lr(200, d, warmup) / 2)  # 1/sqrt decay
    steps = np.arange(1, 1001)
    lr = date_training.noam_lr(steps, d, warmup)
    assert int(np.argmax(lr)) + 1 == warmup
    flat = date_training.noam_lr(steps, d, warmup, use_warmup=False)
    assert np.allclose(flat[:warmup], (d * warmup) ** -0.5) and np.allclose(flat[warmup:], lr[warmup:])
    with pytest.raises(ValueError, match="from 1"):
        date_training.noam_lr(0, d, warmup)
    with pytest.raises(ValueError, match="positive"):
        date_training.noam_lr(1, d, 0)


def test_scheduled_lr_inverse_sqrt_is_eq3_and_linear_falls_to_zero():
    steps = np.arange(1, 1001)
    config = dt.TransformerConfig(d_model=64, warmup=200, steps=1000)
    assert np.allclose(date_training.scheduled_lr(steps, config), date_training.noam_lr(steps, 64, 200))  # the default
    doubled = dt.TransformerConfig(d_model=64, warmup=200, steps=1000, lr_factor=2.0)
    assert np.allclose(date_training.scheduled_lr(steps, doubled), 2 * date_training.noam_lr(steps, 64, 200))
    linear = dt.TransformerConfig(d_model=64, warmup=200, steps=1000, decay="linear")
    lr = date_training.scheduled_lr(steps, linear)
    assert np.allclose(lr[:200], date_training.noam_lr(steps[:200], 64, 200))  # Eq. 3's ramp to the same peak
    assert lr[199] == pytest.approx((64 * 200) ** -0.5) and int(np.argmax(lr)) + 1 == 200
    assert np.all(np.diff(lr[199:]) < 0) and 0 < lr[-1] < lr[199] / 500  # a straight fall to almost 0
    assert np.allclose(np.diff(lr[199:], 2), 0, atol=1e-12)
    assert isinstance(date_training.scheduled_lr(5, linear), float)
    flat = date_training.scheduled_lr(steps, dt.TransformerConfig(d_model=64, warmup=200, steps=1000, decay="linear",
                                                       use_warmup=False))
    assert np.allclose(flat[:200], lr[199]) and np.allclose(flat[200:], lr[200:])
    with pytest.raises(ValueError, match="decay"):
        date_training.scheduled_lr(1, dt.TransformerConfig(decay="cosine"))
    with pytest.raises(ValueError, match="below steps"):
        date_training.scheduled_lr(1, dt.TransformerConfig(decay="linear", warmup=10, steps=10))


@pytest.mark.numerics
def test_label_smoothing_target_and_loss():
    targets = torch.tensor([0, 3, 4])
    q = date_training.smoothed_target(targets, 5, 0.1)
    assert (q.sum(-1) - 1).abs().max() <= rounding_tolerance(q.dtype, 5)
    assert q[1, 3] == pytest.approx(0.9 + 0.1 / 5) and q[1, 0] == pytest.approx(0.1 / 5)
    logits = torch.randn(3, 5, generator=torch.Generator().manual_seed(0))
    manual = -(q * F.log_softmax(logits, -1)).sum(-1).mean()
    # a mean over 3 targets of sums over 5 classes
    assert_agree(label_smoothing_loss(logits, targets, 0.1), manual, reduction=3 * 5, what="label smoothing vs manual")
    with pytest.raises(ValueError, match="epsilon"):
        date_training.smoothed_target(targets, 5, 1.0)
    with pytest.raises(ValueError, match="targets"):
        date_training.smoothed_target(targets, 4, 0.1)


@pytest.mark.numerics
def test_sequence_loss_leaves_out_padding():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 4, 6, generator=g)
    targets = torch.tensor([[5, 4, 2, 0], [3, 2, 0, 0]])
    keep = targets != 0
    expected = F.cross_entropy(logits[keep], targets[keep])
    reduction = int(keep.sum()) * 6  # a mean over the 5 real targets of sums over 6 classes
    assert_agree(date_training.sequence_loss(logits, targets), expected, reduction=reduction,
                 what="sequence_loss vs F.cross_entropy")
    noisy = logits.clone()
    noisy[~keep] = 1e3  # whatever the model says at padding does not count
    assert_agree(date_training.sequence_loss(noisy, targets, 0.1), date_training.sequence_loss(logits, targets, 0.1),
                 reduction=reduction, what="loss with other logits at the padding")


@pytest.mark.numerics
def test_training_is_deterministic_and_cached(data, tmp_path, monkeypatch):
    monkeypatch.setenv("ATTENTION_COURSE_CACHE", str(tmp_path))
    first = date_training.train_transformer(data, SMALL, progress=False)
    again = date_training.train_transformer(data, SMALL, progress=False, use_cache=False)
    cached = date_training.train_transformer(data, SMALL, progress=False)
    assert not first.cached and cached.cached and len(first.losses) == SMALL.steps
    assert first.losses == again.losses == cached.losses and first.nll == cached.nll
    assert first.lrs == pytest.approx([date_training.noam_lr(s, SMALL.d_model, SMALL.warmup) for s in range(1, 5)])
    linear = date_training.train_transformer(data, dt.TransformerConfig(**{**SMALL.__dict__, "decay": "linear"}),
                                  progress=False, use_cache=False)
    assert linear.lrs == pytest.approx([date_training.scheduled_lr(s, linear.config) for s in range(1, 5)])
    assert linear.lrs[-1] < linear.lrs[1] and linear.losses != first.losses
    for a, b in zip(first.model.state_dict().values(), cached.model.state_dict().values()):
        assert torch.equal(a, b)
    assert list((tmp_path / "date_transformer").glob("transformer-*.pt"))
    kept = date_training.train_transformer(data, dt.TransformerConfig(**{**SMALL.__dict__, "checkpoints": (2,)}),
                                progress=False, use_cache=False)
    two = date_training.train_transformer(data, dt.TransformerConfig(**{**SMALL.__dict__, "steps": 2}),
                               progress=False, use_cache=False)
    for a, b in zip(kept.at_checkpoint(2).state_dict().values(), two.model.state_dict().values()):
        assert torch.equal(a, b)  # Eq. 3 does not depend on the total: a short run = the start of a long one
    with pytest.raises(KeyError, match="no checkpoint"):
        kept.at_checkpoint(3)
    # the linear decay does depend on the total; stop_after runs the start of the planned schedule
    long = dt.TransformerConfig(**{**SEGMENTED.__dict__, "decay": "linear", "steps": 6, "checkpoints": (3,)})
    kept = date_training.train_transformer(data, long, progress=False, use_cache=False)
    start = date_training.train_transformer(data, dt.TransformerConfig(**{**long.__dict__, "stop_after": 3, "checkpoints": ()}),
                                 progress=False, use_cache=False)
    replanned = date_training.train_transformer(data, dt.TransformerConfig(**{**long.__dict__, "steps": 4, "checkpoints": ()}),
                                     progress=False, use_cache=False)
    assert len(start.losses) == 3 and start.lrs == kept.lrs[:3] and replanned.lrs[2] < kept.lrs[2]
    for a, b in zip(kept.at_checkpoint(3).state_dict().values(), start.model.state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="stop_after"):
        date_training.train_transformer(data, dt.TransformerConfig(**{**long.__dict__, "stop_after": 7}), progress=False,
                             use_cache=False)
    smooth = date_training.train_transformer(data, dt.TransformerConfig(**{**SMALL.__dict__, "label_smoothing": 0.0}),
                                  progress=False, use_cache=False)
    # without smoothing the objective is the NLL: label_smoothing_loss vs F.cross_entropy on the same
    # logits, a mean over at most batch_size x (longest target + EOS) symbols of sums over the vocabulary
    symbols = SMALL.batch_size * (max(len(t) for _, t in data.train) + 1) * len(data.target_vocab)
    assert smooth.losses == pytest.approx(smooth.nll, rel=rounding_tolerance(torch.float32, symbols), abs=0)
    assert first.losses != pytest.approx(first.nll)


def test_segment_ids():
    sep = 9
    ids = torch.tensor([[5, 6, 9, 4, 7, 9, 8, 0],
                        [9, 5, 5, 5, 5, 5, 5, 5]])
    segments, offsets = dt.segment_ids(ids, sep)
    assert segments.tolist() == [[0, 0, 1, 1, 1, 2, 2, 2], [1, 1, 1, 1, 1, 1, 1, 1]]
    assert offsets.tolist() == [[0, 1, 0, 1, 2, 0, 1, 2], [0, 1, 2, 3, 4, 5, 6, 7]]
    with pytest.raises(ValueError, match="segment_ids"):
        dt.segment_ids(ids[0], sep)


def test_separators_of_the_date_data(data):
    source_sep, target_sep = dt.separator_ids(data)
    assert data.source_vocab.tokens[source_sep] == ";" and data.target_vocab.tokens[target_sep] == ";"
    two = [(s, t) for s, t in data.train if dates.count_dates(t) == 2][0]
    segments, _ = dt.segment_ids(torch.tensor([data.source_vocab.encode(two[0], eos=False)]), source_sep)
    first = two[0].index(";")
    assert segments[0, :first].eq(0).all() and segments[0, first:].eq(1).all()


@pytest.mark.numerics
def test_segment_input_is_token_plus_position_in_date_plus_segment(data):
    """The input of Chapter 7's model, written out: sqrt(d) E[x_t] + PE(offset_t) + S[segment_t]."""
    model = build(SEGMENTED, data)
    with torch.no_grad():
        model.segment_embed.weight.copy_(torch.randn_like(model.segment_embed.weight))
    source = "3/1/24; 17.06.91; 1999年12月31日"
    ids = torch.tensor([data.source_vocab.encode(source, eos=False)])
    x = model._embed(model.src_embed, ids, 0)  # (1, T, d)
    d = SEGMENTED.d_model
    t = source.index("17.06.91")  # second date, third character of its segment ("; " opens it)
    expected = (model.src_embed.weight[ids[0, t]] * math.sqrt(d) + model.pe[2]
                + model.segment_embed.weight[1])
    assert_agree(x[0, t], expected, reduction=3, what="segmented input vs its formula")  # a sum of 3 terms
    plain = build(SMALL, data)
    assert_agree(plain._embed(plain.src_embed, ids, 0)[0, t],
                 plain.src_embed.weight[ids[0, t]] * math.sqrt(d) + plain.pe[t], reduction=2, what="plain input")
    # the same date in a different place of the list is embedded differently only through S
    tgt = torch.tensor([[data.target_vocab.BOS] + data.target_vocab.encode("2024-03-01;1991-06-17", eos=False)])
    y = model._embed(model.tgt_embed, tgt, 1)
    k = 1 + len("2024-03-01;")  # the "1" of 1991, second character of segment 1 (after ";")
    assert_agree(y[0, k], model.tgt_embed.weight[tgt[0, k]] * math.sqrt(d) + model.pe[1]
                 + model.segment_embed.weight[1], reduction=3, what="segmented target input")


@pytest.mark.numerics
def test_fused_attention_gives_the_same_logits(model, data):
    src, lengths, tgt_in, _ = batch(data, data.train[:5])
    with torch.no_grad():
        a, cross = model(src, lengths, tgt_in)
        b, none = model(src, lengths, tgt_in, need_weights=False)
    assert cross is not None and none is None
    assert_agree(a, b, reduction=model.config.d_ff, what="naive vs fused attention")  # longest sum: the MLP's d_ff


def test_course_configuration():
    config = dt.course_transformer_config()
    assert config.segments and config.segment_positions and config.decay == "linear"
    assert config.use_warmup and config.label_smoothing == 0.1  # the two devices of the paper stay
    assert dt.course_transformer_config(steps=10).steps == 10 and config.checkpoints[0] < config.steps
    assert not dt.TransformerConfig().segments  # the defaults are the plain model


def test_errors(model, data):
    with pytest.raises(ValueError, match="max_len"):
        model.encode(torch.ones(1, SMALL.max_len + 1, dtype=torch.long), torch.tensor([3]))
    with pytest.raises(ValueError, match="lengths"):
        self_attention.padding_mask(torch.tensor([0, 2]), 3)
    with pytest.raises(ValueError, match="num_heads"):
        dt.DateTransformer(10, 10, dt.TransformerConfig(d_model=18, num_heads=4))
    with pytest.raises(ValueError, match="separator"):
        dt.DateTransformer(10, 10, SEGMENTED)
    assert math.isclose(date_training.noam_lr(4000, 512, 4000), 512 ** -0.5 * 4000 ** -0.5)


# ------------------------------------------------------------------ the explorer of Chapter 7


def test_argmax_agreement():
    from attention_course.views.transformer_viewer import argmax_agreement

    a = np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.4]])
    b = np.array([[0.6, 0.4], [0.7, 0.3], [0.9, 0.1]])
    assert argmax_agreement(a, b) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="argmax_agreement"):
        argmax_agreement(a, b[:2])


def test_cross_attention_viewer_and_explorer(data, model, tmp_path, monkeypatch):
    from attention_course.models import seq2seq
    from attention_course.training.seq2seq_training import train_model
    from attention_course.views.explorer import build_esm
    from attention_course.views.transformer_viewer import CrossAttentionExplorer, CrossAttentionViewer

    monkeypatch.setenv("ATTENTION_COURSE_CACHE", str(tmp_path))
    search = train_model(data, seq2seq.ModelConfig(embed=8, enc_hidden=8, dec_hidden=8, align=4, steps=2,
                                                   checkpoints=(0,)), progress=False)
    sources = [s for s, _ in data.test[:3]]
    viewer = CrossAttentionViewer(model, search, data, sources)
    m = viewer.maps(sources[0])
    t, r = m["transformer"], m["rnnsearch"]
    assert t["weights"].shape == (model.config.dec_layers, SMALL.num_heads, len(t["rows"]), len(sources[0]))
    assert r["weights"].shape == (len(r["rows"]), len(sources[0]))
    assert np.abs(t["weights"].sum(-1) - 1).max() <= rounding_tolerance(np.float32, len(sources[0]))
    explorer = viewer.widget(layer=-1, head=1, static=tmp_path)  # its models exported to tmp_path
    assert isinstance(explorer, CrossAttentionExplorer) and explorer.kind == "cross_attention"
    assert explorer.controls == {"example": 0, "layer": model.config.dec_layers - 1, "head": 1}
    assert [e["source"] for e in explorer.data["examples"]] == sources
    assert explorer.data["examples"][0]["transformer"]["weights"]["shape"] == list(t["weights"].shape)
    assert "heatmaps" in explorer.alt and sources[0] in explorer.alt
    assert "export default" in build_esm("cross_attention")
    explorer._dispatch(explorer, {"type": "source", "text": "1. März 2024"}, None)  # a kernel request
    assert explorer.data["examples"][-1]["source"] == "1. März 2024"
    with pytest.raises(ValueError, match="out of range"):
        viewer.widget(head=SMALL.num_heads)
    with pytest.raises(ValueError, match="empty"):
        viewer.maps("  ")


def test_agreement_counts_only_inputs_translated_alike(data, model, tmp_path, monkeypatch):
    from attention_course.models import seq2seq
    from attention_course.training import seq2seq_training
    from attention_course.views.transformer_viewer import CrossAttentionViewer

    monkeypatch.setenv("ATTENTION_COURSE_CACHE", str(tmp_path))
    search = seq2seq_training.train_model(data, seq2seq.ModelConfig(embed=8, enc_hidden=8, dec_hidden=8, align=4,
                                                                    steps=1, checkpoints=(0,)), progress=False)
    sources = [s for s, _ in data.test[:4]]
    viewer = CrossAttentionViewer(model, search, data, sources)
    texts, maps = date_training.translate(model, sources, data, max_len=viewer.max_len)
    # An "RNNsearch" that writes what the Transformer writes and looks where its head (1, 0) looks,
    # except on the first input, which it translates differently (left out).
    fake = (["x"] + texts[1:], [m[1, 0] for m in maps])
    monkeypatch.setattr(seq2seq_training, "translate", lambda *args, **kwargs: fake)
    agreement, used = viewer.agreement()
    assert used == len(sources) - 1 and agreement.shape == (model.config.dec_layers, SMALL.num_heads)
    assert agreement[1, 0] == pytest.approx(1.0) and agreement.max() == pytest.approx(1.0)
    monkeypatch.setattr(seq2seq_training, "translate", lambda *args, **kwargs: (["x"] * 4, fake[1]))
    with pytest.raises(ValueError, match="no input translated alike"):
        viewer.agreement()


def test_one_greedy_decoder_serves_both_encoder_decoders():
    """RNNsearch and the date Transformer decode through models.decoding.greedy_decode (one loop)."""
    import inspect

    from attention_course.models import decoding, seq2seq

    for method in (seq2seq._Seq2Seq.greedy, dt.DateTransformer.greedy):
        source = inspect.getsource(method)
        assert "greedy_decode(" in source and "done |=" not in source, method.__qualname__  # no loop of its own
    # row 0 writes EOS (3) at once and is padded with 0 after; row 1 never does: max_len ids
    ids, extras = decoding.greedy_decode(lambda prefix: (torch.eye(4)[[3, 1]], prefix.shape[1]), 2, 1, 3, 5)
    assert ids.tolist() == [[3, 0, 0, 0, 0], [1, 1, 1, 1, 1]] and extras == [1, 2, 3, 4, 5]
    with pytest.raises(ValueError, match="max_len"):
        decoding.greedy_decode(lambda prefix: None, 2, 1, 3, 0)

"""Tests for attention_course.models.gpt and attention_course.training.attention_cost (Chapter 6)."""
import pytest
import torch

from attention_course.training.attention_cost import fused_attention, measure_attention_cost, naive_attention
from attention_course.data.fortunes import CharTokenizer, split_quotes
from attention_course.models.gpt import GPT, GPTConfig, generate, sample_next_token
from attention_course.training.gpt_training import evaluate, ngram_baseline, train_gpt
from attention_course.maths.multi_head import KVCache
from attention_course.maths.numerics import assert_agree, rounding_tolerance

TEXT = ("the cat sat on the mat. the dog sat on the log. " * 40)


@pytest.fixture()
def tiny():
    torch.manual_seed(0)
    tok = CharTokenizer(TEXT)
    model = GPT(GPTConfig(tok.vocab_size, block_size=16, n_layer=2, num_heads=2, d_model=32))
    return tok, model


def test_tokenizer_round_trip_and_unknown():
    tok = CharTokenizer("abc ")
    assert tok.decode(tok.encode("cab a")) == "cab a"
    assert tok.decode(tok.encode("abz")) == "ab "  # unknown -> space


def test_split_is_deterministic_and_disjoint():
    quotes = [f"quote {i}" for i in range(25)]
    train, val = split_quotes(quotes)
    assert "quote 9\n" in val and "quote 19\n" in val and "quote 9\n" not in train
    assert train.count("quote") == 23 and val.count("quote") == 2


def test_forward_is_causal(tiny):
    tok, model = tiny
    x = tok.encode(TEXT[:16])[None]
    y = x.clone()
    y[0, -1] = (y[0, -1] + 1) % tok.vocab_size
    with torch.no_grad():
        a, b = model(x)[0], model(y)[0]
    d_ff = 4 * model.config.d_model  # the longest sum behind a logit: the MLP's second layer
    assert_agree(a[:, :-1], b[:, :-1], reduction=d_ff, what="logits before the changed token")
    assert not torch.allclose(a[:, -1], b[:, -1])


def test_attention_weights_are_lower_triangular(tiny):
    tok, model = tiny
    with torch.no_grad():
        _, _, w = model(tok.encode(TEXT[:10])[None], need_weights=True)
    assert w.shape == (2, 1, 2, 10, 10)
    assert torch.all(w.triu(1) == 0)
    assert (w.sum(-1) - 1).abs().max() <= rounding_tolerance(w.dtype, 10)  # 10 weights in [0, 1]


@pytest.mark.numerics
def test_cached_logits_equal_full_recomputation(tiny):
    tok, model = tiny
    model.eval()
    ids = tok.encode(TEXT[:12])[None]
    with torch.no_grad():
        full = model(ids)[0]
        cache = KVCache()
        first = model(ids[:, :5], cache=cache)[0]
        steps = [model(ids[:, t:t + 1], cache=cache)[0] for t in range(5, 12)]
    incremental = torch.cat([first] + steps, dim=1)
    assert cache.length == 12
    # longest sum behind a logit: the MLP's second layer, over 4 * d_model = 128 hidden units
    assert_agree(incremental, full, reduction=4 * model.config.d_model, what="KV cache vs full recomputation")


@pytest.mark.numerics
@pytest.mark.parametrize("temperature", [0.0, 0.8, 1.5])
def test_generation_with_and_without_cache_is_identical(tiny, temperature):
    tok, model = tiny
    prompt = tok.encode("the ")[None]
    # 40 new tokens > block_size 16: also covers the sliding window
    a = generate(model, prompt, 40, temperature, torch.Generator().manual_seed(1), use_cache=True)
    b = generate(model, prompt, 40, temperature, torch.Generator().manual_seed(1), use_cache=False)
    assert a.shape == (1, 44)
    # integer token ids: the two paths' logits differ by rounding only (see the test above), and a
    # token could change only if an argmax gap or a random draw fell within that rounding of a tie
    assert torch.equal(a, b)


def test_context_longer_than_block_is_rejected(tiny):
    tok, model = tiny
    with pytest.raises(ValueError, match="block_size"):
        model(torch.zeros(1, 17, dtype=torch.long))


def test_sample_next_token_temperature():
    logits = torch.tensor([[2.0, 1.0, 0.0]])
    assert sample_next_token(logits, 0.0).item() == 0
    g = torch.Generator().manual_seed(0)
    cold = torch.stack([sample_next_token(logits, 0.1, g) for _ in range(300)])
    hot = torch.stack([sample_next_token(logits, 10.0, g) for _ in range(300)])
    assert (cold == 0).float().mean() > 0.99
    assert 0.2 < (hot == 2).float().mean() < 0.45  # nearly uniform
    with pytest.raises(ValueError):
        sample_next_token(logits, -1.0)


def test_trained_weights_are_cached_and_reused_exactly(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("ATTENTION_COURSE_CACHE", str(tmp_path))
    tok, model = tiny
    data = tok.encode(TEXT)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    options = dict(steps=6, batch_size=4, warmup=2, eval_every=3, eval_windows=2, progress=False)
    first = train_gpt(model, data, data, **options)
    assert not first["cached"] and list((tmp_path / "gpt").glob("gpt-*.pt"))
    trained = model.state_dict()

    again = GPT(model.config)
    again.load_state_dict(initial)
    second = train_gpt(again, data, data, **options)
    assert second["cached"] and second["val_loss"] == first["val_loss"]
    assert all(torch.equal(again.state_dict()[k], trained[k]) for k in trained)

    retrained = GPT(model.config)
    retrained.load_state_dict(initial)
    third = train_gpt(retrained, data, data, **options, use_cache=False)  # what the cache stands for
    assert not third["cached"] and all(torch.equal(retrained.state_dict()[k], trained[k]) for k in trained)

    other = GPT(model.config)  # other initial weights: not the cached model
    assert not train_gpt(other, data, data, **options)["cached"]
    assert not train_gpt(GPT(model.config), data, data, **{**options, "steps": 7})["cached"]


def test_training_beats_the_bigram_baseline(tiny):
    tok, model = tiny
    data = tok.encode(TEXT)
    train, val = data[:1600], data[1600:]
    history = train_gpt(model, train, val, steps=150, batch_size=16, lr=3e-3, warmup=10,
                        eval_every=50, eval_windows=20, progress=False, use_cache=False)
    assert history["step"][-1] == 150 and history["seconds"] > 0
    assert history["val_loss"][-1] < history["val_loss"][0] - 1.0
    assert evaluate(model, val) < ngram_baseline(train, val, tok.vocab_size, 2)


@pytest.mark.numerics
def test_naive_and_fused_attention_agree_and_memory_grows():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 2, 64, 16, generator=g) for _ in range(3))
    assert_agree(naive_attention(q, k, v), fused_attention(q, k, v), reduction=64, what="naive vs fused")  # n = 64
    rows = measure_attention_cost((256, 1024), heads=2, d=16, repeats=1)
    assert [r["n"] for r in rows] == [256, 1024]
    # an output is a convex combination of values drawn from randn (|v| < 6), summed over n keys
    assert all(r["max_abs_diff"] <= rounding_tolerance(torch.float32, r["n"]) * 6 for r in rows)
    if rows[0]["naive_bytes"] is not None:
        assert rows[1]["naive_bytes"] > rows[1]["matrix_bytes"]  # the n x n matrix is really stored


def test_top_k_and_top_p_cut_the_tail():
    from attention_course.models.gpt import filter_logits

    logits = torch.tensor([[3.0, 1.0, 2.0, 0.0, -1.0]])
    probs = torch.softmax(logits, -1)[0]  # 0.64, 0.09, 0.24, 0.03, 0.01
    assert torch.equal(filter_logits(logits), logits)  # the defaults change nothing
    kept = lambda out: torch.isfinite(out[0]).nonzero().flatten().tolist()
    assert kept(filter_logits(logits, top_k=2)) == [0, 2]
    assert kept(filter_logits(logits, top_p=0.5)) == [0]  # the top token alone carries 0.64
    assert kept(filter_logits(logits, top_p=0.7)) == [0, 2]  # 0.64 < 0.7 <= 0.64 + 0.24
    assert kept(filter_logits(logits, top_p=float(probs[0] + probs[2]))) == [0, 2]  # exactly reached: no third
    assert kept(filter_logits(logits, top_k=3, top_p=0.99)) == [0, 1, 2]
    with pytest.raises(ValueError):
        filter_logits(logits, top_p=0.0)
    with pytest.raises(ValueError):
        filter_logits(logits, top_k=-1)
    g = torch.Generator().manual_seed(0)
    from attention_course.models.gpt import sample_next_token

    many = torch.stack([sample_next_token(logits, 2.0, g, top_k=2) for _ in range(200)])
    assert set(many.flatten().tolist()) == {0, 2}  # never outside the top two, even at a high temperature
    assert all(int(sample_next_token(logits, 2.0, g, top_k=1)) == 0 for _ in range(20))  # top-k 1 is greedy
    # the defaults draw exactly what the plain sampler draws
    a = sample_next_token(logits.repeat(50, 1), 0.8, torch.Generator().manual_seed(4))
    b = torch.multinomial(torch.softmax(logits.repeat(50, 1) / 0.8, -1), 1, generator=torch.Generator().manual_seed(4))[:, 0]
    assert torch.equal(a, b)


def test_the_playground_passes_top_k_and_top_p_on(tiny):
    from attention_course.views.gpt_widget import GPTPlayground

    tok, model = tiny
    playground = GPTPlayground(model, tok)
    greedy = "".join(c for c, _, _ in playground.stream("The ", temperature=0.0, length=12))
    top1 = "".join(c for c, _, _ in playground.stream("The ", temperature=2.0, length=12, top_k=1))
    assert top1 == greedy  # top-k 1 leaves only the argmax, whatever the temperature
    hot = "".join(c for c, _, _ in playground.stream("The ", temperature=2.0, length=12, top_k=0, top_p=1.0))
    assert hot != greedy
    with pytest.raises(ValueError, match="top_p"):
        next(playground.stream("The ", top_p=0.0))

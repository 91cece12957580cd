"""The ONNX graphs the browser runs compute what the PyTorch models compute (ONNX Runtime, Python).

The same graphs run in Chromium with onnxruntime-web (tests/browser/test_browser_models.py).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from attention_course.data import fortunes
from attention_course.models import gpt, seq2seq
from attention_course.training import gpt_training
from attention_course.views import onnx_export
from attention_course.data.dates import Vocabulary
from attention_course.maths.numerics import assert_agree, rounding_tolerance
from attention_course.training.seq2seq_training import train_model

ort = pytest.importorskip("onnxruntime")
TEXT = "To be, or not to be, that is the question: whether 'tis nobler in the mind to suffer\n"


def session(path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def small_gpt():
    """The chapter's GPT size, briefly trained so its predictions are not uniform."""
    torch.manual_seed(0)
    tok = fortunes.CharTokenizer(TEXT)
    model = gpt.GPT(gpt.GPTConfig(vocab_size=tok.vocab_size))
    data = tok.encode(TEXT * 20)
    gpt_training.train_gpt(model, data, data, steps=30, batch_size=4, warmup=5, eval_every=100,
                           eval_windows=2, progress=False, use_cache=False)
    return model.eval(), tok


@pytest.fixture(scope="module")
def gpt_file(small_gpt, tmp_path_factory):
    model, tok = small_gpt
    return onnx_export.export_gpt(model, tok, tmp_path_factory.mktemp("static"))


@pytest.mark.numerics
def test_gpt_graph_equals_pytorch(small_gpt, gpt_file):
    model, tok = small_gpt
    s = session(gpt_file["file"])
    d_ff = 4 * model.config.d_model  # the longest sum behind a logit: the MLP's second layer
    for n in (1, 2, 17, model.config.block_size):
        ids = torch.randint(0, tok.vocab_size, (1, n), generator=torch.Generator().manual_seed(n))
        logits, attention = s.run(None, {"ids": ids.numpy()})
        ref_logits, ref_attention = onnx_export.window_step(model, ids)
        assert logits.shape == (1, tok.vocab_size) and attention.shape == (4, 4, n)
        assert_agree(logits, ref_logits, reduction=d_ff, what=f"ONNX vs PyTorch logits, n = {n}")
        assert_agree(attention, ref_attention, reduction=d_ff, what=f"ONNX vs PyTorch attention, n = {n}")
        assert np.abs(attention.sum(-1) - 1).max() <= rounding_tolerance(attention.dtype, n)  # n weights in [0, 1]


@pytest.mark.numerics
def test_gpt_greedy_loop_equals_generate(small_gpt, gpt_file):
    """The browser's loop (last block_size ids in, argmax out) writes what gpt.generate writes,
    across the point where the window is full and starts to slide."""
    model, tok = small_gpt
    s = session(gpt_file["file"])
    prompt = tok.encode("To be")
    ids = prompt.tolist()
    for _ in range(80):
        window = np.array([ids[-model.config.block_size:]], dtype=np.int64)
        logits, _ = s.run(None, {"ids": window})
        ids.append(int(np.argmax(logits[0])))
    reference = gpt.generate(model, prompt[None], 80, temperature=0.0)[0].tolist()
    assert tok.decode(ids) == tok.decode(reference)


def test_gpt_file_rebuilds_the_model(small_gpt, gpt_file):
    model, tok = small_gpt
    rebuilt, chars = onnx_export.load_gpt(gpt_file["file"])
    assert chars == tok.chars
    for key, value in model.state_dict().items():
        assert torch.equal(rebuilt.state_dict()[key], value), key
    assert gpt_file["path"].startswith("models/gpt-") and gpt_file["bytes"] < 5_000_000


@pytest.fixture(scope="module")
def rnnsearch():
    """RNNsearch of the course's sizes (untrained weights: the graphs' arithmetic is the point)."""
    sv, tv = Vocabulary("0123456789 .,;abcdeJMnrtäz年月日"), Vocabulary("0123456789-;")
    model = seq2seq.build_model(seq2seq.course_config(attention=True), len(sv), len(tv))
    with torch.no_grad():  # sharpen the output layer so greedy decoding is not a string of ties
        model.out.weight.mul_(8)

    class Data:
        source_vocab, target_vocab = sv, tv

    return model.eval(), Data


@pytest.fixture(scope="module")
def rnnsearch_files(rnnsearch, tmp_path_factory):
    model, data = rnnsearch
    return onnx_export.export_rnnsearch(model, data, tmp_path_factory.mktemp("static"))


def onnx_greedy(encoder, decoder, ids, bos, eos, max_len=80):
    """The browser's decoding loop, in Python: encoder once, then one decoder step per symbol."""
    H, keys, s = encoder.run(None, {"src": np.array([ids], dtype=np.int64),
                                    "lengths": np.array([len(ids)], dtype=np.int64)})
    y, out, alphas = bos, [], []
    for _ in range(max_len):
        logits, s, alpha = decoder.run(None, {"y_prev": np.array([y], dtype=np.int64), "s_prev": s,
                                              "H": H, "keys": keys})
        y = int(np.argmax(logits[0]))
        out.append(y)
        alphas.append(alpha[0])
        if y == eos:
            break
    return out, np.stack(alphas)


@pytest.mark.numerics
def test_rnnsearch_graphs_equal_pytorch(rnnsearch, rnnsearch_files):
    model, data = rnnsearch
    encoder, decoder = (session(rnnsearch_files[k]["file"]) for k in ("encoder", "decoder"))
    c = model.config
    # the longest sums: the keys U h_j over the 2 d_h annotation features; a decoder step's deep output
    # over [y; s; c], d_y + d_s + 2 d_h features
    encoder_sum, decoder_sum = 2 * c.enc_hidden, c.embed + c.dec_hidden + 2 * c.enc_hidden
    for text in ("1", "17. März 1987", "2024年3月1日; 3.1.24, 1 Jan 1950"):
        ids = data.source_vocab.encode(text, eos=False)
        src, lengths = torch.tensor([ids]), torch.tensor([len(ids)])
        H, keys, s = encoder.run(None, {"src": src.numpy(), "lengths": lengths.numpy()})
        with torch.no_grad():
            state = model.start(src, lengths)
        for name, got, want in (("H", H, state["H"]), ("keys", keys, state["keys"]), ("s", s, state["s"])):
            assert_agree(got, want, reduction=encoder_sum, what=f"ONNX vs PyTorch encoder {name}, {text!r}")
        y = data.target_vocab.BOS
        for _ in range(5):  # a few steps, each from the same state in both
            logits, s, alpha = decoder.run(None, {"y_prev": np.array([y]), "s_prev": s, "H": H, "keys": keys})
            with torch.no_grad():
                ref_logits, state, ref_alpha = model.step(model.embed(torch.tensor([y])), state)
            for name, got, want in (("logits", logits, ref_logits), ("s", s, state["s"]), ("alpha", alpha, ref_alpha)):
                assert_agree(got, want, reduction=decoder_sum, what=f"ONNX vs PyTorch decoder {name}, {text!r}")
            y = int(np.argmax(logits[0]))


@pytest.mark.numerics
def test_rnnsearch_greedy_loop_equals_pytorch(rnnsearch, rnnsearch_files):
    model, data = rnnsearch
    c = model.config
    encoder, decoder = (session(rnnsearch_files[k]["file"]) for k in ("encoder", "decoder"))
    tv = data.target_vocab
    for text in ("1. März 2024", "31.12.99; 2024年3月1日"):
        ids = data.source_vocab.encode(text, eos=False)
        out, alphas = onnx_greedy(encoder, decoder, ids, tv.BOS, tv.EOS)
        ref, ref_alpha = model.greedy(torch.tensor([ids]), torch.tensor([len(ids)]), bos=tv.BOS, eos=tv.EOS)
        assert out == ref[0].tolist()[:len(out)]
        assert_agree(alphas, ref_alpha[0, :len(out)], reduction=c.embed + c.dec_hidden + 2 * c.enc_hidden,
                     what=f"ONNX vs PyTorch greedy attention, {text!r}")


def test_rnnsearch_files_rebuild_the_model(rnnsearch, rnnsearch_files):
    model, data = rnnsearch
    rebuilt, source_alphabet, target_alphabet = onnx_export.load_rnnsearch(
        rnnsearch_files["encoder"]["file"], rnnsearch_files["decoder"]["file"])
    assert (source_alphabet, target_alphabet) == (data.source_vocab.alphabet, data.target_vocab.alphabet)
    assert rebuilt.config == model.config
    for key, value in model.state_dict().items():
        assert torch.equal(rebuilt.state_dict()[key], value), key
    assert sum(f["bytes"] for f in rnnsearch_files.values()) < 2_000_000


def test_export_rejects_a_model_without_attention(rnnsearch, tmp_path):
    _, data = rnnsearch
    plain = seq2seq.build_model(seq2seq.course_config(attention=False), len(data.source_vocab),
                                len(data.target_vocab))
    with pytest.raises(ValueError, match="no attention"):
        onnx_export.export_rnnsearch(plain, data, tmp_path)


def test_same_weights_same_file(small_gpt, gpt_file, tmp_path):
    """Content-addressed names: exporting again gives the same file, so a cached page stays valid."""
    model, tok = small_gpt
    again = onnx_export.export_gpt(model, tok, tmp_path)
    assert again["path"] == gpt_file["path"]


def test_gpt_explorer_data_and_kernel_answers(small_gpt, tmp_path):
    """The widget names the exported file and shows a sample; with a kernel, Python streams the
    same greedy text the browser's loop writes."""
    from attention_course.views.gpt_widget import GPTPlayground

    model, tok = small_gpt
    playground = GPTPlayground(model, tok)
    explorer = playground.widget("To be", temperature=0.0, length=30, static=tmp_path)
    data = explorer.data
    assert explorer.kind == "gpt" and (tmp_path / data["model"]["path"]).is_file()
    assert data["sample"]["attention"]["shape"] == [4, 4, len(data["sample"]["context"])]
    greedy = tok.decode(gpt.generate(model, tok.encode("To be")[None], 30, temperature=0.0)[0, 5:])
    assert data["sample"]["text"] == greedy
    answers = []  # with a kernel, each answer is new data (the kernel's one channel to the page)
    explorer.observe(lambda change: answers.append(change["new"]["answer"]), names="data")
    playground._answer(explorer, {"type": "generate", "request": 7, "prompt": "To be", "temperature": 0,
                                  "length": 30})
    assert [a["done"] for a in answers] == [False] * 30 + [True]
    assert [a["text"] for a in answers[:-1]] == [greedy[:k] for k in range(1, 31)]
    assert answers[-1]["text"] == greedy and all(a["request"] == 7 for a in answers)
    assert "onnx" in explorer._esm and "export default" in explorer._esm
    assert playground.widget("To be", length=10, static=None).data["model"] is None


# ---------------------------------------------------------------------------------------------
# Chapter 7's Transformer: encoder graph + decoder graph over the whole prefix (onnx_export docstring)


@pytest.fixture(scope="module")
def date_data():
    from attention_course.data import dates

    return dates.make_date_data(n_train=300, n_test=8, seed=5, max_dates=3)


@pytest.fixture(scope="module", params=["features", "plain"])
def date_transformer(request, date_data):
    """Chapter 7's sizes with its date features (one decoder block), and the paper's input (two decoder
    blocks), each trained for 60 steps: enough to write dates with separators and stop, not enough to be right."""
    from attention_course.models import date_transformer as dt
    from attention_course.training import date_training

    changes = {} if request.param == "features" else dict(segments=False, segment_positions=False, dec_layers=2)
    config = dt.course_transformer_config(steps=60, warmup=20, checkpoints=(), **changes)
    model = date_training.train_transformer(date_data, config, progress=False, use_cache=False).model
    return model.eval()


@pytest.fixture(scope="module")
def transformer_files(date_transformer, date_data, tmp_path_factory):
    return onnx_export.export_date_transformer(date_transformer, date_data, tmp_path_factory.mktemp("static"))


def transformer_greedy(encoder, decoder, ids, bos, eos, max_len=80):
    """The browser's decoding loop (cross_attention.js), in Python: encoder once, then the decoder graph
    on the whole prefix at every step."""
    lengths = np.array([len(ids)], dtype=np.int64)
    (memory,) = encoder.run(None, {"src": np.array([ids], dtype=np.int64), "lengths": lengths})
    out, cross = [], []
    for _ in range(max_len):
        prefix = np.array([[bos] + out], dtype=np.int64)
        logits, weights = decoder.run(None, {"prefix": prefix, "memory": memory, "lengths": lengths})
        out.append(int(np.argmax(logits[0])))
        cross.append(weights[0])  # (layers, h, T)
        if out[-1] == eos:
            break
    return out, np.stack(cross, 2)  # (layers, h, L, T)


@torch.no_grad()
def cached_last_step(model, prefix, memory, lengths):
    """DateTransformer.decode with a KVCache, fed ``prefix`` one position at a time (as greedy does):
    the last position's logits ``(B, V)`` and cross-attention ``(B, layers, h, T)``."""
    from attention_course.maths.multi_head import KVCache
    from attention_course.maths.self_attention import padding_mask

    cache, mask = KVCache(), padding_mask(lengths, memory.shape[1])
    for t in range(prefix.shape[1]):
        logits, _, cross = model.decode(prefix[:, :t + 1], memory, mask, cache=cache)  # (B, 1, V), per layer (B, h, 1, T)
    return logits[:, -1], torch.stack([w[:, :, -1] for w in cross], 1)


def test_graph_segment_ids_equals_segment_ids():
    from attention_course.models.date_transformer import segment_ids

    generator = torch.Generator().manual_seed(0)
    for n in (1, 2, 7, 40):
        ids = torch.randint(0, 6, (3, n), generator=generator)  # separator 5: about one symbol in six
        ids[0, 0] = 5  # a list that starts with a separator
        for got, want in zip(onnx_export.graph_segment_ids(ids, 5), segment_ids(ids, 5)):
            assert torch.equal(got, want), (ids, got, want)
    with pytest.raises(ValueError, match=r"\(B, n\)"):
        onnx_export.graph_segment_ids(torch.zeros(4, dtype=torch.long), 5)


@pytest.mark.numerics
def test_transformer_graphs_equal_pytorch(date_transformer, date_data, transformer_files):
    """Each graph on its own, from the same inputs as PyTorch: a padded batch of two sources, and
    prefixes of several lengths (with separators, where the date features count a new date)."""
    model = date_transformer
    encoder, decoder = (session(transformer_files[k]["file"]) for k in ("encoder", "decoder"))
    sv, tv = date_data.source_vocab, date_data.target_vocab
    reduction = max(model.config.d_model, model.config.d_ff)  # the longest sum: the MLP's second layer
    from attention_course.training.seq2seq_training import encode_batch

    for pairs in (date_data.test[:1], date_data.test[1:3]):
        src, lengths, _, _ = encode_batch(pairs, sv, tv)  # (B, T) padded, (B,)
        (memory,) = encoder.run(None, {"src": src.numpy(), "lengths": lengths.numpy()})
        with torch.no_grad():
            ref_memory, _, _ = model.encode(src, lengths)
        real = (torch.arange(src.shape[1])[None] < lengths[:, None]).numpy()  # padding rows are never read
        assert_agree(memory[real], ref_memory.numpy()[real], reduction=reduction, what=f"memory, {len(pairs)} sources")
        for target in ("2", "2003-04-0", "2003-04-03;19", "2003-04-03;1987-01-01;2"):
            prefix = torch.tensor([[tv.BOS] + tv.encode(target, eos=False)] * len(pairs))  # (B, n)
            logits, cross = decoder.run(None, {"prefix": prefix.numpy(), "memory": memory, "lengths": lengths.numpy()})
            ref_logits, ref_cross = onnx_export.transformer_step(model, prefix, ref_memory, lengths)
            assert cross.shape == (len(pairs), model.config.dec_layers, model.config.num_heads, src.shape[1])
            assert_agree(logits, ref_logits, reduction=reduction, what=f"logits after {target!r}")
            assert_agree(cross, ref_cross, reduction=reduction, what=f"cross-attention after {target!r}")
            assert float(np.abs(cross[0, ..., int(lengths[0]):]).max(initial=0)) == 0.0  # padding gets no weight
            # the stateless graph computes what the KV-cached decoder (greedy's one path) computes step by step
            cached_logits, cached_cross = cached_last_step(model, prefix, ref_memory, lengths)
            assert_agree(logits, cached_logits, reduction=reduction, what=f"graph vs cached decoding after {target!r}")
            assert_agree(cross, cached_cross, reduction=reduction, what=f"graph vs cached cross-attention after {target!r}")


@pytest.mark.numerics
def test_transformer_greedy_loop_equals_translate(date_transformer, date_data, transformer_files):
    """The browser's loop writes what date_training.translate writes (KV-cached greedy decoding),
    with the same cross-attention maps, on held-out inputs."""
    from attention_course.training import date_training

    model = date_transformer
    encoder, decoder = (session(transformer_files[k]["file"]) for k in ("encoder", "decoder"))
    sv, tv = date_data.source_vocab, date_data.target_vocab
    sources = [s for s, _ in date_data.test[:6]] + ["3 March 2021; 12/05/1999"]
    texts, maps = date_training.translate(model, sources, date_data)
    stopped = []
    for source, text, ref in zip(sources, texts, maps):
        out, cross = transformer_greedy(encoder, decoder, sv.encode(source, eos=False), tv.BOS, tv.EOS)
        assert tv.decode(out) == text, source
        stopped.append(out[-1] == tv.EOS and ";" in text)
        assert cross.shape == ref.shape
        assert_agree(cross, ref, reduction=max(model.config.d_model, model.config.d_ff),
                     what=f"greedy cross-attention, {source!r}")
    assert any(stopped), texts  # the loop wrote separators (a new date for the features) and stopped


def test_transformer_files_rebuild_the_model(date_transformer, date_data, transformer_files):
    model = date_transformer
    rebuilt, source_alphabet, target_alphabet = onnx_export.load_date_transformer(
        transformer_files["encoder"]["file"], transformer_files["decoder"]["file"])
    assert (source_alphabet, target_alphabet) == (date_data.source_vocab.alphabet, date_data.target_vocab.alphabet)
    assert rebuilt.config == model.config and rebuilt.separators == model.separators
    assert rebuilt.state_dict().keys() == model.state_dict().keys()
    for key, value in model.state_dict().items():
        assert torch.equal(rebuilt.state_dict()[key], value), key
    assert all(f["path"].startswith(f"models/transformer-{g}-") for g, f in transformer_files.items())
    assert sum(f["bytes"] for f in transformer_files.values()) < 2_000_000


def test_load_date_transformer_rejects_other_files(rnnsearch_files):
    with pytest.raises(ValueError, match="not the two files"):
        onnx_export.load_date_transformer(rnnsearch_files["encoder"]["file"], rnnsearch_files["decoder"]["file"])


def test_export_transformer_rejects_other_data(date_transformer, date_data, tmp_path):
    class Other:
        source_vocab, target_vocab = Vocabulary("0123456789 ;"), date_data.target_vocab

    with pytest.raises(ValueError, match="vocabularies"):
        onnx_export.export_date_transformer(date_transformer, Other, tmp_path)


def test_source_problem_names_each_refusal():
    from attention_course.views.transformer_viewer import source_problem

    alphabet = "0123456789 ./;March"
    assert source_problem("  3.3.21; 3 March  ", alphabet, 20) is None
    assert source_problem(" \t ", alphabet, 20) == "The input is empty: type one or more dates."
    assert source_problem("3 Marx 2021€xy", alphabet, 20) == (  # each unknown character once, in order
        'The models never saw "x", "€", "y" in training, so they cannot read them: keep to the characters of '
        "the held-out inputs.")
    assert "cannot read it:" in source_problem("3 Mary", alphabet, 20)
    assert source_problem("1/1/1; " * 4, alphabet, 20) == "The input has 27 characters; the Transformer reads at most 20."


def test_cross_attention_explorer_names_both_models(date_transformer, date_data, tmp_path):
    """The widget exports the Transformer and RNNsearch's last checkpoint for the browser (RNNsearch under
    Chapter 2's name, so the book keeps one copy); with a kernel, Python refuses what the browser refuses."""
    from attention_course.views.transformer_viewer import CrossAttentionViewer, source_problem

    search = train_model(date_data, seq2seq.ModelConfig(embed=8, enc_hidden=8, dec_hidden=8, align=4, steps=2,
                                                        checkpoints=(0,)), progress=False, use_cache=False)
    viewer = CrossAttentionViewer(date_transformer, search, date_data, [s for s, _ in date_data.test[:2]])
    explorer = viewer.widget(static=tmp_path)
    data = explorer.data
    assert set(data["models"]) == {"transformer", "rnnsearch"}
    for name, graphs in data["models"].items():
        for graph, f in graphs.items():
            assert (tmp_path / f["path"]).is_file() and f["path"].startswith(f"models/{name}-") and graph in f["path"]
    assert data["models"]["rnnsearch"]["encoder"]["path"].startswith(f"models/rnnsearch-step{viewer.rnn.steps[-1]}-")
    assert (data["source_alphabet"], data["max_source"]) == (date_data.source_vocab.alphabet, date_transformer.config.max_len)
    assert "onnx" in explorer._esm and "export default" in explorer._esm
    assert viewer.widget(static=None).data["models"] == {}
    bad = "3 March 2021 €"
    with pytest.raises(ValueError):
        explorer._dispatch(explorer, {"type": "source", "request": 3, "text": bad}, None)  # a kernel request
    assert explorer.data["answer"] == {"type": "source", "request": 3,
                                       "error": source_problem(bad, data["source_alphabet"], data["max_source"])}
    explorer._dispatch(explorer, {"type": "source", "text": date_data.test[3][0]}, None)
    assert explorer.data["examples"][-1]["computed"] == "kernel" and explorer.data["models"] == data["models"]

"""The ONNX graphs the browser runs compute what the PyTorch models compute (ONNX Runtime, Python).

The same graphs run in Chromium with onnxruntime-web (tests/browser/test_browser_models.py).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from attention_course import gpt, onnx_export, seq2seq
from attention_course.dates import Vocabulary
from attention_course.numerics import assert_agree, rounding_tolerance

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
    tok = gpt.CharTokenizer(TEXT)
    model = gpt.GPT(gpt.GPTConfig(vocab_size=tok.vocab_size))
    data = tok.encode(TEXT * 20)
    gpt.train_gpt(model, data, data, steps=30, batch_size=4, warmup=5, eval_every=100,
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
    from attention_course.gpt_widget import GPTPlayground

    model, tok = small_gpt
    playground = GPTPlayground(model, tok)
    explorer = playground.widget("To be", temperature=0.0, length=30, static=tmp_path)
    data = explorer.data
    assert explorer.kind == "gpt" and (tmp_path / data["model"]["path"]).is_file()
    assert data["sample"]["attention"]["shape"] == [4, 4, len(data["sample"]["context"])]
    greedy = tok.decode(gpt.generate(model, tok.encode("To be")[None], 30, temperature=0.0)[0, 5:])
    assert data["sample"]["text"] == greedy
    sent = []
    explorer.send = sent.append
    playground._answer(explorer, {"type": "generate", "run": 7, "prompt": "To be", "temperature": 0,
                                  "length": 30})
    assert [m["type"] for m in sent] == ["gpt-token"] * 30 + ["gpt-done"]
    assert "".join(m["char"] for m in sent[:-1]) == greedy and all(m["run"] == 7 for m in sent)
    assert "onnx" in explorer._esm and "export default" in explorer._esm
    assert playground.widget("To be", length=10, static=None).data["model"] is None

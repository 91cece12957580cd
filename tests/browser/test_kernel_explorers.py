"""The explorers with a kernel, in Chromium: what the reader types or asks for is computed by Python.

Each explorer renders in a standalone page whose stand-in anywidget model is wired to the real Python
explorer (conftest.KernelPage): the page's requests (core.ask) reach the explorer's handlers, and the
data Python assigns comes back as ``change:data``, the kernel's one channel to the page (core.onData).
So the live path of core.ownInput / Explorer.accept_typed (Chapters 4-5 and 7) and of the answers of
Chapters 2 and 6 is tested without Jupyter and without a book build.
"""
from __future__ import annotations

import pytest
import torch

from conftest import KernelPage


def type_text(kernel: KernelPage, label: str, text: str) -> list[dict]:
    box = kernel.root.get_by_label(label, exact=True)
    box.fill(text)
    box.press("Enter")
    return kernel.serve()


def test_head_viewer_adds_a_typed_sentence_computed_by_python(browser):
    from attention_course.views.head_viewer import HeadViewer

    viewer = HeadViewer(["The ball is blue.", "It rains."], source="it")
    kernel = KernelPage(browser, viewer.widget("The ball is blue.", layer=1, head=2))
    box = kernel.root.get_by_label("your own sentence", exact=True)
    assert not box.is_disabled()
    # a preset sentence is chosen at once, without asking Python
    assert type_text(kernel, "your own sentence", "It rains.") == []
    assert kernel.result()["sentence_text"] == "It rains."
    (request,) = type_text(kernel, "your own sentence", "Cats sleep a lot.")
    assert request["type"] == "sentence" and request["request"] >= 1
    result = kernel.result()
    assert result["sentence_text"] == "Cats sleep a lot." and result["sentence"] == 2
    options = kernel.root.get_by_label("sentence", exact=True).locator("option").all_inner_texts()
    assert options == ["The ball is blue.", "It rains.", "Cats sleep a lot."]
    assert kernel.root.locator(".ac-note").inner_text() == ""
    assert not kernel.errors, kernel.errors
    kernel.page.close()


@pytest.fixture(scope="module")
def date_models(tmp_path_factory):
    import os

    from attention_course.data import dates
    from attention_course.models import date_transformer as dt
    from attention_course.models import seq2seq
    from attention_course.training import date_training
    from attention_course.training.seq2seq_training import train_model

    os.environ["ATTENTION_COURSE_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    data = dates.make_date_data(n_train=40, n_test=6, seed=3, max_dates=2)
    config = dt.TransformerConfig(d_model=16, num_heads=2, d_ff=32, max_len=64, batch_size=8, steps=3, warmup=2)
    transformer = date_training.train_transformer(data, config, progress=False).model
    search = train_model(data, seq2seq.ModelConfig(embed=8, enc_hidden=8, dec_hidden=8, align=4, steps=2,
                                                   checkpoints=(0,)), progress=False)
    return data, transformer, search


def test_cross_attention_typed_dates_are_translated_by_python(browser, date_models):
    from attention_course.views.transformer_viewer import CrossAttentionViewer, source_problem

    data, transformer, search = date_models
    viewer = CrossAttentionViewer(transformer, search, data, [s for s, _ in data.test[:2]])
    kernel = KernelPage(browser, viewer.widget(static=None))
    (request,) = type_text(kernel, "your own dates", "1. März 2024")
    assert request["type"] == "source"
    got, want = kernel.result(), viewer.maps("1. März 2024")
    assert (got["source"], got["computed"]) == ("1. März 2024", "kernel")
    assert got["transformer"]["output"] == want["transformer"]["output"]
    assert got["rnnsearch"]["rows"] == want["rnnsearch"]["rows"]
    bad = "3 March 2021 \u20ac"  # refused in the page with Python's words, before asking Python
    assert type_text(kernel, "your own dates", bad) == []
    assert kernel.result()["error"] == source_problem(bad, data.source_vocab.alphabet, transformer.config.max_len)
    assert not kernel.errors, kernel.errors
    kernel.page.close()


def test_alignment_typed_dates_are_translated_by_python(browser, date_models):
    from attention_course.views.alignment_viewer import AlignmentViewer

    data, _, search = date_models
    viewer = AlignmentViewer(search, data, [data.test[0][0]])
    kernel = KernelPage(browser, viewer.widget(static=None))
    (request,) = type_text(kernel, "or type dates", "3/1/24")
    assert (request["type"], request["source"]) == ("translate", "3/1/24")
    output, _, rows = viewer.align("3/1/24")
    got = kernel.result()
    assert (got["source"], got["output"], got["rows"], got["computed"]) == ("3/1/24", output, rows, "kernel")
    assert not kernel.errors, kernel.errors
    kernel.page.close()


def test_gpt_writes_in_python_what_python_writes(browser):
    from attention_course.data.fortunes import CharTokenizer
    from attention_course.models.gpt import GPT, GPTConfig
    from attention_course.views.gpt_widget import GPTPlayground

    torch.manual_seed(0)
    tok = CharTokenizer("To be or not to be, that is the question.\n")
    model = GPT(GPTConfig(vocab_size=len(tok.chars), block_size=16, n_layer=2, num_heads=2, d_model=16))
    playground = GPTPlayground(model, tok)
    kernel = KernelPage(browser, playground.widget("To be", temperature=0.0, length=20, static=None))
    kernel.root.get_by_role("button", name="Generate").click()
    (request,) = kernel.serve()
    assert request["type"] == "generate" and request["temperature"] == 0
    greedy = "".join(char for char, _, _ in playground.stream("To be", 0.0, 20))
    got = kernel.result()
    assert (got["text"], got["source"], got["done"], got["written"]) == (greedy, "kernel", True, 20)
    assert kernel.root.locator(".ac-readout").inner_text() == "Wrote 20 characters in Python."
    assert not kernel.errors, kernel.errors
    kernel.page.close()

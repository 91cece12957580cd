"""The small models run in Chromium, offline, and write what PyTorch writes (issue 12).

Chapter 6's GPT, Chapter 2's RNNsearch and Chapter 7's Transformer (beside RNNsearch) run in the
built book with onnxruntime-web. The PyTorch
reference is rebuilt from the very ONNX files the page loads (attention_course.views.onnx_export.load_*),
so the comparison is browser arithmetic against PyTorch arithmetic on the same weights. Every
control is worked from the keyboard, and each must change what the explorer draws.

Greedy decoding is compared token for token, exactly. The two sides round differently (WebAssembly
kernels against PyTorch's), so where the two best logits of a step lie within float32 rounding of
each other (a near-tie: :func:`attention_course.maths.numerics.rounding_tolerance` times the largest logit)
either token is a correct greedy choice, and the texts part there. Then the browser's text is checked
step by step under PyTorch with teacher forcing: every token it wrote must be PyTorch's best, or tied
with it within rounding. So the tests do not depend on which of two tied tokens a kernel picks, and
still fail on any token that is clearly not the best.
"""
from __future__ import annotations

import json
import re

import pytest

from conftest import CHINESE, HTML, ROOT, saved_states

CH2, CH6, CH7 = "book/02_bahdanau_attention.html", "book/06_attention_and_llms.html", "book/07_transformer_on_dates.html"
GPT_PROMPTS = ("To be or not to be", "The cat ", "Life is ")
N_TRANSLATIONS = 50


def served(page_path: str, pattern: str) -> str:
    """Path (under _build/html/_static/) of a model file the page's saved widget state names."""
    html = (HTML / page_path).read_text(encoding="utf-8")
    found = sorted(set(re.findall(pattern, html)))
    assert found, f"{page_path} names no file matching {pattern}"
    return found


STRINGS = json.loads((ROOT / "attention_course" / "views" / "static" / "strings.json").read_text(encoding="utf-8"))


def say(root, english: str) -> str:
    """A control's label as the explorer ``root`` shows it: ``english`` in its language (strings.json)."""
    kind, lang = root.get_attribute("data-kind"), root.get_attribute("lang") or "en"
    table = STRINGS[kind]
    key = next(k for k, text in table["en"].items() if text == english)
    return table["zh-CN" if lang.startswith("zh") else "en"][key]


def open_explorer(page, book_url, page_path, kind):
    """The page's one explorer of ``kind`` (its data-kind: the same in both editions, whose titles differ)."""
    page.goto(f"{book_url}/{page_path}", wait_until="load")
    root = page.locator(f'.ac-explorer[data-kind="{kind}"]')
    root.first.wait_for(timeout=30000)
    assert root.count() == 1, f"{page_path}: {root.count()} explorers of kind {kind}"
    root.scroll_into_view_if_needed()
    return root


def result(root) -> dict:
    return json.loads(root.get_attribute("data-result") or "{}")


def drawing(root) -> str:
    return root.locator(".ac-figure").inner_html()


def set_range(root, label, presses):
    """Move a labelled slider from the keyboard: Home, then ArrowRight ``presses`` times."""
    slider = root.get_by_label(say(root, label), exact=True)
    slider.focus()
    slider.press("Home")
    for _ in range(presses):
        slider.press("ArrowRight")


def check_clean(page):
    assert not page.blocked, f"requests left localhost: {page.blocked[:3]}"
    assert not page.console_errors, page.console_errors


def check_accessible(root):
    """Every control has an accessible name and can take the keyboard focus."""
    names = root.evaluate("""r => Array.from(r.querySelectorAll('input, select, button')).map(e => ({
        tag: e.tagName, name: (e.labels && e.labels.length ? e.labels[0].textContent : '') ||
              e.getAttribute('aria-label') || (e.tagName === 'BUTTON' ? e.textContent : ''),
        focusable: e.tabIndex >= 0}))""")
    assert names, "the explorer has no controls"
    for control in names:
        assert control["name"].strip() and control["focusable"], control


def near_tie_steps(step_logits, written, reduction: int) -> list[int]:
    """Steps at which ``written`` took a token tied with the best one; AssertionError if one is clearly worse.

    Args:
        step_logits: ``(n_steps, V)`` PyTorch's logits for each step, given the written prefix.
        written: ``(n_steps,)`` the tokens the browser wrote.
        reduction: width of the model's last projection (the tolerance grows with its square root).
    """
    import torch

    from attention_course.maths.numerics import rounding_tolerance

    ties = []
    for step, (logits, token) in enumerate(zip(step_logits, written)):
        best = int(logits.argmax())
        if token == best:
            continue
        gap = float(logits[best] - logits[token])
        tolerance = rounding_tolerance(torch.float32, reduction) * float(logits.abs().max())
        assert gap <= tolerance, f"step {step}: token {token} is {gap:.2e} below the best {best} (tolerance {tolerance:.1e})"
        ties.append(step)
    return ties


def generate(root, timeout=120000):
    root.get_by_role("button", name=say(root, "Generate")).press("Enter")  # keyboard, like a reader
    root.page.wait_for_function(
        "r => { const d = JSON.parse(r.dataset.result || '{}'); return d.done && d.source === 'browser'; }",
        arg=root.element_handle(), timeout=timeout)
    return result(root)


@pytest.fixture(scope="module")
def gpt_reference():
    from attention_course.views import onnx_export

    (path,) = served(CH6, r"models/gpt-[0-9a-f]{12}\.onnx")
    return onnx_export.load_gpt(HTML / "_static" / path)


@pytest.mark.numerics
def test_gpt_greedy_equals_pytorch(offline_page, book_url, gpt_reference):
    import torch

    from attention_course.models import gpt

    model, chars = gpt_reference
    index = {c: i for i, c in enumerate(chars)}
    page = offline_page
    root = open_explorer(page, book_url, CH6, "gpt")
    set_range(root, "temperature", 0)
    set_range(root, "length (characters)", 9)  # 10 + 9 x 10 = 100
    for prompt in GPT_PROMPTS:
        root.get_by_label(say(root, "prompt"), exact=True).fill(prompt)
        got = generate(root)
        ids = torch.tensor([[index[c] for c in prompt]])
        want = "".join(chars[i] for i in gpt.generate(model, ids, 100, temperature=0.0)[0, len(prompt):])
        assert got["written"] == 100 and len(got["text"]) == 100, got
        if got["text"] != want:  # parted at a near-tie? every browser token must be PyTorch's best or tied with it
            text = [index[c] for c in prompt + got["text"]]
            block = model.config.block_size
            with torch.no_grad():  # the logits PyTorch gives each step, on the browser's own prefix
                step_logits = [model(torch.tensor([text[max(0, k - block):k]]))[0][0, -1]
                               for k in range(len(prompt), len(text))]
            ties = near_tie_steps(step_logits, text[len(prompt):], model.config.d_model)
            assert ties, (prompt, got["text"], want)
            print(f"{prompt!r}: parted from PyTorch's text at a near-tie (steps {ties}), every token checked")
    check_clean(page)


@pytest.mark.parametrize("edition", ["", CHINESE])
def test_gpt_controls_change_the_drawing(offline_page, book_url, edition):
    page = offline_page
    root = open_explorer(page, book_url, edition + CH6, "gpt")
    check_accessible(root)
    before = drawing(root)
    set_range(root, "layer shown", 0)  # layer 0 instead of the last layer
    assert drawing(root) != before, "the layer slider did not change the heatmap"

    root.get_by_label(say(root, "prompt"), exact=True).fill("Once upon a time")
    set_range(root, "length (characters)", 1)  # 20 characters
    set_range(root, "temperature", 0)
    before = drawing(root)
    greedy = generate(root)
    assert drawing(root) != before and greedy["text"] and greedy["written"] == 20
    assert root.locator("pre").inner_text().startswith("Once upon a time" + greedy["text"][:5])

    set_range(root, "length (characters)", 3)  # 40 characters
    assert len(generate(root)["text"]) == 40

    set_range(root, "temperature", 20)  # 2.0: sampling far from the greedy text
    set_range(root, "length (characters)", 1)
    hot = generate(root)
    assert hot["text"] != greedy["text"], "the temperature did not change the text"
    set_range(root, "top-k", 1)  # only the most probable character is left: greedy, whatever the temperature
    assert generate(root)["text"] == greedy["text"], "top-k 1 did not make the sampling greedy"
    set_range(root, "top-k", 0)
    set_range(root, "temperature", 10)  # 1.0
    set_range(root, "top-p", 0)  # 0.05: the most probable character alone carries that much at every step
    assert generate(root)["text"] == greedy["text"], "top-p 0.05 did not make the sampling greedy"
    set_range(root, "top-p", 19)  # back to 1 (all)

    root.get_by_label(say(root, "prompt"), exact=True).press("Enter")  # Enter in the prompt box generates too
    root.page.wait_for_function("r => JSON.parse(r.dataset.result).done", arg=root.element_handle(), timeout=60000)
    check_clean(page)


@pytest.fixture(scope="module")
def rnnsearch_reference():
    from attention_course.data import dates
    from attention_course.views import onnx_export
    from attention_course.models import seq2seq
    from attention_course.training import seq2seq_training

    steps = {}
    for path in served(CH2, r"models/rnnsearch-step\d+-(?:encoder|decoder)-[0-9a-f]{12}\.onnx"):
        step, graph = re.search(r"step(\d+)-(\w+)-", path).groups()
        steps.setdefault(int(step), {})[graph] = HTML / "_static" / path
    last = steps[max(steps)]
    model, _, _ = onnx_export.load_rnnsearch(last["encoder"], last["decoder"])
    data = dates.make_date_data(**seq2seq.COURSE_DATA)
    sources = [s for s, _ in data.test[:N_TRANSLATIONS]]
    translations, _ = seq2seq_training.translate(model, sources, data)
    return sources, translations, max(steps), model, data


def translate_here(root, text):
    box = root.get_by_label(say(root, "or type dates"), exact=True)
    box.fill(text)
    box.press("Enter")
    root.page.wait_for_function(
        "([r, s]) => { const d = JSON.parse(r.dataset.result || '{}'); "
        "return d.source === s && (d.computed === 'browser' || d.error); }",
        arg=[root.element_handle(), text], timeout=120000)
    return result(root)


@pytest.mark.numerics
def test_rnnsearch_greedy_equals_pytorch(offline_page, book_url, rnnsearch_reference):
    import torch

    sources, translations, last, model, data = rnnsearch_reference
    page = offline_page
    root = open_explorer(page, book_url, CH2, "alignment")
    assert result(root)["step"] == last
    wrong = []
    for source, want in zip(sources, translations):
        got = translate_here(root, source)
        assert "error" not in got, got
        if got["output"] != want:  # parted at a near-tie? check each of the browser's characters under PyTorch
            sv, tv = data.source_vocab, data.target_vocab
            written = tv.encode(got["output"])  # the characters and EOS
            src = torch.tensor([sv.encode(source, eos=False)])
            with torch.no_grad():
                logits, _ = model(src, torch.tensor([src.shape[1]]), torch.tensor([[tv.BOS] + written[:-1]]))
            try:
                ties = near_tie_steps(logits[0], written, model.out.in_features)
            except AssertionError as error:
                ties = [str(error)]
            if not ties or isinstance(ties[0], str):
                wrong.append((source, got["output"], want, ties))
    assert not wrong, f"{len(wrong)} of {len(sources)} differ from PyTorch: {wrong[:3]}"
    check_clean(page)


@pytest.mark.parametrize("edition", ["", CHINESE])
def test_alignment_controls_change_the_drawing(offline_page, book_url, edition, rnnsearch_reference):
    last = rnnsearch_reference[2]  # the last checkpoint's step
    page = offline_page
    root = open_explorer(page, book_url, edition + CH2, "alignment")
    check_accessible(root)
    before = drawing(root)
    example = root.get_by_label(say(root, "example"), exact=True)
    example.focus()
    example.press("ArrowDown")  # keyboard: the next example
    assert result(root)["computed"] == "preset" and drawing(root) != before

    before = drawing(root)
    set_range(root, "training step", 2)
    assert result(root)["step"] == 50 and drawing(root) != before  # the third checkpoint: 0, 25, 50

    before = drawing(root)
    got = translate_here(root, "1. März 2024; 2024年3月1日")
    assert got["computed"] == "browser" and drawing(root) != before and got["step"] != last

    before = drawing(root)
    set_range(root, "training step", 10)  # past the end: the last checkpoint
    # each key press moves one checkpoint and translates there: wait for the last one, not the first that
    # differs from step 50 (under load an intermediate checkpoint's translation used to be read here)
    page.wait_for_function("([r, s]) => JSON.parse(r.dataset.result).step === s "
                           "&& JSON.parse(r.dataset.result).computed === 'browser'",
                           arg=[root.element_handle(), last], timeout=60000)
    assert drawing(root) != before and result(root)["output"] == "2024-03-01;2024-03-01"

    root.get_by_label(say(root, "or type dates"), exact=True).fill("17 de septiembre de 1987")
    root.get_by_role("button", name=say(root, "Translate")).press("Enter")
    page.wait_for_function("r => JSON.parse(r.dataset.result).source === '17 de septiembre de 1987'",
                           arg=root.element_handle(), timeout=60000)
    assert result(root)["output"] == "1987-09-17"
    check_clean(page)


# ---------------------------------------------------------------------------------------------
# Chapter 7: dates typed into the cross-attention explorer, translated in the page by both models


def models_of(files: dict):
    """The PyTorch models rebuilt from the ONNX files an explorer names (``{"transformer": {"encoder":
    path, "decoder": path}, "rnnsearch": {...}}``): ``{name: (model, source_vocab, target_vocab)}``."""
    from attention_course.views import onnx_export
    from attention_course.data.dates import Vocabulary

    out = {}
    for name, load in (("transformer", onnx_export.load_date_transformer), ("rnnsearch", onnx_export.load_rnnsearch)):
        model, source_alphabet, target_alphabet = load(files[name]["encoder"], files[name]["decoder"])
        out[name] = (model, Vocabulary(source_alphabet), Vocabulary(target_alphabet))
    return out


def check_typed_translation(got: dict, source: str, models: dict, max_len: int = 80) -> list[str]:
    """Assert that the cross-attention explorer's result for ``source``, computed in the browser, is what
    PyTorch computes on the same weights (``models``: :func:`models_of`); returns notes to print.

    Both models' outputs are compared symbol for symbol with their greedy decoding (as
    ``CrossAttentionViewer.maps``); where they part at a near-tie, every symbol the browser wrote
    must be PyTorch's best or tied with it (:func:`near_tie_steps`) and the maps are compared with
    teacher forcing on the browser's own output. The maps (float32 in the page) are compared by
    :func:`attention_course.maths.numerics.assert_agree`. The notes also give each map's relative error.
    """
    import numpy as np
    import torch

    from attention_course.maths.numerics import assert_agree

    assert got.get("computed") == "browser" and got.get("source") == source, got
    notes = []
    for name in ("transformer", "rnnsearch"):
        model, sv, tv = models[name]
        ids = sv.encode(source, eos=False)
        src, lengths = torch.tensor([ids]), torch.tensor([len(ids)])
        by_symbol = {tv.symbol(i): i for i in range(len(tv))}
        written = [by_symbol[r] for r in got[name]["rows"]]
        assert got[name]["output"] == tv.decode(written), got[name]
        with torch.no_grad():
            out, maps = model.greedy(src, lengths, max_len=max_len, bos=tv.BOS, eos=tv.EOS)
        want = out[0].tolist()
        want = want[:want.index(tv.EOS) + 1] if tv.EOS in want else want
        if name == "transformer":
            c = model.config
            reduction, last = max(c.d_model, c.d_ff), c.d_model  # the longest sum; the output layer's width
            reference = maps[0, :, :, :len(want)]  # (layers, h, L, T)
        else:
            c = model.config
            reduction = last = c.embed + c.dec_hidden + 2 * c.enc_hidden  # a step's deep output over [y; s; c]
            reference = maps[0, :len(want)]  # (L, T)
        if written != want:  # parted at a near-tie? every written symbol must be PyTorch's best or tied with it
            with torch.no_grad():
                logits, forced = model(src, lengths, torch.tensor([[tv.BOS] + written[:-1]]))
            ties = near_tie_steps(logits[0], written, last)
            assert ties, (name, source, got[name]["output"], tv.decode(want))
            notes.append(f"{name}, {source!r}: parted from PyTorch at a near-tie (steps {ties}), every symbol checked")
            reference = forced[0]
        weights = np.array(got["weights"][name], dtype=np.float32)
        error = assert_agree(weights, reference, reduction=reduction, what=f"{name}'s map of {source!r}, browser vs PyTorch")
        notes.append(f"{name}, {source!r}: {got[name]['output']}, map within float32 rounding, relative error {error:.1e}")
    return notes


def type_dates(root, text, timeout=120000) -> dict:
    """Type ``text`` into the cross-attention explorer's box, press Enter, wait for the page's answer."""
    box = root.get_by_label(say(root, "your own dates"), exact=True)
    box.fill(text)
    box.press("Enter")
    root.page.wait_for_function(
        "([r, s]) => { const d = JSON.parse(r.dataset.result || '{}'); "
        "return d.source === s && (d.computed === 'browser' || d.error); }",
        arg=[root.element_handle(), text.strip()], timeout=timeout)
    return result(root)


CH7_TYPED = ("3 March 2021; 12/05/1999", "17 de septiembre de 1987", "1. März 2024; 2024年3月1日; 3/1/24")


@pytest.mark.numerics
@pytest.mark.parametrize("edition", ["", CHINESE])
def test_cross_attention_typed_dates_equal_pytorch(offline_page, book_url, edition):
    """Chapter 7 with no kernel: typed dates are translated in the page by the Transformer and RNNsearch,
    and both outputs and maps are what PyTorch computes on the very files the page loaded."""
    state = [m for m in saved_states(edition + CH7) if m.get("kind") == "cross_attention"]
    assert len(state) == 1, "Chapter 7 has one cross-attention explorer"
    files = {name: {g: HTML / edition / "_static" / f["path"] for g, f in graphs.items()}
             for name, graphs in state[0]["data"]["models"].items()}
    assert set(files) == {"transformer", "rnnsearch"} and all(p.is_file() for g in files.values() for p in g.values())
    models = models_of(files)
    page = offline_page
    root = open_explorer(page, book_url, edition + CH7, "cross_attention")
    check_accessible(root)
    before = drawing(root)
    typed = CH7_TYPED if not edition else CH7_TYPED[:1]  # the other edition: the same page code, once
    for text in typed:
        got = type_dates(root, text)
        assert "error" not in got, got
        for note in check_typed_translation(got, text, models):
            print(note)
        assert drawing(root) != before
        before = drawing(root)
    # the reader's inputs are offered again in the input list, and the head slider redraws them
    assert root.get_by_label(say(root, "held-out input"), exact=True).locator("option").last.inner_text().startswith(typed[-1])
    root.get_by_label(say(root, "head"), exact=True).press("ArrowRight")
    assert drawing(root) != before and result(root)["computed"] == "browser"
    # refused inputs say why, in Python's words (attention_course.views.transformer_viewer.source_problem)
    from attention_course.views.transformer_viewer import source_problem

    data = state[0]["data"]
    for bad in ("3 March 2021 €", "1/1/99; " * 40):  # (an empty box cannot be sent: Enter and the button wait for text)
        got = type_dates(root, bad)
        language = "zh_CN" if edition else "en"  # the page's language, as the explorer speaks it
        assert got["error"] == source_problem(bad, data["source_alphabet"], data["max_source"], language), got
        assert root.locator(".ac-note").inner_text() == got["error"]
    check_clean(page)

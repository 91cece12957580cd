"""The small models run in Chromium, offline, and write what PyTorch writes (issue 12).

Chapter 6's GPT and Chapter 2's RNNsearch run in the built book with onnxruntime-web. The PyTorch
reference is rebuilt from the very ONNX files the page loads (attention_course.onnx_export.load_*),
so the comparison is browser arithmetic against PyTorch arithmetic on the same weights. Every
control is worked from the keyboard, and each must change what the explorer draws.

Greedy decoding is compared token for token, exactly. The two sides round differently (WebAssembly
kernels against PyTorch's), so where the two best logits of a step lie within float32 rounding of
each other (a near-tie: :func:`attention_course.numerics.rounding_tolerance` times the largest logit)
either token is a correct greedy choice, and the texts part there. Then the browser's text is checked
step by step under PyTorch with teacher forcing: every token it wrote must be PyTorch's best, or tied
with it within rounding. So the tests do not depend on which of two tied tokens a kernel picks, and
still fail on any token that is clearly not the best.
"""
from __future__ import annotations

import json
import re

import pytest

from conftest import CHINESE, HTML

CH2, CH6 = "book/02_bahdanau_attention.html", "book/06_attention_and_llms.html"
GPT_PROMPTS = ("To be or not to be", "The cat ", "Life is ")
N_TRANSLATIONS = 50


def served(page_path: str, pattern: str) -> str:
    """Path (under _build/html/_static/) of a model file the page's saved widget state names."""
    html = (HTML / page_path).read_text(encoding="utf-8")
    found = sorted(set(re.findall(pattern, html)))
    assert found, f"{page_path} names no file matching {pattern}"
    return found


def open_explorer(page, book_url, page_path, title):
    page.goto(f"{book_url}/{page_path}", wait_until="load")
    root = page.locator(".ac-explorer", has=page.locator(".ac-title", has_text=title))
    root.wait_for(timeout=30000)
    root.scroll_into_view_if_needed()
    return root


def result(root) -> dict:
    return json.loads(root.get_attribute("data-result") or "{}")


def drawing(root) -> str:
    return root.locator(".ac-figure").inner_html()


def set_range(root, label, presses):
    """Move a labelled slider from the keyboard: Home, then ArrowRight ``presses`` times."""
    slider = root.get_by_label(label, exact=True)
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

    from attention_course.numerics import rounding_tolerance

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
    root.get_by_role("button", name="Generate").press("Enter")  # keyboard, like a reader
    root.page.wait_for_function(
        "r => { const d = JSON.parse(r.dataset.result || '{}'); return d.done && d.source === 'browser'; }",
        arg=root.element_handle(), timeout=timeout)
    return result(root)


@pytest.fixture(scope="module")
def gpt_reference():
    from attention_course import onnx_export

    (path,) = served(CH6, r"models/gpt-[0-9a-f]{12}\.onnx")
    return onnx_export.load_gpt(HTML / "_static" / path)


@pytest.mark.numerics
def test_gpt_greedy_equals_pytorch(offline_page, book_url, gpt_reference):
    import torch

    from attention_course import gpt

    model, chars = gpt_reference
    index = {c: i for i, c in enumerate(chars)}
    page = offline_page
    root = open_explorer(page, book_url, CH6, "Generate with the small GPT")
    set_range(root, "temperature", 0)
    set_range(root, "length (characters)", 9)  # 10 + 9 x 10 = 100
    for prompt in GPT_PROMPTS:
        root.get_by_label("prompt", exact=True).fill(prompt)
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
    root = open_explorer(page, book_url, edition + CH6, "Generate with the small GPT")
    check_accessible(root)
    before = drawing(root)
    set_range(root, "layer shown", 0)  # layer 0 instead of the last layer
    assert drawing(root) != before, "the layer slider did not change the heatmap"

    root.get_by_label("prompt", exact=True).fill("Once upon a time")
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

    root.get_by_label("prompt", exact=True).press("Enter")  # Enter in the prompt box generates too
    root.page.wait_for_function("r => JSON.parse(r.dataset.result).done", arg=root.element_handle(), timeout=60000)
    check_clean(page)


@pytest.fixture(scope="module")
def rnnsearch_reference():
    from attention_course import dates, onnx_export, seq2seq

    steps = {}
    for path in served(CH2, r"models/rnnsearch-step\d+-(?:encoder|decoder)-[0-9a-f]{12}\.onnx"):
        step, graph = re.search(r"step(\d+)-(\w+)-", path).groups()
        steps.setdefault(int(step), {})[graph] = HTML / "_static" / path
    last = steps[max(steps)]
    model, _, _ = onnx_export.load_rnnsearch(last["encoder"], last["decoder"])
    data = dates.make_date_data(**seq2seq.COURSE_DATA)
    sources = [s for s, _ in data.test[:N_TRANSLATIONS]]
    translations, _ = seq2seq.translate(model, sources, data)
    return sources, translations, max(steps), model, data


def translate_here(root, text):
    box = root.get_by_label("or type dates", exact=True)
    box.fill(text)
    box.press("Enter")
    root.page.wait_for_function(
        "([r, s]) => { const d = JSON.parse(r.dataset.result || '{}'); return d.source === s && (d.computed === 'browser' || d.error); }",
        arg=[root.element_handle(), text], timeout=120000)
    return result(root)


@pytest.mark.numerics
def test_rnnsearch_greedy_equals_pytorch(offline_page, book_url, rnnsearch_reference):
    import torch

    sources, translations, last, model, data = rnnsearch_reference
    page = offline_page
    root = open_explorer(page, book_url, CH2, "Translate dates with RNNsearch")
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
    root = open_explorer(page, book_url, edition + CH2, "Translate dates with RNNsearch")
    check_accessible(root)
    before = drawing(root)
    example = root.get_by_label("example", exact=True)
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
    page.wait_for_function("([r, s]) => JSON.parse(r.dataset.result).step === s && JSON.parse(r.dataset.result).computed === 'browser'",
                           arg=[root.element_handle(), last], timeout=60000)
    assert drawing(root) != before and result(root)["output"] == "2024-03-01;2024-03-01"

    root.get_by_label("or type dates", exact=True).fill("17 de septiembre de 1987")
    root.get_by_role("button", name="Translate").press("Enter")
    page.wait_for_function("r => JSON.parse(r.dataset.result).source === '17 de septiembre de 1987'",
                           arg=root.element_handle(), timeout=60000)
    assert result(root)["output"] == "1987-09-17"
    check_clean(page)

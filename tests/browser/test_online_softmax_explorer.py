"""Chapter 8's online-softmax explorer in Chromium: its JavaScript computes what Python computes.

The first tests need no book: they run the ES module (explorer core + online_softmax.js) in a blank
page with a stand-in for the anywidget model, as the static book does with the saved widget state,
and compare every step's running maximum m, running sum l, rescale factor and partial output, and
the final output, with :func:`attention_course.maths.online_softmax.tiled_attention`'s trace, by the
course's tolerance policy for float64. The last test does the same with the explorer saved in the
built Chapter 8 page (tests/browser/test_explorers.py works its controls there).
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import standalone_page
import torch

from attention_course.views import online_softmax_viewer
from attention_course.views.explorer import build_esm
from attention_course.maths.numerics import assert_agree
from attention_course.maths.online_softmax import example, tiled_attention

PAGE = standalone_page("online_softmax")

# Set the explorer's block-size slider to each size in turn and read what it computed.
RUN_BLOCK_SIZES = """(root, sizes) => {
    const slider = root.querySelector("input[type=range]");  // the block size: the first control
    const options = JSON.parse(root.dataset.options);
    return sizes.map((b) => {
        slider.value = String(options.indexOf(b));
        slider.dispatchEvent(new Event("input"));
        return JSON.parse(root.dataset.result);
    });
}"""


def open_explorer(browser, widget):
    page = browser.new_page()
    page.errors = []
    page.on("console", lambda msg: msg.type == "error" and page.errors.append(msg.text))
    page.on("pageerror", lambda error: page.errors.append(f"uncaught: {error}"))
    page.set_content(PAGE % (json.dumps(widget.data), json.dumps(widget.controls), json.dumps(build_esm("online_softmax"))))
    page.wait_for_function("window.rendered === true")
    explorer = page.locator(".ac-explorer")
    assert explorer.get_attribute("data-kind") == "online_softmax"
    explorer.evaluate("(root, options) => { root.dataset.options = JSON.stringify(options); }", widget.data["block_sizes"])
    return page, explorer


def assert_js_equals_python(results, data) -> float:
    """Every step of each JavaScript result against Python's trace for its block size; returns the worst error."""
    q, k, v = (torch.tensor(data[name], dtype=torch.float64) for name in ("q", "k", "v"))
    # float64 on both sides, from the same numbers: a score sums over d_k terms, l and the output over
    # the N keys (in another order: block by block, rescaled), so the longest sum is max(N, d_k).
    reduction = max(k.shape[0], k.shape[1])
    worst = 0.0
    for result in results:
        block_size = result["block_size"]
        output, trace = tiled_attention(q, k, v, block_size, data["causal"], data["scale"])
        assert len(result["steps"]) == len(trace), f"block size {block_size}: {len(result['steps'])} steps in JavaScript"
        for js, py in zip(result["steps"], trace):
            assert (js["block"], js["start"], js["stop"]) == (py.block, py.start, py.stop)
            for name in ("m", "l", "rescale", "unnormalised", "output"):
                worst = max(worst, assert_agree(np.array(js[name]), getattr(py, name), reduction=reduction,
                                                what=f"block size {block_size}, block {py.block}, {name}"))
        worst = max(worst, assert_agree(np.array(result["output"]), output, reduction=reduction,
                                        what=f"block size {block_size}, final output"))
        # What the page states at the end, measured in the page: equal to naive attention within float64 rounding.
        assert result["final_error"] <= result["tolerance"]
        worst = max(worst, assert_agree(np.array(result["naive"]), output, reduction=reduction, what="naive attention"))
    return worst


@pytest.mark.numerics
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
def test_javascript_steps_equal_pythons_trace(browser, causal):
    q, k, v = example(n=4, N=14, d_k=6, d_v=3, seed=1)
    widget = online_softmax_viewer.widget(q, k, v, block_size=4, causal=causal)
    page, explorer = open_explorer(browser, widget)
    sizes = [1, 4, 5, 14]  # one key a block, a divisor of N, one that is not, N itself
    results = explorer.evaluate(RUN_BLOCK_SIZES, sizes)
    assert [r["block_size"] for r in results] == sizes
    worst = assert_js_equals_python(results, widget.data)
    print(f"JavaScript against Python, float64, every step: largest relative error {worst:.1e}")
    assert not page.errors, page.errors
    page.close()


@pytest.mark.numerics
def test_javascript_survives_scores_that_overflow_a_plain_exp(browser):
    """Scores near 2000: exp overflows even in float64, the running maximum keeps every term <= 1."""
    q, k, v = example(n=3, N=12, d_k=4, d_v=3, seed=2)
    widget = online_softmax_viewer.widget(300 * q, k, v, block_size=5)
    assert max(abs(x) for row in (300 * q @ k.T / 2).tolist() for x in row) > 710  # exp(710) = inf in float64
    page, explorer = open_explorer(browser, widget)
    results = explorer.evaluate(RUN_BLOCK_SIZES, [3, 5])
    # An absolute rounding error eps * |s| in a score of size |s| becomes a relative error of its weight
    # (exp(s + e) = exp(s)(1 + e)), so the budget grows with the largest score, as for Chapter 3's temperature.
    big = max(abs(x) for row in (300 * q @ k.T / 2).tolist() for x in row)
    reduction = max(k.shape)
    for result in results:
        output, _ = tiled_attention(300 * q, k, v, result["block_size"])
        assert np.isfinite(np.array(result["output"])).all()
        assert_agree(np.array(result["output"]), output, reduction=reduction, ulps=16 * big, what="large scores")
    assert not page.errors, page.errors
    page.close()


def test_stepping_reaches_naive_attention_from_the_keyboard(browser):
    widget = online_softmax_viewer.widget(block_size=4)
    page, explorer = open_explorer(browser, widget)
    readout = explorer.locator(".ac-readout")
    assert readout.get_attribute("aria-live") == "polite"
    label = explorer.locator(".ac-figure svg[role=img]").get_attribute("aria-label")
    assert label.startswith("Scores of 3 queries against 12 keys")
    assert "Block 1 of 3" in readout.inner_text()
    nxt = explorer.get_by_role("button", name="next (block)")
    for _ in range(2):
        nxt.focus()
        nxt.press("Enter")
    result = json.loads(explorer.get_attribute("data-result"))
    assert result["step"] == 2 and nxt.is_disabled()  # the last block: nothing further
    text = readout.inner_text()
    assert "Last block: the tiled output equals naive attention, largest relative difference" in text, text
    assert "After the last block" in explorer.locator("caption").inner_text()
    # A block size that does not divide 12 recomputes everything and keeps the reader at the end.
    size = explorer.get_by_label("block size", exact=True)
    size.focus()
    size.press("ArrowRight")
    result = json.loads(explorer.get_attribute("data-result"))
    assert result["block_size"] == 5 and len(result["steps"]) == 3 and result["step"] == 2
    assert result["relative_error"] <= result["tolerance"]
    # Back to the first block: the partial output still differs from naive attention, and the page says so.
    step = explorer.get_by_label("block", exact=True)
    step.focus()
    step.press("Home")
    assert "still differs from naive attention" in readout.inner_text()
    query = explorer.get_by_label("query", exact=True)
    query.focus()
    query.press("ArrowDown")
    assert json.loads(explorer.get_attribute("data-result"))["query"] == 1
    assert "q2" in readout.inner_text()
    assert not page.errors, page.errors
    page.close()


@pytest.mark.numerics
def test_chapter8_explorer_computes_what_python_computes(offline_page, book_url):
    from test_explorers import EXPLORERS, open_explorers, saved_widget_states

    page_path = "book/08_todays_llms.html"
    states = [s for s in saved_widget_states(page_path) if s.get("kind") == "online_softmax"]
    assert states, f"{page_path} saves no online_softmax explorer"
    data = states[0]["data"]
    page = offline_page
    explorer = open_explorers(page, book_url, page_path, EXPLORERS[page_path]).nth(EXPLORERS[page_path].index("online_softmax"))
    explorer.evaluate("(root, options) => { root.dataset.options = JSON.stringify(options); }", data["block_sizes"])
    sizes = sorted({1, 3, max(data["block_sizes"])} & set(data["block_sizes"]))
    results = explorer.evaluate(RUN_BLOCK_SIZES, sizes)
    worst = assert_js_equals_python(results, data)
    print(f"{page_path}: JavaScript against Python, float64, every step: largest relative error {worst:.1e}")
    assert not page.console_errors, page.console_errors


def test_new_data_from_a_kernel_redraws_with_the_controls_that_still_fit(browser):
    """With a kernel, Python may assign new data (here 8 keys instead of 12): the explorer draws it anew."""
    widget = online_softmax_viewer.widget(block_size=12, step=0, query=2)
    smaller = online_softmax_viewer.widget(*example(n=2, N=8), block_size=4).data
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
    kernel = PAGE.replace("const model = {get: (k) => ({data, controls, kind})[k], on() {},",
                          "window.state = {data, controls, kind};\n"
                          "const model = {get: (k) => window.state[k], on(name, fn) { window.handler = fn; },")
    assert kernel != PAGE
    page.set_content(kernel % (json.dumps(widget.data), json.dumps(widget.controls), json.dumps(build_esm("online_softmax"))))
    page.wait_for_function("window.rendered === true")
    page.evaluate("d => { window.state.data = d; window.handler(); }", smaller)
    result = json.loads(page.locator(".ac-explorer").get_attribute("data-result"))
    assert (result["block_size"], result["query"], len(result["steps"])) == (1, 1, 8)
    assert page.locator(".ac-explorer").count() == 1 and not errors, errors
    page.close()

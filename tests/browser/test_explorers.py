"""The explorers in the built book, worked as a reader would: offline, from the keyboard.

For every explorer on every chapter page, each control is operated with the keyboard and the
explorer's drawing (a screenshot of its figure) must change; nothing may be fetched from another
host and nothing may reach the console as an error. Chapter 3's explorer must compute in
JavaScript exactly what the helper package computes in Python.
"""
from __future__ import annotations

import html
import json
import re

import numpy as np
import pytest

from conftest import HTML, both_editions, english_path, one_per_page

# page -> the explorer kinds it must show, in order (explorers2 adds its kinds here).
EXPLORERS = {
    "book/01_origin.html": ["seq2seq_outputs"],
    "book/03_general_form.html": ["attention_scores"],
    "book/04_self_attention.html": ["head_viewer"],
    "book/05_multi_head_attention.html": ["head_viewer"],
    "book/07_transformer_on_dates.html": ["cross_attention"],
    "book/08_todays_llms.html": ["online_softmax"],
}
CONTROLS = "select, input, button"
# Controls that must work without a kernel, per kind (default 3). Chapter 7's Transformer has one
# decoder layer, so its cross-attention explorer offers the held-out input and the head only.
MIN_CONTROLS = {"cross_attention": 2}


def saved_widget_states(page_path: str) -> list[dict]:
    """The widget models saved in a built page (myst-nb's widget-state script)."""
    source = (HTML / page_path).read_text(encoding="utf-8")
    match = re.search(r'<script type="application/vnd.jupyter.widget-state\+json">(.*?)</script>', source, re.S)
    assert match, f"{page_path} has no saved widget state"
    state = json.loads(html.unescape(match.group(1)))["state"]
    return [model["state"] for model in state.values()]


def open_explorers(page, book_url: str | None, page_path: str, kinds: list[str]):
    """The page's explorers, checked to be the expected kinds (``book_url=None``: the page is open)."""
    if book_url is not None:
        page.goto(f"{book_url}/{page_path}", wait_until="load")
    explorers = page.locator(".ac-explorer")
    explorers.nth(len(kinds) - 1).wait_for(state="visible", timeout=20000)
    assert [explorers.nth(i).get_attribute("data-kind") for i in range(explorers.count())] == kinds
    return explorers


def operate(control) -> str:
    """Work one control from the keyboard; returns what was done (for messages)."""
    tag, kind = control.evaluate("e => [e.tagName.toLowerCase(), (e.type || '').toLowerCase()]")
    control.focus()
    if tag == "select":
        last = control.evaluate("e => e.selectedIndex === e.options.length - 1")
        key = "ArrowUp" if last else "ArrowDown"
    elif kind == "range":
        at_max = control.evaluate("e => Number(e.value) >= Number(e.max)")
        key = "ArrowLeft" if at_max else "ArrowRight"
    elif kind == "checkbox":
        key = "Space"
    else:  # button
        key = "Enter"
    control.press(key)
    return f"{tag}[{kind}] {key}"


@pytest.mark.changes_page
@one_per_page(both_editions(sorted(EXPLORERS)))
def test_every_control_changes_the_drawing(loaded):
    page, page_path = loaded.page, loaded.path
    explorers = open_explorers(page, None, page_path, EXPLORERS[english_path(page_path)])
    for i in range(explorers.count()):
        explorer = explorers.nth(i)
        figure = explorer.locator(".ac-figure")
        controls = explorer.locator(CONTROLS)
        worked = 0
        for j in range(controls.count()):
            control = controls.nth(j)
            if control.is_disabled() or control.get_attribute("type") == "text":
                continue  # text boxes are typed into by their own tests (the head viewer's needs a kernel: below;
                          # Chapter 7's runs both models in the page: test_browser_models.py); a disabled button cannot move
            name = control.evaluate("e => e.labels && e.labels.length ? e.labels[0].textContent : e.getAttribute('aria-label')")
            assert name and name.strip(), f"control {j} of explorer {i} on {page_path} has no accessible name"
            before = figure.screenshot()
            action = operate(control)
            page.wait_for_timeout(50)
            assert figure.screenshot() != before, f"{page_path}: '{name}' ({action}) did not change the drawing"
            worked += 1
        kind = explorer.get_attribute("data-kind")
        assert worked >= MIN_CONTROLS.get(kind, 3), f"{page_path}: only {worked} controls found in explorer {i}"
    assert not page.blocked, f"{page_path} tried to load from other hosts: {page.blocked}"
    assert not page.console_errors, f"console errors on {page_path}: {page.console_errors}"


@pytest.mark.parametrize("page_path", ["book/04_self_attention.html", "book/05_multi_head_attention.html"])
def test_head_viewer_offers_eight_sentences_and_says_typing_needs_a_kernel(offline_page, book_url, page_path):
    page = offline_page
    explorer = open_explorers(page, book_url, page_path, EXPLORERS[page_path]).first
    assert explorer.get_by_label("sentence", exact=True).locator("option").count() >= 8
    box = explorer.get_by_label("your own sentence")
    assert box.is_disabled()
    reason = page.locator(f"#{box.get_attribute('aria-describedby')}").inner_text()
    assert "Needs a running kernel" in reason and "Colab or Jupyter" in reason
    # Every layer and head is in the page: the last layer's last head draws without a kernel.
    explorer.get_by_label("layer", exact=True).fill("0")
    explorer.get_by_label("head", exact=True).fill("11")
    result = json.loads(explorer.get_attribute("data-result"))
    assert (result["layer"], result["head"]) == (0, 11)
    assert not page.console_errors, page.console_errors


@pytest.mark.numerics
def test_chapter3_explorer_computes_what_python_computes(offline_page, book_url):
    from attention_course.views.widgets import AttentionExplorer

    page_path = "book/03_general_form.html"
    (state,) = [s for s in saved_widget_states(page_path) if s.get("kind") == "attention_scores"]
    data = state["data"]
    python = AttentionExplorer(data["query_texts"], data["Q"], data["key_texts"], data["K"], data["V"],
                               data["value_labels"], d_k_options=data["d_k_options"],
                               hidden=data["hidden"], seed=data["seed"])
    page = offline_page
    explorer = open_explorers(page, book_url, page_path, EXPLORERS[page_path]).first
    # Drive the page's own controls through every query, score, d_k and several temperatures.
    results = explorer.evaluate(
        """(root, grid) => {
            const [query, score, temperature, dk] = root.querySelectorAll("select, input[type=range]");
            const out = [];
            for (let q = 0; q < query.options.length; q++) {
              query.value = String(q); query.dispatchEvent(new Event("change"));
              for (const s of Array.from(score.options).map(o => o.value)) {
                score.value = s; score.dispatchEvent(new Event("change"));
                for (let d = 0; d <= Number(dk.max); d++) {
                  dk.value = String(d); dk.dispatchEvent(new Event("input"));
                  for (const t of grid) {
                    temperature.value = String(t); temperature.dispatchEvent(new Event("input"));
                    out.push(JSON.parse(root.dataset.result));
                  }
                }
              }
            }
            return out;
        }""",
        [-2, -1, -0.5, 0, 0.35, 1],
    )
    assert len(results) == len(data["query_texts"]) * 5 * len(data["d_k_options"]) * 6
    from attention_course.maths.numerics import assert_agree

    # Both sides compute in float64 from the same saved data. A score is a sum over the embedding's
    # width, the context a sum over the keys; dividing by a temperature T below 1 multiplies the
    # scores' rounding errors by 1/T, hence the budget of 16/T units (attention_course.maths.numerics).
    reduction = max(np.shape(data["K"])[1], len(data["key_texts"]))
    worst = 0.0
    for r in results:
        expected = python.weights(r["query"], r["score"], r["temperature"], r["d_k"])
        ulps = 16 / min(1.0, r["temperature"])
        where = str({k: r[k] for k in ("query", "score", "temperature", "d_k")})
        worst = max(worst, assert_agree(np.array(r["weights"]), expected, reduction=reduction, ulps=ulps, what=where),
                    assert_agree(np.array(r["context"]), expected @ python.V, reduction=reduction, ulps=ulps, what=where))
    print(f"JavaScript against Python, float64: largest relative error {worst:.1e}")
    assert not page.console_errors, page.console_errors

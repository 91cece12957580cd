"""Chapter 7's explorer in Chromium, without the book: its front-end renders the data Python embeds.

Runs the ES module (explorer core + cross_attention.js) in a blank page with a stand-in for the
anywidget model, as the static book does with the saved widget state, and works each control from
the keyboard. tests/browser/test_explorers.py checks the same explorer inside the built book.
"""
from __future__ import annotations

import json

from attention_course import dates, seq2seq
from attention_course import date_transformer as dt
from attention_course.explorer import build_esm
from attention_course.transformer_viewer import CrossAttentionViewer

PAGE = """<!doctype html><html><body><div id="root"></div><script type="module">
const data = %s, controls = %s, kind = "cross_attention";
const model = {get: (k) => ({data, controls, kind})[k], on() {}, send() { return false; }};
const url = URL.createObjectURL(new Blob([%s], {type: "text/javascript"}));
const mod = await import(url);
mod.default.render({model, el: document.getElementById("root")});
window.rendered = true;
</script></body></html>"""


def tiny_explorer(tmp_path, monkeypatch, **config_changes):
    """The explorer of a 3-step Transformer and a 2-step RNNsearch on 40 dates (models cached in tmp_path)."""
    monkeypatch.setenv("ATTENTION_COURSE_CACHE", str(tmp_path))
    data = dates.make_date_data(n_train=40, n_test=6, seed=3, max_dates=2)
    config = dt.TransformerConfig(d_model=16, num_heads=2, d_ff=32, max_len=64, batch_size=8, steps=3, warmup=2,
                                  **config_changes)
    transformer = dt.train_transformer(data, config, progress=False).model
    search = seq2seq.train_model(data, seq2seq.ModelConfig(embed=8, enc_hidden=8, dec_hidden=8, align=4, steps=2,
                                                           checkpoints=(0,)), progress=False)
    return CrossAttentionViewer(transformer, search, data, [s for s, _ in data.test[:3]]).widget(layer=-1, head=0)


def test_cross_attention_explorer_draws_and_every_control_changes_it(browser, tmp_path, monkeypatch):
    widget = tiny_explorer(tmp_path, monkeypatch)
    page = browser.new_page()
    errors = []
    page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
    page.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
    page.set_content(PAGE % (json.dumps(widget.data), json.dumps(widget.controls), json.dumps(build_esm("cross_attention"))))
    page.wait_for_function("window.rendered === true")
    explorer = page.locator(".ac-explorer")
    assert explorer.get_attribute("data-kind") == "cross_attention"
    figure = explorer.locator(".ac-figure")
    assert figure.locator("svg[role=img]").count() == 2  # RNNsearch's alignment and one head
    for name in ("held-out input", "decoder layer", "head"):
        control = explorer.get_by_label(name, exact=True)
        before = figure.inner_html()
        control.focus()
        at_end = control.evaluate("e => e.tagName === 'SELECT' ? e.selectedIndex === e.options.length - 1"
                                  " : Number(e.value) >= Number(e.max)")
        is_select = control.evaluate("e => e.tagName === 'SELECT'")
        control.press(("ArrowUp" if at_end else "ArrowDown") if is_select else ("ArrowLeft" if at_end else "ArrowRight"))
        assert figure.inner_html() != before, f"'{name}' did not change the drawing"
    result = json.loads(explorer.get_attribute("data-result"))
    assert set(result) >= {"example", "layer", "head", "agreement"}
    # As in the static book (a saved widget state on the page): typing dates needs a kernel, and says so.
    page.set_content(PAGE.replace('<div id="root">', '<script type="application/vnd.jupyter.widget-state+json">{}</script><div id="root">')
                     % (json.dumps(widget.data), json.dumps(widget.controls), json.dumps(build_esm("cross_attention"))))
    page.wait_for_function("window.rendered === true")
    box = page.get_by_label("your own dates")
    assert box.is_disabled()
    assert "Needs a running kernel" in page.locator(f"#{box.get_attribute('aria-describedby')}").inner_text()
    assert not errors, errors
    page.close()


def test_one_decoder_layer_gets_no_layer_slider(browser, tmp_path, monkeypatch):
    """Chapter 7's Transformer has one decoder layer: a slider with a single value would do nothing."""
    widget = tiny_explorer(tmp_path, monkeypatch, dec_layers=1)
    assert widget.data["layers"] == 1
    page = browser.new_page()
    page.set_content(PAGE % (json.dumps(widget.data), json.dumps(widget.controls), json.dumps(build_esm("cross_attention"))))
    page.wait_for_function("window.rendered === true")
    explorer = page.locator(".ac-explorer")
    assert explorer.get_by_label("decoder layer", exact=True).count() == 0
    figure = explorer.locator(".ac-figure")
    before = figure.inner_html()
    explorer.get_by_label("head", exact=True).press("ArrowRight")
    assert figure.inner_html() != before
    page.close()

"""Chapter 7's explorer in Chromium, without the book: its front-end renders the data Python embeds.

Runs the ES module (onnx_runtime.js + explorer core + cross_attention.js) in a page with a stand-in
for the anywidget model, as the static book does with the saved widget state, and works each control
from the keyboard. With tiny trained models exported to ONNX and onnxruntime-web served beside the
page (offline), dates typed into it are translated in the page and compared with PyTorch on the same
weights, so the browser path is tested without a book build. tests/browser/test_explorers.py and
tests/browser/test_browser_models.py check the same explorer inside the built book.
"""
from __future__ import annotations

import json
import shutil

from attention_course.data import dates
from attention_course.views import onnx_export
from attention_course.models import seq2seq
from attention_course.models import date_transformer as dt
from attention_course.training import date_training
from attention_course.training.seq2seq_training import train_model
from attention_course.views.transformer_viewer import CrossAttentionViewer, source_problem
from conftest import open_offline_page, serve, standalone_page
from test_browser_models import check_typed_translation, models_of, type_dates

STATIC_STATE = '<script type="application/vnd.jupyter.widget-state+json">{}</script>'

PAGE = standalone_page("cross_attention")


def tiny_explorer(tmp_path, monkeypatch, static=None, **config_changes):
    """The explorer of a 3-step Transformer and a 2-step RNNsearch on 40 dates (models cached in tmp_path;
    exported to ``static``/models, nothing exported with ``static=None``)."""
    monkeypatch.setenv("ATTENTION_COURSE_CACHE", str(tmp_path))
    data = dates.make_date_data(n_train=40, n_test=6, seed=3, max_dates=2)
    config = dt.TransformerConfig(d_model=16, num_heads=2, d_ff=32, max_len=64, batch_size=8, steps=3, warmup=2,
                                  **config_changes)
    transformer = date_training.train_transformer(data, config, progress=False).model
    search = train_model(data, seq2seq.ModelConfig(embed=8, enc_hidden=8, dec_hidden=8, align=4, steps=2,
                                                   checkpoints=(0,)), progress=False)
    viewer = CrossAttentionViewer(transformer, search, data, [s for s, _ in data.test[:3]])
    return viewer.widget(layer=-1, head=0, static=static)


def test_cross_attention_explorer_draws_and_every_control_changes_it(browser, tmp_path, monkeypatch):
    widget = tiny_explorer(tmp_path, monkeypatch)
    page = browser.new_page()
    errors = []
    page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
    page.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
    page.set_content(PAGE % (json.dumps(widget.data), json.dumps(widget.controls), json.dumps(widget._esm)))
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
    # As in a static page built without the exported models (a saved widget state, no models): typing
    # dates needs a kernel, and says so.
    assert widget.data["models"] == {}
    page.set_content(PAGE.replace('<div id="root">', STATIC_STATE + '<div id="root">')
                     % (json.dumps(widget.data), json.dumps(widget.controls), json.dumps(widget._esm)))
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
    page.set_content(PAGE % (json.dumps(widget.data), json.dumps(widget.controls), json.dumps(widget._esm)))
    page.wait_for_function("window.rendered === true")
    explorer = page.locator(".ac-explorer")
    assert explorer.get_by_label("decoder layer", exact=True).count() == 0
    figure = explorer.locator(".ac-figure")
    before = figure.inner_html()
    explorer.get_by_label("head", exact=True).press("ArrowRight")
    assert figure.inner_html() != before
    page.close()


def test_typed_dates_run_in_the_page_as_in_pytorch(browser, tmp_path, monkeypatch):
    """No kernel, models exported: typed dates are translated in the page by both models, as PyTorch
    translates them on the same ONNX weights; refused inputs get Python's message; no console error."""
    static = tmp_path / "site" / "_static"
    widget = tiny_explorer(tmp_path, monkeypatch, static=static)
    runtime = static / "onnxruntime-web"
    runtime.mkdir(parents=True)
    for name in onnx_export.RUNTIME_FILES:  # what scripts/vendor_static.sh serves in the book
        shutil.copy(onnx_export._ROOT / "node_modules" / "onnxruntime-web" / "dist" / name, runtime / name)
    page_html = PAGE.replace('<div id="root">', STATIC_STATE + '<div id="root">') % (
        json.dumps(widget.data), json.dumps(widget.controls), json.dumps(widget._esm))
    (tmp_path / "site" / "index.html").write_text(page_html, encoding="utf-8")
    server, url = serve(tmp_path / "site")
    context, page = open_offline_page(browser)
    try:
        page.goto(f"{url}/index.html", wait_until="load")
        page.wait_for_function("window.rendered === true")
        root = page.locator(".ac-explorer")
        assert "translate them in this page" in root.locator(".ac-description").inner_text()
        files = {name: {g: static / f["path"] for g, f in graphs.items()} for name, graphs in widget.data["models"].items()}
        models = models_of(files)
        for text in ("3 March 2021; 12/05/1999", "17 de septiembre de 1987"):
            got = type_dates(root, text)
            assert "error" not in got, got
            print(*check_typed_translation(got, text, models), sep="\n")
        button = root.get_by_role("button", name="Translate")
        root.get_by_label("your own dates", exact=True).fill("4/5/86")
        button.press("Enter")  # the button, from the keyboard
        page.wait_for_function("r => JSON.parse(r.dataset.result).source === '4/5/86'", arg=root.element_handle(), timeout=60000)
        check_typed_translation(json.loads(root.get_attribute("data-result")), "4/5/86", models)
        data = widget.data
        for bad in ("3 March 2021 \u20ac\u20ac x", "1/1/99; " * 40):
            got = type_dates(root, bad)
            assert got["error"] == source_problem(bad, data["source_alphabet"], data["max_source"]), got
        assert not page.blocked and not page.console_errors, (page.blocked, page.console_errors)
    finally:
        context.close()
        server.shutdown()

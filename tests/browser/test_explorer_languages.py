"""Every explorer in the page's language, and on a phone, in Chromium without a book build.

Each of the seven explorer kinds renders from the data Python makes (small models, made up sentences)
in a standalone page with the explorers' stylesheet, as the static book shows it (a saved widget state
in the page: the page's ``<html lang>`` chooses the language) or as a notebook with a kernel does (the
``language`` Python puts in the data, attention_course.env.course_language, chooses it). In Chinese no
English word is visible beyond names, code and units (and the words of the data itself: the sentences
and dates the explorer shows); in English no Chinese character. At a 390 px wide viewport no explorer
is wider than the room it gets, in either language.
"""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from attention_course.views.explorer import Explorer

KINDS = ["seq2seq_outputs", "alignment", "attention_scores", "head_viewer", "gpt", "cross_attention", "online_softmax"]
STATIC_STATE = '<script type="application/vnd.jupyter.widget-state+json">{}</script>'
PAGE = """<!doctype html><html lang="@LANG@"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><style>@CSS@</style></head>
<body>@STATIC@<div id="root"></div><script type="module">
const data = @DATA@, controls = @CONTROLS@, kind = "@KIND@";
const model = {get: (k) => ({data, controls, kind})[k], on() {}, send() { return false; }};
const url = URL.createObjectURL(new Blob([@ESM@], {type: "text/javascript"}));
const mod = await import(url);
mod.default.render({model, el: document.getElementById("root")});
window.rendered = true;
</script></body></html>"""
# Words a Chinese explorer may show in Latin letters: names of models, tools and people, code, units, keys.
ALLOWED = {
    "rnnsearch", "transformer", "minilm", "gpt", "gptplayground", "python", "colab", "jupyter", "onnxruntime-web",
    "flashattention", "softmax", "enter", "mb", "nats", "exp", "top-k", "top-p", "tanh", "wk",
}
# Example inputs the placeholders show (dates the models read): not the page's language.
EXAMPLES = {"2024年3月1日"}
CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")


def _sentences(n: int) -> list[str]:
    words = "the cat sat on a mat because it was tired and warm near fire".split()
    return [" ".join(words[i:] + words[:i])[:38].strip() + "." for i in range(n)]


def _date_models(tmp_path_factory):
    import os

    from attention_course.data import dates
    from attention_course.models import date_transformer as dt
    from attention_course.models import seq2seq
    from attention_course.training import date_training
    from attention_course.training.seq2seq_training import train_model

    data = dates.make_date_data(n_train=40, n_test=6, seed=3, max_dates=2)
    config = dt.TransformerConfig(d_model=16, num_heads=2, d_ff=32, max_len=64, batch_size=8, steps=3, warmup=2)
    before = os.environ.get("ATTENTION_COURSE_CACHE")
    os.environ["ATTENTION_COURSE_CACHE"] = str(tmp_path_factory.mktemp("cache"))  # these toy models only
    try:
        transformer = date_training.train_transformer(data, config, progress=False).model
        search = train_model(data, seq2seq.ModelConfig(embed=8, enc_hidden=8, dec_hidden=8, align=4, steps=2,
                                                       checkpoints=(0,)), progress=False)
    finally:  # the other tests of this worker keep the real cache of the course's trained models
        if before is None:
            os.environ.pop("ATTENTION_COURSE_CACHE")
        else:
            os.environ["ATTENTION_COURSE_CACHE"] = before
    return data, transformer, search


@pytest.fixture(scope="module")
def explorers(tmp_path_factory) -> dict[str, Explorer]:
    """One explorer of each kind, made in English (as the book's one execution makes them)."""
    from attention_course.data.fortunes import CharTokenizer
    from attention_course.models.gpt import GPT, GPTConfig
    from attention_course.views import online_softmax_viewer
    from attention_course.views.alignment_viewer import AlignmentViewer
    from attention_course.views.explorer import encode_unit
    from attention_course.views.gpt_widget import GPTPlayground
    from attention_course.views.head_viewer import HeadExplorer
    from attention_course.views.transformer_viewer import CrossAttentionViewer
    from attention_course.views.widgets import AttentionExplorer, outputs_explorer

    rng = np.random.default_rng(0)
    data, transformer, search = _date_models(tmp_path_factory)
    sources = [s for s, _ in data.test[:3]]
    targets = [t for _, t in data.test[:3]]
    predictions = [t[:-2] + "99" for t in targets]
    made = {
        "seq2seq_outputs": outputs_explorer(sources * 2, targets * 2, predictions[:2] + targets[2:] + targets,
                                            [1, 2, 1, 2, 1, 2]),
        "alignment": AlignmentViewer(search, data, sources).widget(static=None),
        "attention_scores": AttentionExplorer(_sentences(4), rng.normal(size=(4, 8)), _sentences(6), rng.normal(size=(6, 8)),
                                              rng.random((6, 3)), ["animal", "place", "mood"]).widget(),
        "cross_attention": CrossAttentionViewer(transformer, search, data, sources).widget(static=None),
        "online_softmax": online_softmax_viewer.widget(block_size=4),
    }
    words = "The cat sat on the mat because it was tired .".split()
    weights = rng.random((6, 12, len(words), len(words)))
    weights /= weights.sum(-1, keepdims=True)
    made["head_viewer"] = HeadExplorer(
        data={"model": "MiniLM (all-MiniLM-L6-v2)", "layers": 6, "heads": 12, "source": "it",
              "sentences": [{"text": " ".join(words), "words": words, "weights": encode_unit(weights)}]},
        controls={"sentence": 0, "layer": 5, "head": 11, "view": "head"})
    torch.manual_seed(0)
    tok = CharTokenizer("To be or not to be, that is the question.\n")
    gpt = GPT(GPTConfig(vocab_size=len(tok.chars), block_size=16, n_layer=2, num_heads=2, d_model=16))
    made["gpt"] = GPTPlayground(gpt, tok).widget("To be", temperature=0.0, length=20, static=None)
    assert sorted(made) == sorted(KINDS)
    return made


def open_explorer(browser, explorer: Explorer, lang: str, static: bool, language: str | None = None,
                  width: int = 1280, controls: dict | None = None):
    """The explorer in a page of ``lang``; ``static``: as the book (saved state), else as with a kernel
    whose notebook speaks ``language`` (the data's ``language``)."""
    data = dict(explorer.data)
    if language is not None:
        data["language"] = language
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(f"uncaught: {error}"))
    page.on("console", lambda msg: msg.type == "error" and page.errors.append(msg.text))
    html = (PAGE.replace("@LANG@", lang).replace("@CSS@", explorer._css).replace("@STATIC@", STATIC_STATE if static else "")
            .replace("@KIND@", explorer.kind))
    html = html.replace("@DATA@", json.dumps(data)).replace("@CONTROLS@", json.dumps({**explorer.controls, **(controls or {})}))
    page.set_content(html.replace("@ESM@", json.dumps(explorer._esm)))
    page.wait_for_function("window.rendered === true")
    return page


SHOWN_TEXT = """root => {
  const texts = [];
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) texts.push(walker.currentNode.nodeValue);
  for (const e of root.querySelectorAll("*")) {
    for (const name of ["aria-label", "placeholder", "aria-valuetext", "title"]) {
      if (e.getAttribute(name)) texts.push(e.getAttribute(name));
    }
  }
  return texts.join("\\n");
}"""


def data_words(data) -> set[str]:
    """The words of what the explorer shows as data (sentences, dates, labels), not its own texts."""
    found = set()

    def walk(value, key=""):
        if key in ("score_labels", "model", "language"):
            return  # texts the page translates (score functions, the outputs' model) or does not show
        if isinstance(value, str):
            found.update(w.lower() for w in re.findall(r"[A-Za-z][A-Za-z'-]*", value))
        elif isinstance(value, dict):
            for k, v in value.items():
                walk(v, k)
        elif isinstance(value, list):
            for v in value:
                walk(v, key)

    walk(data)
    return found


def data_strings(data) -> set[str]:
    """Every string of the data (the inputs and outputs it shows)."""
    if isinstance(data, str):
        return {data}
    values = data.values() if isinstance(data, dict) else data if isinstance(data, list) else []
    return set().union(*(data_strings(v) for v in values)) if values else set()


def english_words(text: str, allowed: set[str]) -> list[str]:
    """Words in Latin letters that are not code (no digit, no underscore), a symbol or allowed."""
    words = []
    for token in re.findall(r"[A-Za-z0-9_'’-]+", text):
        token = token.strip("'’-")
        if "_" in token or re.search(r"\d", token) or len(re.sub(r"[^A-Za-z]", "", token)) < 2:
            continue
        if token.lower() not in allowed:
            words.append(token)
    return sorted(set(words))


def visible_text(page) -> str:
    return page.locator(".ac-explorer").evaluate(SHOWN_TEXT)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("setting", ["static book", "kernel"])
def test_a_chinese_page_shows_no_english_word(browser, explorers, kind, setting):
    explorer = explorers[kind]
    if setting == "static book":  # the Chinese edition: saved state made in English, the page is Chinese
        page = open_explorer(browser, explorer, "zh-CN", static=True)
    else:  # a Chinese notebook in Jupyter or Colab: the page says nothing, Python says Chinese
        page = open_explorer(browser, explorer, "en", static=False, language="zh_CN")
    root = page.locator(".ac-explorer")
    assert root.get_attribute("lang") == "zh-CN"
    texts = [visible_text(page)]
    # Work every control once, so the texts drawn later (other views, steps, readouts) are read too.
    controls = root.locator("select, input[type=range], input[type=checkbox]")
    for i in range(controls.count()):
        control = controls.nth(i)
        if control.is_disabled():
            continue
        control.evaluate("""e => { if (e.type === "checkbox") e.click();
            else if (e.tagName === "SELECT") { e.selectedIndex = e.options.length - 1; e.dispatchEvent(new Event("change")); }
            else { e.value = e.max; e.dispatchEvent(new Event("input")); } }""")
        texts.append(visible_text(page))
    text = "\n".join(texts)
    english = english_words(text, ALLOWED | data_words(explorer.data))
    assert not english, f"{kind} ({setting}) shows English words in Chinese: {english}"
    assert CJK.search(text), f"{kind} ({setting}) shows no Chinese"
    assert not page.errors, page.errors
    page.close()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("setting", ["static book", "kernel on a Chinese page"])
def test_an_english_explorer_shows_no_chinese(browser, explorers, kind, setting):
    explorer = explorers[kind]
    if setting == "static book":
        page = open_explorer(browser, explorer, "en", static=True)
    else:  # an English notebook in a Jupyter whose interface is Chinese: the notebook's language wins
        page = open_explorer(browser, explorer, "zh-CN", static=False, language="en")
    text = visible_text(page)
    shown = sorted((d for d in data_strings(explorer.data) if CJK.search(d)), key=len, reverse=True)
    for example in sorted(EXAMPLES, key=len, reverse=True) + shown:  # the dates shown may be Chinese dates
        text = text.replace(example, "")
    assert not CJK.findall(text), f"{kind} ({setting}) shows Chinese in English: {sorted(set(CJK.findall(text)))}"
    assert page.locator(".ac-explorer").get_attribute("lang") == "en"
    page.close()


def test_a_chinese_notebook_language_reaches_the_data(explorers, monkeypatch):
    from attention_course.views import online_softmax_viewer

    assert explorers["online_softmax"].data["language"] == "en"
    monkeypatch.setenv("ATTENTION_COURSE_LANGUAGE", "zh_CN")
    widget = online_softmax_viewer.widget(block_size=4)
    assert widget.data["language"] == "zh_CN"
    assert widget.alt.startswith("3 个查询对 12 个键的评分")


def fit(page) -> dict:
    return page.locator(".ac-explorer").evaluate("""e => ({scroll: e.scrollWidth, client: e.clientWidth,
        width: e.getBoundingClientRect().width, room: e.parentElement.clientWidth})""")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_every_explorer_fits_a_phone(browser, explorers, kind, lang):
    """390 px wide (a phone): the explorer is no wider than the page gives it and nothing runs off it,
    in each of its views (the head viewer's layer view too)."""
    views = [None, {"view": "layer"}] if kind == "head_viewer" else [None]
    for controls in views:
        page = open_explorer(browser, explorers[kind], lang, static=True, width=390, controls=controls)
        got = fit(page)
        assert got["width"] <= got["room"] + 0.5, f"{kind} ({lang}, {controls}): {got}"
        assert got["scroll"] <= got["client"], f"{kind} ({lang}, {controls}) runs off its box: {got}"
        assert not page.errors, page.errors
        page.close()


# ---------------------------------------------------------------------------------------------
# The built book's Chinese pages: every explorer on them speaks Chinese (the saved state is the
# English execution's; the page's language decides).

BOOK_PAGES = [f"book/{name}.html" for name in ("01_origin", "02_bahdanau_attention", "03_general_form",
                                                 "04_self_attention", "05_multi_head_attention",
                                                 "06_attention_and_llms", "07_transformer_on_dates", "08_todays_llms")]


@pytest.mark.parametrize("page_path", BOOK_PAGES)
def test_the_chinese_editions_explorers_speak_chinese(offline_page, book_url, page_path):
    from conftest import saved_states

    saved = [s["data"] for s in saved_states("zh_CN/" + page_path) if s.get("kind")]  # the explorers' data
    page = offline_page
    page.goto(f"{book_url}/zh_CN/{page_path}", wait_until="load")
    roots = page.locator(".ac-explorer")
    roots.first.wait_for(timeout=30000)
    page.wait_for_function("n => document.querySelectorAll('.ac-explorer').length >= n", arg=len(saved), timeout=30000)
    allowed = ALLOWED | set().union(*(data_words(d) for d in saved))
    for i in range(roots.count()):
        root = roots.nth(i)
        assert root.get_attribute("lang") == "zh-CN", (page_path, root.get_attribute("data-kind"))
        text = root.evaluate(SHOWN_TEXT)
        data = set().union(*(data_words(d) for d in saved))
        # a long sentence is cut to fit its label ("the brown fo…"): the start of a data word is data too
        english = [w for w in english_words(text, allowed) if not any(d.startswith(w.lower()) for d in data)]
        assert not english, f"zh_CN/{page_path}, {root.get_attribute('data-kind')}: English words {english}"
        assert CJK.search(text), f"zh_CN/{page_path}, {root.get_attribute('data-kind')} shows no Chinese"

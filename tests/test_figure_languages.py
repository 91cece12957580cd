"""Figures in the reader's language: one figure cell draws every language, each edition shows its own.

``attention_course.views.plotting.bilingual`` (the drawing) and ``_ext/figure_languages.py`` (the
choice at build time); the chapters' figure cells that are not bilingual yet are listed here.
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
import random
import re
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib import pyplot as plt  # noqa: E402

from attention_course.views import plotting  # noqa: E402
from attention_course.views.plotting import (  # noqa: E402
    bilingual_bundle,
    en_zh,
    figure_language,
    figure_mime,
    figure_texts,
    mark_data,
)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "_ext"))
import figure_languages  # noqa: E402  (the book's local extension)


@pytest.fixture(autouse=True)
def course_style():
    """The course's style (its CJK font) for each test, matplotlib's own afterwards."""
    with matplotlib.rc_context():
        plotting.use_course_style()
        yield


def _draw(seen: list):
    """A figure whose texts say which language drew it; ``seen`` records the languages in order."""
    def draw():
        seen.append(figure_language())
        fig, ax = plt.subplots(figsize=(3, 2))
        ax.plot([0, 1], [0, 1], label=en_zh("each step", "每一步"))
        ax.set(xlabel=en_zh("training step", "训练步数"), title=en_zh("training loss", "训练损失"))
        ax.legend()
        return fig
    return draw


def _texts(png_b64: str) -> bytes:
    return base64.b64decode(png_b64)


def test_bilingual_draws_each_language_and_tags_it(monkeypatch):
    monkeypatch.delenv("ATTENTION_COURSE_LANGUAGE", raising=False)
    seen = []
    data, metadata = bilingual_bundle(_draw(seen))
    assert seen == ["en", "zh_CN"]  # the course's language first
    assert metadata["attention_course"]["figure_languages"] == {"en": "image/png", "zh_CN": figure_mime("zh_CN")}
    # the texts the Chinese image draws travel with it (the English is the source: not recorded)
    assert set(metadata["attention_course"]["figure_texts"]) == {"zh_CN"}
    assert {"每一步", "训练步数", "训练损失"} <= set(metadata["attention_course"]["figure_texts"]["zh_CN"]["labels"])
    assert set(data) == {"image/png", figure_mime("zh_CN"), "text/plain"}
    english, chinese = _texts(data["image/png"]), _texts(data[figure_mime("zh_CN")])
    assert english.startswith(b"\x89PNG") and chinese.startswith(b"\x89PNG") and english != chinese
    # the English image is the figure drawn alone in English, as plt.show() would show it
    from IPython.core.pylabtools import print_figure

    with plotting.drawing_in("en"):
        alone = _draw([])()
    assert print_figure(alone, "png", bbox_inches="tight") == english
    plt.close(alone)
    assert plt.get_fignums() == []  # bilingual closed both figures


def test_the_course_language_is_the_image_jupyter_shows(monkeypatch):
    monkeypatch.setenv("ATTENTION_COURSE_LANGUAGE", "zh_CN")  # a Chinese notebook's setup cell
    assert en_zh("key", "键") == "键"  # outside a drawing: the course's language (explorers' figures)
    seen = []
    data, metadata = bilingual_bundle(_draw(seen))
    assert seen == ["zh_CN", "en"]
    assert metadata["attention_course"]["figure_languages"] == {"zh_CN": "image/png", "en": figure_mime("en")}
    monkeypatch.setenv("ATTENTION_COURSE_LANGUAGE", "en")
    english, _ = bilingual_bundle(_draw([]))
    assert data[figure_mime("en")] == english["image/png"]
    assert data["image/png"] == english[figure_mime("zh_CN")]


def test_every_language_draws_the_same_data_and_leaves_the_random_state_as_one_drawing(monkeypatch):
    monkeypatch.delenv("ATTENTION_COURSE_LANGUAGE", raising=False)
    drawn = []

    def draw():
        values = np.random.rand(3).tolist() + [random.random()]
        drawn.append(values)
        fig, ax = plt.subplots()
        ax.plot(values)
        return fig

    np.random.seed(1)
    random.seed(1)
    bilingual_bundle(draw)
    after = (np.random.rand(), random.random())
    np.random.seed(1)
    random.seed(1)
    once = draw()
    plt.close(once)
    assert drawn[0] == drawn[1] == drawn[2]
    assert after == (np.random.rand(), random.random())


def test_draw_must_return_its_figure():
    with pytest.raises(TypeError, match="must return the figure"):
        bilingual_bundle(lambda: None)
    plt.close("all")
    with pytest.raises(ValueError):
        with plotting.drawing_in("fr"):
            pass


def test_the_package_helpers_label_in_the_language_being_drawn():
    from attention_course.views.plotting import plot_weights

    for language, label in [("en", "attention weight"), ("zh_CN", "注意力权重")]:
        with plotting.drawing_in(language):
            fig, ax = plt.subplots()
            plot_weights(ax, ["a", "b"], [0.3, 0.7])
        assert ax.get_xlabel() == label
        plt.close(fig)


def test_each_build_keeps_its_own_language():
    data, metadata = bilingual_bundle(_draw([]))
    output = {"output_type": "display_data", "data": data, "metadata": metadata}
    stream = {"output_type": "stream", "name": "stdout", "text": "hello\n"}
    for language, mime in [("en", "image/png"), ("zh_CN", figure_mime("zh_CN"))]:
        chosen, missing = figure_languages.choose_language([stream, output], language)
        assert missing == [] and chosen[0] == stream
        assert chosen[1]["data"] == {"image/png": data[mime], "text/plain": data["text/plain"]}
        assert chosen[1]["metadata"] == {}
    assert set(output["data"]) == set(data)  # the notebook's own output is left as it was
    _, missing = figure_languages.choose_language([output], "fr")
    assert missing == [metadata["attention_course"]["figure_languages"]]


# ---------------------------------------------------------------------------------------------
# A tiny book: one notebook with one bilingual figure, built in English and in Chinese.

CAPTION, ALT = "Training loss of the model.", "Line chart of the training loss."
CAPTION_ZH, ALT_ZH = "模型的训练损失。", "训练损失的折线图。"


def _tiny_book(folder: Path, draw=None) -> dict[str, bytes]:
    data, metadata = bilingual_bundle(draw or _draw([]))
    cell = {"cell_type": "code", "execution_count": 1, "source": "bilingual(draw)", "id": "fig",
            "metadata": {"mystnb": {"figure": {"caption": CAPTION, "name": "fig-loss"}, "image": {"alt": ALT}}},
            "outputs": [{"output_type": "display_data", "data": data, "metadata": metadata},
                        {"output_type": "stream", "name": "stdout", "text": "done\n"}]}
    notebook = {"nbformat": 4, "nbformat_minor": 5, "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                              "language": "python"}},
                "cells": [{"cell_type": "markdown", "id": "title", "metadata": {},
                           "source": "# A page\n\nSee {numref}`fig-loss`."}, cell]}
    (folder / "index.ipynb").write_text(json.dumps(notebook), encoding="utf-8")
    (folder / "conf.py").write_text(
        f"import sys\nsys.path.insert(0, {str(ROOT / '_ext')!r})\n"
        "extensions = ['myst_nb', 'figure_languages']\nnb_execution_mode = 'off'\n"
        "locale_dirs = ['locales']\ngettext_compact = False\nnumfig = True\n"
        "exclude_patterns = ['_build', 'locales']\n", encoding="utf-8")
    messages = (folder / "locales" / "zh_CN" / "LC_MESSAGES")
    messages.mkdir(parents=True)
    (messages / "index.po").write_text(
        'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'
        'msgid "A page"\nmsgstr "一页"\n\n'
        'msgid "See {numref}`fig-loss`."\nmsgstr "见 {numref}`fig-loss`。"\n\n'
        f'msgid "{CAPTION}"\nmsgstr "{CAPTION_ZH}"\n\nmsgid "{ALT}"\nmsgstr "{ALT_ZH}"\n', encoding="utf-8")
    return {"en": _texts(data["image/png"]), "zh_CN": _texts(data[figure_mime("zh_CN")])}


def _build(folder: Path, language: str, expect_warnings: bool = False) -> str:
    """The page built in ``language`` (after asserting the build warned of nothing), or with
    ``expect_warnings`` the build's warnings."""
    from sphinx.application import Sphinx
    from sphinx.util.docutils import docutils_namespace

    warnings = io.StringIO()
    out = folder / "_build" / language
    with docutils_namespace():  # each build registers its nodes afresh, as sphinx-build's own process would
        app = Sphinx(str(folder), str(folder), str(out), str(folder / "_build" / f".doctrees-{language}"), "html",
                     confoverrides={"language": language}, status=None, warning=warnings, freshenv=True)
        app.build()
    if expect_warnings:
        return warnings.getvalue()
    assert warnings.getvalue() == "", warnings.getvalue()
    return (out / "index.html").read_text(encoding="utf-8")


def test_the_english_page_shows_only_the_english_image_and_the_chinese_page_only_the_chinese(tmp_path):
    images = _tiny_book(tmp_path)
    names = {language: hashlib.sha256(png).hexdigest() for language, png in images.items()}
    for language, caption, alt in [("en", CAPTION, ALT), ("zh_CN", CAPTION_ZH, ALT_ZH)]:
        page = _build(tmp_path, language)
        other = "zh_CN" if language == "en" else "en"
        assert page.count("<img ") == 1 and names[language] in page and names[other] not in page
        figure = re.search(r'<figure[^>]*id="fig-loss".*?</figure>', page, re.S)
        assert figure and f'alt="{alt}"' in figure.group(0) and caption in figure.group(0)
        assert "done" in page  # the cell's other outputs are kept


# ---------------------------------------------------------------------------------------------
# ---------------------------------------------------------------------------------------------
# The chapters' figure cells that still draw in English only (a figure cell: it has a caption,
# ``mystnb.figure``, or shows a matplotlib figure). Make one bilingual, then take it off this list.

NOT_YET_BILINGUAL: dict[str, list[str]] = {}


def figure_cells(notebook: Path):
    """``(name, source)`` of each figure cell of a chapter (its ``mystnb.figure`` name, else ``cell N``)."""
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    for index, cell in enumerate(nb["cells"]):
        source = "".join(cell["source"])
        figure = cell.get("metadata", {}).get("mystnb", {}).get("figure")
        if cell["cell_type"] == "code" and (figure or re.search(r"\bplt\.show\(|\bbilingual\(", source)):
            yield (figure or {}).get("name") or f"cell {index}", source


def test_the_chapters_figures_not_yet_bilingual_are_listed():
    found = {}
    for notebook in sorted((ROOT / "book").glob("0*_*.ipynb")):
        english_only = [name for name, source in figure_cells(notebook) if not re.search(r"\bbilingual\(", source)]
        if english_only:
            found[notebook.stem] = english_only
    assert found == NOT_YET_BILINGUAL, (
        "the chapters' figure cells that draw in English only have changed; they are now:\n"
        + json.dumps(found, indent=1))


# ---------------------------------------------------------------------------------------------
# The words inside a Chinese image: recorded when it is drawn, checked by the Chinese build.

def _labelled_figure():
    """A figure with a text of every kind, half of them declared data."""
    fig, (ax, other) = plt.subplots(1, 2, figsize=(5, 2))
    ax.plot([0, 1], [0, 1], label="legend entry")
    ax.legend()
    ax.set(title="axes title", xlabel="x label", ylabel="y label")
    ax.set_xticks([0, 1], ["first tick", "second tick"])
    ax.set_yticks([0, 1], ["data tick", "other data tick"])
    mark_data(ax.yaxis)
    ax.annotate("an annotation", (0.5, 0.5))
    ax.text(0.2, 0.8, "a text")
    mark_data(ax.text(0.2, 0.2, "a data text"))
    image = other.imshow(np.eye(2))
    fig.colorbar(image, ax=other, label="colour bar label")
    hidden = fig.add_axes((0, 0, 0.1, 0.1))
    hidden.set_title("in hidden axes")
    hidden.set_visible(False)
    other.text(0, 0, "invisible").set_visible(False)
    fig.suptitle("figure title")
    return fig


def test_figure_texts_tells_labels_from_data():
    fig = _labelled_figure()
    texts = figure_texts(fig)
    plt.close(fig)
    words = {"legend entry", "axes title", "x label", "y label", "first tick", "second tick", "an annotation",
             "a text", "colour bar label", "figure title"}
    assert words <= set(texts["labels"])
    assert {"data tick", "other data tick", "a data text"} == set(texts["data"])
    assert not {"in hidden axes", "invisible"} & set(texts["labels"] + texts["data"])
    # the rest are the numbers of the colour bar's and the right axes' ticks
    assert all(not re.search(r"[A-Za-z]", t) for t in set(texts["labels"]) - words), texts["labels"]
    with pytest.raises(TypeError, match="Text or Axis"):
        mark_data("a string")


def test_english_words_leave_out_maths_symbols_names_and_units():
    assert figure_languages.english_words("注意力权重") == []
    assert figure_languages.english_words(r"$\alpha_{ij}$ 与 $e_{ij}$：q、k、v，d_k = 64") == []
    assert figure_languages.english_words("GPT-2 与 SmolLM2 的 softmax，12 ms，RoPE") == []
    assert figure_languages.english_words("scaled_dot_product_attention：n×d 的 heads×n×n") == ["heads"]
    assert figure_languages.english_words("训练 loss（GPT-2）") == ["loss"]
    assert figure_languages.english_words("post-norm 与 pre-norm") == ["post-norm", "pre-norm"]
    # a quotation is what the figure is about, cited as it is
    assert figure_languages.english_words("“The animal didn't cross”：第 2 层 of") == ["of"]


def _output(draw) -> dict:
    data, metadata = bilingual_bundle(draw)
    return {"output_type": "display_data", "data": data, "metadata": metadata}


def _figure_with(title: str, ticks=("1", "2"), ticks_are_data: bool = False):
    def draw():
        fig, ax = plt.subplots(figsize=(3, 2))
        ax.plot([1, 2], [0.5, 0.2], label=en_zh("validation", "验证集"))
        ax.set_xticks([1, 2], list(ticks))
        if ticks_are_data:
            mark_data(ax.xaxis)
        ax.set(title=title, ylabel=en_zh("loss", "损失"))
        ax.legend()
        return fig
    return draw


def test_a_forgotten_pair_is_found_in_the_chinese_image(monkeypatch):
    monkeypatch.delenv("ATTENTION_COURSE_LANGUAGE", raising=False)
    forgotten = _output(_figure_with("training loss"))
    assert figure_languages.english_labels(forgotten, "zh_CN") == [
        "'training' in label 'training loss'", "'loss' in label 'training loss'"]
    assert figure_languages.english_labels(forgotten, "en") == []  # English is the source
    # en_zh called before the drawing (outside bilingual) is the course's language, English, in both images
    too_early = _output(_figure_with(en_zh("training loss", "训练损失")))
    assert figure_languages.english_labels(too_early, "zh_CN") != []
    words = _output(_figure_with("", ticks=("dot", "cosine")))  # tick labels are labels unless declared
    assert figure_languages.english_labels(words, "zh_CN") == [
        "'dot' in label 'dot'", "'cosine' in label 'cosine'"]


def test_a_figure_labelled_in_chinese_passes(monkeypatch):
    monkeypatch.delenv("ATTENTION_COURSE_LANGUAGE", raising=False)

    def paired():
        return _figure_with(en_zh("training loss", "训练损失"), ticks=("the", "cat"), ticks_are_data=True)()

    output = _output(paired)
    assert figure_languages.english_labels(output, "zh_CN") == []
    assert output["metadata"]["attention_course"]["figure_texts"]["zh_CN"]["data"] == ["the", "cat"]
    stream = {"output_type": "stream", "name": "stdout", "text": "training loss\n"}
    assert figure_languages.english_labels(stream, "zh_CN") is None  # not a figure
    del output["metadata"]["attention_course"]["figure_texts"]
    assert figure_languages.english_labels(output, "zh_CN") == [
        "no record of the texts its zh_CN image draws (figure_texts in its metadata)"]


def test_the_chinese_build_names_the_page_the_cell_and_the_word(tmp_path):
    _tiny_book(tmp_path, draw=_figure_with("training loss"))
    assert _build(tmp_path, "en", expect_warnings=True) == ""
    warnings = _build(tmp_path, "zh_CN", expect_warnings=True)
    found = [line for line in warnings.splitlines() if "WARNING" in line]
    assert len(found) == 1 and "index.ipynb" in found[0] and "figure of cell 1 " in found[0], warnings
    assert "'training' in label 'training loss'; 'loss' in label 'training loss'" in found[0]


def test_the_chinese_diagrams_have_no_english_word():
    """tools/diagrams.py draws each diagram's labels as outlines: read the labels it draws in Chinese
    (from its LABELS table, or as they are when a label has no entry) and check them by the same rule."""
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import diagrams
    finally:
        sys.path.remove(str(ROOT / "tools"))
    model_inputs = {"freitag", "märz", "bos"}  # the German date Chapters 1 and 7 read, and its first token
    allowed = figure_languages.ALLOWED_WORDS | model_inputs
    english = {name: [(label, words) for label, _, _ in diagrams.labels(name, "zh_CN")
                      if (words := figure_languages.english_words(label, allowed))]
               for name in diagrams.DIAGRAMS}
    assert {name: found for name, found in english.items() if found} == {}

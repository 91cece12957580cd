"""Figures and a widget for the attention heads of a pretrained model (Chapters 4-5)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from attention_course.views.explorer import Explorer, encode_unit, say
from attention_course.models.pretrained import WordAttention, word_attentions
from attention_course.views.plotting import COLORS, draw_heatmap, en_zh, mark_data

__all__ = ["plot_head", "plot_lines", "plot_layer", "HeadViewer", "HeadExplorer"]


def _layer_head(layer: int, head: int) -> str:
    return en_zh(f"layer {layer}, head {head}", f"第 {layer} 层，第 {head} 个头")


def plot_head(ax, attention: WordAttention, layer: int, head: int, annotate: bool = False):
    """Heatmap of one head: rows = the attending word (query), columns = attended word (key).

    Drawn by :func:`~attention_course.views.plotting.draw_heatmap` (scale 0 to 1); with
    ``annotate``, weights of 0.1 or more are printed in their cells.
    """
    return draw_heatmap(ax, attention.weights[layer, head], attention.words, attention.words,
                        title=_layer_head(layer, head), xlabel=en_zh("attended to (key)", "被关注的词（键）"),
                        ylabel=en_zh("attending (query)", "发出关注的词（查询）"), fontsize=8, rotation=90, aspect="equal",
                        annotate="{:.1f}" if annotate else None, annotate_from=0.1)


def plot_lines(ax, attention: WordAttention, layer: int, head: int, source: int | None = None,
               threshold: float = 0.02):
    """Token-to-token lines: words on the left attend to words on the right; line opacity
    and width follow the weight. With ``source`` set, only that word's lines are drawn."""
    w = attention.weights[layer, head]
    n = len(attention.words)
    y = -np.arange(n)
    for i in range(n):
        if source is not None and i != source:
            continue
        for j in range(n):
            if w[i, j] >= threshold:
                ax.plot([0, 1], [y[i], y[j]], color=COLORS["highlight"] if source is not None else COLORS["main"],
                        alpha=float(min(1.0, 0.15 + w[i, j])), linewidth=0.5 + 4 * w[i, j])
    for k, word in enumerate(attention.words):
        # The source word is marked by colour, not bold: the CJK fallback font has no bold
        # face, and matplotlib would print a findfont warning to stderr.
        colour = COLORS["highlight"] if k == source else "black"
        mark_data(ax.text(-0.05, y[k], word, ha="right", va="center", fontsize=9, color=colour),
                  ax.text(1.05, y[k], word, ha="left", va="center", fontsize=9))  # the sentence's words: data
    ax.set_xlim(-0.6, 1.6)
    ax.set_ylim(-n + 0.5, 0.5)
    ax.axis("off")
    ax.set_title(_layer_head(layer, head))


def plot_layer(attention: WordAttention, layer: int, highlight: tuple[int, int] | None = None):
    """All heads of one layer side by side (3 rows of 4 for MiniLM's 12 heads)."""
    heads = attention.weights.shape[1]
    cols = 4
    rows = int(np.ceil(heads / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(12, 3.1 * rows), layout="constrained")
    for head, ax in enumerate(axes.flat):
        if head >= heads:
            ax.axis("off")
            continue
        draw_heatmap(ax, attention.weights[layer, head], title=en_zh(f"head {head}", f"第 {head} 个头"), title_size=9,
                     aspect="equal")
        ax.title.set_color(COLORS["highlight"] if highlight and highlight == (layer, head) else "black")
    fig.suptitle(en_zh(f"“{attention.sentence}”: the {heads} heads of layer {layer} "
                       "(rows attend to columns; darker = more weight)",
                       f"“{attention.sentence}”：第 {layer} 层的 {heads} 个头（行关注列；颜色越深，权重越大）"),
                 fontsize=10)
    return fig


class HeadViewer:
    """Explorer of a pretrained encoder's attention heads: for each sentence, a layer and a head,
    the head's heatmap and its token-to-token lines, or all heads of the layer at once.

    :meth:`widget` precomputes every layer and head for every sentence given here, so all of
    them are live in the static book (drawn in the browser); with a kernel, a sentence typed
    into the widget is run through MiniLM in Python and added.

    Args:
        sentences: the sentences offered in the dropdown (the static book offers only these).
        source: a word whose lines are drawn by default when present (e.g. ``"it"``).
        max_extra: how many typed sentences the widget keeps besides the presets.

    Raises:
        ValueError: if ``sentences`` is empty.
    """

    model_name = "MiniLM (all-MiniLM-L6-v2)"

    def __init__(self, sentences, source: str | None = None, max_extra: int = 12):
        if not sentences:
            raise ValueError("HeadViewer needs at least one sentence")
        self.sentences = list(dict.fromkeys(sentences))  # unique, in order
        self.source = source
        self.max_extra = max_extra
        self._cache: dict[str, WordAttention] = {}

    def attention(self, sentence: str) -> WordAttention:
        if sentence not in self._cache:
            self._cache[sentence] = word_attentions(sentence)
        return self._cache[sentence]

    def figure(self, sentence: str, layer: int, head: int, view: str = "head"):
        """``view="head"``: heatmap and lines of one head; ``view="layer"``: all heads."""
        attention = self.attention(sentence)
        if view == "layer":
            return plot_layer(attention, layer, highlight=(layer, head))
        source = None
        if self.source and self.source.lower() in [w.lower() for w in attention.words]:
            source = attention.index(self.source)
        fig, (ax_map, ax_lines) = plt.subplots(1, 2, figsize=(11, 5), layout="constrained",
                                               gridspec_kw={"width_ratios": [1.2, 1]})
        plot_head(ax_map, attention, layer, head)
        plot_lines(ax_lines, attention, layer, head, source=source)
        return fig

    def describe(self, sentence: str, layer: int, head: int, view: str = "head") -> str:
        """Alt text for :meth:`figure`, in the course's language."""
        attention = self.attention(sentence)
        if view == "layer":
            return say("head_viewer", "alt_layer", heads=attention.weights.shape[1], layer=layer, sentence=sentence)
        w = attention.weights[layer, head]
        parts = []
        for i, word in enumerate(attention.words):
            j = int(np.argmax(w[i]))
            parts.append(f"{word}→{attention.words[j]} {w[i, j]:.2f}")
        return say("head_viewer", "alt_head", layer=layer, head=head, sentence=sentence, links="; ".join(parts))

    def explorer_data(self, sentences=None) -> dict:
        """What the browser draws from: every layer and head of every sentence (JSON-able).

        Weights are packed with :func:`~attention_course.views.explorer.encode_unit` (one byte each).
        """
        sentences = self.sentences if sentences is None else sentences
        items = []
        for text in sentences:
            attention = self.attention(text)
            items.append({"text": text, "words": list(attention.words),
                          "weights": encode_unit(attention.weights)})  # (layers, heads, n, n)
        layers, heads = self.attention(sentences[0]).weights.shape[:2]
        return {"model": self.model_name, "layers": int(layers), "heads": int(heads),
                "source": self.source or "", "sentences": items}

    def widget(self, sentence: str | None = None, layer: int = 5, head: int = 11,
               view: str = "head") -> "HeadExplorer":
        """The explorer: sentence, layer, head and view controls, drawn in the browser.

        Raises:
            ValueError: if ``view`` is neither ``"head"`` nor ``"layer"``, the sentence is not
            one of the viewer's, or the layer or head is out of range.
        """
        if view not in ("head", "layer"):
            raise ValueError(f"view must be 'head' or 'layer'; got {view!r}")
        sentence = sentence or self.sentences[0]
        if sentence not in self.sentences:
            raise ValueError(f"{sentence!r} is not one of the viewer's sentences: {self.sentences}")
        data = self.explorer_data()
        if not (0 <= layer < data["layers"] and 0 <= head < data["heads"]):
            raise ValueError(f"layer {layer}, head {head} out of range: the model has "
                             f"{data['layers']} layers of {data['heads']} heads")
        explorer = HeadExplorer(
            data=data,
            controls={"sentence": self.sentences.index(sentence), "layer": int(layer),
                      "head": int(head), "view": view},
            alt=self.describe(sentence, layer, head, view),
        )
        explorer.accept_typed("sentence", self.sentences, self.explorer_data,
                              check=_require_text, keep=self.max_extra)
        return explorer


def _require_text(text: str) -> None:
    if not text:
        raise ValueError(say("head_viewer", "empty_sentence"))


class HeadExplorer(Explorer, kind="head_viewer"):
    """Chapters 4-5's head explorer (front-end: ``static/explorers/head_viewer.js``)."""

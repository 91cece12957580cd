"""The drawn diagrams: fresh, placed before their maths, described."""
import re
import subprocess
import sys

import nbformat
import pytest

from course_tools import ROOT

FIGURES = ROOT / "book" / "figures"

# diagram -> (chapter notebook, label of the first equation it must precede or None,
#             the lecture's figure numbers its caption cites)
PLACEMENT = {
    "ch1_encoder_decoder": ("01_origin", "eq-ch1-context", ("1", "2")),
    "ch2_rnnsearch": ("02_bahdanau_attention", "eq-output", ("4",)),
    "ch3_database_lookup": ("03_general_form", "eq-attention", ("5",)),
    "ch3_three_stages": ("03_general_form", "eq-stage-score", ("6",)),
    "ch4_self_attention": ("04_self_attention", "eq-qkv", ("8", "9")),
    "ch5_multi_head": ("05_multi_head_attention", "eq-head", ("13", "14")),
    "ch6_transformer_bert_gpt": ("06_attention_and_llms", None, ("15",)),
}


def test_diagrams_are_fresh():
    """The committed SVGs are exactly what tools/diagrams.py draws."""
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "diagrams.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_every_diagram_is_placed_and_none_is_orphaned():
    committed = {p.stem for p in FIGURES.glob("*.svg")}
    assert committed == set(PLACEMENT), (
        f"SVGs without a placement here: {committed - set(PLACEMENT)}; "
        f"placements without an SVG: {set(PLACEMENT) - committed}")
    chapters = {p.stem for p in (ROOT / "book").glob("0*.ipynb")}
    assert {nb for nb, _, _ in PLACEMENT.values()} == chapters, "every chapter needs a diagram"


@pytest.mark.parametrize("name", sorted(PLACEMENT))
def test_diagram_svg_is_self_contained(name):
    svg = (FIGURES / f"{name}.svg").read_text()
    assert "<text" not in svg, "text must be drawn as paths (svg.fonttype = path)"
    assert "<dc:date>" not in svg, "no date: the SVG must regenerate byte-identically"
    assert 'id="patch_1"' in svg and "fill: #ffffff" in svg, "opaque light background expected"


@pytest.mark.parametrize("name", sorted(PLACEMENT))
def test_diagram_has_alt_caption_and_comes_before_its_maths(name):
    notebook, equation, lecture_figures = PLACEMENT[name]
    nb = nbformat.read(ROOT / "book" / f"{notebook}.ipynb", as_version=4)
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    directive = re.search(r"```\{figure\} figures/" + name + r"\.svg\n(.*?)```", markdown, re.S)
    assert directive, f"{notebook}: no figure directive shows figures/{name}.svg"
    body = directive.group(1)
    alt = re.search(r"^:alt: (.+)$", body, re.M)
    assert alt and len(alt.group(1)) > 150, f"{name}: the alt text must describe the diagram"
    assert re.search(r"^:name: fig-", body, re.M), f"{name}: the figure needs a :name: to refer to"
    caption = body.split("\n\n", 1)[-1]
    cited = re.search(r"lecture's figures? ([0-9, and]+)", caption)
    assert cited and all(n in re.findall(r"\d+", cited.group(1)) for n in lecture_figures), (
        f"{name}: the caption must cite the lecture's figure(s) {lecture_figures}")
    if equation:
        assert f"({equation})" in markdown, f"{notebook}: equation {equation} not found"
        assert directive.start() < markdown.index(f"({equation})"), (
            f"{name} must come before Equation {equation}, as the lecture puts it before the maths")

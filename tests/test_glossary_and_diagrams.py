"""The drawn diagrams (fresh, placed before their maths, described) and the glossary's pinyin table."""
import re
import subprocess
import sys

import nbformat
import pytest
import yaml
from pypinyin import Style, lazy_pinyin, load_phrases_dict

from course_tools import ROOT

FIGURES = ROOT / "book" / "figures"

# diagram -> (chapter notebook, label of the first equation it must precede or None,
#             the lecture's figure numbers its caption cites; () for a diagram beyond the lecture,
#             whose caption must say so and cite no lecture figure)
PLACEMENT = {
    "ch1_encoder_decoder": ("01_origin", "eq-ch1-context", ("1", "2")),
    "ch2_rnnsearch": ("02_bahdanau_attention", "eq-output", ("4",)),
    "ch3_database_lookup": ("03_general_form", "eq-attention", ("5",)),
    "ch3_three_stages": ("03_general_form", "eq-stage-score", ("6",)),
    "ch4_self_attention": ("04_self_attention", "eq-qkv", ("8", "9")),
    "ch4_matrix_form": ("04_self_attention", "eq-matrix-form", ("10", "11", "12")),
    "ch5_multi_head": ("05_multi_head_attention", "eq-head", ("13", "14")),
    "ch6_transformer_bert_gpt": ("06_attention_and_llms", None, ("15",)),
    "ch7_transformer": ("07_transformer_on_dates", "eq-ch7-input", ("15",)),
    "ch8_modern_block": ("08_todays_llms", "eq-rmsnorm", ()),
}


def test_diagrams_are_fresh():
    """The committed SVGs, English and Chinese, are exactly what tools/diagrams.py draws, and
    no label of either language leaves its box or the figure or overlaps another."""
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "diagrams.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def english_svgs():
    """book/figures/<name>.svg, without the Chinese <name>.zh_CN.svg."""
    return {p.stem for p in FIGURES.glob("*.svg") if "." not in p.stem}


def test_every_diagram_is_placed_and_none_is_orphaned():
    committed = english_svgs()
    assert committed == set(PLACEMENT), (
        f"SVGs without a placement here: {committed - set(PLACEMENT)}; "
        f"placements without an SVG: {set(PLACEMENT) - committed}")
    chapters = {p.stem for p in (ROOT / "book").glob("0*.ipynb")}
    assert {nb for nb, _, _ in PLACEMENT.values()} == chapters, "every chapter needs a diagram"


@pytest.mark.parametrize("svg_name", [f"{name}{suffix}.svg" for name in sorted(PLACEMENT)
                                      for suffix in ("", ".zh_CN")])
def test_diagram_svg_is_self_contained(svg_name):
    svg = (FIGURES / svg_name).read_text()
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
    if lecture_figures:
        cited = re.search(r"lecture's figures? ([0-9, and]+)", caption)
        assert cited and all(n in re.findall(r"\d+", cited.group(1)) for n in lecture_figures), (
            f"{name}: the caption must cite the lecture's figure(s) {lecture_figures}")
    else:
        assert not re.search(r"lecture's figures?", caption), (
            f"{name}: the lecture has no such figure, so the caption must not cite one")
        assert "beyond the lecture" in caption, (
            f"{name}: the caption must say that the diagram goes beyond the lecture")
    if equation:
        assert f"({equation})" in markdown, f"{notebook}: equation {equation} not found"
        assert directive.start() < markdown.index(f"({equation})"), (
            f"{name} must come before Equation {equation}, as the lecture puts it before the maths")


# ---------------------------------------------------------------- what the diagrams say
# The SVGs draw text as paths, so these read the labels from tools/diagrams.py itself
# (test_diagrams_are_fresh ties the committed SVGs to it).

def diagrams_module():
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import diagrams
    finally:
        sys.path.remove(str(ROOT / "tools"))
    return diagrams


def diagram_labels(name, language="en"):
    return diagrams_module().labels(name, language)


def test_every_diagram_has_its_chinese_svg():
    """The Chinese build shows <name>.zh_CN.svg in place of <name>.svg (figure_language_filename)."""
    chinese = {p.name.removesuffix(".zh_CN.svg") for p in FIGURES.glob("*.zh_CN.svg")}
    assert chinese == english_svgs(), (
        f"English diagrams without a Chinese SVG: {english_svgs() - chinese}; "
        f"Chinese SVGs without an English one: {chinese - english_svgs()}")
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    assert config["sphinx"]["config"].get("figure_language_filename") == "{root}.{language}{ext}", (
        "the Chinese build needs figure_language_filename under sphinx: config: in _config.yml")


# Latin words a Chinese diagram may show: names of models, papers' authors and modules that the
# Chinese chapters keep in English too, and the inputs a model reads (the German date of
# Chapters 1 and 7, its tokens). Single letters are symbols (token i, N); maths ($...$) is maths.
LATIN_IN_CHINESE = {
    "GPT", "GPT-2", "SmolLM2", "RNNsearch", "BERT", "Transformer", "Vaswani",   # models, authors
    "softmax", "RoPE", "RMSNorm", "SwiGLU", "KV", "LayerNorm", "GRU", "MLP", "GELU",  # modules
    "Freitag", "März", "bos",                                                   # model inputs
}


def latin_words(label):
    """The words of Latin letters in a label outside its maths, single letters left out."""
    prose = re.sub(r"(?<!\\)\$.*?(?<!\\)\$", " ", label)
    return [w for w in re.findall(r"[A-Za-zÀ-ÿ][A-Za-zÀ-ÿ0-9]*(?:-[A-Za-z0-9]+)*", prose)
            if len(w) > 1]


@pytest.mark.parametrize("name", sorted(PLACEMENT))
def test_chinese_diagram_has_no_english_words(name):
    english = [(label, [w for w in latin_words(label) if w not in LATIN_IN_CHINESE])
               for label, _, _ in diagram_labels(name, "zh_CN")]
    left = [(label, words) for label, words in english if words]
    assert not left, f"{name}.zh_CN.svg still has English labels (add them to LABELS[{name!r}] " \
                     f"in tools/diagrams.py): {left}"


@pytest.mark.parametrize("name", sorted(PLACEMENT))
def test_chinese_diagram_draws_the_same_things(name):
    """Same number of labels at the same places; a label with no Latin words the same in both."""
    english, chinese = diagram_labels(name), diagram_labels(name, "zh_CN")
    assert [(x, y) for _, x, y in english] == [(x, y) for _, x, y in chinese]
    maths = [(en, zh) for (en, _, _), (zh, _, _) in zip(english, chinese) if not latin_words(en)]
    assert all(en == zh for en, zh in maths), [pair for pair in maths if pair[0] != pair[1]]


def test_ch7_diagram_shows_the_chapters_stacks_and_date_features():
    """Chapter 7's model, not the paper's: its block counts, and the date features it adds."""
    from attention_course.models.date_transformer import course_transformer_config

    config = course_transformer_config()
    texts = [text for text, _, _ in diagram_labels("ch7_transformer")]
    counts = [text for text in texts if re.fullmatch(r"\d+ ×|× \d+|N ×|× N", text)]
    assert counts == [f"{config.enc_layers} ×", f"{config.dec_layers} ×"], (
        f"block counts drawn {counts}; the chapter's configuration has {config.enc_layers} encoder "
        f"and {config.dec_layers} decoder block(s)")
    joined = "\n".join(texts)
    assert joined.count("segment embedding") == 2, "both stacks get the segment embedding"
    assert joined.count("within the date") == 2, "both stacks count positions within each date"
    assert "alignment prior" in joined, "the date features are labelled as a prior given to the model"


def smollm2_shape():
    """SmolLM2's (blocks, query heads, key/value heads), as shipped: from the converted copy's
    config.json when attention_course.models.smollm has written it (a JSON read), else from the GGUF file's
    metadata (a few seconds: the reader parses the whole header)."""
    import json

    from attention_course.models import smollm

    cache = smollm.smollm_cache_dir()
    if smollm._cache_complete(cache):
        config = json.loads((cache / "config.json").read_text())
        return tuple(config[key] for key in
                     ("num_hidden_layers", "num_attention_heads", "num_key_value_heads"))
    from gguf import GGUFReader

    fields = GGUFReader(smollm.smollm_gguf_path()).fields
    return tuple(int(fields[key].parts[fields[key].data[0]][0]) for key in
                 ("llama.block_count", "llama.attention.head_count", "llama.attention.head_count_kv"))


def test_ch8_diagram_names_the_four_changes_and_smollm2s_shape():
    """GPT-2's block on the left, SmolLM2's on the right with RMSNorm, RoPE, grouped-query attention
    and SwiGLU; SmolLM2's block and head counts are those of the model the course ships."""
    blocks, heads, kv_heads = smollm2_shape()
    labels = [(" ".join(text.split()), x) for text, x, _ in diagram_labels("ch8_modern_block")]
    titles = {text: x for text, x in labels if text in ("GPT-2 (2019)", "SmolLM2 (2024)")}
    assert len(titles) == 2 and titles["GPT-2 (2019)"] < titles["SmolLM2 (2024)"], titles
    middle = sum(titles.values()) / 2
    left = "\n".join(text for text, x in labels if x < middle and "changed since" not in text)
    right = "\n".join(text for text, x in labels if x > middle)
    for word in ("LayerNorm", "GELU", "position embedding"):
        assert word in left, f"GPT-2's block should name {word}"
    for word in ("RMSNorm", "RoPE", "grouped-query", "SwiGLU"):
        assert word in right, f"SmolLM2's block should name {word}"
        assert word not in left, f"{word} is new since GPT-2, not part of its block"
    assert "LayerNorm" not in right and "GELU" not in right
    assert f"{heads} query heads, {kv_heads} key/value heads" in right
    counts = [text for text, _ in labels if re.fullmatch(r"\d+ ×", text)]
    assert counts == ["12 ×", f"{blocks} ×"], (
        f"block counts drawn {counts}; GPT-2 small has 12 blocks, SmolLM2 {blocks}")


def test_ch4_matrix_form_labels_v_with_d_v():
    labels = diagram_labels("ch4_matrix_form")
    texts = [text for text, _, _ in labels]
    shapes = [texts[i + 1] for i, text in enumerate(texts) if text in ("$V$", "$B$")]  # label, then shape
    assert shapes == [r"$N \times d_v$"] * 3, f"V and B are N x d_v on both sides: {shapes}"
    assert r"$d_\mathrm{model} \times d_v$" in texts, "W^v maps d_model to d_v"


def test_ch4_self_attention_values_do_not_cross_the_softmax():
    """The values are drawn above the softmax box, beside the weights they are multiplied by."""
    labels = diagram_labels("ch4_self_attention")
    softmax_y = next(y for text, _, y in labels if text.startswith("softmax over"))
    values = [(text, y) for text, _, y in labels if text.startswith(r"$\mathbf{v}^")]
    assert len(values) == 4 and all(y > softmax_y for _, y in values), values


# ---------------------------------------------------------------- glossary: lookup by Chinese

# pypinyin's dictionary reads these two the other way; the glossary uses the usual readings.
load_phrases_dict({"残差": [["cán"], ["chā"]], "微调": [["wēi"], ["tiáo"]]})
GLOSSARY = (ROOT / "book" / "glossary.md").read_text(encoding="utf-8")
ROW = re.compile(r"^\| (.+?) \| (.*?) \| \{term\}`(.+?)` \| (.+?) \|$", re.M)


def pinyin_key(term):
    """Sort key: toneless syllables (Latin words kept, lower-cased), then the tones."""
    def syllables(style):
        return [s.strip().lower() for s in lazy_pinyin(term, style=style)
                if s.strip() and s.strip() not in "/-"]
    return syllables(Style.NORMAL), syllables(Style.TONE3)


def pinyin_rows():
    table = GLOSSARY.split("(glossary-by-pinyin)=", 1)
    assert len(table) == 2, "the glossary lacks its table by pinyin, (glossary-by-pinyin)="
    rows = ROW.findall(table[1])
    assert len(rows) >= 40, f"only {len(rows)} rows in the pinyin table"
    return rows


def glossary_terms():
    block = GLOSSARY.split(":::{glossary}", 1)[1].split(":::", 1)[0]
    return {line for line in block.splitlines() if line and not line.startswith((" ", ":"))}


def test_pinyin_table_is_sorted_by_pinyin():
    chinese = [row[0] for row in pinyin_rows()]
    expected = sorted(chinese, key=pinyin_key)
    assert chinese == expected, ("the Chinese terms are not in pinyin order; expected:\n"
                                 + "\n".join(expected))


def test_pinyin_column_matches_the_terms():
    for zh, pinyin, _, _ in pinyin_rows():
        want = " ".join(lazy_pinyin(zh, style=Style.TONE, errors="ignore"))
        assert pinyin == want, f"{zh}: pinyin {pinyin!r}, expected {want!r}"


def test_pinyin_rows_link_to_glossary_terms_and_say_whose_term():
    terms = glossary_terms()
    for zh, _, english, source in pinyin_rows():
        assert english in terms, f"{zh}: {english!r} is not a term of the glossary"
        assert source in ("**讲义** (lecture)", "本课程 (course)"), f"{zh}: source {source!r}"


def test_every_chinese_term_of_the_glossary_is_in_the_table():
    definitions = GLOSSARY.split("(glossary-by-pinyin)=", 1)[0]
    table = [row[0] for row in pinyin_rows()]
    missing = sorted({run for run in re.findall(r"[\u4e00-\u9fff]+", definitions)
                      if not any(run in zh for zh in table)})
    assert not missing, f"Chinese terms of the glossary missing from the pinyin table: {missing}"

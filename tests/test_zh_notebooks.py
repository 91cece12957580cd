"""The Chinese notebooks (zh_CN/, tools/zh_notebooks.py) and the Chinese pages' launch buttons."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "_ext"))
import colab_check  # noqa: E402
import editions  # noqa: E402
import zh_notebooks as zh  # noqa: E402


@pytest.fixture(scope="module")
def generated():
    texts, counts = zh.generate()
    return texts, counts


def test_committed_chinese_notebooks_are_what_the_generator_writes(generated):
    """zh_CN/ is exactly tools/zh_notebooks.py's output: regenerate it, never edit it by hand."""
    texts, _ = generated
    stale = [str(path.relative_to(ROOT)) for path, text in texts.items()
             if not path.is_file() or path.read_bytes() != text.encode("utf-8")]
    assert not stale, f"stale Chinese notebooks {stale}: run .venv/bin/python tools/zh_notebooks.py"
    extra = sorted(str(p.relative_to(ROOT)) for p in set(zh.OUT.rglob("*.ipynb")) - set(texts))
    assert not extra, f"Chinese notebooks without an English one: {extra}"


def test_every_chapter_and_student_notebook_has_a_chinese_twin(generated):
    texts, counts = generated
    english = sorted(ROOT.glob("book/*.ipynb")) + sorted(ROOT.glob("notebooks/*/*.ipynb"))
    assert len(english) == 16 and sorted(texts) == sorted(zh.OUT / p.relative_to(ROOT) for p in english)
    assert all(counts[p.relative_to(ROOT)] > 10 for p in english), counts


@pytest.mark.parametrize("source", zh.sources(), ids=str)
def test_same_code_cells_and_the_notebook_says_it_is_chinese(source):
    english = json.loads((ROOT / source).read_text(encoding="utf-8"))
    chinese = json.loads(zh.target(source).read_text(encoding="utf-8"))
    assert [c["cell_type"] for c in chinese["cells"]] == [c["cell_type"] for c in english["cells"]]
    assert [c.get("id") for c in chinese["cells"]] == [c.get("id") for c in english["cells"]]
    for index, (zh_cell, en_cell) in enumerate(zip(chinese["cells"], english["cells"])):
        if en_cell["cell_type"] == "code":
            en_meta = json.loads(json.dumps(en_cell["metadata"]))
            for group, key in (("figure", "caption"), ("image", "alt")):  # the translated metadata
                if key in en_meta.get("mystnb", {}).get(group, {}):
                    en_meta["mystnb"][group][key] = zh_cell["metadata"]["mystnb"][group][key]
            if "colab-setup" in en_meta.get("tags", []):  # the one change of code: the course's language
                assert zh.SETUP_ZH in "".join(zh_cell["source"])
            # the code itself is compared in test_zh_notebook_code.py (comments and printed text differ)
            if "checksum" in en_meta.get("nbgrader", {}):  # recomputed over the Chinese source
                en_meta["nbgrader"]["checksum"] = zh_cell["metadata"]["nbgrader"]["checksum"]
            assert zh_cell["metadata"] == en_meta and zh_cell.get("outputs") == en_cell.get("outputs")
    metadata = chinese["metadata"]
    assert metadata["attention_course"] == {**english["metadata"].get("attention_course", {}), "language": "zh_CN"}
    assert metadata["kernelspec"] == english["metadata"]["kernelspec"]
    assert metadata["language_info"] == english["metadata"]["language_info"]


def test_nbgrader_cells_carry_checksums_of_their_chinese_text():
    """Locked markdown cells, solution and test cells: nbgrader validate finds no cell changed."""
    import nbformat
    from nbgrader.utils import compute_checksum
    from nbgrader.validator import Validator

    checked = {"markdown": 0, "code": 0}
    for path in sorted((zh.OUT / "notebooks").glob("*/*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        english = nbformat.read(ROOT / path.relative_to(zh.OUT), as_version=4)
        for cell, en_cell in zip(notebook.cells, english.cells):
            grader = cell.metadata.get("nbgrader", {})
            if "checksum" in grader:
                assert grader["checksum"] == compute_checksum(cell), (path, cell.get("id"))
                checked[cell.cell_type] += cell.source != en_cell.source  # a translated cell
        assert Validator()._get_changed_cells(notebook) == [], path  # what `nbgrader validate` checks
        assert Validator()._get_type_changed_cells(notebook) == [], path
    assert checked["markdown"] > 16 and checked["code"] > 40, checked


# ---------------------------------------------------------------------------------------------
# No English paragraph left

_NOT_PROSE = [re.compile(pattern, re.S | re.M) for pattern in (
    r"^(`{3,}|~{3,})(?!\{).*?^\1",                      # a code fence
    r"\$\$.*?\$\$", r"\\begin\{(\w+\*?)\}.*?\\end\{\1\}",  # display maths
    r"(?<!\\)\$(?:\\.|[^$\\\n])+?\$",                     # inline maths
    r"\{[\w:+-]+\}`[^`]*`", r"`+[^`]*?`+",               # roles, inline code
    r"\]\([^)]*\)", r"https?://\S+", r"^\(\S+\)=\s*$",   # link targets, URLs, labels
    r"^\s*[`:]{3,}\{[\w-]+\}[^\n]*$", r"^\s*:(?!alt:)[\w-]+:.*$",  # directive lines, options
    r"“[^”]*”", r"\"[^\"\n]*\"", r"‘[^’]*’",             # quoted English: examples, labels
    r"（[^）]*）", r"\([^()\n]*\)",                       # glosses: 编码器（encoder）
)]
_WORD = r"[A-Za-z][A-Za-z'’-]*"
ENGLISH_RUN = re.compile(rf"{_WORD}(?:[ \t,;:.*_-]+{_WORD}){{5,}}")  # six English words in a row


def english_runs(text: str, data: str = "") -> list[str]:
    """Runs of 6+ English words in ``text`` outside code, maths, roles, links, quotes and glosses.

    ``data``: the notebook's code; a run it contains (an example sentence a model reads) is data.
    """
    for pattern in _NOT_PROSE:
        text = pattern.sub(" ", text)
    data = " ".join(data.lower().split())
    return [run for run in (m.group(0) for m in ENGLISH_RUN.finditer(text))
            if " ".join(run.lower().split()).strip(".") not in data]


def _texts(notebook: dict):
    """(cell index, text shown to the reader) of every markdown cell and figure caption or alt text."""
    for index, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] == "markdown":
            yield index, "".join(cell["source"])
        mystnb = cell["metadata"].get("mystnb", {})
        for group, key in (("figure", "caption"), ("image", "alt")):
            if mystnb.get(group, {}).get(key):
                yield index, mystnb[group][key]


def _code(notebook: dict) -> str:
    return "\n".join("".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code")


def test_the_english_check_finds_the_english_notebooks_english():
    notebook = json.loads((ROOT / "book/01_origin.ipynb").read_text(encoding="utf-8"))
    found = [run for _, text in _texts(notebook) for run in english_runs(text, _code(notebook))]
    assert len(found) > 30
    assert english_runs("这是 *“The black cat drank the milk”*（一个例句）。") == []
    assert english_runs("中文，然后 this sentence was left in English by mistake。") != []


@pytest.mark.parametrize("source", zh.sources(), ids=str)
def test_no_generated_markdown_cell_keeps_an_english_paragraph(source):
    notebook = json.loads(zh.target(source).read_text(encoding="utf-8"))
    code = _code(notebook)
    left = [(index, run) for index, text in _texts(notebook) for run in english_runs(text, code)]
    assert not left, f"{zh.target(source).relative_to(ROOT)} still has English text (cell, words): {left}"


# ---------------------------------------------------------------------------------------------
# The generator on markup of every kind

def _translator(messages: dict[str, str], fuzzy=()) -> "zh.Translator":
    return zh.Translator("test.ipynb", zh.Catalogue(dict(messages), set(fuzzy)), cell=3)


def test_markup_is_kept_and_every_block_translated():
    source = textwrap.dedent("""\
        (sec-x)=
        ## 1.2 A heading

        A paragraph over
        two lines with $a_i$ and {term}`a term <term>`.

        - an item
          on two lines
        - another item
          1. nested one

        > A quote
        > in two lines

        | Name | Value \\| bar |
        |:-----|------:|
        | `x` | plain |

        $$
        \\alpha = 1
        $$ (eq-a)

        ```{figure} figures/f.svg
        :name: fig-f
        :alt: Alt text of the figure

        The caption.
        ```

        ::::{grid} 1 1 2 2
        :::{grid-item-card} Card title
        - card item
        :::
        ::::

        ```python
        print("code stays")
        ```
        """)
    messages = {
        "1.2 A heading": "1.2 一个标题",
        "A paragraph over two lines with $a_i$ and {term}`a term <term>`.": "一个段落，含 $a_i$ 和 {term}`术语 <term>`。",
        "an item on two lines": "一项\n分两行",
        "another item": "另一项",
        "nested one": "嵌套的一项",
        "A quote in two lines": "一段引文",
        "Name": "名称", "Value | bar": "值 | 栏", "`x`": "`x`", "plain": "普通",
        "\n\\alpha = 1\n": "\n\\alpha = 1\n",
        "Alt text of the figure": "图的替代文字",
        "The caption.": "图注。",
        "Card title": "卡片标题",
        "card item": "卡片项",
    }
    translate = _translator(messages)
    result = zh.translate_markdown(source, translate)
    assert not translate.problems, translate.problems
    assert result == textwrap.dedent("""\
        (sec-x)=
        ## 1.2 一个标题

        一个段落，含 $a_i$ 和 {term}`术语 <term>`。

        - 一项
          分两行
        - 另一项
          1. 嵌套的一项

        > 一段引文

        | 名称 | 值 \\| 栏 |
        |:-----|------:|
        | `x` | 普通 |

        $$
        \\alpha = 1
        $$ (eq-a)

        ```{figure} figures/f.svg
        :name: fig-f
        :alt: 图的替代文字

        图注。
        ```

        ::::{grid} 1 1 2 2
        :::{grid-item-card} 卡片标题
        - 卡片项
        :::
        ::::

        ```python
        print("code stays")
        ```
        """)
    assert translate.translated == len(messages)


def test_a_missing_or_fuzzy_message_is_an_error_naming_notebook_cell_and_text():
    translate = _translator({"Translated.": "已翻译。"}, fuzzy={"A fuzzy one."})
    zh.translate_markdown("Translated.\n\nNot in the catalogue.\n\nA fuzzy one.\n", translate)
    assert translate.problems == [
        "test.ipynb, cell 3: missing translation for 'Not in the catalogue.'",
        "test.ipynb, cell 3: fuzzy translation for 'A fuzzy one.'",
    ]
    unknown = _translator({})
    zh.translate_markdown("```{mermaid}\ngraph LR\n```\n", unknown)
    assert "directive {mermaid} is not known" in unknown.problems[0]


def test_the_generator_writes_nothing_when_a_message_is_missing(tmp_path, monkeypatch):
    source = Path("book/01_origin.ipynb")
    monkeypatch.setattr(zh.Catalogue, "read", classmethod(lambda cls, docname: cls({})))
    with pytest.raises(zh.Untranslated, match=r"book/01_origin.ipynb, cell 1: missing translation for '1\. Where"):
        zh.generate([source])
    result = subprocess.run([sys.executable, str(ROOT / "tools/zh_notebooks.py"), "--check"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_release_script_regenerates_the_chinese_student_notebooks_after_the_english_ones():
    script = (ROOT / "scripts/release_notebooks.sh").read_text(encoding="utf-8")
    swap, chinese = script.index('mv "$work/notebooks" notebooks'), script.index("tools/zh_notebooks.py notebooks/")
    assert swap < chinese


def test_colab_check_runs_the_chinese_notebooks_as_their_english_twins():
    colab = colab_check
    notebooks = {p.relative_to(ROOT).as_posix(): p for p in colab.default_notebooks()}
    for source in zh.sources():
        assert f"zh_CN/{source.as_posix()}" in notebooks
        assert (colab.notebook_kind(notebooks[f"zh_CN/{source.as_posix()}"])
                == colab.notebook_kind(ROOT / source))
    assert colab.notebook_kind(ROOT / "zh_CN/notebooks/ch01_origin/origin.ipynb") == "student"


# ---------------------------------------------------------------------------------------------
# Launch buttons

def test_launch_links_of_a_chinese_page_open_its_chinese_notebook():
    """The links sphinx-book-theme builds (header_buttons/launch.py), as _config.yml configures them."""
    page = "notebooks/ch01_origin/origin"
    theme_links = {
        "colab": f"https://colab.research.google.com/github/attention-mechanisms/attention-course/blob/main/{page}.ipynb",
        "binder": f"https://mybinder.org/v2/gh/attention-mechanisms/attention-course/main?urlpath=tree/{page}.ipynb",
    }
    assert editions.translated_launch_url(theme_links["colab"], page).endswith(
        "/blob/main/zh_CN/notebooks/ch01_origin/origin.ipynb")
    assert editions.translated_launch_url(theme_links["binder"], page).endswith(
        "?urlpath=tree/zh_CN/notebooks/ch01_origin/origin.ipynb")
    assert editions.translated_launch_url("https://h/x/blob/main/docs/book/01.ipynb", "book/01", "/docs/") \
        == "https://h/x/blob/main/docs/zh_CN/book/01.ipynb"
    with pytest.raises(ValueError):
        editions.translated_launch_url("https://h/other.ipynb", page)
    for source in zh.sources():  # every notebook page has the notebook its link names
        assert (ROOT / editions.translated_notebook(source.with_suffix("").as_posix())).is_file()


@pytest.mark.slow
@pytest.mark.parametrize("language", ["en", "zh_CN"])
def test_a_built_page_launches_and_downloads_the_notebook_of_its_edition(tmp_path, language):
    """A one-page book with sphinx-book-theme and _ext/editions.py: Colab, Binder and the download."""
    import nbformat

    (tmp_path / "book").mkdir()
    (tmp_path / "zh_CN" / "book").mkdir(parents=True)
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Title\n\nEnglish.")])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, tmp_path / "book" / "01_x.ipynb")
    notebook.cells[0].source = "# 标题\n\n中文。"
    nbformat.write(notebook, tmp_path / "zh_CN" / "book" / "01_x.ipynb")
    (tmp_path / "conf.py").write_text(textwrap.dedent(f"""\
        import sys
        sys.path.insert(0, {str(ROOT / "_ext")!r})
        extensions = ["myst_nb", "editions"]
        html_theme = "sphinx_book_theme"
        language = {language!r}
        root_doc = "book/01_x"
        exclude_patterns = ["zh_CN/*", "_build"]
        nb_execution_mode = "off"
        html_theme_options = {{
            "launch_buttons": {{"colab_url": "https://colab.research.google.com",
                                "binderhub_url": "https://mybinder.org", "notebook_interface": "classic"}},
            "repository_url": "https://github.com/o/r", "repository_branch": "main", "path_to_docs": ""}}
        """))
    result = subprocess.run([sys.executable, "-m", "sphinx", "-q", "-b", "html", str(tmp_path), str(tmp_path / "out")],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    html = (tmp_path / "out" / "book" / "01_x.html").read_text(encoding="utf-8")
    folder = "zh_CN/" if language == "zh_CN" else ""
    assert f'href="https://colab.research.google.com/github/o/r/blob/main/{folder}book/01_x.ipynb"' in html
    assert f'href="https://mybinder.org/v2/gh/o/r/main?urlpath=tree/{folder}book/01_x.ipynb"' in html
    assert 'href="../_sources/book/01_x.ipynb"' in html
    downloaded = (tmp_path / "out" / "_sources" / "book" / "01_x.ipynb").read_text(encoding="utf-8")
    assert ("中文" in downloaded) == (language == "zh_CN")

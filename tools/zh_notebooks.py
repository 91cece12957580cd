"""Chinese notebooks from the English ones and the Chinese edition's catalogues (never edit by hand).

Every chapter notebook ``book/NN_<slug>.ipynb`` and every student exercise notebook
``notebooks/chNN_<slug>/<name>.ipynb`` gets a Chinese twin at the same path under ``zh_CN/``
(``zh_CN/book/01_origin.ipynb``, ``zh_CN/notebooks/ch01_origin/origin.ipynb``): the notebooks the
Chinese edition's launch buttons open (``_ext/editions.py``) and a Chinese student downloads.

    .venv/bin/python tools/zh_notebooks.py           # write every Chinese notebook
    .venv/bin/python tools/zh_notebooks.py --check   # exit 1 if a committed one is stale
    .venv/bin/python tools/zh_notebooks.py notebooks/ch01_origin/origin.ipynb   # only these

``scripts/release_notebooks.sh`` runs it after regenerating ``notebooks/``; after editing a chapter
or its catalogue, run it yourself (``tests/test_zh_notebooks.py`` fails while ``zh_CN/`` is stale).

**How a markdown cell is translated.** The cell is parsed with the markdown-it parser MyST itself
uses (``myst_parser``'s ``create_md_parser``, with the book's MyST extensions from
``_config.yml``), so the blocks are the ones Sphinx's gettext builder turned into the page's
messages (``locales/zh_CN/LC_MESSAGES/<page>.po``). Each block's message is looked up and its
source lines are replaced by the translation, the block's markup kept:

* a paragraph, heading, definition term or list item's paragraph: the message is the block's text
  with its line breaks turned into spaces; the translation is written on the first line after the
  line's own prefix (``## ``, ``- ``, ``> ``, indentation), the block's other lines are dropped;
* a table: each cell's text in its row (``|`` in a translation escaped as ``\\|``);
* display maths (``$$ ... $$ (label)``, ``\\begin{align}``): the maths itself is the message
  (a translation may only translate words in ``\\text{}``), the dollars and the label stay;
* a directive (`````{figure}``, ``:::{grid-item-card}``, ``{admonition}``, ...): its name and
  options stay (``:name:``, ``:class:``, ``:width:``), its ``:alt:`` text and, for directives
  whose argument is a title (``grid-item-card``, ``admonition``, ...), the argument are
  translated; its body (a figure's caption and legend, a card's list) is translated as MyST
  markdown, recursively. A directive this tool does not know is an error, not left in English;
* code fences, targets ``(label)=``, comments and link definitions are not text: unchanged.

The cell metadata that is shown as text is translated too: ``mystnb.figure.caption`` and
``mystnb.image.alt`` of code cells whose output is a figure.

**What is not translated.** Code cells are byte-for-byte the English ones (source, outputs,
metadata), except the setup cell, which also calls ``set_language("zh_CN")``
(:func:`attention_course.env.set_language`) so that the package speaks Chinese where it knows how.
The code's comments, docstrings and printed messages stay English in this version.

**No silent English.** A block whose message is missing from the catalogue, is fuzzy or has an
empty translation is an error naming the notebook, the cell and the text; nothing is written
then. A translation that would change the block's markup (a newline in a heading or table cell)
is an error too.

**The notebook.** ``metadata["attention_course"]["language"]`` is ``"zh_CN"`` (the other keys of
``attention_course``, such as the Colab setup's package lists, are kept); the kernel and
``language_info`` are the English notebook's. For nbgrader's locked markdown cells of the student
notebooks the ``checksum`` is recomputed over the Chinese text, as nbgrader would have computed it,
so ``nbgrader validate`` does not take the translated cells for edited ones. The files are
written as nbformat writes them (one-space indent, sorted keys, UTF-8).
"""
from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tools/: setup_cell, when imported from a test
import setup_cell  # noqa: E402  (the English setup cell's last lines)

ROOT = Path(__file__).resolve().parents[1]
LANGUAGE = "zh_CN"
OUT = ROOT / LANGUAGE  # zh_CN/book/01_origin.ipynb, zh_CN/notebooks/ch01_origin/origin.ipynb
CATALOGUES = ROOT / "locales" / LANGUAGE / "LC_MESSAGES"

# Directives, by what of theirs is text. Argument: translated when the argument is a title.
# Body: translated as MyST markdown when it is text, left alone when it is code or data.
TITLE_ARGUMENT = {"admonition", "grid-item-card", "card", "dropdown", "tab-item", "topic", "sidebar"}
MARKDOWN_BODY = {"figure", "admonition", "grid", "grid-item-card", "card", "dropdown", "tab-set",
                 "tab-item", "note", "warning", "tip", "important", "hint", "caution", "attention",
                 "danger", "error", "seealso", "topic", "sidebar", "margin", "epigraph", "div"}
NO_TEXT = {"code-cell", "code-block", "code", "sourcecode", "literalinclude", "raw", "toctree",
           "bibliography", "tableofcontents", "image"}
MATH_BODY = {"math"}
TEXT_OPTIONS = {"alt"}

_OPTION = re.compile(r"^:([\w-]+):(?:\s+(.*))?$")


def sources() -> list[Path]:
    """The English notebooks that have a Chinese twin, relative to the repository."""
    found = sorted(ROOT.glob("book/*.ipynb")) + sorted(ROOT.glob("notebooks/*/*.ipynb"))
    return [path.relative_to(ROOT) for path in found]


def target(source: Path) -> Path:
    """Where the Chinese twin of ``source`` (relative, e.g. ``book/01_origin.ipynb``) is written."""
    return OUT / source


class Untranslated(Exception):
    """Blocks without a usable translation; the message lists each with its notebook and cell."""


@dataclass
class Catalogue:
    """The translations of one page: ``{msgid: msgstr}``, and the msgids that are fuzzy."""

    translations: dict[str, str]
    fuzzy: set[str] = field(default_factory=set)

    @classmethod
    def read(cls, docname: str) -> Catalogue:
        from babel.messages.pofile import read_po

        path = CATALOGUES / f"{docname}.po"
        if not path.is_file():
            return cls({})
        with path.open("rb") as handle:
            catalog = read_po(handle, abort_invalid=True)
        translations, fuzzy = {}, set()
        for message in catalog:
            if not message.id or not isinstance(message.id, str):
                continue
            if message.fuzzy:
                fuzzy.add(message.id)
            elif isinstance(message.string, str) and message.string.strip():
                translations[message.id] = message.string
        return cls(translations, fuzzy)


@dataclass
class Translator:
    """Looks messages up in one page's catalogue and records what it could not translate."""

    notebook: str
    catalogue: Catalogue
    cell: int = 0
    translated: int = 0
    problems: list[str] = field(default_factory=list)

    def __call__(self, msgid: str) -> str:
        for key in (msgid, msgid.strip()):
            if key in self.catalogue.translations:
                self.translated += 1
                return self.catalogue.translations[key]
        what = "fuzzy" if msgid in self.catalogue.fuzzy or msgid.strip() in self.catalogue.fuzzy else "missing"
        self.fail(f"{what} translation for {_shorten(msgid)!r}")
        return msgid

    def fail(self, problem: str) -> None:
        self.problems.append(f"{self.notebook}, cell {self.cell}: {problem}")


def _shorten(text: str, limit: int = 100) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


@lru_cache(maxsize=1)
def _parser():
    """The markdown-it parser myst-nb builds for the book's markdown cells."""
    from markdown_it.renderer import RendererHTML
    from myst_parser.config.main import MdParserConfig
    from myst_parser.parsers.mdit import create_md_parser

    parser = create_md_parser(MdParserConfig(enable_extensions=set(_myst_extensions())), RendererHTML)
    parser.disable("front_matter", ignoreInvalid=True)  # as myst-nb does for notebooks
    return parser


def _myst_extensions() -> list[str]:
    """The MyST extensions of the book: Jupyter Book's defaults, replaced by ``_config.yml``'s ``parse``."""
    import yaml

    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    return list(config["parse"]["myst_enable_extensions"])


# ---------------------------------------------------------------------------------------------
# Markdown


def translate_markdown(text: str, translate: Translator) -> str:
    """``text`` (MyST markdown) with every block replaced by its translation, markup kept."""
    lines = text.split("\n")
    edits: list[tuple[int, int, list[str]]] = []  # (first line, end line, new lines)
    tokens = _parser().parse(text)
    for index, token in enumerate(tokens):
        if token.type == "inline" and token.map is not None:
            parent = tokens[index - 1].type
            if parent in ("th_open", "td_open"):
                continue  # a table's rows are translated together, at tr_open
            start = token.map[0]
            message = token.content.replace("\n", " ").strip()  # as Sphinx extracts a paragraph's message
            edits.append(_inline_edit(lines, start, token.content, translate(message), parent, translate))
        elif token.type == "tr_open":
            row = token.map[0]
            cells = []
            for cell in tokens[index + 1:]:
                if cell.type == "tr_close":
                    break
                if cell.type == "inline":
                    cells.append(cell.content)
            edits.append((row, row + 1, [_table_row(lines[row], cells, translate)]))
        elif token.type in ("math_block", "math_block_label", "amsmath"):
            edits.append(_replace_inside(lines, token.map, token.content, translate(token.content), translate))
        elif token.type in ("fence", "colon_fence") and token.info.strip().startswith("{"):
            edits.append(_directive_edit(lines, token, translate))
        elif token.type == "html_block":
            translate.fail(f"raw HTML is not translated: {_shorten(token.content)!r}")
    # Nested tokens (a list item's paragraph) edit lines inside their container, which is never
    # edited as a whole: the edits do not overlap. Apply them from the end.
    for start, end, new in sorted(edits, key=lambda edit: edit[0], reverse=True):
        lines[start:end] = new
    return "\n".join(lines)


def _inline_edit(lines, start, content, translation, parent, translate):
    """Replace the lines of one inline block (paragraph, heading, term) by its translation."""
    content_lines = content.split("\n")
    prefixes = []
    for offset, part in enumerate(content_lines):
        line = lines[start + offset]
        stripped = line.rstrip() if offset == len(content_lines) - 1 else line
        if parent == "heading_open" and stripped.rstrip("#").rstrip().endswith(part):
            stripped = stripped.rstrip("#").rstrip()  # "## Title ##": the closing hashes go
        if not stripped.endswith(part):
            translate.fail(f"cannot find the text {_shorten(part)!r} in its line {line!r}")
            return (start, start, [])
        prefixes.append(stripped[:len(stripped) - len(part)])
    if "\n" in translation and parent != "paragraph_open":
        translate.fail(f"the translation of a one-line block has a line break: {_shorten(translation)!r}")
        translation = " ".join(translation.split("\n"))
    continuation = prefixes[1] if len(prefixes) > 1 else re.sub(r"[^>\s]", " ", prefixes[0])
    new = translation.split("\n")
    return (start, start + len(content_lines),
            [prefixes[0] + new[0]] + [continuation + part for part in new[1:]])


def _table_row(line: str, contents: list[str], translate: Translator) -> str:
    """One table row with each cell's text replaced by its translation."""
    cells = re.split(r"(?<!\\)\|", line)
    # a row "| a | b |" splits into ["", " a ", " b ", ""]: the outer pieces are not cells
    first = 1 if not cells[0].strip() else 0
    last = len(cells) - 1 if len(cells) > 1 and not cells[-1].strip() else len(cells)
    inner = cells[first:last]
    if len(inner) != len(contents) or any(c.strip().replace("\\|", "|") != t for c, t in zip(inner, contents)):
        translate.fail(f"cannot match the cells of the table row {line!r}")
        return line
    for offset, (cell, content) in enumerate(zip(inner, contents)):
        if not content:
            continue
        translation = translate(content)
        if "\n" in translation:
            translate.fail(f"the translation of a table cell has a line break: {_shorten(translation)!r}")
        lead = cell[:len(cell) - len(cell.lstrip())]
        trail = cell[len(cell.rstrip()):]
        cells[first + offset] = lead + translation.replace("\n", " ").replace("|", "\\|") + trail
    return "|".join(cells)


def _replace_inside(lines, span, content, translation, translate):
    """Replace ``content`` inside the block's lines (its markup around it kept), e.g. maths."""
    start, end = span
    block = "\n".join(lines[start:end])
    if block.count(content) != 1:
        translate.fail(f"cannot find the block {_shorten(content)!r} in its lines")
        return (start, end, lines[start:end])
    return (start, end, block.replace(content, translation).split("\n"))


def _directive_edit(lines, token, translate):
    """A directive's fence with its title, text options and body translated."""
    start, end = token.map
    name, _, argument = token.info.strip()[1:].partition("}")
    argument = argument.strip()
    opening = lines[start]
    closing_present = end - start >= 2 and lines[end - 1].strip().startswith(token.markup)
    body_end = end - 1 if closing_present else end
    indent = opening[:len(opening) - len(opening.lstrip())]  # a fence inside a list item
    body = [line[len(indent):] if line.startswith(indent) else line.lstrip()
            for line in lines[start + 1:body_end]]
    if name not in TITLE_ARGUMENT | MARKDOWN_BODY | NO_TEXT | MATH_BODY:
        translate.fail(f"directive {{{name}}} is not known to tools/zh_notebooks.py: say which of its parts are text")
        return (start, end, lines[start:end])
    if name in NO_TEXT and name != "image":
        return (start, end, lines[start:end])
    if argument and name in TITLE_ARGUMENT:
        if not opening.rstrip().endswith(argument):
            translate.fail(f"cannot find the title {argument!r} in {opening!r}")
        else:
            opening = opening.rstrip()[:len(opening.rstrip()) - len(argument)] + translate(argument)
    options, rest = _split_options(body, translate)
    new_options = []
    for key, value, raw in options:
        if key in TEXT_OPTIONS and value:
            translation = translate(value)
            if "\n" in translation:
                translate.fail(f"the translation of :{key}: has a line break: {_shorten(translation)!r}")
            new_options.append(f"{raw[:raw.index(value)]}{translation.replace(chr(10), ' ')}")
        else:
            new_options.append(raw)
    text = "\n".join(rest)
    if name in MATH_BODY and text.strip():
        text = text.replace(text.strip(), translate(text.strip()))
    elif name in MARKDOWN_BODY:
        text = translate_markdown(text, translate)
    new_body = [indent + line if line else line
                for line in new_options + (text.split("\n") if rest else [])]
    return (start, end, [opening] + new_body + lines[body_end:end])


def _split_options(body: list[str], translate: Translator):
    """``([(key, value, raw line)], remaining body)`` of a MyST directive's ``:key: value`` lines."""
    if body and body[0].strip() == "---":
        translate.fail("YAML options of a directive are not supported: write them as :key: value")
        return [], body
    options = []
    index = 0
    while index < len(body):
        match = _OPTION.match(body[index].strip())
        if not match:
            break
        if index + 1 < len(body) and body[index + 1][:1] in (" ", "\t") and body[index + 1].strip() \
                and not _OPTION.match(body[index + 1].strip()):
            translate.fail(f"an option continued on the next line is not supported: {body[index]!r}")
        options.append((match.group(1), (match.group(2) or "").strip(), body[index]))
        index += 1
    return options, body[index:]


# ---------------------------------------------------------------------------------------------
# Notebooks


def _source(cell) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _as_lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)  # as nbformat stores a cell's source


def docname(source: Path) -> str:
    """The page of ``source`` in the book, which names its catalogue: ``book/01_origin``."""
    return source.with_suffix("").as_posix()


def translate_notebook(notebook: dict, name: str, catalogue: Catalogue) -> tuple[dict, Translator]:
    """The Chinese twin of ``notebook`` (a parsed .ipynb); the translator holds counts and problems."""
    translate = Translator(name, catalogue)
    chinese = copy.deepcopy(notebook)
    for index, cell in enumerate(chinese["cells"]):
        translate.cell = index
        if cell["cell_type"] == "markdown":
            text = _source(cell)
            if text.strip():
                new = translate_markdown(text, translate)
                if new != text:
                    cell["source"] = _as_lines(new)
                    _recompute_checksum(cell)
        elif cell["cell_type"] == "code":
            _translate_metadata(cell["metadata"], translate)
            if "colab-setup" in cell["metadata"].get("tags", []):
                cell["source"] = _as_lines(_chinese_setup(_source(cell), translate))
    metadata = chinese.setdefault("metadata", {})
    metadata.setdefault("attention_course", {})["language"] = LANGUAGE
    for key in ("kernelspec", "language_info"):
        if key in notebook.get("metadata", {}):
            metadata[key] = copy.deepcopy(notebook["metadata"][key])
    return chinese, translate


#: The English setup cell's last lines (tools/setup_cell.py), and what the Chinese notebook runs instead:
#: the same seeding, with the checks' messages and the explorers in Chinese (attention_course.env).
SETUP_EN = setup_cell.SEEDING
SETUP_ZH = ("from attention_course.env import seed_everything, set_language\n\n"
            f'set_language("{LANGUAGE}")  # 练习检查的提示信息和探索器使用中文\nrng = seed_everything(0)')


def _chinese_setup(source: str, translate: Translator) -> str:
    """The setup cell of a Chinese notebook: the English one, and the course's language set to Chinese."""
    if source.count(SETUP_EN) != 1:
        translate.fail(f"the setup cell does not end as tools/setup_cell.py writes it ({SETUP_EN!r})")
        return source
    return source.replace(SETUP_EN, SETUP_ZH)


def _translate_metadata(metadata: dict, translate: Translator) -> None:
    """myst-nb's figure caption and alt text, which the page shows (and the catalogue holds)."""
    if "remove-cell" in metadata.get("tags", []):
        return  # not on the page, so not in the catalogue
    mystnb = metadata.get("mystnb", {})
    for group, key in (("figure", "caption"), ("image", "alt")):
        value = mystnb.get(group, {}).get(key)
        if isinstance(value, str) and value.strip():
            mystnb[group][key] = translate(value)


def _recompute_checksum(cell: dict) -> None:
    """nbgrader's checksum of a locked cell, over its new (Chinese) source."""
    grader = cell.get("metadata", {}).get("nbgrader", {})
    if "checksum" not in grader:
        return
    import nbformat
    from nbgrader.utils import compute_checksum

    grader["checksum"] = compute_checksum(nbformat.from_dict(dict(cell, source=_source(cell))))


def render(notebook: dict) -> str:
    """The notebook's file text, as nbformat writes it."""
    return json.dumps(notebook, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def generate(selected: list[Path] | None = None) -> tuple[dict[Path, str], dict[Path, int]]:
    """``({target: file text}, {source: blocks translated})`` for ``selected`` or every notebook.

    Raises:
        Untranslated: some block has no usable translation (every such block is listed).
    """
    texts, counts, problems = {}, {}, []
    for source in selected or sources():
        notebook = json.loads((ROOT / source).read_text(encoding="utf-8"))
        chinese, translate = translate_notebook(notebook, source.as_posix(), Catalogue.read(docname(source)))
        problems.extend(translate.problems)
        texts[target(source)] = render(chinese)
        counts[source] = translate.translated
    if problems:
        raise Untranslated("\n".join(problems))
    return texts, counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="English notebooks (book/01_origin.ipynb, ...); default: all")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if zh_CN/ is stale")
    args = parser.parse_args(argv)
    selected = [path.resolve().relative_to(ROOT) for path in args.notebooks] or None
    try:
        texts, counts = generate(selected)
    except Untranslated as error:
        print(f"!! untranslated blocks (translate them in locales/{LANGUAGE}/LC_MESSAGES/, "
              f"or run tools/i18n.py update first):\n{error}", file=sys.stderr)
        return 1
    stale = [path for path, text in texts.items()
             if not path.is_file() or path.read_text(encoding="utf-8") != text]
    if args.check:
        for path in stale:
            print(f"stale: {path.relative_to(ROOT)}")
        extra = sorted(set(OUT.rglob("*.ipynb")) - set(texts)) if selected is None else []
        for path in extra:
            print(f"no English notebook for {path.relative_to(ROOT)}")
        return 1 if stale or extra else 0
    for path, text in texts.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    if selected is None:
        for path in sorted(set(OUT.rglob("*.ipynb")) - set(texts)):
            path.unlink()  # the English notebook is gone
    for source, count in counts.items():
        print(f"{target(source).relative_to(ROOT)}: {count} blocks translated")
    return 0


if __name__ == "__main__":
    sys.exit(main())

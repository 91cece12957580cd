"""Chinese notebooks from the English ones and the Chinese edition's catalogues (never edit by hand).

Every chapter notebook ``book/NN_<slug>.ipynb`` and every student exercise notebook
``notebooks/chNN_<slug>/<name>.ipynb`` gets a Chinese twin at the same path under ``zh_CN/``
(``zh_CN/book/01_origin.ipynb``, ``zh_CN/notebooks/ch01_origin/origin.ipynb``): the notebooks the
Chinese edition's launch buttons open (``_ext/editions.py``) and a Chinese student downloads.

    .venv/bin/python tools/zh_notebooks.py           # write every Chinese notebook
    .venv/bin/python tools/zh_notebooks.py --check   # exit 1 if a committed one is stale
    .venv/bin/python tools/zh_notebooks.py notebooks/ch01_origin/origin.ipynb   # only these
    .venv/bin/python tools/zh_notebooks.py update    # refresh the code cells' catalogue (below)

``scripts/release_notebooks.sh`` runs it after regenerating ``notebooks/``; after editing a chapter
or its catalogue, run it yourself (``tests/test_zh_notebooks.py`` fails while ``zh_CN/`` is stale).
After changing a code cell's comments, docstrings or printed text (in ``book/`` or, through the
release, ``notebooks/``): run ``update``, translate what ``tools/i18n.py check`` lists, then
regenerate.

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

**How a code cell is translated.** Its code is the English one, token for token; what a student
reads in it is translated through one catalogue for all notebooks,
``locales/zh_CN/code/notebooks.po`` (not under ``LC_MESSAGES/``, which Sphinx reads as pages'
catalogues; ``tools/i18n.py check`` checks it with the others). ``update`` extracts its messages
(:func:`extract`, merged with babel: a new message arrives empty, a changed one fuzzy), each with
its notebooks and cells (``#: book/01_origin.ipynb#cell4``) and what it is (``#.``):

* comments (tokenize's ``COMMENT`` tokens) that hold English words beyond shapes and code
  (:func:`is_text`: ``# (batch, seq_len)`` is not a message). A comment after code is one message,
  translated on one line; consecutive full-line comments of one column are one message, their lines
  joined with spaces, and the translation is wrapped as wide as the English block
  (:func:`wrap`, two columns for a Chinese character) unless it has line breaks of its own. Tool
  comments (``# noqa``, ``# type:``) stay;
* docstrings of the functions and classes a cell defines (:func:`inspect.cleandoc`'s text; the
  translation is indented as the docstring, in its quotes);
* string literals passed to ``print(...)`` or to an exception raised with ``raise E(...)``, as their
  source text (escapes such as ``\n`` as written; adjacent literals joined into one message, an
  f-string with its replacement fields ``{...}``). A translation must keep exactly the same fields
  (:func:`fields`: expression, conversion and format spec), in any order; a line break in it starts
  a new adjacent literal on the next line, aligned with the first. A text an f-string field chooses
  with ``if ... else`` (``{' (cached)' if cached else ''}``) is a message of its own.

**What is not translated.** Identifiers, code, and strings that are data: dictionary keys, labels
passed to the package (``en_zh("English", "中文")`` is already both), a model's prompts, file names,
the English messages of the exercise checks (``tr("...")``, which the package translates itself,
``attention_course/grading/locales/``). Text inside an f-string field stays as written, so the
column headings of printed tables (``{'dates':>5}``) stay English, aligned as the rows. Outputs and
metadata are the English ones. The setup cell also calls ``set_language("zh_CN")``
(:func:`attention_course.env.set_language`) so that the package speaks Chinese where it knows how;
what the package itself prints (``show_source`` listings, its tables) is its own business.

**No silent English.** A block whose message is missing from the catalogue, is fuzzy or has an
empty translation is an error naming the notebook, the cell and the text; nothing is written
then. A translation that would change the block's markup (a newline in a heading or table cell)
is an error too, and so is one that would change a cell's code: a field changed or lost, a quote
that ends its literal, a line break in a comment after code, a cell that no longer parses.

**The notebook.** ``metadata["attention_course"]["language"]`` is ``"zh_CN"`` (the other keys of
``attention_course``, such as the Colab setup's package lists, are kept); the kernel and
``language_info`` are the English notebook's. For nbgrader's locked markdown cells of the student
notebooks, and for their solution and test code cells, the ``checksum`` is recomputed over the
Chinese text, as nbgrader would have computed it, so ``nbgrader validate`` does not take the
translated cells for edited ones (the grader runs test cells from the English source anyway). The files are
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
#: The code cells' comments, docstrings and printed text, of every notebook (``update`` extracts them).
#: Not under LC_MESSAGES/, which Sphinx reads as the pages' catalogues.
CODE_CATALOGUE = ROOT / "locales" / LANGUAGE / "code" / "notebooks.po"

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
        """The catalogue of the page ``docname`` (``book/01_origin``); empty when it has none."""
        return cls.read_file(CATALOGUES / f"{docname}.po")

    @classmethod
    def read_file(cls, path: Path) -> Catalogue:
        """The translations of the ``.po`` file ``path``; empty when there is none."""
        from babel.messages.pofile import read_po

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
    code_catalogue: Catalogue = field(default_factory=lambda: Catalogue({}))

    def __call__(self, msgid: str) -> str:
        return self._look_up(msgid, self.catalogue, (msgid, msgid.strip()))

    def code(self, msgid: str) -> str:
        """The translation of a code cell's comment, docstring or printed string (``CODE_CATALOGUE``)."""
        return self._look_up(msgid, self.code_catalogue, (msgid,), f" in {CODE_CATALOGUE.relative_to(ROOT)}")

    def _look_up(self, msgid: str, catalogue: Catalogue, keys, where: str = "") -> str:
        for key in keys:
            if key in catalogue.translations:
                self.translated += 1
                return catalogue.translations[key]
        what = "fuzzy" if any(key in catalogue.fuzzy for key in keys) else "missing"
        self.fail(f"{what} translation{where} for {_shorten(msgid)!r}")
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
# Code cells: comments, docstrings and printed text


@dataclass(frozen=True)
class CodeText:
    """One translatable piece of a code cell: its span in the cell's source and its message.

    ``kind``: ``"comment"`` (a trailing comment, or a block of full-line comments), ``"docstring"``
    (of a function or class the cell defines) or ``"string"`` (a literal a student reads: a
    ``print(...)`` or ``raise ...(...)`` argument, f-strings included, or the text a field of such an
    f-string chooses with ``if ... else``). ``context``: what a translator sees beside the message.
    """

    kind: str
    start: int
    end: int
    msgid: str
    context: str
    inline: bool = False      # a comment after code: its translation must stay on one line
    indent: str = ""          # indentation of a comment block's, a docstring's or a string's next lines
    original: str = ""        # the source it replaces
    pieces: tuple = ()        # a string's pieces: ((prefix, quote, body), ...)
    nested: tuple = ()        # a string's fields' own texts: ((source segment, msgid), ...)


#: Comments that are instructions to tools, not text: left as they are.
_TOOL_COMMENT = re.compile(r"^#(!|\s*(noqa|type:|fmt:|pragma|pylint:|isort:)|#+ (BEGIN|END) )")
_CODE_SPAN = re.compile(r"`[^`]*`")
_BRACKETS = re.compile(r"\([^()]*\)|\[[^\[\]]*\]|\{[^{}]*\}")
_CODEISH = re.compile(r"\S*[_\d^*=<>/\\|.]\S*")
_CJK = re.compile(r"[\u3000-\u9fff\uff00-\uffef]")


def is_text(text: str, shapes: bool = True) -> bool:
    """True when ``text`` (a comment or a string) has an English word beyond code and, if ``shapes``,
    beyond bracketed shapes such as ``(batch, seq_len)`` (a comment's; a printed string's are read).

    >>> [is_text(t) for t in ("# (batch, seq_len, d_model)", "# B = 2, T = 4", "# stays float64", "scores\\n")]
    [False, False, True, True]
    """
    text = _CODE_SPAN.sub(" ", text)
    previous = None
    while shapes and previous != text:  # nested brackets, from the inside out
        previous, text = text, _BRACKETS.sub(" ", text)
    return bool(re.search(r"(?<![A-Za-z])[A-Za-z]{2,}(?![A-Za-z])", _CODEISH.sub(" ", text)))


def _offsets(source: str) -> list[int]:
    """Character offset of the start of each line (1-based line numbers index ``[line - 1]``)."""
    starts, total = [], 0
    for line in source.splitlines(keepends=True) or [""]:
        starts.append(total)
        total += len(line)
    starts.append(total)
    return starts


def code_texts(source: str) -> list[CodeText]:
    """The translatable pieces of one code cell's ``source``, in order.

    Raises:
        SyntaxError: the cell is not Python (tokenize or ast cannot read it).
        ValueError: a printed string this tool cannot rewrite (raw, bytes or triple-quoted).
    """
    import ast
    import io
    import tokenize

    starts = _offsets(source)
    lines = source.splitlines(keepends=True)

    def offset(line: int, column: int, utf8: bool = False) -> int:
        if utf8:  # ast counts columns in UTF-8 bytes
            column = len(lines[line - 1].encode("utf-8")[:column].decode("utf-8"))
        return starts[line - 1] + column

    found = _comments(list(tokenize.generate_tokens(io.StringIO(source).readline)), lines, offset)
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                doc = first.value
                start, end = offset(doc.lineno, doc.col_offset, True), offset(doc.end_lineno, doc.end_col_offset, True)
                found.append(CodeText("docstring", start, end, _cleandoc(doc.value), f"docstring of {node.name}",
                                      indent=" " * (start - starts[doc.lineno - 1]), original=source[start:end]))
        for argument in _shown_arguments(node):
            found.extend(_string_texts(source, argument, offset))
    return sorted(found, key=lambda text: text.start)


def _cleandoc(text: str) -> str:
    import inspect

    return inspect.cleandoc(text)


def _comments(tokens, lines, offset) -> list[CodeText]:
    """Comment messages: a trailing comment alone, consecutive full-line comments of one column together."""
    import tokenize

    found, block = [], []

    def close():
        if block and is_text(" ".join(t.string for t in block)):
            first, last = block[0], block[-1]
            text = " ".join(_comment_body(t.string) for t in block)
            start, end = offset(*first.start), offset(*last.end)
            found.append(CodeText("comment", start, end, text, "comment",
                                  indent=lines[first.start[0] - 1][:first.start[1]],
                                  original="".join(t.string + "\n" for t in block)))
        block.clear()

    for token in tokens:
        if token.type != tokenize.COMMENT:
            if token.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
                close()
            continue
        if _TOOL_COMMENT.match(token.string) or _CJK.search(token.string):
            close()
            continue
        line = lines[token.start[0] - 1]
        if line[:token.start[1]].strip():  # after code on the same line
            close()
            if is_text(token.string):
                found.append(CodeText("comment", offset(*token.start), offset(*token.end),
                                      _comment_body(token.string), f"comment on: {line[:token.start[1]].strip()}",
                                      inline=True))
            continue
        if block and (block[-1].start[0] + 1 != token.start[0] or block[-1].start[1] != token.start[1]):
            close()
        block.append(token)
    close()
    return found


def _comment_body(comment: str) -> str:
    return re.sub(r"^#+\s?", "", comment).strip()


def _shown_arguments(node):
    """The arguments of ``print(...)`` and of an exception raised with ``raise E(...)``."""
    import ast

    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
        return node.args
    if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
        return node.exc.args
    return []


def _string_texts(source, node, offset) -> list[CodeText]:
    """The message of a string literal argument (and of the texts its fields choose), if it is text."""
    import ast
    import io
    import tokenize

    if not (isinstance(node, ast.JoinedStr) or (isinstance(node, ast.Constant) and isinstance(node.value, str))):
        return []
    start = offset(node.lineno, node.col_offset, True)
    end = offset(node.end_lineno, node.end_col_offset, True)
    segment = source[start:end]
    pieces = []
    for token in tokenize.generate_tokens(io.StringIO(segment).readline):
        if token.type == tokenize.STRING:
            match = re.match(r"^([A-Za-z]*)('''|\"\"\"|'|\")(.*)\2$", token.string, re.S)
            prefix = match.group(1).lower()
            if len(match.group(2)) == 3 or "r" in prefix or "b" in prefix:
                raise ValueError(f"a printed string this tool cannot rewrite (raw, bytes or triple-quoted): {token.string}")
            pieces.append((prefix, match.group(2), match.group(3)))
    formatted = any("f" in prefix for prefix, _, _ in pieces)
    msgid = "".join(body if "f" in prefix or not formatted else body.replace("{", "{{").replace("}", "}}")
                    for prefix, _, body in pieces)
    nested = []
    for value in (node.values if isinstance(node, ast.JoinedStr) else []):
        for inner in ast.walk(value):
            if isinstance(inner, ast.IfExp):
                for branch in (inner.body, inner.orelse):
                    if isinstance(branch, ast.Constant) and isinstance(branch.value, str) \
                            and is_text(branch.value, shapes=False):
                        nested.append((ast.get_source_segment(source, branch), branch.value))
    line_start = source.rfind("\n", 0, start) + 1
    texts = [] if not is_text(_without_fields(msgid) if formatted else msgid, shapes=False) else [
        CodeText("string", start, end, msgid, "printed text", indent=" " * (start - line_start),
                 original=segment, pieces=tuple(pieces), nested=tuple(nested))]
    return texts + [CodeText("string", start, start, text, f"printed text, chosen in: {msgid}")
                    for _, text in nested]


def fields(body: str) -> list[str]:
    """The replacement fields ``{...}`` of an f-string's body, as written (``{x:>5}``, ``{a['k']!r}``).

    >>> fields("{{not}} {a['x']:>5} and {f'{y}'} {z}")
    ["{a['x']:>5}", "{f'{y}'}", '{z}']

    Raises:
        ValueError: a brace that opens no field or is never closed.
    """
    found, index = [], 0
    while index < len(body):
        char = body[index]
        if body.startswith(("{{", "}}"), index):
            index += 2
            continue
        if char == "}":
            raise ValueError(f"a single '}}' outside a field in {body!r}")
        if char != "{":
            index += 1
            continue
        depth, quote, end = 0, None, index
        while end < len(body):
            c = body[end]
            if quote:
                quote = None if c == quote else quote
            elif c in "'\"":
                quote = c
            elif c in "{[(":
                depth += 1
            elif c in "}])":
                depth -= 1
                if depth == 0:
                    break
            end += 1
        if end >= len(body):
            raise ValueError(f"an unclosed field in {body!r}")
        found.append(body[index:end + 1])
        index = end + 1
    return found


def _without_fields(body: str) -> str:
    for field_text in fields(body):
        body = body.replace(field_text, " ", 1)
    return body


def translate_code(source: str, translate: Translator) -> str:
    """``source`` (a code cell) with its comments, docstrings and printed strings translated (see
    :func:`code_texts`); every other character stays. Problems are recorded in ``translate``."""
    try:
        texts = code_texts(source)
    except (SyntaxError, ValueError) as error:
        translate.fail(f"cannot read the code cell: {error}")
        return source
    nested_translations = {}
    for text in texts:
        if text.kind == "string" and text.start == text.end:
            nested_translations[text.msgid] = translate.code(text.msgid)
    pieces, last = [], 0
    for text in texts:
        if text.start == text.end:
            continue
        translation = translate.code(text.msgid)
        pieces.append(source[last:text.start])
        pieces.append(_rewrite(text, translation, nested_translations, translate))
        last = text.end
    pieces.append(source[last:])
    result = "".join(pieces)
    if result != source:
        import ast

        try:
            ast.parse(result)
        except SyntaxError as error:
            translate.fail(f"the translated cell is not valid Python ({error}): check the quotes of its translations")
            return source
    return result


def _rewrite(text: CodeText, translation: str, nested: dict[str, str], translate: Translator) -> str:
    """The new source of one piece: ``# 译文``, a docstring, or a string literal."""
    if text.kind == "comment":
        if text.inline and "\n" in translation:
            translate.fail(f"the translation of a comment after code has a line break: {_shorten(translation)!r}")
        if text.inline:
            lines = [" ".join(translation.split("\n"))]
        elif "\n" in translation or text.original.count("\n") == 1:
            lines = translation.split("\n")  # the translator's lines, or one line for one line
        else:  # a block of lines: as wide as the English block
            lines = wrap(translation, max(len(line) for line in text.original.splitlines()) - 2)
        return ("\n" + text.indent).join(f"# {line}".rstrip() for line in lines)
    if text.kind == "docstring":
        return _docstring(text, translation, translate)
    return _literal(text, translation, nested, translate)


_NO_LINE_START = "，。；：、）》」』”’！？,.;:)]"
_NO_LINE_END = "（《「『“‘([{"
_WRAP_UNIT = re.compile(r"[\u3000-\u9fff\uff00-\uffef]|[^\s\u3000-\u9fff\uff00-\uffef]+|\s+")


def display_width(text: str) -> int:
    """Columns ``text`` takes in a monospaced font: two for a Chinese character, one otherwise."""
    return sum(2 if _CJK.match(char) else 1 for char in text)


def wrap(text: str, width: int) -> list[str]:
    """``text`` in lines of at most ``width`` columns (:func:`display_width`), broken between Chinese
    characters or at spaces, never inside a Latin word or before closing punctuation.

    >>> wrap("注意力权重之和为 1，softmax 的输出", 12)
    ['注意力权重之', '和为 1，', 'softmax 的输', '出']
    """
    lines, line = [], ""
    for unit in _WRAP_UNIT.findall(text):
        if line and display_width(line + unit.rstrip()) > width and not unit.isspace() \
                and unit[0] not in _NO_LINE_START:
            carried = line[len(line.rstrip(_NO_LINE_END)):] if line.rstrip(_NO_LINE_END) else ""
            lines.append(line[:len(line) - len(carried)].rstrip())
            line = carried
        if not (unit.isspace() and not line):
            line += unit
    return lines + [line.rstrip()] if line.strip() else lines


def _docstring(text: CodeText, translation: str, translate: Translator) -> str:
    # The original's quotes, and its closing quotes on a line of their own if it had them.
    prefix, quote, body = re.match(r"^([A-Za-z]*)('{3}|\"{3}|'|\")(.*)\2$", text.original, re.S).groups()
    if "\\" in translation or quote[0] in translation or ("\n" in translation and len(quote) == 1):
        translate.fail(f"the translation of a docstring cannot be written in its quotes: {_shorten(translation)!r}")
        return prefix + quote + body + quote
    lines = translation.split("\n")
    new = lines[0] + "".join("\n" + (text.indent + line if line else "") for line in lines[1:])
    if re.search(r"\n[ \t]*$", body):
        new += "\n" + text.indent
    return prefix + quote + new + quote


def _literal(text: CodeText, translation: str, nested: dict[str, str], translate: Translator) -> str:
    """A printed string's new literal: one piece per line of the translation, the original's quotes."""
    formatted = any("f" in prefix for prefix, _, _ in text.pieces)
    quote = text.pieces[0][1]
    try:
        same = sorted(fields(translation.replace("\n", ""))) == sorted(fields(text.msgid)) if formatted else True
    except ValueError as error:
        same, problem = False, str(error)
    else:
        problem = "its replacement fields {...} differ from the English"
    if not same:
        translate.fail(f"the translation of {_shorten(text.msgid)!r}: {problem}")
        translation = text.msgid
    new = []
    for line in translation.split("\n"):
        has_field = formatted and bool(fields(line))
        body = line if has_field or not formatted else line.replace("{{", "{").replace("}}", "}")
        if quote in _without_fields(line) if formatted else quote in line:
            translate.fail(f"the translation of {_shorten(text.msgid)!r} has the quote {quote} of its literal")
        for segment, msgid in text.nested:
            if body.count(segment) != 1:
                continue
            inner = nested.get(msgid, msgid)
            if segment[0] in inner or "\\" in inner:
                translate.fail(f"the translation {inner!r} cannot be written in the quotes of {segment}")
                inner = msgid
            body = body.replace(segment, segment[0] + inner + segment[0])
        new.append(("f" if has_field else "") + quote + body + quote)
    return ("\n" + text.indent).join(new)


# ---------------------------------------------------------------------------------------------
# Notebooks


def _source(cell) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _as_lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)  # as nbformat stores a cell's source


def docname(source: Path) -> str:
    """The page of ``source`` in the book, which names its catalogue: ``book/01_origin``."""
    return source.with_suffix("").as_posix()


def translate_notebook(notebook: dict, name: str, catalogue: Catalogue,
                       code_catalogue: Catalogue | None = None) -> tuple[dict, Translator]:
    """The Chinese twin of ``notebook`` (a parsed .ipynb); the translator holds counts and problems.

    ``catalogue``: the page's markdown translations; ``code_catalogue``: the code cells' texts
    (default: none, so that every code text is reported missing).
    """
    translate = Translator(name, catalogue, code_catalogue=code_catalogue or Catalogue({}))
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
            text = _source(cell)
            new = _chinese_setup(text, translate) if "colab-setup" in cell["metadata"].get("tags", []) else text
            new = translate_code(new, translate)
            if new != text:
                cell["source"] = _as_lines(new)
                _recompute_checksum(cell)
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
    code_catalogue = Catalogue.read_file(CODE_CATALOGUE)
    for source in selected or sources():
        notebook = json.loads((ROOT / source).read_text(encoding="utf-8"))
        chinese, translate = translate_notebook(notebook, source.as_posix(), Catalogue.read(docname(source)),
                                                code_catalogue)
        problems.extend(translate.problems)
        texts[target(source)] = render(chinese)
        counts[source] = translate.translated
    if problems:
        raise Untranslated("\n".join(problems))
    return texts, counts


# ---------------------------------------------------------------------------------------------
# The code catalogue


def extract(selected: list[Path] | None = None):
    """A babel ``Catalog`` of the code cells' texts of ``selected`` (default: every notebook), as a template.

    Each message lists where it occurs (``#: book/01_origin.ipynb#cell4``, the cell's index) and
    what it is (``#.``: a comment, and after code the code it annotates; a docstring and whose; a
    printed string).
    """
    from babel.messages.catalog import Catalog

    template = Catalog(locale=None, project="attention-course notebooks' code", fuzzy=False)
    for source in selected or sources():
        notebook = json.loads((ROOT / source).read_text(encoding="utf-8"))
        for index, cell in enumerate(notebook["cells"]):
            if cell["cell_type"] != "code":
                continue
            text = _source(cell)
            if "colab-setup" in cell["metadata"].get("tags", []):
                text = text.replace(SETUP_EN, SETUP_ZH)
            for piece in code_texts(text):
                known = template.get(piece.msgid)
                comments = list(known.auto_comments) if known else []
                note = piece.context if piece.kind != "string" else f"{piece.kind}, {piece.context}"
                if note not in comments:
                    comments.append(note)
                locations = list(known.locations) if known else []
                if (f"{source.as_posix()}#cell{index}", None) not in locations:
                    locations.append((f"{source.as_posix()}#cell{index}", None))
                template.add(piece.msgid, locations=locations, auto_comments=comments)
    return template


def update(path: Path = CODE_CATALOGUE) -> int:
    """Merge the notebooks' code texts (:func:`extract`) into ``path``: new messages arrive empty,
    changed ones fuzzy with the old translation as a hint, gone ones are dropped."""
    from babel.messages.catalog import Catalog
    from babel.messages.pofile import read_po, write_po

    template = extract()
    if path.is_file():
        with path.open("rb") as handle:
            catalog = read_po(handle, locale=LANGUAGE, abort_invalid=True)
    else:
        catalog = Catalog(locale=LANGUAGE, project=template.project, fuzzy=False)
    catalog.update(template, update_creation_date=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        write_po(handle, catalog, width=-1, ignore_obsolete=True, sort_output=False)
    messages = [m for m in catalog if m.id]
    empty = sum(1 for m in messages if not m.string)
    fuzzy = sum(1 for m in messages if m.fuzzy)
    print(f"{path.relative_to(ROOT)}: {len(messages)} messages, {empty} untranslated, {fuzzy} fuzzy")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["update"]:
        return update()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="English notebooks (book/01_origin.ipynb, ...); default: all")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if zh_CN/ is stale")
    args = parser.parse_args(argv)
    selected = [path.resolve().relative_to(ROOT) for path in args.notebooks] or None
    try:
        texts, counts = generate(selected)
    except Untranslated as error:
        print(f"!! untranslated blocks (translate them in locales/{LANGUAGE}/LC_MESSAGES/, or run "
              f"tools/i18n.py update first; code cells' texts: in {CODE_CATALOGUE.relative_to(ROOT)}, after "
              f"tools/zh_notebooks.py update):\n{error}", file=sys.stderr)
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

"""The one message catalogue of the exercise checks and the grader: English in the code, Chinese in a .po file.

Every sentence a student may read (a check's ``AssertionError``, the grader's feedback page and
notes) is written in English where it is raised, wrapped in :func:`tr` with named placeholders::

    assert m.dtype == torch.bool, tr("return a bool tensor; yours has dtype {dtype}", dtype=m.dtype)

:func:`tr` speaks the process's language (:func:`attention_course.env.course_language`: the Chinese
notebooks' setup cell sets it, the grader sets it from a submission's metadata); :func:`translate`
speaks a given one; :class:`Text` is an English sentence that can be shown again in another language
(the grader's notes: English in ``gradebook.csv``, the student's language on the feedback page).
A message without a translation, and every message in English, is the English text itself.

The translations are ``locales/<language>.po`` next to this module (package data: a pip-installed
package, as on Colab, has them), read with Babel at the first translation; no compiled ``.mo``.

The catalogue is kept in step with the code by this module's command::

    python -m attention_course.grading.messages update   # add new messages, drop stale ones
    python -m attention_course.grading.messages check    # exit 1: untranslated, stale, unwrapped

which extracts the ``tr``/``translate``/``Text`` messages of the package's ``grading/`` modules and
of the check cells of ``solutions/`` (:func:`extract`), and finds message strings left unwrapped
(:func:`unwrapped`: an assertion's message, an ``AssertionError``, a check's explanation...).
"""
from __future__ import annotations

import ast
import contextlib
import functools
import json
import re
import string
import sys
from pathlib import Path

from attention_course.env import LANGUAGES, course_language

__all__ = ["tr", "translate", "Text", "notebook_language", "load", "recording", "extract", "unwrapped",
           "catalogue_path", "problems"]

LOCALES = Path(__file__).resolve().with_name("locales")
PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the repository, where solutions/ is
MODULES = ("checks.py", "checks_transformer.py", "checks_modern.py", "checker.py", "gradebook.py", "cli.py", "autograders.py")
STUDENT_FACING = MODULES[:4]  # every sentence of these must be wrapped (the others: what the student sees)
WRAPPERS = {"tr": 0, "translate": 0, "Text": 0, "say": 0}  # function name -> position of the msgid (say: the
# feedback page's own wrapper of translate)
_recorders: list[list] = []


def catalogue_path(language: str) -> Path:
    """The catalogue of ``language``: ``grading/locales/<language>.po``."""
    return LOCALES / f"{language}.po"


@functools.lru_cache(maxsize=None)
def load(language: str) -> dict[str, str]:
    """``{English message: translation}`` of ``language`` (empty for English or a missing catalogue).

    Untranslated and fuzzy entries are left out (their English is used). Cached: the grader's
    sandboxed worker calls it before its audit hook, so that no file is opened afterwards.
    """
    path = catalogue_path(language)
    if language == LANGUAGES[0] or not path.exists():
        return {}
    from babel.messages.pofile import read_po

    with open(path, "rb") as handle:
        catalogue = read_po(handle)
    return {m.id: m.string for m in catalogue if m.id and isinstance(m.string, str) and m.string and not m.fuzzy}


def translate(msgid: str, language: str, /, **params) -> str:
    """``msgid`` in ``language``, its ``{placeholders}`` filled from ``params`` (English if not translated).

    A :class:`Text` among the ``params`` is translated too.
    """
    values = {k: (v.translated(language) if isinstance(v, Text) else v) for k, v in params.items()}
    template = load(language).get(msgid, msgid)
    try:
        text = template.format_map(values)
    except (KeyError, IndexError, ValueError):  # a broken translation: the English, never a crash
        text = msgid.format_map(values)
    for recorder in _recorders:
        recorder.append((msgid, language, text))
    return text


def tr(msgid: str, /, **params) -> str:
    """``msgid`` in the course's language of this process (:func:`~attention_course.env.course_language`)."""
    return translate(msgid, course_language(), **params)


class Text(str):
    """An English sentence (a ``str``) that remembers its message, to be shown again in another language.

    ``Text(msgid, **params)`` equals ``msgid.format(**params)``; :meth:`translated` gives it in another
    language (the grader's notes: English in ``gradebook.csv``, translated on the feedback page).
    """

    def __new__(cls, msgid: str, /, **params):
        self = super().__new__(cls, translate(msgid, LANGUAGES[0], **params))
        self.msgid, self.params = msgid, params
        return self

    def translated(self, language: str) -> str:
        """This sentence in ``language``."""
        return translate(self.msgid, language, **self.params)


def notebook_language(nb: dict) -> str:
    """A notebook's language: ``metadata.attention_course.language`` if the course has it, else English."""
    meta = nb.get("metadata") if isinstance(nb, dict) else None
    course = meta.get("attention_course") if isinstance(meta, dict) else None
    language = course.get("language") if isinstance(course, dict) else None
    return language if language in LANGUAGES else LANGUAGES[0]


@contextlib.contextmanager
def recording():
    """Record every message translated in the block: a list of ``(msgid, language, text)`` (for tests)."""
    calls: list = []
    _recorders.append(calls)
    try:
        yield calls
    finally:
        _recorders.remove(calls)


# ------------------------------------------------------------------------------ extraction
def _words(text: str) -> int:
    return len(re.findall(r"[A-Za-z]{2,}", text))


def _literal_text(node) -> str | None:
    """The constant text of a string or f-string node (None for anything else)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value for v in node.values if isinstance(v, ast.Constant))
    return None


def _pieces(node, min_words: int = 3):
    """The message strings of an expression: its strings, through ``+``, ``a or b`` and ``a if c else b``."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _pieces(node.left, min_words) + _pieces(node.right, min_words)
    if isinstance(node, ast.BoolOp):
        return [p for value in node.values for p in _pieces(value, min_words)]
    if isinstance(node, ast.IfExp):
        return _pieces(node.body, min_words) + _pieces(node.orelse, min_words)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("strip", "rstrip"):
        return _pieces(node.func.value, min_words)
    text = _literal_text(node)
    prose = text is not None and re.search(r"[A-Za-z]{2,},? [A-Za-z]{2,}(?![(\w])", text)  # not a formula or code
    return [node] if prose and _words(text) >= min_words else []


def _function_name(call: ast.Call) -> str:
    func = call.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""


def unwrapped(tree: ast.AST) -> list[ast.AST]:
    """The message strings of ``tree`` that are not wrapped in :func:`tr` (or :class:`Text`).

    A message string: an assertion's message, an ``AssertionError``'s, an ``expect=`` or ``what=``
    argument, the keys of a dictionary of explanations and the default of ``first_match``, a sentence
    a function returns or a variable holds (three words or more), outside a function ``describe``.
    """
    found, skip = [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == "describe":
            skip.update(id(n) for n in ast.walk(node))
        elif isinstance(node, ast.Assert) and node.msg is not None:
            found += _pieces(node.msg, 1)
        elif isinstance(node, ast.Call) and _function_name(node) == "AssertionError":
            found += [p for arg in node.args for p in _pieces(arg, 1)]
        elif isinstance(node, ast.Call):
            found += [p for kw in node.keywords if kw.arg in ("expect", "what") for p in _pieces(kw.value, 1)]
            if _function_name(node) == "first_match" and len(node.args) > 2:
                found += _pieces(node.args[2])
        elif isinstance(node, ast.Dict) and node.keys and all(_pieces(k, 4) for k in node.keys if k is not None):
            found += [p for k in node.keys for p in _pieces(k, 4)]
        elif isinstance(node, (ast.Return, ast.Assign)) and node.value is not None:
            found += _pieces(node.value, 3 if isinstance(node, ast.Return) else 4)
    return [n for n in found if id(n) not in skip]


def _calls(tree: ast.AST):
    """The msgids of the ``tr``/``translate``/``Text`` calls in ``tree``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _function_name(node) in WRAPPERS and node.args:
            first = node.args[WRAPPERS[_function_name(node)]]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                yield first.value


def check_cells(root: Path = PACKAGE_ROOT):
    """``(where, public source)`` of every check cell of ``solutions/`` (the part a student sees)."""
    for path in sorted((root / "solutions").glob("*/*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        for cell in cells:
            nbgrader = cell.get("metadata", {}).get("nbgrader", {})
            if cell["cell_type"] == "code" and nbgrader.get("grade"):
                source = "".join(cell["source"]).split("### BEGIN HIDDEN TESTS")[0]
                yield f"{path.relative_to(root).as_posix()}:{nbgrader['grade_id']}", source


def sources(root: Path = PACKAGE_ROOT):
    """``(where, parsed tree)`` of every place messages are written: the modules, the check cells."""
    for name in MODULES:
        path = Path(__file__).with_name(name)
        yield f"attention_course/grading/{name}", ast.parse(path.read_text(encoding="utf-8"))
    for where, source in check_cells(root):
        yield where, ast.parse(source)


def extract(root: Path = PACKAGE_ROOT) -> dict[str, list[str]]:
    """``{msgid: [where, ...]}`` of every message in the code, in order of first appearance."""
    found: dict[str, list[str]] = {}
    for where, tree in sources(root):
        for msgid in _calls(tree):
            places = found.setdefault(msgid, [])
            if where not in places:
                places.append(where)
    return found


def _fields(template: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}


def problems(language: str = "zh_CN", root: Path = PACKAGE_ROOT) -> list[str]:
    """What is wrong with ``language``'s catalogue: unwrapped, untranslated, stale or broken messages."""
    from babel.messages.pofile import read_po

    found = []
    for where, tree in sources(root):
        if where.endswith(".py") and Path(where).name not in STUDENT_FACING:
            continue  # the grader's notes for the instructor: wrapped one by one (Text) where a student sees them
        found += [f"{where}:{n.lineno}: not wrapped in tr(): {_literal_text(n)[:80]!r}" for n in unwrapped(tree)]
    messages = extract(root)
    with open(catalogue_path(language), "rb") as handle:
        catalogue = {m.id: m for m in read_po(handle) if m.id}
    for msgid in messages:
        entry = catalogue.get(msgid)
        if entry is None or not entry.string or entry.fuzzy:
            found.append(f"untranslated: {msgid[:100]!r}")
        elif _fields(entry.string) != _fields(msgid):
            found.append(f"placeholders differ: {msgid[:100]!r}")
        elif language == "zh_CN" and re.search(r"[A-Za-z]{2,},? [A-Za-z]{2,}", msgid) and \
                not re.search(r"[\u4e00-\u9fff]", entry.string):
            found.append(f"translation has no Chinese: {msgid[:100]!r}")
    found += [f"stale (no longer in the code): {msgid[:100]!r}" for msgid in catalogue if msgid not in messages]
    return found


def update(language: str = "zh_CN", root: Path = PACKAGE_ROOT) -> int:
    """Rewrite ``language``'s catalogue with the messages of the code, keeping the translations; return
    how many messages are untranslated."""
    from babel.messages.catalog import Catalog
    from babel.messages.pofile import read_po, write_po

    path = catalogue_path(language)
    old = {}
    if path.exists():
        with open(path, "rb") as handle:
            old = {m.id: m for m in read_po(handle) if m.id}
    catalogue = Catalog(locale=language, project="attention-course", fuzzy=False)
    missing = 0
    for msgid, places in extract(root).items():
        entry = old.get(msgid)
        missing += not (entry and entry.string)
        catalogue.add(msgid, entry.string if entry else "", locations=[(p, None) for p in places],
                      flags=("python-brace-format",) if _fields(msgid) else ())
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        write_po(handle, catalogue, width=0, omit_header=False, sort_output=False, include_lineno=False)
    return missing


def main(argv: list[str] | None = None) -> int:
    """``python -m attention_course.grading.messages update|check``."""
    command = (argv if argv is not None else sys.argv[1:]) or ["check"]
    if command[0] == "update":
        print(f"{catalogue_path('zh_CN')}: {update()} untranslated")
        return 0
    found = problems()
    print("\n".join(found) or "the catalogue is complete")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())

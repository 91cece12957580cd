"""The Chinese edition of the book: message catalogues, their checks, and the Chinese build.

One source, two editions. The English text stays in ``book/`` and ``notebooks/``; its Chinese
translation lives in Sphinx's gettext catalogues, one per page, under
``locales/zh_CN/LC_MESSAGES/`` (``book/01_origin.po``, ...). ``scripts/build_book.sh`` builds
the English book into ``_build/html/`` and then the Chinese one into ``_build/html/zh_CN/``
(``build`` below), which reuses the English build's executed notebooks (jupyter-cache): no
chapter runs twice.

    .venv/bin/python tools/i18n.py update   # after editing English text: refresh the catalogues
    .venv/bin/python tools/i18n.py check    # every entry translated, nothing fuzzy, markup intact
    .venv/bin/python tools/i18n.py check locales/zh_CN/LC_MESSAGES/book/01_origin.po   # one page
    .venv/bin/python tools/i18n.py build    # the Chinese edition (after the English build)

``update`` extracts the messages with Sphinx's gettext builder into ``_build/gettext/`` and
merges them into the catalogues with sphinx-intl: a new paragraph arrives with an empty
translation, a changed one as *fuzzy* with the old translation as a hint. Both fail ``check``
and the Chinese build (``_ext/editions.py`` warns about every untranslated message, and the
build runs with ``-W``) until a translator has dealt with them.

``check`` covers the catalogue of the notebooks' code cells too, ``locales/zh_CN/code/notebooks.po``
(comments, docstrings, printed text; ``tools/zh_notebooks.py update`` refreshes it).

``check`` also guards what a translation must not change: the maths (``$...$``, ``$$...$$``),
the MyST roles with their targets (``{ref}`...```, ``{cite:p}`...```, ``{glue:text}`...```),
inline code and link targets must appear in the translation exactly as in the English.

``check`` keeps the wording too: one Chinese word for each thing. The glossary's table
``(glossary-wording)=`` (``book/glossary.md``) lists each settled term with the variants a
translation must not use, and d2l-zh's term where the course's differs (also a variant here);
``wordings()`` reads it, and a translation that uses a variant is a problem naming the line, the
variant and the settled term. Maths, code, role targets and an English gloss in brackets
(``独热（one-hot）``) are not searched; a Chinese variant the English itself quotes is allowed; a
variant marked ``(except for *browser*)`` is allowed as often as the English has that word.

Exit status: 0 when all is well, 1 with one line per problem otherwise.
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from itertools import takewhile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LANGUAGE = "zh_CN"
LOCALES = ROOT / "locales"
CATALOGUES = LOCALES / LANGUAGE / "LC_MESSAGES"
# The notebooks' code texts (comments, docstrings, printed strings): tools/zh_notebooks.py's
# catalogue, outside LC_MESSAGES/ because it is no page of Sphinx's. Checked like the others,
# except for the markdown rule on how a translation may start.
CODE_CATALOGUE = LOCALES / LANGUAGE / "code" / "notebooks.po"
BUILD = ROOT / "_build"
GETTEXT = BUILD / "gettext"
CHINESE_HTML = BUILD / "html" / LANGUAGE
CHINESE_TITLE = "注意力机制"
CHINESE_AUTHOR = "注意力机制课程作者"
GLOSSARY = ROOT / "book" / "glossary.md"
WORDING_LABEL = "(glossary-wording)="

# What a translation must carry over unchanged. Display maths first, so that its dollars are
# not read as two inline spans.
_DISPLAY_MATH = re.compile(r"\$\$(.+?)\$\$", re.S)
_INLINE_MATH = re.compile(r"(?<![\\$])\$(?!\$)((?:\\.|[^$\\])+?)\$")
_ROLE = re.compile(r"\{([a-zA-Z][\w:+-]*)\}`([^`]*)`")
_CODE = re.compile(r"(?<![`}])(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.S)
_LINK_TARGET = re.compile(r"\]\(([^)\s]+)\)")
# A translation must stay one paragraph: Sphinx ignores a translation that parses as a list, a
# heading or a quote (a title "5. 多头自注意力" is a numbered list: write "5\\. 多头自注意力").
_BLOCK_START = re.compile(r"^(?:\d+[.)]|[-*+]|#{1,6}|>)(?:\s|$)")
# Roles whose text is shown to the reader and may be translated: only their target must stay.
_ROLES_WITH_TEXT = {"ref", "doc", "numref", "term", "download", "eq"}


@dataclass(frozen=True)
class Problem:
    catalogue: str
    msgid: str
    what: str
    line: int | None = None

    def __str__(self) -> str:
        text = " ".join(self.msgid.split())
        text = text if len(text) <= 90 else text[:89] + "…"
        where = f"{self.catalogue}:{self.line}" if self.line else self.catalogue
        return f"{where}: {self.what}: {text!r}"


def _role_target(name: str, content: str) -> str:
    if name in _ROLES_WITH_TEXT:
        match = re.search(r"<([^<>]+)>\s*$", content)
        return f"{{{name}}}{match.group(1) if match else content}"
    return f"{{{name}}}`{content}`"


def invariants(text: str) -> Counter:
    """The pieces of a message a translation must keep: maths, role targets, code, link targets.

    >>> sorted(invariants("See {ref}`the figure <fig-x>` and $a_i$ in `f(x)`.").elements())
    ['$a_i$', '`f(x)`', '{ref}fig-x']
    """
    found: Counter = Counter()
    rest = text
    for pattern, fmt in ((_DISPLAY_MATH, "$${}$$"), (_INLINE_MATH, "${}$")):
        for match in pattern.finditer(rest):
            found[fmt.format(match.group(1).strip())] += 1
        rest = pattern.sub(" ", rest)
    for match in _ROLE.finditer(rest):
        found[_role_target(match.group(1), match.group(2))] += 1
    rest = _ROLE.sub(" ", rest)
    for match in _CODE.finditer(rest):
        found[f"`{match.group(2).strip()}`"] += 1
    rest = _CODE.sub(" ", rest)
    for match in _LINK_TARGET.finditer(rest):
        found[f"]({match.group(1)})"] += 1
    return found


# ---------------------------------------------------------------- wording: one word for a thing

_CJK = re.compile(r"[\u3400-\u9fff]")
_VARIANT = re.compile(r"`([^`]+)`(?:\s*\(except for \*([^*]+)\*\))?")
# An English gloss in brackets after a Chinese term, 独热（one-hot）: the English word, not a wording.
_GLOSS = re.compile(r"[（(][^（）()\u3400-\u9fff]*[）)]")


@dataclass(frozen=True)
class Variant:
    text: str                 # the wording a translation must not use
    unless: str | None = None  # an English word it rightly translates (浏览器 for "browser")

    def pattern(self) -> re.Pattern:
        return _wording_pattern(self.text)


@dataclass(frozen=True)
class Wording:
    term: str                 # the settled Chinese term
    variants: tuple[Variant, ...]
    english: str = ""


def _wording_pattern(text: str) -> re.Pattern:
    # Spaces between words are optional (KV 缓存 = KV缓存); a Latin word does not match inside
    # another word or identifier, and in any case.
    body = r"\s*".join(re.escape(part) for part in text.split())
    if re.match(r"[A-Za-z]", text):
        body = r"(?<![A-Za-z_])" + body
    return re.compile(body, 0 if _CJK.search(text) else re.I)


def wordings(glossary: Path = GLOSSARY) -> list[Wording]:
    """The settled Chinese terms and their variants, from the glossary's table ``(glossary-wording)=``.

    Columns: the term; the variants (```缩放点积```, ```浏览器` (except for *browser*)``); d2l-zh's
    term where it differs (a variant too, "—" otherwise); the English; the source.
    """
    text = glossary.read_text(encoding="utf-8")
    if WORDING_LABEL not in text:
        raise ValueError(f"{glossary} has no table {WORDING_LABEL}")
    lines = text.split(WORDING_LABEL, 1)[1].strip().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    table = list(takewhile(lambda line: line.startswith("|"), lines[start:]))
    found = []
    for line in table[2:]:  # after the header and its rule
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 5:
            raise ValueError(f"{glossary}: a row of {WORDING_LABEL} needs 5 cells: {line}")
        term, avoided, d2l, english, _ = cells
        variants = [Variant(v, u or None) for v, u in _VARIANT.findall(avoided)]
        for other in ([] if d2l in ("", "—", "-") else d2l.split("/")):
            # d2l-zh's term, where it differs, is a variant too (unless a listed one covers it).
            if other.strip() and not any(v.text in other for v in variants):
                variants.append(Variant(other.strip()))
        found.append(Wording(term, tuple(variants), english))
    if not found:
        raise ValueError(f"{glossary}: the table {WORDING_LABEL} has no rows")
    return found


def _searchable(text: str) -> str:
    """A message as words: no maths, code, link targets or English glosses; a role reads as its
    shown text, or as ``{name}`` (公式 {eq}`eq-x` reads 公式 {eq})."""
    text = _DISPLAY_MATH.sub(" ", text)
    text = _INLINE_MATH.sub(" ", text)

    def role(match: re.Match) -> str:
        name, content = match.groups()
        shown = re.match(r"(.*?)\s*<[^<>]+>\s*$", content, re.S)
        if name in _ROLES_WITH_TEXT and shown:
            return shown.group(1)
        return content if name == "term" else f"{{{name}}}"

    text = _ROLE.sub(role, text)
    text = _CODE.sub(" ", text)
    text = _LINK_TARGET.sub("]", text)
    return _GLOSS.sub("", text)


def wording_problems(msgid: str, msgstr: str, terms: list[Wording]) -> list[str]:
    """The variants ``msgstr`` uses, as "uses X, not Y" (see ``wordings``).

    >>> rows = [Wording("热图", (Variant("热力图"),))]
    >>> wording_problems("A heatmap.", "一幅热力图。", rows)
    ['uses 热力图 where the edition says 热图']
    >>> wording_problems("A heatmap (热力图 in some books).", "一幅热图（有些书称为热力图）。", rows)
    []
    """
    english, chinese = _searchable(msgid), _searchable(msgstr)
    settled = [w.term for w in terms]
    found = []
    for wording in terms:
        for variant in wording.variants:
            pattern = variant.pattern()
            # A variant inside a longer settled term is that term (式 {eq} in 公式 {eq}).
            covers = [span for term in settled if variant.text in term and term != variant.text
                      for span in (m.span() for m in _wording_pattern(term).finditer(chinese))]
            used = sum(1 for m in pattern.finditer(chinese)
                       if not any(a <= m.start() and m.end() <= b for a, b in covers))
            allowed = len(pattern.findall(english)) if _CJK.search(variant.text) else 0
            if variant.unless:
                allowed += len(re.findall(r"(?<![A-Za-z])" + re.escape(variant.unless), english, re.I))
            if used > allowed:
                found.append(f"uses {variant.text} where the edition says {wording.term}")
    return found


def _read(path: Path):
    from babel.messages.pofile import read_po

    with path.open("rb") as handle:
        return read_po(handle, abort_invalid=True)


def check_catalogue(path: Path, terms: list[Wording] | None = None) -> list[Problem]:
    """Problems of one ``.po`` file: untranslated, fuzzy, a changed invariant (see ``invariants``),
    or a variant of a settled term (see ``wordings``; ``terms`` defaults to the glossary's).
    A message of ``CODE_CATALOGUE`` is code's text, not markdown: it may start like a list."""
    name = str(path.relative_to(CATALOGUES) if path.is_relative_to(CATALOGUES)
               else path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    markdown = path.resolve() != CODE_CATALOGUE.resolve()
    terms = wordings() if terms is None else terms
    problems = []
    for message in _read(path):
        if not message.id:  # the header
            continue
        msgid = message.id if isinstance(message.id, str) else message.id[0]
        msgstr = message.string if isinstance(message.string, str) else (message.string or [""])[0]
        if not msgstr or not msgstr.strip():
            problems.append(Problem(name, msgid, "untranslated"))
            continue
        if message.fuzzy:
            problems.append(Problem(name, msgid, "fuzzy (check the translation, then remove the flag)"))
        if markdown and _BLOCK_START.match(msgstr) and msgstr != msgid:
            problems.append(Problem(name, msgid, "starts like a list or heading: escape it (5\\. ...)"))
        want, got = invariants(msgid), invariants(msgstr)
        if want != got:
            lost = sorted((want - got).elements())
            added = sorted((got - want).elements())
            detail = "; ".join(part for part in (f"lost {lost}" if lost else "",
                                                 f"added {added}" if added else "") if part)
            problems.append(Problem(name, msgid, f"maths, roles or code changed ({detail})"))
        if msgstr != msgid:  # a message kept as it is (a name, an English cell) keeps the English's words
            problems.extend(Problem(name, msgid, what, message.lineno)
                            for what in wording_problems(msgid, msgstr, terms))
    return problems


def check(expected_pages: list[str] | None = None) -> list[Problem]:
    """Problems of every catalogue, and a problem for each page in ``expected_pages`` without one."""
    problems = []
    terms = wordings()
    for path in sorted(CATALOGUES.rglob("*.po")) + [CODE_CATALOGUE]:
        problems.extend(check_catalogue(path, terms))
    for page in expected_pages or []:
        if not (CATALOGUES / f"{page}.po").is_file():
            problems.append(Problem(f"{page}.po", "", "missing catalogue"))
    return problems


def book_pages() -> list[str]:
    """Every page of the book (``_toc.yml``), e.g. ``book/01_origin``."""
    import yaml

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    pages = [toc["root"]]
    for part in toc.get("parts", []):
        pages.extend(chapter["file"] for chapter in part.get("chapters", []))
    return pages


def _overrides(**extra) -> dict:
    # What `jupyter-book build .` adds to _config.yml's Sphinx configuration.
    return {"external_toc_path": "_toc.yml", "latex_individualpages": False, "nitpicky": True, **extra}


def _sphinx(outdir: Path, doctrees: Path, builder: str, overrides: dict) -> int:
    from jupyter_book.sphinx import build_sphinx

    result = build_sphinx(ROOT, outdir, noconfig=True, path_config=str(ROOT / "_config.yml"),
                          confoverrides=overrides, doctreedir=doctrees, builder=builder,
                          warningiserror=True, keep_going=True, quiet=True)
    if isinstance(result, Exception):
        print(f"!! the {builder} build failed: {result!r}", file=sys.stderr)
        return 1
    return int(result)


def update(pages: list[str] | None = None) -> int:
    """Extract the messages (gettext builder) and merge them into ``locales/zh_CN`` (sphinx-intl).

    ``pages`` (e.g. ``["book/01_origin"]``) limits the merge to those pages' catalogues; by
    default, every page of the book (``_toc.yml``).
    """
    # myst-nb renders no images for the gettext builder; the figures' alt texts (read aloud
    # to Chinese readers too) are messages only if the images are rendered.
    # Code cells' LaTeX outputs (show_source's listings) are code, not text: left out.
    images = [("gettext", "image/svg+xml", 1), ("gettext", "image/png", 2), ("gettext", "image/jpeg", 3),
              ("gettext", "text/latex", None)]
    status = _sphinx(GETTEXT, BUILD / ".doctrees-gettext", "gettext",
                     _overrides(nb_execution_cache_path=str(BUILD / ".jupyter_cache"),
                                nb_mime_priority_overrides=images))
    if status:
        return status
    # Only the pages' catalogues (by default every page of the book): the gettext builder also
    # writes a sphinx.pot of the theme's template strings, whose merge would mark the labels
    # of locales/zh_CN/LC_MESSAGES/sphinx.po obsolete.
    templates = BUILD / "gettext-selected"
    shutil.rmtree(templates, ignore_errors=True)
    for page in pages or book_pages():
        target = templates / f"{page}.pot"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(GETTEXT / f"{page}.pot", target)
    return subprocess.call([sys.executable, "-m", "sphinx_intl", "update", "-p", str(templates),
                            "-d", str(LOCALES), "-l", LANGUAGE, "--line-width", "-1"])


def build() -> int:
    """The Chinese edition into ``_build/html/zh_CN``, from the English build's executed notebooks."""
    if not (BUILD / ".jupyter_cache").is_dir():
        print("!! build the English book first (bash scripts/build_book.sh): the Chinese edition "
              "reuses its executed notebooks", file=sys.stderr)
        return 1
    overrides = _overrides(
        language=LANGUAGE,
        html_title=CHINESE_TITLE,
        author=CHINESE_AUTHOR,
        # The English build's cache: every chapter is a cache hit, nothing runs a second time.
        nb_execution_cache_path=str(BUILD / ".jupyter_cache"),
    )
    status = _sphinx(CHINESE_HTML, BUILD / f".doctrees-{LANGUAGE}", "html", overrides)
    # myst-nb writes the pages' outputs beside the output folder, which here is inside the
    # English book: the Chinese pages have their own copies in zh_CN/_images already.
    shutil.rmtree(CHINESE_HTML.parent / "jupyter_execute", ignore_errors=True)
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["update", "check", "build"])
    parser.add_argument("catalogues", nargs="*",
                        help="check: only these .po files; update: only these pages (book/01_origin); "
                             "default: every page of the book")
    args = parser.parse_args(argv)
    if args.command == "update":
        return update(args.catalogues or None)
    if args.command == "build":
        return build()
    if args.catalogues:
        terms = wordings()
        problems = [p for path in args.catalogues for p in check_catalogue(Path(path).resolve(), terms)]
    else:
        problems = check(book_pages())
    for problem in problems:
        print(problem)
    count = len(args.catalogues) or len(list(CATALOGUES.rglob("*.po"))) + 1  # and CODE_CATALOGUE
    print(f"{len(problems)} problem(s) in {count} catalogue(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

"""The PDF editions (tools/pdf.py, scripts/build_pdf.sh), read back with poppler's tools.

The PDFs are printed from the built book; if they are missing or older than it, the first test
prints them (scripts/test.sh prints them before the browser tests). Everything checked here comes
from the built pages and the quiz files, not from numbers written down: the chapters' titles (each
page's <h1>), the glued values (each page's ``pasted-text``), the self-check questions.
"""
from __future__ import annotations

import fcntl
import functools
import re
import shutil
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from conftest import HTML, ROOT, SCREENSHOTS

sys.path.insert(0, str(ROOT / "tools"))
import pdf as pdf_tool  # noqa: E402  (tools/pdf.py)

PAGES = pdf_tool.book_pages()
EDITIONS = list(pdf_tool.EDITIONS)
# MyST or LaTeX that, left in the printed text, means something did not render; a widget that
# never drew; the web page's controls.
LEFTOVER = re.compile(r"\{(?:ref|doc|term|numref|eq|cite(?::[pt])?|glue(?::text)?)\}`|\$\$|\\\(|\\\[|"
                      r"Loading(?:\.\.\.|…)|Loading widget|Show code cell|Hide code cell|Search this book|"
                      r"Ctrl\+K|Launch on|搜索本书")
CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")


def _tool(*args: str) -> str:
    if shutil.which(args[0]) is None:
        pytest.fail(f"{args[0]} is missing: apt-get install poppler-utils (scripts/build_pdf.sh does this as root)")
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def pdfs() -> dict[str, Path]:
    """Both PDFs, printed now if missing or older than the built book or the printing code (one
    worker at a time)."""
    paths = {name: pdf_tool.OUT / edition.filename for name, edition in pdf_tool.EDITIONS.items()}
    inputs = [HTML / f"{e.prefix}index.html" for e in pdf_tool.EDITIONS.values()]
    inputs += [ROOT / "tools" / "pdf.py", pdf_tool.PRINT_CSS, pdf_tool.PRINT_JS]
    built = max(path.stat().st_mtime for path in inputs)
    pdf_tool.OUT.mkdir(parents=True, exist_ok=True)
    with open(pdf_tool.OUT / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if any(not p.is_file() or p.stat().st_mtime < built for p in paths.values()):
            subprocess.run([sys.executable, str(ROOT / "tools" / "pdf.py")], check=True, cwd=ROOT)
    return paths


@functools.cache
def _page_texts(path: Path, layout: bool = False) -> list[str]:
    """The PDF's text, page by page (``layout``: lines as printed, e.g. a contents entry and its number)."""
    options = ["-layout"] if layout else []
    return _tool("pdftotext", "-enc", "UTF-8", *options, str(path), "-").split("\f")[:-1]


def _body_start(pages: list[str]) -> int:
    """Pages before page 1 (the title page and the contents): the last page's number is the body's length."""
    return len(pages) - int(pages[-1].split()[-1])


def _squeeze(text: str) -> str:
    """Text without whitespace (line breaks fall anywhere in the PDF's text, inside Chinese words too)."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


@functools.cache
def _source(edition: str, page: str) -> str:
    return (HTML / f"{pdf_tool.EDITIONS[edition].prefix}{page}.html").read_text(encoding="utf-8")


@functools.cache
def _article(edition: str, page: str) -> BeautifulSoup:
    """The page's article as built, without its scripts and styles (the explorers' saved state)."""
    source = re.sub(r"<(script|style)\b.*?</\1>", "", _source(edition, page), flags=re.S)
    return BeautifulSoup(source, "html.parser").select_one("article")


def _title(edition: str, page: str) -> str:
    heading = _article(edition, page).select_one("h1")
    for link in heading.select(".headerlink"):
        link.decompose()
    return heading.get_text(" ", strip=True)


def _contents(path: Path, edition: str) -> dict[str, int]:
    """Each page of the book and the page number the PDF's contents gives it, in the contents' order;
    fails at the first page missing from the contents or out of the book's order."""
    body = _body_start(_page_texts(path))
    # one entry a line, its page number at the end of the line
    lines = "".join(_page_texts(path, layout=True)[:body]).splitlines()
    contents = "\n".join(_squeeze(line) for line in lines)
    numbers, start = {}, 0
    for page in PAGES:
        title = _squeeze(_title(edition, page))
        # a long title runs on to a second line, which ends with the number
        match = re.compile("\n?".join(map(re.escape, title)) + r"(\d+)$", re.M).search(contents, start)
        assert match, f"{page}: title {title!r} is not in the contents after the previous page's"
        start = match.end()
        numbers[page] = int(match.group(1))
    return numbers


def _running_head(path: Path, index: int) -> str:
    return _squeeze(_page_texts(path, layout=True)[index].strip().splitlines()[0])


@pytest.mark.parametrize("edition", EDITIONS)
def test_every_chapter_in_order_in_the_contents_and_the_body(pdfs, edition):
    """Each page's title in the book's order in the table of contents, and the page the contents gives
    is where it starts: its title is on that page, the page before runs under another title (pages
    are numbered from the first chapter on: the last page's number is the body's length)."""
    pages = _page_texts(pdfs[edition])
    body = _body_start(pages)
    numbers = _contents(pdfs[edition], edition)
    assert list(numbers.values()) == sorted(numbers.values())
    for page, number in numbers.items():
        title = _squeeze(_title(edition, page))
        assert title in _squeeze(pages[body + number - 1]), f"{page} is not on page {number}, as the contents says"
        if number > 1:
            before = _running_head(pdfs[edition], body + number - 2)
            assert title not in before, f"{page} starts before page {number}: page {number - 1} is headed {before!r}"


@pytest.mark.parametrize("edition", EDITIONS)
def test_nothing_left_unrendered_and_every_glued_value_printed(pdfs, edition):
    text = "\f".join(_page_texts(pdfs[edition]))
    leftovers = sorted({m.group(0) for m in LEFTOVER.finditer(text)})
    assert not leftovers, f"{edition}: unrendered markup, placeholders or web controls in the PDF: {leftovers}"
    squeezed = _squeeze(text)
    missing = []
    for page in PAGES:
        glued = [span.get_text(strip=True) for span in _article(edition, page).select("span.pasted-text")]
        missing += [(page, value) for value in glued if value and _squeeze(value) not in squeezed]
    assert not missing, f"glued values of the pages that the {edition} PDF does not print: {missing[:10]}"


@pytest.mark.parametrize("edition", EDITIONS)
def test_self_checks_printed_with_an_answer_key_and_explorers_with_their_address(pdfs, edition):
    from attention_course.views.display import load_quiz

    squeezed = _squeeze("".join(_page_texts(pdfs[edition])))
    strings = pdf_tool.EDITIONS[edition].strings
    chapters = sorted({m.group(1) for page in PAGES for m in re.finditer(r'id="selfcheck(ch\d+)"', _source(edition, page))})
    assert chapters, "no self-checks found in the built pages"
    for chapter in chapters:
        for question in load_quiz(chapter, edition):
            plain = _squeeze(BeautifulSoup(question["question"], "html.parser").get_text())
            assert plain[:40] in squeezed, f"{chapter}: question {question['question'][:60]!r} is not printed"
    assert squeezed.count(_squeeze(strings["answer_key"])) >= len(chapters)
    unhyphenated = squeezed.replace("-", "")  # pdftotext joins a word broken at a hyphen without it
    for page in PAGES:
        if "application/vnd.jupyter.widget-view+json" in _source(edition, page):
            url = pdf_tool.site_url() + pdf_tool.EDITIONS[edition].prefix + page + ".html"
            assert url.replace("-", "") in unhyphenated, f"{page} has an explorer; its printed note does not give {url}"


@pytest.mark.parametrize("edition", EDITIONS)
def test_fonts_embedded_text_extractable_and_page_count_in_bounds(pdfs, edition):
    info = _tool("pdfinfo", str(pdfs[edition]))
    count = int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1))
    # at least a page per page of the book, and no page of the book longer than 40 printed pages
    assert len(PAGES) + 2 <= count <= 40 * len(PAGES), f"{edition}: {count} pages"
    assert re.search(r"^Page size:.*\(A4\)", info, re.M), info
    fonts = _tool("pdffonts", str(pdfs[edition])).splitlines()[2:]
    not_embedded = [line for line in fonts if not re.search(r"\s(yes)\s+(yes|no)\s+(yes|no)\s+\d+\s+\d+$", line)]
    assert fonts and not not_embedded, f"{edition}: fonts not embedded: {not_embedded}"
    text = "".join(_page_texts(pdfs[edition]))
    chinese = len(CJK.findall(text))
    if edition == "zh_CN":
        # the pages' Chinese text is all there (the PDF adds contents, running heads, answer keys)
        built = sum(len(CJK.findall(_article(edition, page).get_text())) for page in PAGES)
        assert chinese >= 0.95 * built, f"{chinese} Chinese characters in the PDF, {built} in the pages"
        _assert_cjk_font_covers(text, fonts)


def _assert_cjk_font_covers(text: str, fonts: list[str]) -> None:
    """Every Chinese character printed has a glyph in the CJK font the PDF embeds (no tofu boxes)."""
    from fontTools.ttLib import TTCollection

    assert any("WenQuanYi" in line for line in fonts), "the Chinese font is not embedded"
    path = _tool("fc-match", "-f", "%{file}", "WenQuanYi Micro Hei")
    cmap = set(TTCollection(path).fonts[0].getBestCmap())
    missing = sorted({ch for ch in CJK.findall(text) if ord(ch) not in cmap})
    assert not missing, f"Chinese characters without a glyph in WenQuanYi Micro Hei: {''.join(missing[:40])}"


@pytest.mark.parametrize("edition", EDITIONS)
def test_screenshots_of_two_pages(pdfs, edition):
    """The contents' first page and the first page of Chapter 3 (maths, a figure) for review."""
    pages = _page_texts(pdfs[edition])
    chapter = _body_start(pages) + _contents(pdfs[edition], edition)["book/03_general_form"] - 1
    body = _body_start(pages)
    contents = next(i for i in range(body) if _squeeze(pdf_tool.EDITIONS[edition].strings["contents"]) in _squeeze(pages[i]))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for index, name in ((contents, "contents"), (chapter, "chapter3")):
        stem = SCREENSHOTS / f"pdf-{edition}-{name}"
        _tool("pdftoppm", "-f", str(index + 1), "-l", str(index + 1), "-r", "80", "-png", "-singlefile",
              str(pdfs[edition]), str(stem))
        assert stem.with_suffix(".png").stat().st_size > 10_000


@pytest.mark.parametrize("edition", EDITIONS)
def test_links_lead_to_the_published_book_not_to_the_printing_server(pdfs, edition):
    from pypdf import PdfReader

    uris = [str(action["/URI"]) for page in PdfReader(pdfs[edition]).pages
            for annotation in page.get("/Annots") or []
            if (action := annotation.get_object().get("/A")) is not None and "/URI" in action.get_object()]
    local = sorted({uri for uri in uris if re.match(r"https?://(127\.0\.0\.1|localhost)\b", uri)})
    assert not local, f"{len(local)} links to the local server the book was printed from, e.g. {local[:3]}"
    assert any(uri.startswith(pdf_tool.site_url() + pdf_tool.EDITIONS[edition].prefix) for uri in uris)


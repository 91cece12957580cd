"""The book as two PDFs, English and Chinese, printed from the built HTML of both editions.

    .venv/bin/python tools/pdf.py            (bash scripts/build_pdf.sh: after scripts/build_book.sh)

writes ``_build/pdf/attention-mechanisms.pdf`` and ``_build/pdf/attention-mechanisms-zh_CN.pdf``
(and copies them into ``_build/html/pdf/``, where the site's download button links them). Nothing
is built or executed again: the pages are the ones ``scripts/build_book.sh`` wrote, served on
localhost and printed in Debian's Chromium (the browser tests' Playwright and browser, no request
leaves the machine). Each page of ``_toc.yml`` is printed on its own, with ``_ext/pdf/print.css``
(no navigation or buttons, A4, code wrapped) after ``_ext/pdf/print.js`` has given everything
interactive its printed form: each self-check and prediction its question and options, with an
answer key at the end of the chapter (questions and answers from the helper package's quiz
files); each explorer its first view and a sentence naming the live page. Then pypdf (pinned in
requirements.txt) puts the book together: a title page, the table of contents with page numbers
(read from each printed page's outline of headings), the pages numbered through the book with the
chapter's title as running head, and the outline as the PDF's bookmarks.

``--pages book/01_origin book/03_general_form`` prints only those pages (a short book, for a quick
look); ``--out DIR`` writes elsewhere.
"""
from __future__ import annotations

import argparse
import html
import io
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "_ext"))
sys.path.insert(0, str(ROOT / "tools"))
import local_site  # noqa: E402  (the localhost server and offline pages the browser tests use too)
from i18n import CHINESE_AUTHOR, CHINESE_TITLE, book_pages  # noqa: E402  (the Chinese build's title, _toc.yml's pages)
from pdf_download import FILES, PDF_FOLDER  # noqa: E402  (the site's download button links the PDFs)

CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))

HTML = ROOT / "_build" / "html"
OUT = ROOT / "_build" / "pdf"
PRINT_CSS = ROOT / "_ext" / "pdf" / "print.css"
PRINT_JS = ROOT / "_ext" / "pdf" / "print.js"
CHROMIUM_ARGS = [*local_site.CHROMIUM_ARGS, "--font-render-hinting=none"]


@dataclass(frozen=True)
class Edition:
    """One language of the book: where its pages are built, the PDF's name and its printed words."""

    language: str  # Sphinx's language of the build
    lang: str  # the PDF's and the pages' language tag
    prefix: str  # folder of this edition's pages inside _build/html
    filename: str
    strings: dict = field(hash=False)


EDITIONS = {
    "en": Edition("en", "en", "", FILES["en"], {
        "title": CONFIG["title"],
        "subtitle": "An executable course, from Bahdanau's translation model to GPT",
        "author": CONFIG["author"],
        "printed": "Printed from the book at {url}, where every explorer and question is interactive.",
        "contents": "Contents",
        "answer_key": "Answer key",
        "predict": "Predict first: choose an answer before you look at the output below.",
        "explorer": "Explorer",
        "live_explorer": "Printed above is the first view of the explorer “{title}”; in the live book "
                         "({url}) its controls redraw the figure for every choice.",
    }),
    "zh_CN": Edition("zh_CN", "zh-CN", "zh_CN/", FILES["zh_CN"], {
        "title": CHINESE_TITLE,
        "subtitle": "一门可执行的课程：从 Bahdanau 的翻译模型到 GPT",
        "author": CHINESE_AUTHOR,
        "printed": "本书印自 {url}，那里的每个探索器和每道题都可以交互。",
        "contents": "目录",
        "answer_key": "答案",
        "predict": "先预测：先选出答案，再看下面的输出。",
        "explorer": "探索器",
        "live_explorer": "上面印出的是探索器“{title}”的初始视图；在在线版（{url}）中，"
                         "它的控件会为每个选择重新绘制图形。",
    }),
}
# The text's width on paper in CSS pixels: A4 (210 mm) less print.css's margins (2 x 17 mm), at 96 px/inch.
PAPER_WIDTH = round((210 - 2 * 17) / 25.4 * 96)
QUIZ_ID = re.compile(r'id="(selfcheck|predict)(ch\d+)(?:_([a-z0-9_]+?))?(_zh_CN)?"')


def site_url() -> str:
    """The published book's address, from ``_config.yml``'s repository (GitHub Pages).

    >>> site_url()
    'https://attention-mechanisms.github.io/attention-course/'
    """
    owner, name = urlparse(CONFIG["repository"]["url"]).path.strip("/").split("/")[:2]
    return f"https://{owner}.github.io/{name}/"


def page_quizzes(source: str, strings: dict) -> dict:
    """The questions behind every self-check and prediction in a built page, by the quiz's div id.

    ``print.js`` prints them (question and options, the answer in the chapter's key) in place of
    the interactive quiz; they come from the same files the quiz was made from. The files list the
    right answer first (the page shows each answer's explanation as it is chosen); on paper, with the
    key a few pages on, that would give it away, so each question's options are put in an order of
    their own (:func:`printed_order`: the same in both editions, and in every build).
    """
    from attention_course.views.display import load_predictions, load_quiz

    quizzes = {}
    for match in QUIZ_ID.finditer(source):
        kind, chapter, key, chinese = match.groups()
        language = "zh_CN" if chinese else "en"
        if kind == "selfcheck":
            # under the chapter's own "Self-check" heading: no lead of its own
            lead, questions = "", load_quiz(chapter, language)
        else:
            lead, questions = strings["predict"], [load_predictions(chapter, language)[key]]
        quizzes[match.group(0)[4:-1]] = {"lead": lead, "questions": [
            {**question, "answers": [question["answers"][i] for i in
                                     printed_order(f"{kind}-{chapter}-{key}-{number}", len(question["answers"]))]}
            for number, question in enumerate(questions)]}
    return quizzes


def printed_order(name: str, count: int) -> list[int]:
    """A fixed order of ``count`` options for the question called ``name``.

    >>> sorted(printed_order("selfcheck-ch03-None-0", 3))
    [0, 1, 2]
    """
    import random

    order = list(range(count))
    random.Random(name).shuffle(order)
    return order


@dataclass
class Printed:
    """One page of the book printed on its own: its PDF and its headings with their page numbers."""

    page: str
    title: str
    pdf: bytes
    sections: list  # [(title, page index in this PDF)] of the page's second-level headings
    pages: int = 0


def _rendered(page, source: str) -> None:
    """Wait until the page's maths is typeset and every embedded widget (explorer) has drawn."""
    if 'class="math' in source:
        page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise")
        page.evaluate("() => MathJax.startup.promise")
    views = page.locator('script[type="application/vnd.jupyter.widget-view+json"]')
    for i in range(views.count()):
        views.nth(i).locator("xpath=..").locator(".jupyter-widgets, .widget-box, .lm-Widget, .ac-explorer").first.wait_for(
            state="attached", timeout=30000)
    page.evaluate("() => document.fonts.ready.then(() => true)")


def _headings(pdf: bytes) -> list:
    """The outline Chromium wrote (one entry per heading): [(level, title, page index)]."""
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(pdf))
    found = []

    def walk(items, level):
        for item in items:
            if isinstance(item, list):
                walk(item, level + 1)
            else:
                found.append((level, " ".join(item.title.split()).rstrip("#").strip(),
                              reader.get_destination_page_number(item)))

    walk(reader.outline, 1)
    return found


def print_page(browser, base: str, edition: Edition, page_name: str) -> Printed:
    """Print one built page of ``edition`` in its printed form (print.css, print.js)."""
    path = f"{edition.prefix}{page_name}.html"
    source = (HTML / path).read_text(encoding="utf-8")
    context = browser.new_context(viewport={"width": 900, "height": 1200})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    blocked = local_site.block_offsite(page)
    page.goto(f"{base}/{path}", wait_until="load")
    _rendered(page, source)
    page.add_style_tag(path=str(PRINT_CSS))
    page.set_viewport_size({"width": PAPER_WIDTH, "height": 1000})  # lay out (and measure) as on paper
    options = {"quizzes": page_quizzes(source, edition.strings), "strings": edition.strings,
               "url": site_url() + path, "site": site_url()}
    report = page.evaluate(PRINT_JS.read_text(encoding="utf-8"), options)
    if report["missing"]:
        raise RuntimeError(f"{path}: no questions for the quizzes {report['missing']}")
    if report["clipped"]:
        raise RuntimeError(f"{path}: the paper would cut off the right of " + "; ".join(report["clipped"]))
    pdf = page.pdf(prefer_css_page_size=True, print_background=True, outline=True, tagged=True)
    context.close()
    if blocked or errors:
        raise RuntimeError(f"{path}: requests outside the book {blocked}, errors {errors}")
    # The headings' words from the page (maths as TeX), their pages from the PDF's outline.
    titles = [h["text"] for h in report["headings"] if h["level"] == 1]
    texts = [h["text"] for h in report["headings"] if h["level"] == 2]
    pages = [index for level, _, index in _headings(pdf) if level == 2]
    if not titles or len(texts) != len(pages):
        raise RuntimeError(f"{path}: {len(titles)} titles; {len(texts)} sections on the page, {len(pages)} "
                           f"in the printed outline")
    sections = list(zip(texts, pages))
    return Printed(page_name, titles[0], pdf, sections)


def part_captions(edition: Edition) -> dict[str, str]:
    """Each part's caption in this edition, by the first page of the part (from the built sidebar)."""
    from bs4 import BeautifulSoup

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    soup = BeautifulSoup((HTML / f"{edition.prefix}{toc['root']}.html").read_text(encoding="utf-8"), "html.parser")
    shown = [span.get_text(strip=True) for span in soup.select("nav.bd-links p.caption span.caption-text")]
    parts = [part for part in toc.get("parts", []) if part.get("chapters")]
    if len(shown) != len(parts):
        raise RuntimeError(f"{len(shown)} part captions in the sidebar, {len(parts)} parts in _toc.yml")
    return {part["chapters"][0]["file"]: caption for part, caption in zip(parts, shown)}


FRONT_CSS = """
@page { size: A4; margin: 25mm 22mm; }
body { font-family: "DejaVu Sans", "WenQuanYi Micro Hei", sans-serif; font-size: 10.5pt; color: #111; }
.title-page { height: 240mm; display: flex; flex-direction: column; justify-content: center; break-after: page; }
.title-page h1 { font-size: 30pt; margin: 0 0 0.4em 0; }
.title-page .subtitle { font-size: 14pt; margin: 0 0 3em 0; }
.title-page .author { font-size: 12pt; }
.title-page .printed { margin-top: 4em; font-size: 9.5pt; color: #444; }
h2 { font-size: 18pt; margin: 0 0 1em 0; }
.part { font-weight: 700; font-size: 11pt; margin: 1.1em 0 0.3em 0; break-after: avoid; }
.entry { display: flex; align-items: last baseline; margin: 0.15em 0; break-inside: avoid; }
.entry .text { flex: 0 1 auto; }
.entry .dots { flex: 1 1 auto; border-bottom: 1px dotted #777; margin: 0 0.4em; min-width: 2em; }
.entry .num { flex: 0 0 auto; font-variant-numeric: tabular-nums; }
.entry.chapter { font-weight: 600; margin-top: 0.45em; }
.entry.section { padding-left: 1.8em; font-size: 9.5pt; }
"""


def front_matter(edition: Edition, printed: list[Printed], starts: list[int], base: str,
                 captions: dict[str, str]) -> str:
    """The title page and the table of contents (chapters and sections with their page numbers).

    ``starts`` are the pages' first page numbers; ``captions`` the parts' captions by their first
    page (:func:`part_captions`). The entries' maths (TeX between ``\\(`` and ``\\)``) is typeset
    by the book's own MathJax, served at ``base``.
    """
    s = edition.strings
    rows = []
    for chapter, start in zip(printed, starts):
        if chapter.page in captions:
            rows.append(f'<p class="part">{html.escape(captions[chapter.page])}</p>')
        rows.append(_entry("chapter", chapter.title, start))
        rows.extend(_entry("section", text, start + index) for text, index in chapter.sections)
    url = site_url() + edition.prefix
    return (f'<!doctype html><html lang="{edition.lang}"><head><meta charset="utf-8"><style>{FRONT_CSS}</style>'
            f'<script src="{base}/_static/mathjax/tex-chtml.js"></script>'
            f'</head><body><section class="title-page"><h1>{html.escape(s["title"])}</h1>'
            f'<p class="subtitle">{html.escape(s["subtitle"])}</p><p class="author">{html.escape(s["author"])}</p>'
            f'<p class="printed">{html.escape(s["printed"].format(url=url))}</p></section>'
            f'<section class="toc"><h2>{html.escape(s["contents"])}</h2>{"".join(rows)}</section></body></html>')


def _entry(kind: str, text: str, number: int) -> str:
    return (f'<div class="entry {kind}"><span class="text">{html.escape(text)}</span>'
            f'<span class="dots"></span><span class="num">{number}</span></div>')


OVERLAY_CSS = """
@page { size: A4; margin: 0; }
html, body { margin: 0; padding: 0; }
body { font-family: "DejaVu Sans", "WenQuanYi Micro Hei", sans-serif; font-size: 8.5pt; color: #444; }
.sheet { position: relative; width: 210mm; height: 296.5mm; overflow: hidden; break-after: page; }
.sheet:last-child { break-after: auto; }
.head { position: absolute; top: 9mm; left: 17mm; right: 17mm; display: flex; justify-content: space-between;
        border-bottom: 0.5pt solid #999; padding-bottom: 1mm; }
.foot { position: absolute; bottom: 9mm; left: 0; right: 0; text-align: center; font-size: 9.5pt; }
"""


def overlay(book_title: str, running: list[str], lang: str) -> str:
    """One sheet per body page: the running head (book, chapter) and the page number, 1, 2, ..."""
    sheets = "".join(f'<div class="sheet"><div class="head"><span>{html.escape(book_title)}</span>'
                     f'<span>{html.escape(title)}</span></div><div class="foot">{number}</div></div>'
                     for number, title in enumerate(running, start=1))
    return (f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8"><style>{OVERLAY_CSS}</style>'
            f'</head><body>{sheets}</body></html>')


def _pdf_of(browser, document: str) -> bytes:
    """Print an HTML document (front matter, running heads) made here; its maths typeset if it has any."""
    context = browser.new_context()
    page = context.new_page()
    local_site.block_offsite(page)
    page.set_content(document, wait_until="load")
    if "mathjax" in document:
        page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise")
        page.evaluate("() => MathJax.startup.promise")
    page.evaluate("() => document.fonts.ready.then(() => true)")
    pdf = page.pdf(prefer_css_page_size=True, print_background=True, tagged=True)
    context.close()
    return pdf


def assemble(browser, base: str, edition: Edition, printed: list[Printed]) -> bytes:
    """Title page, contents, then every printed page numbered through the book, with bookmarks."""
    from pypdf import PdfReader, PdfWriter

    readers = [PdfReader(io.BytesIO(p.pdf)) for p in printed]
    starts, running = [], []
    for chapter, reader in zip(printed, readers):
        chapter.pages = len(reader.pages)
        starts.append(len(running) + 1)
        running.extend([re.sub(r"\\\(|\\\)", "", chapter.title)] * chapter.pages)
    front = PdfReader(io.BytesIO(_pdf_of(browser, front_matter(edition, printed, starts, base, part_captions(edition)))))
    stamps = PdfReader(io.BytesIO(_pdf_of(browser, overlay(edition.strings["title"], running, edition.lang))))
    if len(stamps.pages) != len(running):
        raise RuntimeError(f"{len(stamps.pages)} running heads for {len(running)} pages")
    writer = PdfWriter()
    writer.append(front, import_outline=False)
    first = len(writer.pages)
    for chapter, reader, start in zip(printed, readers, starts):
        writer.append(reader, import_outline=False)
        mark = writer.add_outline_item(title=chapter.title, page_number=first + start - 1)
        for text, index in chapter.sections:
            writer.add_outline_item(title=text, page_number=first + start - 1 + index, parent=mark)
    for number, stamp in enumerate(stamps.pages):
        writer.pages[first + number].merge_page(stamp)
    writer.add_metadata({"/Title": edition.strings["title"], "/Author": edition.strings["author"],
                         "/Subject": edition.strings["subtitle"], "/Creator": "tools/pdf.py (Chromium, pypdf)"})
    from pypdf.generic import NameObject, TextStringObject

    writer._root_object[NameObject("/Lang")] = TextStringObject(edition.lang)
    writer.page_mode = "/UseOutlines"
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def print_edition(executable: str, base: str, name: str, pages: list[str], out: Path) -> Path:
    """Print ``pages`` of one edition in a Chromium of its own and write its PDF into ``out``."""
    from playwright.sync_api import sync_playwright

    edition = EDITIONS[name]
    start = time.monotonic()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        printed = [print_page(browser, base, edition, page) for page in pages]
        target = out / edition.filename
        target.write_bytes(assemble(browser, base, edition, printed))
        browser.close()
    shown = target.relative_to(ROOT) if target.is_relative_to(ROOT) else target
    print(f"== {shown}: {len(printed)} pages of the book, {sum(p.pages for p in printed)} printed pages "
          f"({time.monotonic() - start:.0f} s)", flush=True)
    return target


def build(editions: list[str], pages: list[str], out: Path, publish: bool = True) -> list[Path]:
    """Print ``pages`` of each edition into ``out`` (and ``_build/html/pdf/`` if ``publish``).

    The editions print side by side, one Chromium each (the machine's two cores).
    """
    from concurrent.futures import ThreadPoolExecutor

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        raise SystemExit("!! Chromium is missing: apt-get install chromium (scripts/build_pdf.sh does this as root)")
    if not all((HTML / f"{EDITIONS[name].prefix}index.html").is_file() for name in editions):
        raise SystemExit("!! the built book is missing: build it first (bash scripts/build_book.sh)")
    out.mkdir(parents=True, exist_ok=True)
    server, base = local_site.serve(HTML)
    try:
        with ThreadPoolExecutor(max_workers=len(editions)) as pool:
            written = list(pool.map(lambda name: print_edition(executable, base, name, pages, out), editions))
    finally:
        server.shutdown()
    if publish:
        site = HTML / PDF_FOLDER
        site.mkdir(exist_ok=True)
        for path in written:
            shutil.copyfile(path, site / path.name)
    return written


def main(argv: list[str] | None = None) -> int:
    """Command line: ``tools/pdf.py [--edition en|zh_CN] [--pages PAGE ...] [--out DIR]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edition", choices=list(EDITIONS), action="append",
                        help="only this edition (repeatable); default: both")
    parser.add_argument("--pages", nargs="+", help="only these pages (book/01_origin ...); default: _toc.yml's")
    parser.add_argument("--out", type=Path, default=OUT, help="folder for the PDFs (default: _build/pdf)")
    args = parser.parse_args(argv)
    pages = args.pages or book_pages()
    unknown = sorted(set(pages) - set(book_pages()))
    if unknown:
        parser.error(f"not pages of the book: {unknown}")
    # A short book (--pages) or one written elsewhere is not the one the site links.
    publish = args.pages is None and args.out.resolve() == OUT.resolve()
    build(args.edition or list(EDITIONS), pages, args.out, publish=publish)
    return 0


if __name__ == "__main__":
    sys.exit(main())

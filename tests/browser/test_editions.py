"""The two editions of the built book: a switcher on every page, Chinese pages that read in
Chinese with their markup intact, and a Chinese search (_ext/editions.py, tools/i18n.py)."""
from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from urllib.parse import quote, urljoin

import pytest

from conftest import CHINESE, HTML, ROOT
from test_rendered_book import PAGES

# Pages made by Sphinx itself rather than from a source page (and the index redirect).
GENERATED = {"genindex.html", "search.html", "index.html"}
CONTENT = sorted(p for p in PAGES if p.startswith(CHINESE) and p.removeprefix(CHINESE) not in GENERATED)
# MyST syntax that, left in the rendered text, means a translation broke a role, maths or emphasis.
LEFTOVER = re.compile(r"\{(?:ref|doc|term|numref|eq|cite(?::[pt])?|glue(?::text)?)\}`|\*\*|(?<!\\)\$|``")


def switch_href(page_path: str) -> str:
    source = (HTML / page_path).read_text(encoding="utf-8")
    match = re.search(r'<a class="btn ac-edition-switch" href="([^"]+)"', source)
    assert match, f"{page_path} has no edition switcher"
    return html.unescape(match.group(1))


@pytest.mark.parametrize("page_path", [p for p in PAGES if p.removeprefix(CHINESE) != "index.html"])
def test_every_page_links_to_itself_in_the_other_edition(page_path):
    chinese = page_path.startswith(CHINESE)
    target = urljoin("/" + page_path, switch_href(page_path)).lstrip("/")
    expected = page_path.removeprefix(CHINESE) if chinese else CHINESE + page_path
    assert target == expected, f"{page_path}: the switcher leads to {target}, not {expected}"
    assert (HTML / target).is_file()


def test_the_switcher_works_both_ways_in_the_browser(offline_page, book_url):
    page = offline_page
    page.goto(f"{book_url}/book/03_general_form.html", wait_until="load")
    assert page.get_attribute("html", "lang") == "en"
    page.get_by_role("link", name="阅读本页的中文版").click()
    page.wait_for_url(f"{book_url}/{CHINESE}book/03_general_form.html")
    assert page.get_attribute("html", "lang") == "zh-CN"
    assert page.locator("h1").first.inner_text().startswith("3.")
    page.get_by_role("link", name="Read this page in English").press("Enter")
    page.wait_for_url(f"{book_url}/book/03_general_form.html")
    assert not page.console_errors, page.console_errors


class _ArticleText(HTMLParser):
    """The reader's text of a page's article: no code, outputs, maths, scripts or styles."""

    SKIP_TAGS = {"script", "style", "pre", "code", "math", "svg"}
    SKIP_CLASSES = {"cell_output", "math", "highlight", "ac-explorer", "course-self-check", "sd-tab-set",
                    "citation-list", "citation"}  # bibliography entries stay as published
    VOID = {"br", "img", "hr", "input", "meta", "link", "wbr", "source", "area", "col"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.depth_in_article = 0
        self.skipping: list[int] = []  # depths at which a skipped element opened
        self.depth = 0
        self.chunks: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in self.VOID:
            return
        self.depth += 1
        attrs = dict(attrs)
        if tag == "article" and not self.depth_in_article:
            self.depth_in_article = self.depth
        classes = set((attrs.get("class") or "").split())
        if self.depth_in_article and not self.skipping and (tag in self.SKIP_TAGS or classes & self.SKIP_CLASSES):
            self.skipping.append(self.depth)

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        if self.skipping and self.skipping[-1] == self.depth:
            self.skipping.pop()
        if self.depth_in_article == self.depth:
            self.depth_in_article = 0
        self.depth -= 1

    def handle_data(self, data):
        if self.depth_in_article and not self.skipping:
            self.chunks.append(data)


def article_text(page_path: str) -> str:
    parser = _ArticleText()
    parser.feed((HTML / page_path).read_text(encoding="utf-8"))
    return " ".join(" ".join(parser.chunks).split())


@pytest.mark.parametrize("page_path", CONTENT)
def test_chinese_pages_read_in_chinese(page_path):
    text = article_text(page_path)
    han = sum("\u4e00" <= ch <= "\u9fff" for ch in text)
    latin = len(re.findall(r"[A-Za-z]", text))
    # Names, symbols and English terms in parentheses remain; the prose itself is Chinese.
    assert han >= 200 or page_path.endswith("references.html"), f"{page_path}: only {han} Chinese characters"
    assert han >= 0.5 * latin, f"{page_path}: {han} Chinese characters against {latin} Latin letters"


@pytest.mark.parametrize("page_path", [p.removeprefix(CHINESE) for p in CONTENT] + CONTENT)
def test_no_unrendered_markup(page_path):
    """A role, a maths span or emphasis that MyST did not parse shows up as raw text (in either
    edition: a translation can break it, and so can the English, e.g. $$...$$ inside a paragraph)."""
    text = article_text(page_path)
    leftover = sorted({m.group(0) for m in LEFTOVER.finditer(text)})
    assert not leftover, f"{page_path}: unrendered markup {leftover} in: " + "; ".join(
        text[max(0, m.start() - 40):m.end() + 40] for m in LEFTOVER.finditer(text))[:600]


def test_chinese_search_finds_chinese_words(offline_page, book_url):
    page = offline_page
    page.goto(f"{book_url}/{CHINESE}search.html?q={quote('上下文向量')}", wait_until="load")
    results = page.locator("#search-results ul.search li")
    results.first.wait_for(timeout=30000)
    found = [results.nth(i).locator("a").first.get_attribute("href") for i in range(results.count())]
    assert any("01_origin" in href for href in found), found
    assert not page.blocked and not page.console_errors, (page.blocked, page.console_errors)


def launch_links(page_path: str) -> list[str]:
    source = (HTML / page_path).read_text(encoding="utf-8")
    return sorted(set(html.unescape(href) for href in re.findall(
        r'href="(https://(?:colab\.research\.google\.com|mybinder\.org)/[^"]+)"', source)))


@pytest.mark.parametrize("page_path", [p for p in CONTENT if p.endswith(".html")])
def test_chinese_launch_buttons_open_the_chinese_notebook(page_path):
    """A Chinese page's Colab and Binder buttons open its Chinese twin (zh_CN/<path>.ipynb, made by
    tools/zh_notebooks.py from the same sources); an English page's, the English notebook."""
    english = page_path.removeprefix(CHINESE)
    chinese_links, english_links = launch_links(page_path), launch_links(english)
    assert len(chinese_links) == len(english_links), page_path
    for zh_link, en_link in zip(chinese_links, english_links):
        source = english.removesuffix(".html") + ".ipynb"
        assert source in en_link and "zh_CN/" not in en_link, en_link
        assert zh_link == en_link.replace(source, "zh_CN/" + source), (zh_link, en_link)
        assert (ROOT / "zh_CN" / source).is_file(), source
    if english.startswith(("book/0", "notebooks/")):
        assert any("colab.research.google.com" in link for link in chinese_links), page_path


@pytest.mark.parametrize("page_path", ["book/intro.html", "book/03_general_form.html"])
def test_navigation_captions_are_in_each_editions_language(page_path):
    def captions(path):
        source = (HTML / path).read_text(encoding="utf-8")
        sidebar = source[source.index('class="bd-links'):]  # the navigation, not the figures' captions
        return re.findall(r'<p aria-level="2" class="caption" role="heading"><span class="caption-text">([^<]+)', sidebar)

    english, chinese = captions(page_path), captions(CHINESE + page_path)
    assert english == ["The lecture", "Beyond the lecture", "Exercises", "Reference"], english
    assert len(chinese) == 4 and all(re.search("[\u4e00-\u9fff]", c) for c in chinese), chinese

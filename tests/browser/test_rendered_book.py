"""Every page of the built book, checked in a real browser with no network but localhost."""
from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import unquote, urljoin, urlparse

import pytest

from conftest import CHINESE, HTML, ROOT, SCREENSHOTS, english_path

PAGES = sorted(
    str(p.relative_to(HTML)) for p in HTML.rglob("*.html")
    if not any(part.startswith("_") for part in p.relative_to(HTML).parts)  # _static/ of both editions
) if HTML.is_dir() else []

# Console errors a page may show, each with the reason it is harmless (regex -> why).
# None is needed today: the theme's "invalid theme mode" error is fixed by setting
# html_context.default_mode, the duplicated thebe script by _ext/dedupe_scripts.py,
# and the widget manager's MathJax 2 call and font paths by _ext/static/widgets-offline.js.
ALLOWED_CONSOLE_ERRORS: dict[str, str] = {}


def allowed(message: str) -> bool:
    return any(re.search(pattern, message) for pattern in ALLOWED_CONSOLE_ERRORS)


def test_pages_were_found():
    assert "book/03_general_form.html" in PAGES, PAGES
    english = [p for p in PAGES if not p.startswith(CHINESE)]
    assert sorted(p for p in PAGES if p.startswith(CHINESE)) == sorted(CHINESE + p for p in english), \
        "the Chinese edition must have exactly the English edition's pages"


@pytest.mark.parametrize("page_path", PAGES)
def test_page_renders_offline(offline_page, book_url, page_path):
    page = offline_page
    start = f"{book_url}/{page_path}"
    page.goto(start, wait_until="load")
    source = (HTML / page_path).read_text(encoding="utf-8")
    if 'http-equiv="refresh"' in source.lower():  # index.html redirects to the first chapter page
        page.wait_for_url(lambda url: url != start)
        page.wait_for_load_state("load")
        page_path = page.url.split(book_url + "/", 1)[1].split("#")[0]
        source = (HTML / page_path).read_text(encoding="utf-8")

    # Maths: typeset by the book's own MathJax, with no raw TeX delimiters left.
    if 'class="math' in source:
        page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise")
        page.evaluate("() => MathJax.startup.promise")
        assert page.locator("mjx-container").count() > 0, "MathJax did not typeset any maths"
        text = page.inner_text("main")
        assert "\\(" not in text and "\\[" not in text, "raw TeX left on the page"

    # Widgets: every embedded widget view renders a DOM node.
    views = page.locator('script[type="application/vnd.jupyter.widget-view+json"]')
    for i in range(views.count()):
        rendered = views.nth(i).locator("xpath=..").locator(".jupyter-widgets, .widget-box, .lm-Widget")
        rendered.first.wait_for(state="attached", timeout=15000)

    # Figures: every figure the notebook declares (a cell with mystnb image.alt) is on the page.
    notebook = ROOT / Path(english_path(page_path)).with_suffix(".ipynb")
    if notebook.is_file() and page_path.startswith(CHINESE):
        # the alt texts are translated: as many described figures as the notebook declares
        declared = sum("alt" in c["metadata"].get("mystnb", {}).get("image", {})
                       for c in json.loads(notebook.read_text(encoding="utf-8"))["cells"])
        described = page.eval_on_selector_all("img[alt]", "els => els.filter(e => e.alt.trim()).length")
        assert described >= declared, f"{page_path}: {described} described images, {declared} declared"
    elif notebook.is_file():
        page_alts = set(page.eval_on_selector_all("img[alt]", "els => els.map(e => e.getAttribute('alt'))"))
        for cell in json.loads(notebook.read_text(encoding="utf-8"))["cells"]:
            alt = cell["metadata"].get("mystnb", {}).get("image", {}).get("alt")
            if alt is None:
                continue
            # Glued numbers ({glue:text}`key:.2f`, filled by _ext/glue_alt.py) match any value.
            pattern = re.compile(".+?".join(map(re.escape, re.split(r"\{glue(?::text)?\}`[^`]+`", alt))))
            assert any(pattern.fullmatch(a) for a in page_alts), f"{page_path} lacks the figure: {alt[:80]}"
            assert not any("{glue" in a for a in page_alts), f"{page_path} has an unfilled glue role in alt text"

    # Figures: every image in the article has alt text.
    for img in page.locator("article img, main img").all():
        alt = (img.get_attribute("alt") or "").strip()
        assert alt, f"an image on {page_path} has no alt text: {(img.get_attribute('src') or '')[:80]}"

    # Launch buttons: Colab and Binder open a notebook that exists in the repository.
    for link in page.locator('a[href*="colab.research.google.com/github/"]').all():
        path = re.sub(r"^.*/blob/[^/]+/", "", link.get_attribute("href"))
        assert (ROOT / unquote(path)).is_file(), f"Colab link to a missing notebook: {path}"
    for link in page.locator('a[href*="mybinder.org/v2/"]').all():
        match = re.search(r"urlpath=tree/([^&]+)", link.get_attribute("href"))
        if match:
            assert (ROOT / unquote(match.group(1))).is_file(), f"Binder link to a missing notebook: {match.group(1)}"

    # Internal links: the target file exists and so does its anchor.
    base = f"{book_url}/{page_path}"
    for href in page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))"):
        url = urlparse(urljoin(base, href))
        if url.scheme not in ("http", "https") or url.netloc != urlparse(book_url).netloc:
            continue
        target = HTML / unquote(url.path).lstrip("/")
        if target.is_dir():
            target = target / "index.html"
        assert target.is_file(), f"broken link {href!r} on {page_path}"
        if url.fragment and target.suffix == ".html":
            html = target.read_text(encoding="utf-8")
            assert f'id="{url.fragment}"' in html, f"link {href!r} on {page_path}: no anchor #{url.fragment}"

    # Nothing the page needs comes from another host (no CDN).
    assert not page.blocked, f"{page_path} tried to load from other hosts: {page.blocked}"

    errors = [m for m in page.console_errors if not allowed(m)]
    assert not errors, f"console errors on {page_path}: {errors}"

    if english_path(page_path).startswith(("book/", "notebooks/")):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        name = ("zh_CN-" if page_path.startswith(CHINESE) else "") + Path(page_path).with_suffix(".png").name
        page.screenshot(path=str(SCREENSHOTS / name), full_page=True)

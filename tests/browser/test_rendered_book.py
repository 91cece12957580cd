"""Every page of the built book, checked in a real browser with no network but localhost.

Each page is loaded once (the session-scoped ``loaded`` fixture: pytest runs every test of one
page together, and pytest-xdist keeps them on one worker) and then checked: it renders (maths,
widgets, figures, links, no CDN, no console error), and axe-core finds no WCAG 2 A/AA violation.
Which of axe's rules run where:
- English pages, light mode: every WCAG 2 A/AA rule;
- English pages, dark mode: the rules about colour (``COLOUR_RULES``), the only ones the theme's
  mode can change, since the two modes differ only in their stylesheet's colours;
- Chinese pages (light mode): every rule but colour contrast. The two editions share every
  stylesheet and element; only the text differs, so names, labels, alt texts and the page's
  language are checked again, and contrast (the slowest rule) is not.
axe-core is pinned in package.json (a devDependency) and injected from node_modules, so the check
needs no network.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import unquote, urljoin, urlparse

import pytest

from conftest import CHINESE, HTML, ROOT, SCREENSHOTS, Loaded, english_path, one_per_page

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


AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
TAGS = ["wcag2a", "wcag2aa"]
COLOUR_RULES = ["color-contrast", "link-in-text-block"]  # the WCAG 2 A/AA rules that depend on colours

# Violations known and accepted, page -> axe rule ids (none today). Each entry must still
# occur: an entry that no longer fails fails the test, so the list cannot go stale.
PENDING: dict[str, set[str]] = {}


def violations(page, only: list[str] | None = None, skip: tuple[str, ...] = ()) -> list[str]:
    """axe-core's WCAG 2 A and AA violations on the page as it is now, one line each.

    ``only``: run just these rules; ``skip``: every WCAG 2 A/AA rule but these.
    """
    if not AXE.is_file():
        pytest.fail("node_modules/axe-core is missing: run bash scripts/vendor_static.sh (npm ci)")
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.add_script_tag(path=str(AXE))
    options = {"runOnly": {"type": "rule", "values": only} if only else {"type": "tag", "values": TAGS},
               "rules": {rule: {"enabled": False} for rule in skip}, "resultTypes": ["violations"]}
    return page.evaluate(
        "options => axe.run(document, options)"
        ".then(r => r.violations.map(v => `${v.id} (${v.impact}): ${v.help} -> ` +"
        " v.nodes.slice(0, 5).map(n => n.target.join(' ')).join(' | ') + ` [${v.nodes.length} nodes]`))",
        options,
    )


def check_axe(loaded: Loaded, mode: str, **rules) -> None:
    found = violations(loaded.page, **rules)
    pending = PENDING.get(loaded.path, set()) if mode == "light" else set()
    unexpected = [v for v in found if v.split(" ", 1)[0] not in PENDING.get(loaded.path, set())]
    assert not unexpected, f"axe found WCAG 2 A/AA violations on {loaded.path} ({mode} mode):\n" + "\n".join(unexpected)
    gone = pending - {v.split(" ", 1)[0] for v in found}
    assert not gone, f"{loaded.path}: {sorted(gone)} no longer occur: remove them from PENDING"


@one_per_page(PAGES)
def test_page_renders_offline(loaded, book_url):
    page, page_path, source = loaded.page, loaded.path, loaded.source

    # Maths: typeset (the fixture waited for MathJax), with no raw TeX delimiters left.
    if 'class="math' in source:
        assert page.locator("mjx-container").count() > 0, "MathJax did not typeset any maths"
        text = page.inner_text("main")
        assert "\\(" not in text and "\\[" not in text, "raw TeX left on the page"

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

    # A full-page screenshot of each chapter in both editions, for reviewers (_build/screenshots/);
    # the other pages (exercise notebooks, glossary, references, ...) are checked but not kept:
    # a full-page screenshot costs 1-3 s of CPU.
    if re.fullmatch(r"book/\d\d_\w+\.html", english_path(page_path)):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        name = ("zh_CN-" if page_path.startswith(CHINESE) else "") + Path(page_path).with_suffix(".jpg").name
        page.screenshot(path=str(SCREENSHOTS / name), full_page=True, type="jpeg", quality=80)


@one_per_page(PAGES)
def test_no_wcag_violations_in_light_mode(loaded):
    if loaded.path.startswith(CHINESE):
        check_axe(loaded, "light", skip=("color-contrast",))  # same colours as the English page
    else:
        check_axe(loaded, "light")


# Switch the theme's mode, then wait until the colour transitions it starts (the theme's buttons
# fade over 0.15 s) have ended: axe must see the new colours, not a frame of the fade.
SET_MODE = """async mode => {
    document.documentElement.dataset.theme = mode;
    document.documentElement.dataset.mode = mode;
    await new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)));
    await Promise.all(document.getAnimations().filter(a => a instanceof CSSTransition)
                      .map(a => a.finished.catch(() => null)));
}"""


@one_per_page([p for p in PAGES if not p.startswith(CHINESE)])
def test_no_wcag_violations_in_dark_mode(loaded):
    loaded.page.evaluate(SET_MODE, "dark")
    try:
        check_axe(loaded, "dark", only=COLOUR_RULES)
    finally:  # back to light mode for any test of this page that runs after this one
        loaded.page.evaluate(SET_MODE, "light")

"""axe-core (WCAG 2 A and AA rules) on every page of the built book, offline.

axe-core is pinned in package.json (a devDependency) and injected from node_modules, so the
check needs no network. Pages with explorers are checked after the explorers have rendered,
in the theme's light and dark modes (the Chinese edition's pages, the same but for their text,
in light mode only).
"""
from __future__ import annotations

import pytest

from conftest import CHINESE, HTML, ROOT
from test_rendered_book import PAGES

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
TAGS = ["wcag2a", "wcag2aa"]

# Violations known and accepted, page -> axe rule ids (none today). Each entry must still
# occur: an entry that no longer fails fails the test, so the list cannot go stale.
PENDING: dict[str, set[str]] = {}


def violations(page) -> list[str]:
    if not AXE.is_file():
        pytest.fail("node_modules/axe-core is missing: run bash scripts/vendor_static.sh (npm ci)")
    page.add_script_tag(path=str(AXE))
    found = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})"
        ".then(r => r.violations.map(v => `${v.id} (${v.impact}): ${v.help} -> ` +"
        " v.nodes.slice(0, 5).map(n => n.target.join(' ')).join(' | ') + ` [${v.nodes.length} nodes]`))",
        TAGS,
    )
    return found


@pytest.mark.parametrize("page_path, mode", [
    (page, mode) for page in PAGES for mode in ("light", "dark")
    if mode == "light" or not page.startswith(CHINESE)])
def test_no_wcag_violations(offline_page, book_url, page_path, mode):
    page = offline_page
    page.goto(f"{book_url}/{page_path}", wait_until="load")
    if 'http-equiv="refresh"' in (HTML / page_path).read_text(encoding="utf-8").lower():
        # a redirect page (the book's index.html): check the page it leads to, once it has
        # loaded, not the document the redirect is about to replace
        page.wait_for_url(lambda url: not url.endswith(page_path), timeout=15000)
        page.wait_for_load_state("load")
    views = page.locator('script[type="application/vnd.jupyter.widget-view+json"]')
    for i in range(views.count()):  # wait until every widget has rendered
        views.nth(i).locator("xpath=..").locator(".jupyter-widgets, .widget-box, .lm-Widget, .ac-explorer").first.wait_for(
            state="attached", timeout=15000)
    if page.locator('script[type="application/vnd.jupyter.widget-view+json"]').count():
        page.wait_for_timeout(300)
    if mode == "dark":
        page.evaluate("() => { document.documentElement.dataset.theme = 'dark'; document.documentElement.dataset.mode = 'dark'; }")
        page.wait_for_timeout(200)
    if page.locator("mjx-container").count():
        page.evaluate("() => window.MathJax && MathJax.startup && MathJax.startup.promise")
    found = violations(page)
    pending = PENDING.get(page_path, set()) if mode == "light" else set()
    unexpected = [v for v in found if v.split(" ", 1)[0] not in PENDING.get(page_path, set())]
    assert not unexpected, f"axe found WCAG 2 A/AA violations on {page_path} ({mode} mode):\n" + "\n".join(unexpected)
    gone = pending - {v.split(" ", 1)[0] for v in found}
    assert not gone, f"{page_path}: {sorted(gone)} no longer occur: remove them from PENDING"

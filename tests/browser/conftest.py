"""Serve the built book on localhost and drive Debian's Chromium with Playwright.

Every request that leaves 127.0.0.1 is aborted and recorded, so the pages are tested
as an offline reader (or one behind a firewall that blocks CDNs) would see them.
"""
from __future__ import annotations

import json
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
from local_site import CHROMIUM_ARGS, block_offsite, serve  # noqa: E402  (shared with tools/pdf.py)

HTML = ROOT / "_build" / "html"
SCREENSHOTS = ROOT / "_build" / "screenshots"
# The book's Chinese edition (_ext/editions.py, tools/i18n.py) sits inside the English one.
CHINESE = "zh_CN/"


def both_editions(page_paths) -> list[str]:
    """Each English page path followed by the same page in the Chinese edition."""
    return [path for page in page_paths for path in (page, CHINESE + page)]


def english_path(page_path: str) -> str:
    """``zh_CN/book/01_origin.html`` -> ``book/01_origin.html`` (English paths unchanged)."""
    return page_path.removeprefix(CHINESE)
@pytest.fixture(scope="session")
def book_url():
    if not (HTML / "index.html").is_file():
        pytest.fail("_build/html is missing: build the book first (bash scripts/build_book.sh)")
    server, url = serve(HTML)
    yield url
    server.shutdown()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.fail("Chromium is missing: apt-get install chromium (scripts/test.sh does this)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def open_offline_page(browser):
    """A new context and page whose requests to anywhere but localhost are blocked.

    The page records what it tried to fetch elsewhere (``page.blocked``) and every console
    error or uncaught exception (``page.console_errors``). Close the context when done.
    """
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.blocked = block_offsite(page)
    page.console_errors = []
    page.on("console", lambda msg: msg.type == "error" and page.console_errors.append(msg.text))
    page.on("pageerror", lambda error: page.console_errors.append(f"uncaught: {error}"))
    return context, page


@pytest.fixture
def offline_page(browser):
    """A fresh offline page (see open_offline_page) for a test that changes what it shows."""
    context, page = open_offline_page(browser)
    yield page
    context.close()


WIDGET_VIEWS = 'script[type="application/vnd.jupyter.widget-view+json"]'


@dataclass
class Loaded:
    """A built page open in Chromium, after its maths and widgets have rendered."""

    page: object  # playwright Page (see conftest.open_offline_page)
    path: str  # the page the tests check: after index.html's redirect, the page it leads to
    source: str  # that page's HTML as built


def one_per_page(paths):
    """Parametrize ``loaded`` with these pages (test id: the page's path); tests of one page share one load."""
    return pytest.mark.parametrize("loaded", [pytest.param(p, id=p) for p in paths], indirect=True, scope="session")


@pytest.fixture(scope="session")
def loaded(request, browser, book_url):
    """Open ``request.param`` once for all the tests of that page (they only read it, or restore it)."""
    requested = request.param
    context, page = open_offline_page(browser)
    start = f"{book_url}/{requested}"
    page.goto(start, wait_until="load")
    page_path = requested
    if 'http-equiv="refresh"' in (HTML / requested).read_text(encoding="utf-8").lower():
        # index.html redirects to the first chapter page: check the page it leads to, once loaded
        page.wait_for_url(lambda url: url != start, timeout=15000)
        page.wait_for_load_state("load")
        page_path = page.url.split(book_url + "/", 1)[1].split("#")[0]
    source = (HTML / page_path).read_text(encoding="utf-8")
    if 'class="math' in source:  # maths typeset by the book's own MathJax
        page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise")
        page.evaluate("() => MathJax.startup.promise")
    views = page.locator(WIDGET_VIEWS)
    for i in range(views.count()):  # every embedded widget view renders a DOM node
        views.nth(i).locator("xpath=..").locator(".jupyter-widgets, .widget-box, .lm-Widget, .ac-explorer").first.wait_for(
            state="attached", timeout=15000)
    if views.count():
        page.wait_for_timeout(300)
    yield Loaded(page, page_path, source)
    context.close()


@pytest.hookimpl(trylast=True)  # after pytest has grouped the tests of each page together
def pytest_collection_modifyitems(items):
    """Among the tests of one loaded page, those marked ``changes_page`` (they work its controls or
    answer its questions) run after the ones that only read it: the screenshots and axe's checks
    see the page as a reader first meets it."""
    def page_of(item):
        callspec = getattr(item, "callspec", None)
        return callspec.params.get("loaded") if callspec else None

    ordered, start = [], 0
    while start < len(items):
        page, end = page_of(items[start]), start + 1
        while page is not None and end < len(items) and page_of(items[end]) == page:
            end += 1
        group = items[start:end]
        ordered += [t for t in group if not t.get_closest_marker("changes_page")]
        ordered += [t for t in group if t.get_closest_marker("changes_page")]
        start = end
    items[:] = ordered


PAGE_ID = re.compile(r"\[([^\[\]]+\.html)\]$")  # a test id that is a page's path


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """With pytest-xdist's ``--dist loadscope``: one unit of work per page (every test whose id is
    that page's path), so the tests of a page run on one worker, one after the other, on one load.

    xdist's own ``--dist loadgroup`` would do this from ``xdist_group`` marks, but with pytest 9.2
    (node ids no longer read from ``_nodeid``, which xdist 3.8 rewrites) it groups nothing.
    """
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class OneUnitPerPage(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            match = PAGE_ID.search(nodeid)
            return match.group(1) if match else nodeid

    return OneUnitPerPage(config, log)


STANDALONE_PAGE = """<!doctype html><html><body><div id="root"></div><script type="module">
const data = %s, controls = %s, kind = "@KIND@";
const model = {get: (k) => ({data, controls, kind})[k], on() {}, send() { return false; }};
const url = URL.createObjectURL(new Blob([%s], {type: "text/javascript"}));
const mod = await import(url);
mod.default.render({model, el: document.getElementById("root")});
window.rendered = true;
</script></body></html>"""


def standalone_page(kind: str) -> str:
    """A page that renders one explorer of ``kind`` from its ES module, with a fake anywidget model:
    no book and no kernel. Fill it with ``% (data_json, controls_json, esm_json)``."""
    return STANDALONE_PAGE.replace("@KIND@", kind)


KERNEL_MODEL = """const data = %s, controls = %s, kind = "@KIND@";
window.state = {data, controls, kind};
window.sent = [];
window.listeners = {};
const model = {get: (k) => window.state[k], on(name, fn) { (window.listeners[name] ||= []).push(fn); },
               send(message) { window.sent.push(message); }};"""


class KernelPage:
    """One explorer in a standalone page whose stand-in model talks to the real Python ``explorer``, as
    a kernel does: :meth:`serve` hands the page's requests to ``explorer``'s handlers and every ``data``
    Python then assigns back to the page (its ``change:data``), in order. No book, no Jupyter."""

    def __init__(self, browser, explorer):
        self.explorer, self.assigned = explorer, []
        explorer.observe(lambda change: self.assigned.append(change["new"]), names="data")
        head, tail = STANDALONE_PAGE.split("const model = {get: (k) => ({data, controls, kind})[k], "
                                           "on() {}, send() { return false; }};")
        page_html = head.replace('const data = %s, controls = %s, kind = "@KIND@";\n', "") + KERNEL_MODEL + tail
        self.page = browser.new_page()
        self.errors = []
        self.page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))
        self.page.on("console", lambda msg: msg.type == "error" and self.errors.append(msg.text))
        self.page.set_content(page_html.replace("@KIND@", explorer.kind)
                              % (json.dumps(explorer.data), json.dumps(explorer.controls), json.dumps(explorer._esm)))
        self.page.wait_for_function("window.rendered === true")
        self.root = self.page.locator(".ac-explorer")

    def serve(self) -> list[dict]:
        """Answer what the page sent since the last call; returns those requests."""
        requests = self.page.evaluate("window.sent.splice(0)")
        for request in requests:
            try:
                self.explorer._dispatch(self.explorer, request, [])
            except ValueError:
                pass  # the page got the error as new data
        for data in self.assigned:
            self.page.evaluate("d => { window.state.data = d; (window.listeners['change:data'] || []).forEach((f) => f()); }",
                               json.loads(json.dumps(data)))
        self.assigned.clear()
        return requests

    def result(self) -> dict:
        return json.loads(self.root.get_attribute("data-result"))


def saved_states(page_path: str) -> list[dict]:
    """The widget models' states saved in a built page (myst-nb's widget-state script)."""
    import html

    source = (HTML / page_path).read_text(encoding="utf-8")
    match = re.search(r'<script type="application/vnd.jupyter.widget-state\+json">(.*?)</script>', source, re.S)
    assert match, f"{page_path} has no saved widget state"
    return [m["state"] for m in json.loads(html.unescape(match.group(1)))["state"].values()]

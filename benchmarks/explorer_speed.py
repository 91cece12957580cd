"""How fast the explorers react, and how heavy the chapter pages are (built book, Chromium).

    .venv/bin/python benchmarks/explorer_speed.py [--repeats 15]

Needs a built book (bash scripts/build_book.sh) and Debian's Chromium. For every explorer on
every chapter page it works each control from the keyboard ``--repeats`` times (alternately up
and down) and prints, per control, the median and worst time from the key press until the next
frame has been produced (handler + style + layout + paint: what a reader waits for), and the
main thread's busy time per press from Chrome's own counters (TaskDuration, less inflated than
wall time when other processes share the CPU). Targets (issue 12): under 100 ms per control;
each chapter page's own size (its HTML, which carries the saved widget state) under 3 MB.
"""
from __future__ import annotations

import argparse
import functools
import http.server
import re
import shutil
import statistics
import sys
import threading
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
CHAPTERS = sorted(p for p in (HTML / "book").glob("0*.html")) if (HTML / "book").is_dir() else []

def page_sizes(path: Path) -> tuple[int, int]:
    """(bytes of the HTML file, bytes of the saved widget state inside it)."""
    text = path.read_text(encoding="utf-8")
    match = re.search(r'<script type="application/vnd.jupyter.widget-state\+json">(.*?)</script>', text, re.S)
    return len(text.encode()), len(match.group(1).encode()) if match else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    if not CHAPTERS:
        print("no built book: run bash scripts/build_book.sh first", file=sys.stderr)
        return 1
    from playwright.sync_api import sync_playwright

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(HTML))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"

    print(f"{'page':<34} {'HTML MB':>8} {'of it widget state MB':>22}")
    for path in CHAPTERS:
        total, state = page_sizes(path)
        flag = "" if total < 3e6 else "   over the 3 MB target"
        print(f"{path.name:<34} {total / 1e6:>8.2f} {state / 1e6:>22.2f}{flag}")
    print()
    print(f"{'page / explorer / control':<62} {'median ms':>9} {'worst ms':>9} {'main-thread ms':>15}")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        for path in CHAPTERS:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.route("**/*", lambda route: route.continue_() if urlparse(route.request.url).hostname == "127.0.0.1"
                       else route.abort())
            page.goto(f"{base}/book/{path.name}", wait_until="load")
            try:
                page.locator(".ac-explorer").first.wait_for(state="visible", timeout=20000)
            except Exception:
                page.close()
                continue
            page.evaluate("() => document.addEventListener('keydown', () => { window.__t0 = performance.now(); }, true)")
            cdp = page.context.new_cdp_session(page)
            cdp.send("Performance.enable")
            explorers = page.locator(".ac-explorer")
            for i in range(explorers.count()):
                explorer = explorers.nth(i)
                kind = explorer.get_attribute("data-kind")
                controls = explorer.locator("select, input[type=range], input[type=checkbox]")
                for j in range(controls.count()):
                    control = controls.nth(j)
                    if control.is_disabled():
                        continue
                    label = control.evaluate("e => e.labels[0].textContent")
                    control.focus()
                    times, busy = [], []
                    for r in range(args.repeats):
                        key = ("ArrowDown" if r % 2 == 0 else "ArrowUp")
                        before = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
                        # Timed in the page from the keydown (capture listener) to the frame after it.
                        control.press(key)
                        ms = page.evaluate("() => new Promise(d => requestAnimationFrame(() => "
                                           "requestAnimationFrame(() => d(performance.now() - window.__t0))))")
                        after = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
                        times.append(ms)
                        busy.append(1e3 * (after["TaskDuration"] - before["TaskDuration"]))
                    name = f"{path.stem[:24]} / {kind} / {label}"
                    print(f"{name:<62} {statistics.median(times):>9.1f} {max(times):>9.1f} {statistics.median(busy):>15.1f}")
            page.close()
        browser.close()
    server.shutdown()
    print("\n(ms from the keydown to the second animation frame after it, an upper bound on what the reader "
          "waits; main-thread ms is Chrome's TaskDuration per press. Both grow when other processes share "
          "the CPU: say the load when quoting.)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

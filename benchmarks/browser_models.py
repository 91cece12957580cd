"""How fast the small models run in the reader's browser (headless Chromium, onnxruntime-web).

    .venv/bin/python benchmarks/browser_models.py [--length 200] [--translations 20]

Needs the built book (bash scripts/build_book.sh) and Debian's Chromium. Serves _build/html on
localhost with every other request aborted, as the browser tests do, then prints:
the size of the model and runtime files a reader downloads on first use; the GPT's time to first
character (cold: runtime and model loaded by that click; warm: a second click) and its characters
per second after the first (issue 12 asks >= 30); the latency of translating one input of
dates with RNNsearch (cold and warm); and that of Chapter 7's explorer, which translates a typed
input with the Transformer and RNNsearch (both maps). Wall-clock figures: on a busy machine they are inflated.
The benchmark reports; it does not fail.
"""
from __future__ import annotations

import argparse
import functools
import http.server
import json
import re
import shutil
import statistics
import threading
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
CH2, CH6, CH7 = "book/02_bahdanau_attention.html", "book/06_attention_and_llms.html", "book/07_transformer_on_dates.html"
RUNTIME = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")


def browser_cpu_seconds() -> float:
    """User + system CPU seconds of this process's descendants (Playwright's Chromium), from /proc:
    unlike wall time, hardly inflated by other work on the machine."""
    import os

    children: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(entry.name)] = fields
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    total, todo = 0, list(children.get(os.getpid(), []))
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        total += int(stats[pid][11]) + int(stats[pid][12])  # utime, stime (clock ticks)
    return total / os.sysconf("SC_CLK_TCK")


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB"


def sizes() -> None:
    static = HTML / "_static"
    print("== files loaded on first use")
    for name in RUNTIME:
        print(f"  runtime  {name:<40} {mb((static / 'onnxruntime-web' / name).stat().st_size)}")
    gpt = sorted(set(re.findall(r"models/gpt-[0-9a-f]{12}\.onnx", (HTML / CH6).read_text(encoding="utf-8"))))
    rnn = sorted(set(re.findall(r"models/rnnsearch-step\d+-\w+-[0-9a-f]{12}\.onnx", (HTML / CH2).read_text(encoding="utf-8"))))
    for path in gpt:
        print(f"  Ch. 6    {path:<40} {mb((static / path).stat().st_size)}")
    per_step = sum((static / p).stat().st_size for p in rnn) / max(1, len(rnn) // 2)
    print(f"  Ch. 2    {len(rnn)} RNNsearch files ({len(rnn) // 2} checkpoints), {mb(per_step)} per checkpoint")
    ch7 = sorted(set(re.findall(r"models/(?:transformer|rnnsearch-step\d+)-\w+-[0-9a-f]{12}\.onnx",
                                (HTML / CH7).read_text(encoding="utf-8"))))
    for path in ch7:
        shared = " (also Chapter 2's: served once)" if path in rnn else ""
        print(f"  Ch. 7    {path:<40} {mb((static / path).stat().st_size)}{shared}")
    added = sum((static / p).stat().st_size for p in ch7 if p not in rnn)
    print(f"  Ch. 7    adds {mb(added)} of model files to the book")
    for page in (CH2, CH6, CH7):
        print(f"  page     {page:<40} {mb((HTML / page).stat().st_size)} (HTML with its saved widget state)")


def wait_result(page, root, condition: str, arg=None, timeout=300000):
    page.wait_for_function(f"([r, a]) => {{ const d = JSON.parse(r.dataset.result || '{{}}'); return {condition}; }}",
                           arg=[root.element_handle(), arg], timeout=timeout)
    return json.loads(root.get_attribute("data-result"))


def set_range(root, label, presses):
    slider = root.get_by_label(label, exact=True)
    slider.focus()
    slider.press("Home")
    for _ in range(presses):
        slider.press("ArrowRight")


def bench_gpt(page, url, length: int) -> None:
    page.goto(f"{url}/{CH6}", wait_until="load")
    root = page.locator(".ac-explorer", has=page.locator(".ac-title", has_text="Generate with the small GPT"))
    root.wait_for(timeout=60000)
    set_range(root, "temperature", 0)
    set_range(root, "length (characters)", (length - 10) // 10)
    print(f"== Chapter 6 GPT, greedy, {length} characters per click")
    for run in ("cold", "warm", "warm"):
        root.get_by_label("prompt", exact=True).fill("To be or not to be")
        cpu = browser_cpu_seconds()
        root.get_by_role("button", name="Generate").click()
        d = wait_result(page, root, "d.done && d.source === 'browser' && d.written")
        cpu = browser_cpu_seconds() - cpu
        print(f"  {run}: first character after {d['first_ms'] / 1000:.2f} s, then "
              f"{d['chars_per_second']:.1f} characters per second (target >= 30); "
              f"Chromium used {cpu:.2f} CPU s = {d['written'] / cpu:.0f} characters per CPU second")


def bench_rnnsearch(page, url, n: int) -> None:
    from attention_course.data import dates
    from attention_course.models import seq2seq

    data = dates.make_date_data(**seq2seq.COURSE_DATA)
    sources = [s for s, _ in data.test[:n]]
    page.goto(f"{url}/{CH2}", wait_until="load")
    root = page.locator(".ac-explorer", has=page.locator(".ac-title", has_text="Translate dates with RNNsearch"))
    root.wait_for(timeout=60000)
    times = []
    for source in sources:
        box = root.get_by_label("or type dates", exact=True)
        box.fill(source)
        box.press("Enter")
        d = wait_result(page, root, "d.source === a && d.computed === 'browser'", source)
        times.append(d["ms"])
    print(f"== Chapter 2 RNNsearch, {n} held-out inputs of 1-4 dates, greedy")
    print(f"  cold (runtime and model loaded by this input): {times[0]:.0f} ms")
    warm = times[1:]
    print(f"  warm: median {statistics.median(warm):.0f} ms, max {max(warm):.0f} ms per translation")


def bench_cross_attention(page, url, n: int) -> None:
    import time

    from attention_course.data import dates
    from attention_course.models import seq2seq

    data = dates.make_date_data(**seq2seq.COURSE_DATA)
    sources = [s for s, _ in data.test[-n:]]  # the explorer's preset inputs come from the start of data.test
    page.goto(f"{url}/{CH7}", wait_until="load")
    root = page.locator(".ac-explorer", has=page.locator(".ac-title", has_text="Compare the Transformer"))
    root.wait_for(timeout=60000)
    times = []
    for source in sources:
        box = root.get_by_label("your own dates", exact=True)
        box.fill(source)
        start = time.perf_counter()
        box.press("Enter")
        d = wait_result(page, root, "d.source === a && (d.computed === 'browser' || d.error)", source)
        assert "error" not in d, d
        times.append(1000 * (time.perf_counter() - start))
    print(f"== Chapter 7 Transformer and RNNsearch, {n} held-out inputs of 1-4 dates, greedy, both maps")
    print(f"  cold (runtime and four graphs loaded by this input): {times[0]:.0f} ms")
    warm = times[1:]
    print(f"  warm: median {statistics.median(warm):.0f} ms, max {max(warm):.0f} ms per input (both models)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=200, help="characters per Generate (10-400)")
    parser.add_argument("--translations", type=int, default=20)
    args = parser.parse_args()
    if not (HTML / CH6).is_file():
        raise SystemExit("build the book first: bash scripts/build_book.sh")
    sizes()
    from playwright.sync_api import sync_playwright

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(HTML)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox", "--disable-gpu"])
        for bench, arg in ((bench_gpt, args.length), (bench_rnnsearch, args.translations),
                           (bench_cross_attention, args.translations)):
            context = browser.new_context()
            page = context.new_page()
            page.route("**/*", lambda route: route.continue_() if urlparse(route.request.url).hostname
                       in ("127.0.0.1", "localhost") else route.abort())
            bench(page, url, arg)
            context.close()
        browser.close()
    server.shutdown()


if __name__ == "__main__":
    main()

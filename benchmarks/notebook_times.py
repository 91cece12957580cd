"""Execute every course notebook top to bottom and print a table of wall times.

    .venv/bin/python benchmarks/notebook_times.py [NOTEBOOK ...]

Each notebook runs in a fresh kernel (so model loading is included), from its own
folder, as a reader would run it. The budget column is the limit each chapter's issue
sets on this 2-core machine; the benchmark reports, it does not fail.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
BUDGET_SECONDS = {"01_origin.ipynb": 120, "02_bahdanau_attention.ipynb": 120, "03_general_form.ipynb": 60,
                  "04_self_attention.ipynb": 60,
                  "05_multi_head_attention.ipynb": 60, "06_attention_and_llms.ipynb": 200,
                  "07_transformer_on_dates.ipynb": 200}


def run(path: Path) -> tuple[float, str]:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=900, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    try:
        client.execute()
        status = "ok"
    except Exception as error:  # report and go on to the next notebook
        status = f"error: {type(error).__name__}"
    return time.perf_counter() - start, status


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    paths = [p.resolve() for p in args.notebooks] or (sorted((ROOT / "book").glob("*.ipynb"))
                               + sorted((ROOT / "solutions").glob("*/*.ipynb")))
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}")
    print(f"{'notebook':<52} {'seconds':>8} {'budget':>7}  status")
    for path in paths:
        seconds, status = run(path)
        budget = BUDGET_SECONDS.get(path.name)
        verdict = "" if budget is None else ("  within budget" if seconds <= budget else "  OVER BUDGET")
        print(f"{str(path.relative_to(ROOT)):<52} {seconds:>8.1f} {budget or '-':>7}  {status}{verdict}")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())

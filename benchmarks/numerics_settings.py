"""Do the course's comparisons hold under other thread counts and CPU kernels? Prints a table.

Two float32 implementations of one formula agree only up to rounding, and how they round depends on
the kernels the machine picks: the thread count (``OMP_NUM_THREADS``), MKL's instruction set
(``MKL_ENABLE_INSTRUCTIONS``: AVX-512 where the CPU has it, AVX2, SSE4_2) and torch's own vectorised
kernels (``ATEN_CPU_CAPABILITY``: ``default`` is the plain C++ loop). This script runs, under each
setting below, in a fresh process:

1. the tests marked ``numerics`` (every comparison of two implementations: ours against SmolLM2,
   torch's attention, ONNX Runtime, the frozen pre-refactor code, KV cache against recomputation,
   the exercise checks' reference comparisons);
2. with ``--chapters``, every chapter notebook of ``book/`` top to bottom (so every asserting cell),
   under the first three settings (the ones ``scripts/test.sh`` also uses for the tests). The
   chapters load the models the book build trained and cached; run the build first, or the first
   setting trains them (minutes).

It prints one row per setting and item: passed or failed, seconds, and the first error line.
``scripts/test.sh`` runs the marked tests under its three settings on every CI run; this script adds
the other kernels and the chapters, for a release or after changing a tolerance.

    .venv/bin/python benchmarks/numerics_settings.py               # tests, 6 settings (~5 min)
    .venv/bin/python benchmarks/numerics_settings.py --chapters    # and the chapters (~10 min more, models cached)
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = ROOT / ".venv" / "bin" / "python"

SETTINGS = {
    "1 thread": {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
    "2 threads": {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"},
    "1 thread, MKL AVX2, torch default": {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                                          "MKL_ENABLE_INSTRUCTIONS": "AVX2", "ATEN_CPU_CAPABILITY": "default"},
    "1 thread, MKL SSE4_2": {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2"},
    "1 thread, torch avx2": {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "ATEN_CPU_CAPABILITY": "avx2"},
    "2 threads, MKL AVX2": {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
}
CHAPTER_SETTINGS = list(SETTINGS)[:3]

EXECUTE = """
import sys, nbformat, nbclient
path = sys.argv[1]
nb = nbformat.read(path, as_version=4)
nbclient.NotebookClient(nb, timeout=3600, kernel_name="python3",
                        resources={"metadata": {"path": sys.argv[2]}}).execute()
"""


def run(command: list[str], env: dict) -> tuple[bool, float, str]:
    """Run ``command`` with ``env`` added; (passed, seconds, last meaningful output line)."""
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                                                  "PYTHONWARNINGS": "ignore", **env},
                          capture_output=True, text=True)
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    errors = [line for line in lines if "Error" in line or "FAILED" in line or " passed" in line or " failed" in line]
    return done.returncode == 0, time.perf_counter() - start, (errors or lines or [""])[-1][:110]


def capability(env: dict) -> str:
    """The kernels torch reports under ``env`` (e.g. AVX512, AVX2, DEFAULT)."""
    done = subprocess.run([str(PYTHON), "-c", "import torch; print(torch.backends.cpu.get_cpu_capability(), "
                           "torch.get_num_threads())"], env={**os.environ, **env}, capture_output=True, text=True)
    return done.stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chapters", action="store_true", help="also execute every chapter under three settings")
    parser.add_argument("--only", nargs="*", default=None, help="chapter stems to execute (default: all)")
    args = parser.parse_args()
    rows = []
    print(f"{'setting':36s} {'torch kernels, threads':22s} {'item':28s} {'result':6s} {'s':>6s}  note")
    for name, env in SETTINGS.items():
        items = [("numerics tests", [str(PYTHON), "-m", "pytest", "-p", "no:cacheprovider", "-q", "-m", "numerics",
                                      "--ignore=tests/browser", "tests"])]
        if args.chapters and name in CHAPTER_SETTINGS:
            for notebook in sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb")):
                if args.only is None or notebook.stem in args.only:
                    items.append((notebook.stem, [str(PYTHON), "-c", EXECUTE, str(notebook), str(ROOT / "book")]))
        kernels = capability(env)
        for item, command in items:
            passed, seconds, note = run(command, env)
            rows.append(passed)
            print(f"{name:36s} {kernels:22s} {item:28s} {'ok' if passed else 'FAILED':6s} {seconds:6.0f}  {note}",
                  flush=True)
    print(f"\n{sum(rows)} of {len(rows)} passed on {os.uname().machine}, "
          f"{capability(SETTINGS['2 threads'])} by default")
    return 0 if all(rows) else 1


if __name__ == "__main__":
    sys.exit(main())

"""Throughput of the instructor grader: N submissions of Ch. 3 (default 100), graded in parallel.

    .venv/bin/python benchmarks/grading_throughput.py [--n 100] [--jobs 2]

Generates the submissions in a temporary folder from the Ch. 3 solution, with varied mistakes
(wrong functions, unimplemented exercises, a crashing cell, a patched numpy.allclose), runs
``python -m attention_course.grade`` on them and prints submissions per minute. The target is
100 submissions in at most 5 minutes on a 2-core machine.
"""
from __future__ import annotations

import argparse
import csv
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from grading_fixtures import MISTAKES, submission, write  # noqa: E402

NAMES = {"softmax_global_max": "softmax"}


def variant(i: int, rng: random.Random) -> dict:
    kind = i % 5
    if kind == 0:
        return submission()
    if kind == 1:  # one to three wrong functions
        picks = rng.sample(sorted(MISTAKES), rng.randint(1, 3))
        answers = {NAMES.get(p, p): MISTAKES[p] for p in picks}
        return submission(answers)
    if kind == 2:  # started, not finished
        nb = submission()
        for cell in nb["cells"]:
            if cell["metadata"].get("nbgrader", {}).get("grade_id") in rng.sample(
                    ["additive_score", "cosine_score", "bilinear_score", "attention_pooling"], 2):
                cell["source"] = "# YOUR CODE HERE\nraise NotImplementedError()"
        return nb
    if kind == 3:  # a crashing cell in the middle
        return submission(extra=[(rng.randint(3, 10), "undefined_name + 1")])
    return submission({"softmax": MISTAKES["softmax"]}, extra=[(2, "np.allclose = lambda *a, **k: True")])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=None)
    args = parser.parse_args()
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as tmp:
        subs, out = Path(tmp) / "subs", Path(tmp) / "out"
        for i in range(args.n):
            write(subs, f"s{i:03d}_general_form.ipynb", variant(i, rng))
        command = [sys.executable, "-m", "attention_course.grade", str(subs), "--out", str(out)]
        if args.jobs:
            command += ["--jobs", str(args.jobs)]
        start = time.perf_counter()
        proc = subprocess.run(command, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if proc.returncode != 0:
            sys.exit(proc.stderr[-3000:])
        with open(out / "gradebook.csv", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        statuses: dict[str, int] = {}
        for row in rows:
            statuses[row["status"]] = statuses.get(row["status"], 0) + 1
        print(f"{len(rows)} rows for {args.n} submissions in {seconds:.1f} s: "
              f"{60 * args.n / seconds:.1f} submissions/minute, {seconds / args.n:.2f} s each; statuses {statuses}")
        print("target: 100 submissions in <= 300 s:", "met" if seconds * 100 / args.n <= 300 else "NOT met")


if __name__ == "__main__":
    main()

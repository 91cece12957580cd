"""Throughput of the instructor grader: N submissions per chapter (default 100), graded in parallel.

    .venv/bin/python benchmarks/grading_throughput.py [--n 100] [--jobs 2] [--chapter ch03_general_form] [--no-forkserver]

``--no-forkserver`` measures the old path (every checker and worker a new Python importing torch).

For each chapter (default: every chapter of solutions/) it writes N submissions in a temporary folder, runs
``python -m attention_course.grading`` on them and prints seconds per submission. Chapter 3's
submissions carry varied mistakes (wrong functions, unimplemented exercises, a crashing cell, a
patched numpy.allclose); the other chapters' alternate the solution, the untouched student
notebook and the solution with a crashing cell. The target (issue 30): 100 submissions of any
chapter in at most 60 s on a 2-core machine. The grader's start (its warm server importing torch
and the course once) and its one-off check of each chapter's own solution are part of the measured
time. At the end it prints a table: chapter, jobs, seconds per 100 submissions (wall clock), the
CPU seconds the whole grading run used (every process: grader, warm server, checkers, workers, walls)
and, from them, the seconds 100 submissions take when that CPU is all the machine does on 2 cores
(wall clock on a machine shared with other work is mostly waiting for a core), and the statuses.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from grading_fixtures import MISTAKES, ROOT, code_cell, submission, write  # noqa: E402

NAMES = {"softmax_global_max": "softmax"}
NO_FORKSERVER = False


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


def other_chapter(chapter: str, i: int, rng: random.Random) -> tuple[str, dict]:
    """(notebook name, notebook) of submission ``i`` for a chapter other than 3: the student
    notebook answered with the solution's code, left untouched, or answered with a crashing cell."""
    (solution,) = sorted((ROOT / "solutions" / chapter).glob("*.ipynb"))
    nb = json.loads((ROOT / "notebooks" / chapter / solution.name).read_text(encoding="utf-8"))
    kind = i % 3
    if kind != 1:
        answers = {}
        for cell in json.loads(solution.read_text(encoding="utf-8"))["cells"]:
            meta = cell["metadata"].get("nbgrader", {})
            if meta.get("solution"):
                lines = "".join(cell["source"]).splitlines()
                answers[meta["grade_id"]] = "\n".join(l for l in lines if "### BEGIN SOLUTION" not in l
                                                      and "### END SOLUTION" not in l)
        for cell in nb["cells"]:
            grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id")
            if grade_id in answers:
                cell["source"] = answers[grade_id]
    if kind == 2:  # a crashing cell in the middle
        nb["cells"].insert(rng.randint(3, len(nb["cells"]) - 1), code_cell("undefined_name + 1"))
    return solution.name, nb


def children_cpu() -> float:
    """CPU seconds (user + system) of this process's finished children and their descendants."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def grade_chapter(chapter: str, n: int, jobs: int | None, rng: random.Random) -> tuple[float, float, dict]:
    """Grade ``n`` submissions of ``chapter``; print and return the seconds per submission (wall clock),
    the CPU seconds per submission, and the statuses."""
    with tempfile.TemporaryDirectory() as tmp:
        subs, out = Path(tmp) / "subs", Path(tmp) / "out"
        for i in range(n):
            if chapter == "ch03_general_form":
                write(subs, f"s{i:03d}_general_form.ipynb", variant(i, rng))
            else:
                name, nb = other_chapter(chapter, i, rng)
                write(subs, f"s{i:03d}_{name}", nb)
        command = [sys.executable, "-m", "attention_course.grading", str(subs), "--out", str(out)]
        if jobs:
            command += ["--jobs", str(jobs)]
        start, cpu_start = time.perf_counter(), children_cpu()
        env = dict(os.environ, ATTENTION_COURSE_NO_FORKSERVER="1" if NO_FORKSERVER else "0")
        proc = subprocess.run(command, capture_output=True, text=True, env=env)
        seconds, cpu = time.perf_counter() - start, children_cpu() - cpu_start
        if proc.returncode != 0:
            sys.exit(proc.stderr[-3000:])
        with open(out / "gradebook.csv", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    statuses: dict[str, int] = {}
    for row in rows:
        statuses[row["status"]] = statuses.get(row["status"], 0) + 1
    each = seconds / n
    print(f"{chapter}: {len(rows)} rows for {n} submissions in {seconds:.1f} s ({cpu:.1f} CPU s), {each:.2f} s each, "
          f"100 in {100 * each:.0f} s ({'met' if 100 * each <= 60 else 'NOT met'}); statuses {statuses}", flush=True)
    return each, cpu / n, statuses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=None)
    parser.add_argument("--chapter", action="append", default=[],
                        help="only these chapters (repeatable; default: every folder of solutions/)")
    parser.add_argument("--no-forkserver", action="store_true", help="the old path: no warm server")
    args = parser.parse_args()
    global NO_FORKSERVER
    NO_FORKSERVER = args.no_forkserver
    rng = random.Random(0)
    chapters = args.chapter or sorted(p.name for p in (ROOT / "solutions").iterdir() if p.is_dir())
    results = {chapter: grade_chapter(chapter, args.n, args.jobs, rng) for chapter in chapters}
    jobs = args.jobs or os.cpu_count()
    cores = min(jobs, os.cpu_count() or 1, 2)
    print("\n| chapter | jobs | s per 100 (wall clock) | CPU s per 100 | s per 100 on 2 idle cores (CPU / 2) | statuses |\n"
          "|---|---|---|---|---|---|")
    for chapter, (each, cpu, statuses) in results.items():
        print(f"| {chapter} | {jobs} | {100 * each:.0f} | {100 * cpu:.0f} | {100 * cpu / cores:.0f} | "
              f"{', '.join(f'{k} {v}' for k, v in sorted(statuses.items()))} |")
    worst = max(each for each, _, _ in results.values())
    print(f"slowest chapter: {100 * worst:.0f} s per 100 submissions; target <= 60 s:", "met" if 100 * worst <= 60 else "NOT met")


if __name__ == "__main__":
    main()

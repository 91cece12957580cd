"""Training claims over seeds and thread counts: how much the chapters' single-run figures vary.

    nice -n 10 .venv/bin/python benchmarks/training_spread.py        # all: seeds 0-2, 1 and 2 threads
    .venv/bin/python benchmarks/training_spread.py --threads 2 --only gpt   # a part; results are merged
    .venv/bin/python benchmarks/training_spread.py --report          # only print what the JSON holds

Trains each of the course's models exactly as its chapter configures it, changing only the seed
(``--seeds``, default 0 1 2) and the torch thread count during training (``--threads``, default 1 2):

* ``encdec`` and ``rnnsearch`` (Chapters 1-2): ``seq2seq.course_config(attention)`` with ``seed``;
  exact match (%) on the 2,000 held-out dates overall and by number of dates, character BLEU by
  number of dates (as Chapter 2 computes them);
* ``transformer`` (Chapter 7): ``date_transformer.course_transformer_config(seed=...)``; the same figures;
* ``gpt`` (Chapter 6): the 4-layer character GPT on the fortunes, ``torch.manual_seed(seed)`` before
  building it and ``train_gpt(..., seed=seed)``; validation loss (nats per character) on all windows,
  against the bigram baseline (the chapter borrows no target from elsewhere: a loss depends on the text).

It then prints, per model, every run's figure and their min / max / mean, and whether each claim the
book makes holds on every run: RNNsearch >= 99 % exact match and ahead of the encoder-decoder on
4 dates (Ch. 2), the Transformer >= 99 % and ahead of RNNsearch of the same seed and threads (Ch. 7),
the GPT below the bigram baseline (Ch. 6).

The trainers' own caches are used (``~/.cache/attention_course``, keyed by configuration, seed,
thread count and torch version), so seed 0 on one thread is the chapters' own run, shared with the
book build, and a second call only evaluates (3-4 minutes in all). Untrained, one setting (seed,
threads) costs about 7 minutes of one idle core (encoder-decoder ~1, RNNsearch ~2, Transformer ~1.5,
GPT ~2.5): the 5 settings the book build does not train took 50 minutes on a busy 2-core machine, as
two processes (``--threads 1`` and ``--threads 2``) at ``nice -n 10``. After every model
the figures are merged (under a lock: two processes, e.g. one per thread count, may run at once) into
``attention_course/training/training_spread.json``, with the machine (CPU, kernel capability, torch version)
and the date, which the chapters read with :func:`attention_course.training.spread.training_spread`.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # results_file, beside this script
# Idle OpenMP threads sleep instead of spinning (read when torch loads). Two spinning threads on a busy
# 2-core machine made a training step of RNNsearch 17 times slower (measured); the results are the same.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

from attention_course.models import date_transformer as dt
from attention_course.training import date_training
from attention_course.data import fortunes
from attention_course.models import gpt, seq2seq
from attention_course.training import gpt_training, seq2seq_training
from attention_course.env import seed_everything
from attention_course.data.dates import count_dates, make_date_data  # noqa: E402
from attention_course.training.spread import SPREAD_FILE  # noqa: E402
from attention_course.training import seq2seq_metrics
from results_file import locked, machine  # noqa: E402

MODELS = ("encdec", "rnnsearch", "transformer", "gpt")



def date_figures(predictions, targets, groups) -> dict:
    """Exact match overall and by number of dates, character BLEU by number of dates (Chapter 2's table)."""
    rows = seq2seq_metrics.quality_by_length(predictions, targets, groups)
    return {"exact": 100 * sum(p == t for p, t in zip(predictions, targets)) / len(targets),
            "exact_4": rows[-1]["exact"], "exact_by_dates": [r["exact"] for r in rows],
            "bleu_by_dates": [r["bleu"] for r in rows]}


class Runner:
    """Trains (or loads) one model for one seed and thread count and returns its figures."""

    def __init__(self):
        self.data = make_date_data(**seq2seq.COURSE_DATA)
        self.sources = [s for s, _ in self.data.test]
        self.targets = [t for _, t in self.data.test]
        self.groups = [count_dates(t) for t in self.targets]
        self.fortunes = None

    def run(self, model: str, seed: int, threads: int) -> dict:
        if model == "gpt":
            return self.gpt(seed, threads)
        if model == "transformer":
            result = date_training.train_transformer(self.data, dt.course_transformer_config(seed=seed), threads=threads,
                                          progress=False)
            predictions = date_training.translate(result.model, self.sources, self.data)[0]
        else:
            config = dataclasses.replace(seq2seq.course_config(attention=model == "rnnsearch"), seed=seed)
            result = seq2seq_training.train_model(self.data, config, threads=threads, progress=False)
            predictions = seq2seq_training.translate(result.model, self.sources, self.data)[0]
        return {**date_figures(predictions, self.targets, self.groups), "seconds": result.seconds,
                "cached": result.cached}

    def gpt(self, seed: int, threads: int) -> dict:
        if self.fortunes is None:  # Chapter 6, cell 25
            train_text, val_text = fortunes.split_quotes(fortunes.load_fortunes())
            tok = fortunes.CharTokenizer(train_text)
            train_ids, val_ids = tok.encode(train_text), tok.encode(val_text)
            bigram = gpt_training.ngram_baseline(train_ids, val_ids, tok.vocab_size, order=2)
            self.fortunes = tok, train_ids, val_ids, bigram
        tok, train_ids, val_ids, bigram = self.fortunes
        torch.manual_seed(seed)  # Chapter 6, cell 27
        config = gpt.GPTConfig(vocab_size=tok.vocab_size, block_size=64, n_layer=4, num_heads=4, d_model=128)
        model = gpt.GPT(config)
        history = gpt_training.train_gpt(model, train_ids, val_ids, steps=1200, batch_size=16, lr=3e-3,
                                         eval_every=150, seed=seed, threads=threads, progress=False)
        return {"val_loss": gpt_training.evaluate(model, val_ids), "bigram": bigram,
                "seconds": history["seconds"], "cached": history["cached"]}


def summarise(spread: dict) -> None:
    """Fill ``spread["summary"]`` (min / max / mean per model and figure) and ``spread["claims"]``."""
    runs = spread["runs"]
    spread["summary"] = {
        model: {key: {"min": min(v), "max": max(v), "mean": statistics.fmean(v), "n": len(v)}
                for key in ("exact", "exact_4", "val_loss", "seconds")
                if (v := [r[key] for r in runs[model].values() if key in r])}
        for model in runs if runs[model]}

    def claim(model, test, other=None):
        """Over the runs of ``model`` (and, if given, the same setting of ``other``)."""
        pairs = [(key, r, runs.get(other, {}).get(key)) for key, r in sorted(runs.get(model, {}).items())]
        pairs = [(key, r, o) for key, r, o in pairs if other is None or o is not None]
        failed = [key for key, r, o in pairs if not test(r, o)]
        return {"holds": bool(pairs) and not failed, "runs": len(pairs), "failed": failed}

    below = [r["bigram"] - r["val_loss"] for r in runs.get("gpt", {}).values()]
    ahead = [t["exact"] - runs["rnnsearch"][k]["exact"] for k, t in runs.get("transformer", {}).items()
             if k in runs.get("rnnsearch", {})]
    spread["claims"] = {
        "ch2_rnnsearch_99": claim("rnnsearch", lambda r, _: r["exact"] >= 99),
        "ch2_attention_ahead_on_4_dates": claim("rnnsearch", lambda r, o: r["exact_4"] > o["exact_4"], "encdec"),
        "ch7_transformer_99": claim("transformer", lambda r, _: r["exact"] >= 99),
        "ch7_transformer_ahead": {**claim("transformer", lambda r, o: r["exact"] > o["exact"], "rnnsearch"),
                                  **({"min_points": min(ahead), "max_points": max(ahead)} if ahead else {})},
        "ch6_below_bigram": {**claim("gpt", lambda r, _: r["val_loss"] < r["bigram"]),
                             **({"min_below": min(below), "max_below": max(below)} if below else {})},
    }


def record(model: str, seed: int, threads: int, figures: dict) -> dict:
    """Merge one run into the JSON file and return the whole content."""
    with locked("training_spread"):
        spread = json.loads(SPREAD_FILE.read_text()) if SPREAD_FILE.is_file() else {}
        spread.setdefault("runs", {m: {} for m in MODELS})
        spread["runs"].setdefault(model, {})[f"seed{seed}-threads{threads}"] = {"seed": seed, "threads": threads,
                                                                               **figures}
        spread["machine"] = machine()
        spread["updated"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        summarise(spread)
        SPREAD_FILE.write_text(json.dumps(spread, indent=1, sort_keys=True) + "\n")
    return spread


def report(spread: dict) -> None:
    units = {"gpt": ("val_loss", "validation loss (nats/char)")}
    for model in MODELS:
        runs = spread.get("runs", {}).get(model)
        if not runs:
            continue
        key, label = units.get(model, ("exact", "exact match % (4 dates)"))
        print(f"\n{model}: {label}")
        for name, r in sorted(runs.items()):
            extra = f" ({r['exact_4']:.1f})" if key == "exact" else f"  (bigram {r['bigram']:.3f})"
            print(f"  {name:<16} {r[key]:8.3f}{extra}  trained in {r['seconds']:.0f} s{' (cached)' if r['cached'] else ''}")
        s = spread["summary"][model][key]
        print(f"  {'min/max/mean':<16} {s['min']:.3f} / {s['max']:.3f} / {s['mean']:.3f} over {s['n']} runs")
        if key == "exact":
            s = spread["summary"][model]["exact_4"]
            print(f"  {'4 dates':<16} {s['min']:.3f} / {s['max']:.3f} / {s['mean']:.3f}")
    print()
    for name, c in spread.get("claims", {}).items():
        details = {k: round(v, 3) for k, v in c.items() if k.startswith(("min", "max"))}
        print(f"{'HOLDS' if c['holds'] else 'FAILS'}  {name}: {c['runs']} runs"
              + (f", fails on {', '.join(c['failed'])}" if c["failed"] else "") + (f" {details}" if details else ""))
    print(f"\nmachine: {spread.get('machine')}; updated {spread.get('updated')}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--only", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--report", action="store_true", help="print the JSON's figures; train nothing")
    args = parser.parse_args(argv)
    if not args.report:
        seed_everything(0)  # as every chapter's first cell (also deterministic algorithms)
        runner = Runner()
        for threads in args.threads:
            for seed in args.seeds:
                for model in args.only:
                    t0 = time.perf_counter()
                    figures = runner.run(model, seed, threads)
                    record(model, seed, threads, figures)
                    shown = f"{figures['val_loss']:.3f} nats" if model == "gpt" else f"{figures['exact']:.2f} %"
                    print(f"{model} seed {seed} threads {threads}: {shown} "
                          f"({'cached' if figures['cached'] else 'trained'}, {time.perf_counter() - t0:.0f} s "
                          f"with evaluation)", flush=True)
    if not SPREAD_FILE.is_file():
        print(f"no results yet in {SPREAD_FILE}")
        return 1
    report(json.loads(SPREAD_FILE.read_text()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Chapter 7's choices made on a validation split: the course's Transformer and one change at a time.

    nice -n 10 .venv/bin/python benchmarks/ch7_choices.py                 # every variant, seeds 0-2
    .venv/bin/python benchmarks/ch7_choices.py --only no_features --seeds 0 # a part; results are merged
    .venv/bin/python benchmarks/ch7_choices.py --report                   # only print what the JSON holds

Chapter 7's configuration (``date_transformer.COURSE_CHANGES``) was tuned on the test set. This
benchmark measures each of its choices on a validation split instead
(:func:`attention_course.data.dates.make_validation`: 1,000 pairs drawn like the test pairs, sources in
neither the training nor the test set; the data every model trains on is unchanged). It trains, at
the full course budget and on one thread, the course configuration and the changes of
:data:`VARIANTS` from it, one at a time, each for seeds 0, 1, 2 (``--seeds``), with the trainer's own
cache (``~/.cache/attention_course``: the course configuration's runs are the book's), and records
per run exact match on the validation pairs overall and by number of dates (greedy decoding, as the
chapter evaluates), the training time, and the training-loss curve averaged per 50 steps. The course
configuration and the model without date features (the paper's input) are also evaluated on the
test set, only to be reported beside RNNsearch (``training_spread.json``), never to choose.

It prints a table (validation exact match mean / min / max per variant and the change against the
course configuration, from :func:`attention_course.training.spread.choice_effects`) and writes
``attention_course/training/ch7_choices.json`` after every run (merged under a lock, so two processes, e.g.
two ``--only`` lists, may run at once); a run already in the JSON with the variant's current
configuration fingerprint and the same validation split is skipped, so an interrupted call resumes.
A fresh run took 1-5 minutes wall-clock on a shared 2-core machine (about one minute when it was
idle: the stored ``seconds`` depend on the load), its evaluation 2-60 s.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # results_file, beside this script
# Idle OpenMP threads sleep instead of spinning (read when torch loads), as in training_spread.py.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402

from attention_course.models import date_transformer as dt
from attention_course.training import date_training
from attention_course.env import seed_everything
from attention_course.models import seq2seq
from attention_course.data.dates import (VALIDATION_SEED_OFFSET, count_dates, make_date_data, make_validation,  # noqa: E402
                                    pairs_fingerprint)
from attention_course.training.spread import CHOICES_FILE, choice_effects, config_fingerprint  # noqa: E402
from attention_course.training import seq2seq_metrics
from results_file import locked, machine  # noqa: E402

#: Variant name → (fields changed from ``course_transformer_config()``, what it tests), in priority order.
VARIANTS = {
    "course": ({}, "Chapter 7's configuration (COURSE_CHANGES)"),
    "no_features": (dict(segments=False, segment_positions=False),
                    "no date features: the paper's input (sinusoidal positions from the start of the list)"),
    "segments_only": (dict(segment_positions=False), "segment embedding only, positions from the start"),
    "positions_only": (dict(segments=False), "positions within each date only, no segment embedding"),
    "no_warmup": (dict(use_warmup=False), "no warm-up: the peak learning rate from the first step"),
    "no_smoothing": (dict(label_smoothing=0.0), "no label smoothing (epsilon 0)"),
    "inverse_sqrt": (dict(decay="inverse_sqrt"), "Eq. 3's step^-0.5 decay instead of the linear one"),
    "dec_layers_2": (dict(dec_layers=2), "two decoder blocks (the default) instead of one"),
    "d_ff_256": (dict(d_ff=256), "MLP width 256 (the default) instead of 128"),
    "batch_32": (dict(batch_size=32), "batches of 32 (the default) instead of 16, same number of steps: "
                                      "twice the examples (see budget)"),
    "batch_32_half_steps": (dict(batch_size=32, steps=1200),
                            "batches of 32 for 1,200 steps (the defaults): the course's number of examples "
                            "in half the steps"),
    "steps_4800": (dict(steps=4800), "twice the steps at batches of 16: batch_32's number of examples, "
                                     "to tell the batch size from the number of examples"),
}
#: Variants also evaluated on the test set (reported beside RNNsearch, never used to choose).
TEST_VARIANTS = ("course", "no_features")
SEEDS = (0, 1, 2)
VALIDATION = dict(n=1_000)  # make_validation's arguments (its default seed)
CURVE_EVERY = 50  # steps per point of the stored loss curves
THREADS = 1


def config(name: str, seed: int) -> dt.TransformerConfig:
    """The configuration of variant ``name`` for ``seed``."""
    return dt.course_transformer_config(seed=seed, **VARIANTS[name][0])


def budget(cfg: dt.TransformerConfig, n_train: int) -> dict:
    """Steps, batch size, examples seen and epochs of one training run."""
    steps = cfg.steps if cfg.stop_after is None else cfg.stop_after
    return {"steps": steps, "batch_size": cfg.batch_size, "examples": steps * cfg.batch_size,
            "epochs": steps * cfg.batch_size / n_train}





def figures(model, pairs, data) -> dict:
    """Exact match (count and %) overall and by number of dates, greedy decoding (Chapter 7's table)."""
    sources, targets = [s for s, _ in pairs], [t for _, t in pairs]
    predictions = date_training.translate(model, sources, data)[0]
    rows = seq2seq_metrics.quality_by_length(predictions, targets, [count_dates(t) for t in targets])
    correct = sum(p == t for p, t in zip(predictions, targets))
    return {"correct": int(correct), "n": len(targets), "exact": 100 * correct / len(targets),
            "exact_by_dates": [r["exact"] for r in rows], "n_by_dates": [r["n"] for r in rows]}


def curve(values, every: int = CURVE_EVERY) -> list:
    """Means of consecutive blocks of ``every`` values (the last block may be shorter), to 4 decimals
    (1e-4 nats is far below what a plot shows; it keeps the JSON small)."""
    return [round(float(np.mean(values[k:k + every])), 4) for k in range(0, len(values), every)]


class Runner:
    """Trains (or loads) one variant for one seed and evaluates it."""

    def __init__(self):
        self.data = make_date_data(**seq2seq.COURSE_DATA)
        self.validation = make_validation(self.data, **VALIDATION)

    def header(self) -> dict:
        seed = VALIDATION.get("seed", self.data.config["seed"] + VALIDATION_SEED_OFFSET)
        return {"validation": {"n": len(self.validation), "seed": seed,
                               "fingerprint": pairs_fingerprint(self.validation)},
                "data": {"config": self.data.config, "fingerprint": self.data.fingerprint()}}

    def run(self, name: str, seed: int) -> dict:
        result = date_training.train_transformer(self.data, config(name, seed), progress=True, threads=THREADS,
                                      desc=f"{name} seed {seed}")
        out = {"seed": seed, "threads": THREADS, "seconds": result.seconds, "cached": result.cached,
               "validation": figures(result.model, self.validation, self.data),
               "curve": {"every": CURVE_EVERY, "loss": curve(result.losses), "nll": curve(result.nll)}}
        if name in TEST_VARIANTS:
            out["test"] = figures(result.model, self.data.test, self.data)
        return out


def summarise(choices: dict) -> None:
    """Fill ``choices["summary"]``: exact match mean / min / max over the seeds, per variant and split."""
    summary = {}
    for name, runs in choices["runs"].items():
        for split in ("validation", "test"):
            values = {r["seed"]: r[split]["exact"] for r in runs.values() if split in r}
            if values:
                v = list(values.values())
                summary.setdefault(name, {})[split] = {"mean": statistics.fmean(v), "min": min(v), "max": max(v),
                                                       "n": len(v), "seeds": sorted(values)}
    choices["summary"] = summary


def load() -> dict:
    return json.loads(CHOICES_FILE.read_text()) if CHOICES_FILE.is_file() else {}


def is_done(choices: dict, header: dict, name: str, seed: int) -> bool:
    """True if the JSON already holds this run, for today's configuration and validation split."""
    variant = choices.get("variants", {}).get(name, {})
    return (choices.get("validation") == header["validation"]
            and variant.get("fingerprint") == config_fingerprint(config(name, seed))
            and f"seed{seed}" in choices.get("runs", {}).get(name, {}))


def record(header: dict, name: str, seed: int, run: dict, n_train: int) -> dict:
    """Merge one run into the JSON file and return the whole content.

    Runs recorded for another validation split or another configuration of a variant are dropped.
    """
    with locked("ch7_choices"):
        choices = load()
        if choices.get("validation") != header["validation"]:
            choices = {}
        choices.update(header)
        choices["about"] = ("benchmarks/ch7_choices.py: Chapter 7's Transformer (course) and one change at a "
                            "time from it, full budget, seeds 0-2, one thread; exact match on the validation "
                            "split (dates.make_validation) is what choices are made on; the test split is "
                            "only reported, for course and no_features")
        cfg = config(name, seed)
        variant = {"change": VARIANTS[name][0], "description": VARIANTS[name][1],
                   "fingerprint": config_fingerprint(cfg), "budget": budget(cfg, n_train)}
        runs = choices.setdefault("runs", {})
        if choices.setdefault("variants", {}).get(name, {}).get("fingerprint") != variant["fingerprint"]:
            runs.pop(name, None)
        choices["variants"][name] = variant
        runs.setdefault(name, {})[f"seed{seed}"] = run
        describe(choices)
        choices["machine"] = machine()
        choices["updated"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        summarise(choices)
        CHOICES_FILE.write_text(json.dumps(choices, indent=1, sort_keys=True) + "\n")
    return choices


def describe(choices: dict) -> None:
    """Write the current :data:`VARIANTS` descriptions into ``choices`` (wording only; no figure changes)."""
    for name, recorded in choices.get("variants", {}).items():
        if name in VARIANTS:
            recorded["description"] = VARIANTS[name][1]


def report(choices: dict) -> None:
    effects = choice_effects(choices) if "course" in choices.get("summary", {}) else {}
    print(f"\nexact match % on {choices['validation']['n']} validation pairs (seeds 0-2, one thread); "
          "test only for course and no_features")
    print(f"{'variant':<20} {'seeds':>5} {'val mean':>8} {'min':>6} {'max':>6} | {'vs course':>9} {'wins':>4} "
          f"{'overlap':>7} | {'test mean':>9} {'min':>6} {'max':>6} | {'train s':>7}")
    for name in VARIANTS:
        s = choices.get("summary", {}).get(name)
        if not s:
            continue
        v = s["validation"]
        e = effects.get(name)
        change = (f"{e['points']:+9.2f} {e['wins']:>2}/{len(e['seeds'])} {'yes' if e['overlap'] else 'no':>7}"
                  if e else f"{'':>9} {'':>4} {'':>7}")
        t = s.get("test")
        test = f"{t['mean']:9.2f} {t['min']:6.2f} {t['max']:6.2f}" if t else f"{'':>9} {'':>6} {'':>6}"
        seconds = statistics.fmean(r["seconds"] for r in choices["runs"][name].values())
        print(f"{name:<20} {v['n']:>5} {v['mean']:8.2f} {v['min']:6.2f} {v['max']:6.2f} | {change} | {test} | "
              f"{seconds:7.0f}")
    best = max(choices.get("summary", {}), key=lambda k: choices["summary"][k]["validation"]["mean"], default=None)
    if best:
        print(f"\nbest validation mean: {best}" + ("" if best == "course" else
                                                   " (the course configuration is NOT the best on validation)"))
    print(f"machine: {choices.get('machine')}; updated {choices.get('updated')}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--only", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--report", action="store_true", help="print the JSON's figures; train nothing")
    args = parser.parse_args(argv)
    if not args.report:
        seed_everything(0)  # as every chapter's first cell (also deterministic algorithms)
        runner = Runner()
        header = runner.header()
        for name in args.only:
            for seed in args.seeds:
                if is_done(load(), header, name, seed):
                    continue
                t0 = time.perf_counter()
                run = runner.run(name, seed)
                record(header, name, seed, run, len(runner.data.train))
                print(f"{name} seed {seed}: validation {run['validation']['exact']:.2f} % "
                      f"({'cached' if run['cached'] else 'trained'} in {run['seconds']:.0f} s; "
                      f"{time.perf_counter() - t0:.0f} s with evaluation)", flush=True)
    if not CHOICES_FILE.is_file():
        print(f"no results yet in {CHOICES_FILE}")
        return 1
    if not args.report:
        with locked("ch7_choices"):
            choices = load()
            describe(choices)
            CHOICES_FILE.write_text(json.dumps(choices, indent=1, sort_keys=True) + "\n")
    report(load())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

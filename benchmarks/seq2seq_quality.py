"""Chapters 1-2: train the encoder-decoder with and without attention; print the issue's figures.

    .venv/bin/python benchmarks/seq2seq_quality.py            # fresh training (no cache)
    .venv/bin/python benchmarks/seq2seq_quality.py --cache    # reuse ~/.cache/attention_course

Prints the training seconds of each model (same data, same sizes, same number of
steps), exact match (%) and character BLEU by the number of dates in the input (the
paper's Figure 2 in miniature) on the held-out test set, and the gap between the two
models on the longest bucket. Budgets are fixed step counts, so the accuracies do not
depend on the machine's load; the seconds do.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from attention_course.data.dates import count_dates, make_date_data  # noqa: E402
from attention_course.models.seq2seq import COURSE_DATA, ModelConfig, course_config, quality_by_length  # noqa: E402
from attention_course.training.seq2seq_training import train_model, translate  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", action="store_true", help="reuse cached models if present")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    data = make_date_data(**COURSE_DATA)
    print(f"data: {len(data.train)} training and {len(data.test)} held-out pairs, "
          f"{len(data.source_vocab)} source / {len(data.target_vocab)} target symbols "
          f"({time.perf_counter() - t0:.1f} s)")
    sources = [s for s, _ in data.test]
    targets = [t for _, t in data.test]
    groups = [count_dates(t) for t in targets]
    tables = {}
    for attention in (True, False):
        config: ModelConfig = course_config(attention)
        result = train_model(data, config, progress=False, use_cache=args.cache)
        t0 = time.perf_counter()
        predictions, _ = translate(result.model, sources, data)
        overall = 100 * sum(p == t for p, t in zip(predictions, targets)) / len(targets)
        name = "RNNsearch (attention)" if attention else "encoder-decoder (no attention)"
        print(f"\n{name}: {config.steps} steps of {config.batch_size}, trained in "
              f"{result.seconds:.1f} s{' (cached)' if result.cached else ''}; "
              f"test decoding {time.perf_counter() - t0:.1f} s; exact match {overall:.1f} %")
        rows = quality_by_length(predictions, targets, groups)
        tables[attention] = rows
        print(f"  {'dates':>5} {'n':>5} {'exact %':>8} {'char BLEU':>10}")
        for r in rows:
            print(f"  {r['group']:>5} {r['n']:>5} {r['exact']:>8.1f} {r['bleu']:>10.1f}")
    gap = tables[True][-1]["exact"] - tables[False][-1]["exact"]
    print(f"\nlongest bucket ({tables[True][-1]['group']} dates): attention is {gap:.1f} points "
          "ahead in exact match")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""How much the course's training results vary over seeds and thread counts (``benchmarks/training_spread.py``).

The chapters state the figures of one run (seed 0, one thread). The benchmark trains every model
again for seeds 0-2 on 1 and 2 torch threads and stores what it measured in ``training_spread.json``
next to this module (it ships with the package, so the chapters can glue the ranges on Colab too).
"""
from __future__ import annotations

import json
from pathlib import Path

__all__ = ["SPREAD_FILE", "training_spread"]

#: The benchmark's results, inside the package.
SPREAD_FILE = Path(__file__).with_name("training_spread.json")


def training_spread() -> dict:
    """The measured spread, as ``benchmarks/training_spread.py`` wrote it.

    Keys:
        ``runs``: ``{model: {"seed<s>-threads<t>": run}}`` for the models ``encdec``, ``rnnsearch``
            (Chapters 1-2), ``transformer`` (Chapter 7) and ``gpt`` (Chapter 6). A run holds ``seed``,
            ``threads``, ``seconds`` (training, of the run that trained it), ``cached`` and, for the
            date models, ``exact`` (exact match % on the 2,000 held-out inputs), ``exact_4`` (of those
            with 4 dates), ``exact_by_dates`` and ``bleu_by_dates`` (lists, 1-4 dates); for the GPT
            ``val_loss`` (nats per character, all validation windows) and ``bigram`` (the bigram baseline).
        ``summary``: ``{model: {figure: {"min", "max", "mean", "n"}}}`` for the figures ``exact``,
            ``exact_4``, ``val_loss`` and ``seconds`` a model has.
        ``claims``: ``{name: {"holds", "runs", "failed", ...}}``: whether a claim of the book holds on
            every run (``failed`` lists the runs where it does not): ``ch2_rnnsearch_99``,
            ``ch2_attention_ahead_on_4_dates``, ``ch7_transformer_99``, ``ch7_transformer_ahead``
            (with ``min_points`` / ``max_points``, the Transformer's lead in exact match),
            ``ch6_below_bigram`` (with ``min_below`` / ``max_below``, the bigram baseline minus the
            validation loss).
        ``machine``: ``cpu``, ``cores``, ``capability`` (``torch.backends.cpu.get_cpu_capability()``),
            ``torch``, ``python``; ``updated``: the UTC date and time of the last run recorded.

    Raises:
        FileNotFoundError: if the benchmark has not been run.
    """
    return json.loads(SPREAD_FILE.read_text())

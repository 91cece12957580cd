"""Measured results that the chapters glue, shipped with the package (so they work on Colab too).

* How much the course's training results vary over seeds and thread counts
  (``benchmarks/training_spread.py``): the chapters state the figures of one run (seed 0, one
  thread); the benchmark trains every model again for seeds 0-2 on 1 and 2 torch threads and stores
  what it measured in ``training_spread.json`` next to this module (:func:`training_spread`).
* Chapter 7's choices made on a validation split (``benchmarks/ch7_choices.py``): the course's
  Transformer and one-at-a-time changes from it, each over seeds 0-2, exact match on
  :func:`attention_course.data.dates.make_validation`'s pairs, stored in ``ch7_choices.json``
  (:func:`ch7_choices`; :func:`choice_effects` says which way each change moves validation exact match).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

__all__ = ["SPREAD_FILE", "training_spread", "CHOICES_FILE", "ch7_choices", "config_fingerprint",
           "choice_effects"]

#: The benchmark's results, inside the package.
SPREAD_FILE = Path(__file__).with_name("training_spread.json")
#: ``benchmarks/ch7_choices.py``'s results, inside the package.
CHOICES_FILE = Path(__file__).with_name("ch7_choices.json")


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


def ch7_choices() -> dict:
    """Chapter 7's validation results, as ``benchmarks/ch7_choices.py`` wrote them.

    Keys:
        ``variants``: ``{name: {"change", "fingerprint", "description", "budget"}}``: ``change`` is the
            dict of :class:`attention_course.models.date_transformer.TransformerConfig` fields changed from
            :func:`attention_course.models.date_transformer.course_transformer_config` (``{}`` for ``"course"``),
            ``fingerprint`` its :func:`config_fingerprint`, ``budget`` its ``steps``, ``batch_size``,
            ``examples`` (steps × batch) and ``epochs`` (examples / training pairs).
        ``runs``: ``{name: {"seed<s>": run}}``; a run holds ``seed``, ``threads`` (1), ``seconds``
            (training wall-clock of the run that trained it), ``cached``, ``validation`` and, for
            ``course`` and ``no_features``, ``test``: each ``{"correct", "n", "exact"}`` (exact match,
            count and %) with ``exact_by_dates`` and ``n_by_dates`` (lists, 1-4 dates); and
            ``curve``: ``{"every", "loss", "nll"}``, the training objective and the plain cross-entropy
            (nats per target character) averaged over each ``every`` steps.
        ``summary``: ``{name: {"validation" | "test": {"mean", "min", "max", "n", "seeds"}}}`` (exact
            match %, over the seeds).
        ``validation``: ``{"n", "seed", "fingerprint"}`` of the split; ``data``: the training data's
            ``config`` and ``fingerprint``; ``machine`` and ``updated`` as in :func:`training_spread`;
            ``about``: one sentence on what was measured.

    Raises:
        FileNotFoundError: if the benchmark has not been run.
    """
    return json.loads(CHOICES_FILE.read_text())


def config_fingerprint(config) -> str:
    """16 hex digits naming a training configuration regardless of its seed.

    ``config`` is a dataclass (a :class:`attention_course.models.date_transformer.TransformerConfig`): every
    field except ``seed`` is hashed, so two seeds of one variant share a fingerprint and changing any
    default (or :data:`attention_course.models.date_transformer.COURSE_CHANGES`) changes it.

    Raises:
        TypeError: if ``config`` is not a dataclass instance.
    """
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise TypeError(f"config_fingerprint: expected a dataclass instance; got {type(config).__name__}")
    fields = {k: v for k, v in dataclasses.asdict(config).items() if k != "seed"}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


def choice_effects(choices: dict | None = None, baseline: str = "course", split: str = "validation") -> dict:
    """For each one-at-a-time change, which way it moves exact match against ``baseline``, and by how much.

    Compares correct counts (integers), summed over the seeds both variants have, so the verdict has
    no floating-point tie to break.

    Args:
        choices: the content of ``ch7_choices.json`` (default: :func:`ch7_choices`), or a hand-made
            dict with the same ``runs`` layout (``runs[name]["seed<s>"][split]["correct"]`` and ``["n"]``).
        baseline: the variant the others are compared with.
        split: ``"validation"`` (for choosing) or ``"test"`` (only reported).

    Returns:
        ``{name: effect}`` for every other variant with runs on ``split``; an effect holds
        ``verdict`` (``"better"``, ``"worse"`` or ``"equal"``: the variant's mean against the
        baseline's), ``points`` (its mean minus the baseline's, in percentage points), ``mean`` and
        ``baseline_mean`` (%), ``seeds`` (the seeds compared), ``wins`` / ``losses`` (seeds on which
        the variant is above / below the baseline of the same seed), ``overlap`` (True if the ranges
        over seeds, min to max, overlap: the difference is within the seed-to-seed spread).

    Raises:
        KeyError: if ``baseline`` has no runs on ``split``.
        ValueError: if a variant shares no seed with the baseline, or the split's size differs.
    """
    runs = (ch7_choices() if choices is None else choices)["runs"]

    def counts(name):
        return {int(key.removeprefix("seed")): run[split] for key, run in runs.get(name, {}).items()
                if split in run}

    base = counts(baseline)
    if not base:
        raise KeyError(f"choice_effects: no {split} runs of the baseline {baseline!r}")
    effects = {}
    for name in runs:
        other = counts(name)
        if name == baseline or not other:
            continue
        seeds = sorted(set(base) & set(other))
        if not seeds:
            raise ValueError(f"choice_effects: {name!r} shares no seed with {baseline!r}")
        if any(base[s]["n"] != other[s]["n"] for s in seeds):
            raise ValueError(f"choice_effects: {name!r} and {baseline!r} were evaluated on splits of other sizes")
        b = [base[s]["correct"] for s in seeds]
        v = [other[s]["correct"] for s in seeds]
        n = sum(base[s]["n"] for s in seeds)
        diff = sum(v) - sum(b)
        effects[name] = {
            "verdict": "better" if diff > 0 else "worse" if diff < 0 else "equal",
            "points": 100 * diff / n, "mean": 100 * sum(v) / n, "baseline_mean": 100 * sum(b) / n,
            "seeds": seeds, "wins": sum(x > y for x, y in zip(v, b)), "losses": sum(x < y for x, y in zip(v, b)),
            "overlap": min(v) <= max(b) and min(b) <= max(v),
        }
    return effects

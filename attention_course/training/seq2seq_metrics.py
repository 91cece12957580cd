"""Quality of translations: exact match and character BLEU, overall, by length and by group (Chapters 1 and 2)."""
from __future__ import annotations

import numpy as np

__all__ = ["accuracy_by_length", "char_bleu", "quality_by_length"]


def accuracy_by_length(predictions, targets, lengths, bins) -> np.ndarray:
    """Exact-match accuracy per length bucket ``[bins[k], bins[k+1])``.

    Args:
        predictions, targets: sequences of equal length (strings or lists of tokens).
        lengths: the length of each example's *input* (any number).
        bins: increasing bucket edges; ``K + 1`` edges make ``K`` buckets.

    Returns:
        ``(K,)`` float array; ``nan`` for an empty bucket. Examples outside all
        buckets are ignored.

    Raises:
        ValueError: for sequences of different lengths or non-increasing edges.
    """
    if not len(predictions) == len(targets) == len(lengths):
        raise ValueError(f"accuracy_by_length: {len(predictions)} predictions, {len(targets)} "
                         f"targets and {len(lengths)} lengths")
    bins = np.asarray(bins, dtype=float)
    if bins.ndim != 1 or len(bins) < 2 or np.any(np.diff(bins) <= 0):
        raise ValueError(f"accuracy_by_length: bins must be >= 2 increasing edges; got {bins}")
    correct = np.array([p == t for p, t in zip(predictions, targets)], dtype=float)
    lengths = np.asarray(lengths, dtype=float)
    out = np.full(len(bins) - 1, np.nan)
    for k in range(len(bins) - 1):
        inside = (lengths >= bins[k]) & (lengths < bins[k + 1])
        if inside.any():
            out[k] = correct[inside].mean()
    return out


def char_bleu(predictions, targets) -> float:
    """Corpus BLEU on characters (``sacrebleu``, ``tokenize="char"``), 0-100."""
    import sacrebleu

    if not predictions:
        return float("nan")
    return sacrebleu.corpus_bleu(list(predictions), [list(targets)], tokenize="char").score


def quality_by_length(predictions, targets, groups) -> list[dict]:
    """Exact match (%) and character BLEU per group (e.g. number of dates in the input).

    Returns:
        One dict per distinct group value, sorted: ``{"group", "n", "exact", "bleu"}``.
    """
    if not len(predictions) == len(targets) == len(groups):
        raise ValueError("quality_by_length: predictions, targets and groups differ in length")
    rows = []
    for g in sorted(set(groups)):
        idx = [i for i, x in enumerate(groups) if x == g]
        p, t = [predictions[i] for i in idx], [targets[i] for i in idx]
        rows.append({"group": g, "n": len(idx),
                     "exact": 100.0 * float(np.mean([a == b for a, b in zip(p, t)])),
                     "bleu": char_bleu(p, t)})
    return rows

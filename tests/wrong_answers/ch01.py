"""The typical wrong answers of Chapter 1 (the encoder's fixed context, accuracy by length).

See tests/wrong_answers/__init__.py.
"""
from __future__ import annotations

from wrong_answers import Wrong

NOTEBOOK = "ch01_origin/origin.ipynb"  # in solutions/

_WRONG = {
    "context at the last padded position": ("test_final_context", """
        def final_context(encoder_outputs, lengths):
            return encoder_outputs[:, -1]
    """, ("last *padded* position",)),
    "context at the first position": ("test_final_context", """
        def final_context(encoder_outputs, lengths):
            return encoder_outputs[:, 0]
    """, ("position 0", "last real position")),
    "off by one, index out of range": ("test_final_context", """
        def final_context(encoder_outputs, lengths):
            lengths = torch.as_tensor(lengths)
            return encoder_outputs[torch.arange(encoder_outputs.shape[0]), lengths]
    """, ("stopped with an error", "l - 1")),
    "off by one, clamped": ("test_final_context", """
        def final_context(encoder_outputs, lengths):
            lengths = torch.as_tensor(lengths)
            return encoder_outputs[torch.arange(encoder_outputs.shape[0]), lengths.clamp(max=encoder_outputs.shape[1] - 1)]
    """, ("off by one",)),
    "lengths as a list not handled": ("test_final_context", """
        def final_context(encoder_outputs, lengths):
            return encoder_outputs[torch.arange(encoder_outputs.shape[0]), lengths - 1]
    """, ("list", "torch.as_tensor")),
    "returns a NumPy array": ("test_final_context", """
        def final_context(encoder_outputs, lengths):
            lengths = torch.as_tensor(lengths)
            return encoder_outputs[torch.arange(encoder_outputs.shape[0]), lengths - 1].numpy()
    """, ("torch tensor", "ndarray")),
    "accuracy as a list with 0.0 for an empty bucket": ("test_accuracy_by_length", """
        def accuracy_by_length(predictions, targets, lengths, bins):
            out = []
            for lo, hi in zip(bins[:-1], bins[1:]):
                hits = [p == t for p, t, l in zip(predictions, targets, lengths) if lo <= l < hi]
                out.append(sum(hits) / len(hits) if hits else 0.0)
            return out
    """, ("numpy array", "list")),
    "0 for an empty bucket": ("test_accuracy_by_length", """
        def accuracy_by_length(predictions, targets, lengths, bins):
            correct = np.array([p == t for p, t in zip(predictions, targets)], dtype=float)
            lengths = np.asarray(lengths)
            out = np.zeros(len(bins) - 1)
            for k in range(len(bins) - 1):
                inside = (lengths >= bins[k]) & (lengths < bins[k + 1])
                if inside.any():
                    out[k] = correct[inside].mean()
            return out
    """, ("empty bucket", "np.nan, not 0")),
    "overall accuracy in every bucket": ("test_accuracy_by_length", """
        def accuracy_by_length(predictions, targets, lengths, bins):
            return np.full(len(bins) - 1, np.mean([p == t for p, t in zip(predictions, targets)]))
    """, ("overall accuracy", "per bucket")),
    "right edge inclusive": ("test_accuracy_by_length", """
        def accuracy_by_length(predictions, targets, lengths, bins):
            correct = np.array([p == t for p, t in zip(predictions, targets)], dtype=float)
            lengths = np.asarray(lengths)
            out = np.full(len(bins) - 1, np.nan)
            for k in range(len(bins) - 1):
                inside = (lengths > bins[k]) & (lengths <= bins[k + 1])
                if inside.any():
                    out[k] = correct[inside].mean()
            return out
    """, ("length 20 belongs to the next bucket",)),
    "character accuracy instead of exact match": ("test_accuracy_by_length", """
        def accuracy_by_length(predictions, targets, lengths, bins):
            correct = np.array([np.mean([a == b for a, b in zip(p, t)]) for p, t in zip(predictions, targets)])
            lengths = np.asarray(lengths)
            out = np.full(len(bins) - 1, np.nan)
            for k in range(len(bins) - 1):
                inside = (lengths >= bins[k]) & (lengths < bins[k + 1])
                if inside.any():
                    out[k] = correct[inside].mean()
            return out
    """, ("exactly",)),
    "integer array (counts, no nan possible)": ("test_accuracy_by_length", """
        def accuracy_by_length(predictions, targets, lengths, bins):
            lengths = np.asarray(lengths)
            out = np.zeros(len(bins) - 1, dtype=int)
            for k in range(len(bins) - 1):
                inside = (lengths >= bins[k]) & (lengths < bins[k + 1])
                out[k] = sum(p == t for p, t, i in zip(predictions, targets, inside) if i)
            return out
    """, ("must return floats",)),
    "lengths outside the buckets counted in the last one": ("test_accuracy_by_length", """
        def accuracy_by_length(predictions, targets, lengths, bins):
            correct = np.array([p == t for p, t in zip(predictions, targets)], dtype=float)
            k_of = np.clip(np.searchsorted(bins, lengths, side="right") - 1, 0, len(bins) - 2)
            out = np.full(len(bins) - 1, np.nan)
            for k in range(len(bins) - 1):
                if (k_of == k).any():
                    out[k] = correct[k_of == k].mean()
            return out
    """, ("outside every bucket",)),
    "bins as an array not handled": ("test_accuracy_by_length", """
        def accuracy_by_length(predictions, targets, lengths, bins):
            correct = np.array([p == t for p, t in zip(predictions, targets)], dtype=float)
            lengths = np.asarray(lengths)
            out = np.full(len(bins) - 1, np.nan)
            for lo, hi in zip(bins, bins[1:]):
                k = bins.index(lo)
                if ((lengths >= lo) & (lengths < hi)).any():
                    out[k] = correct[(lengths >= lo) & (lengths < hi)].mean()
            return out
    """, ("stopped with an error", "bins may be a numpy array")),
}

WRONG: dict[str, Wrong] = {name: Wrong(*entry) for name, entry in _WRONG.items()}

"""Typical wrong answers, one mistake each: the PUBLIC check rejects it and its message names the mistake.

A student sees only the public part of a check cell (the hidden tests are cut off in the release),
so every wrong answer here runs against that part alone: it must raise ``AssertionError`` (never a
raw framework error), and the message must contain the words that name the mistake. The wrong
answers are dicts below, one per chapter: ``{name: (check id, source, words)}``,
where ``source`` defines the wrong function(s) and ``words`` are all expected in the message
(case-insensitive).
"""
from __future__ import annotations

import textwrap

import pytest

from course_tools import ROOT, ExerciseNotebook

NOTEBOOKS = {
    "ch01": "ch01_origin/origin.ipynb",
    "ch02": "ch02_bahdanau_attention/bahdanau_attention.ipynb",
    "ch03": "ch03_general_form/general_form.ipynb",
    "ch04": "ch04_self_attention/self_attention.ipynb",
    "ch05": "ch05_multi_head_attention/multi_head_attention.ipynb",
    "ch06": "ch06_attention_and_llms/attention_and_llms.ipynb",
}
EXERCISES = {chapter: ExerciseNotebook(ROOT / "solutions" / path) for chapter, path in NOTEBOOKS.items()}

WRONG: dict[str, dict[str, tuple[str, str, tuple[str, ...]]]] = {}

# ---------------------------------------------------------------------------- Chapter 1
WRONG["ch01"] = {
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


# ---------------------------------------------------------------------------- Chapter 2
BIDIR = """
    def bidirectional_annotations(x, lengths, forward_cell, backward_cell):
        B, T, _ = x.shape
        real = (torch.arange(T)[None, :] < torch.as_tensor(lengths)[:, None]).to(x.dtype)
        h, f = x.new_zeros(B, forward_cell.hidden_size), []
        for t in range(T):
            h = forward_cell(x[:, t], h) * real[:, t, None]
            f.append(h)
        h, b = x.new_zeros(B, backward_cell.hidden_size), [None] * T
        for t in reversed(range(T)):
            h = BACKWARD
            b[t] = h
        return torch.cat([torch.stack(f, 1), torch.stack(b, 1)], -1)
"""
SCORE = "torch.tanh((s_prev @ W_s.T)[:, None, :] + H @ W_h.T) @ v"
STEP = """
    def decoder_step(y_prev, s_prev, H, mask, W_s, W_h, v, cell):
        alpha = masked_softmax(additive_score(s_prev, H, W_s, W_h, v), mask)
        c = context_vector(alpha, H)
        s = cell(torch.cat([y_prev, c], dim=-1), s_prev)
        return s, c, alpha
"""
WRONG["ch02"] = {
    "one-way encoder (forward states twice)": ("test_bidirectional_annotations", BIDIR.replace(
        "b[t] = h", "b[t] = f[t]").replace("BACKWARD", "backward_cell(x[:, t], h) * real[:, t, None]"), ("one-way encoder",)),
    "backward GRU starts at the padding": ("test_bidirectional_annotations", BIDIR.replace(
        "BACKWARD", "backward_cell(x[:, t], h)\n            h = h * 1"), ("padding",)),
    "zero start state of the wrong size": ("test_bidirectional_annotations", BIDIR.replace(
        "x.new_zeros(B, forward_cell.hidden_size)", "x.new_zeros(B, x.shape[-1])").replace(
        "BACKWARD", "backward_cell(x[:, t], h) * real[:, t, None]"), ("stopped with an error", "x.new_zeros(b, d_h)")),
    "W_s not transposed (raw matmul error before)": ("test_additive_score", """
        def additive_score(s_prev, H, W_s, W_h, v):
            return torch.tanh((s_prev @ W_s)[:, None, :] + H @ W_h.T) @ v
    """, ("stopped with an error", "transposed weights", "s_prev @ w_s.t")),
    "no tanh": ("test_additive_score", """
        def additive_score(s_prev, H, W_s, W_h, v):
            return ((s_prev @ W_s.T)[:, None, :] + H @ W_h.T) @ v
    """, ("tanh is missing",)),
    "state of sentence 0 for the whole batch": ("test_additive_score", """
        def additive_score(s_prev, H, W_s, W_h, v):
            return torch.tanh((s_prev[:1] @ W_s.T)[:, None, :] + H @ W_h.T) @ v
    """, ("sentence 0's state",)),
    "hidden units summed instead of times v": ("test_additive_score", """
        def additive_score(s_prev, H, W_s, W_h, v):
            return torch.tanh((s_prev @ W_s.T)[:, None, :] + H @ W_h.T).sum(-1)
    """, ("instead of multiplying them by v",)),
    "batch axis squeezed": ("test_additive_score", f"""
        def additive_score(s_prev, H, W_s, W_h, v):
            return ({SCORE}).squeeze()
    """, ("batch of one",)),
    "softmax over the batch axis": ("test_masked_softmax", """
        def masked_softmax(scores, mask):
            return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=0).nan_to_num(0.0)
    """, ("batch axis",)),
    "mask inverted": ("test_masked_softmax", """
        def masked_softmax(scores, mask):
            return torch.softmax(scores.masked_fill(mask, float("-inf")), dim=-1)
    """, ("inverted", "~mask")),
    "mask inverted, NaN replaced by 0": ("test_masked_softmax", """
        def masked_softmax(scores, mask):
            return torch.softmax(scores.masked_fill(mask, float("-inf")), dim=-1).nan_to_num(0.0)
    """, ("inverted", "~mask")),
    "padding filled with 0 instead of -inf": ("test_masked_softmax", """
        def masked_softmax(scores, mask):
            return torch.softmax(scores.masked_fill(~mask, 0.0), dim=-1)
    """, ("-inf before the softmax",)),
    "zeroed after the softmax": ("test_masked_softmax", """
        def masked_softmax(scores, mask):
            return torch.softmax(scores, dim=-1) * mask
    """, ("after the softmax",)),
    "exp / sum overflows": ("test_masked_softmax", """
        def masked_softmax(scores, mask):
            e = torch.exp(scores) * mask
            return e / e.sum(-1, keepdim=True)
    """, ("torch.softmax",)),
    "context: plain mean": ("test_context_vector", """
        def context_vector(weights, H):
            return H.mean(1)
    """, ("plain mean",)),
    "context: summed over the feature axis": ("test_context_vector", """
        def context_vector(weights, H):
            return (weights[:, :, None] * H).sum(2)
    """, ("summed over the feature axis",)),
    "context: weights not broadcast (raw error before)": ("test_context_vector", """
        def context_vector(weights, H):
            return (weights * H).sum(1)
    """, ("stopped with an error", "torch.bmm")),
    "decoder step blamed for a wrong masked_softmax": ("test_decoder_step", STEP + """
    def masked_softmax(scores, mask):
        return torch.softmax(scores, dim=-1)
    """, ("masked_softmax", "fix masked_softmax first")),
    "decoder step blamed for a wrong additive_score": ("test_decoder_step", STEP + """
    def additive_score(s_prev, H, W_s, W_h, v):
        return ((s_prev @ W_s.T)[:, None, :] + H @ W_h.T) @ v
    """, ("fix additive_score first",)),
    "decoder step scores with the new state": ("test_decoder_step", """
        def decoder_step(y_prev, s_prev, H, mask, W_s, W_h, v, cell):
            alpha = masked_softmax(additive_score(s_prev, H, W_s, W_h, v), mask)
            s = cell(torch.cat([y_prev, context_vector(alpha, H)], -1), s_prev)
            alpha = masked_softmax(additive_score(s, H, W_s, W_h, v), mask)
            return s, context_vector(alpha, H), alpha
    """, ("previous state",)),
    "decoder step: context left out of the GRU": ("test_decoder_step", """
        def decoder_step(y_prev, s_prev, H, mask, W_s, W_h, v, cell):
            alpha = masked_softmax(additive_score(s_prev, H, W_s, W_h, v), mask)
            c = context_vector(alpha, H)
            return cell(torch.cat([y_prev, torch.zeros_like(c)], -1), s_prev), c, alpha
    """, ("ignores the context",)),
    "decoder step: inputs concatenated in the wrong order": ("test_decoder_step", """
        def decoder_step(y_prev, s_prev, H, mask, W_s, W_h, v, cell):
            alpha = masked_softmax(additive_score(s_prev, H, W_s, W_h, v), mask)
            c = context_vector(alpha, H)
            return cell(torch.cat([c, y_prev], -1), s_prev), c, alpha
    """, ("wrong order",)),
    "decoder step returns a list": ("test_decoder_step", STEP.replace("return s, c, alpha", "return [s, c, alpha]"),
                                    ("tuple",)),
}


# ---------------------------------------------------------------------------- Chapter 3
WRONG["ch03"] = {
    "softmax without subtracting the maximum": ("test_softmax", """
        def softmax(x, axis=-1):
            e = np.exp(np.asarray(x, dtype=float))
            return e / e.sum(axis=axis, keepdims=True)
    """, ("overflowed", "subtract the maximum")),
    "softmax with one maximum for the whole array": ("test_softmax", """
        def softmax(x, axis=-1):
            x = np.asarray(x, dtype=float)
            e = np.exp(x - x.max())
            return e / e.sum(axis=axis, keepdims=True)
    """, ("each row", "not one maximum")),
    "softmax down the columns": ("test_softmax", """
        def softmax(x, axis=-1):
            x = np.asarray(x, dtype=float)
            e = np.exp(x - x.max(axis=0, keepdims=True))
            return e / e.sum(axis=0, keepdims=True)
    """, ("columns sum to 1",)),
    "softmax ignores the axis argument": ("test_softmax", """
        def softmax(x, axis=-1):
            x = np.asarray(x, dtype=float)
            e = np.exp(x - x.max(axis=-1, keepdims=True))
            return e / e.sum(axis=-1, keepdims=True)
    """, ("axis=0", "use the axis argument")),
    "softmax changes its input": ("test_softmax", """
        def softmax(x, axis=-1):
            x -= np.max(x, axis=axis, keepdims=True)
            np.exp(x, out=x)
            x /= np.sum(x, axis=axis, keepdims=True)
            return x
    """, ("in place",)),
    "softmax without keepdims (raw broadcast error before)": ("test_softmax", """
        def softmax(x, axis=-1):
            x = np.asarray(x, dtype=float)
            e = np.exp(x - np.max(x, axis=axis))
            return e / np.sum(e, axis=axis)
    """, ("stopped with an error", "keepdims=true")),
    "dot product with K not transposed (gufunc error before)": ("test_dot_product_score", """
        def dot_product_score(q, K):
            return np.asarray(q, float) @ np.asarray(K, float)
    """, ("stopped with an error", "k.t")),
    "dot product as a list": ("test_dot_product_score", """
        def dot_product_score(q, K):
            return [float(np.dot(q, k)) for k in K]
    """, ("numpy array", "list")),
    "dot product for one query only": ("test_dot_product_score", """
        def dot_product_score(q, K):
            return np.asarray(K, float) @ np.asarray(q, float)
    """, ("batch of 3 queries",)),
    "scaled by d_k": ("test_scaled_dot_product_score", """
        def scaled_dot_product_score(q, K):
            K = np.asarray(K, float)
            return np.asarray(q, float) @ K.T / K.shape[-1]
    """, ("divided by d_k = 9",)),
    "scaled by sqrt(n)": ("test_scaled_dot_product_score", """
        def scaled_dot_product_score(q, K):
            K = np.asarray(K, float)
            return np.asarray(q, float) @ K.T / np.sqrt(K.shape[0])
    """, ("sqrt(n)",)),
    "scaled by sqrt of the query count for a batch": ("test_scaled_dot_product_score", """
        def scaled_dot_product_score(q, K):
            q = np.asarray(q, float)
            return q @ np.asarray(K, float).T / np.sqrt(q.shape[0] if q.ndim == 2 else 9)
    """, ("number of queries",)),
    "additive score for one query only (issue 17)": ("test_additive_score", """
        def additive_score(q, K, W_q, W_k, w_v):
            return np.tanh(np.asarray(W_q) @ np.asarray(q) + np.asarray(K) @ np.asarray(W_k).T) @ np.asarray(w_v)
    """, ("batch of 2 queries", "projected_q[..., none, :]")),
    "additive score without tanh": ("test_additive_score", """
        def additive_score(q, K, W_q, W_k, w_v):
            q, K = np.asarray(q, float), np.asarray(K, float)
            return ((q @ W_q.T)[..., None, :] + K @ W_k.T) @ w_v
    """, ("tanh is missing",)),
    "additive score with W_q and W_k swapped (raw error before)": ("test_additive_score", """
        def additive_score(q, K, W_q, W_k, w_v):
            q, K = np.asarray(q, float), np.asarray(K, float)
            return np.tanh((q @ W_k.T)[..., None, :] + K @ W_q.T) @ w_v
    """, ("stopped with an error", "w_q", "multiplies the query")),
    "cosine divided by the norm of the whole K": ("test_cosine_score", """
        def cosine_score(q, K):
            q, K = np.asarray(q, float), np.asarray(K, float)
            return q @ K.T / (np.linalg.norm(q) * np.linalg.norm(K))
    """, ("whole matrix k",)),
    "cosine with the norms of K's columns": ("test_cosine_score", """
        def cosine_score(q, K):
            q, K = np.asarray(q, float), np.asarray(K, float)
            return (q / np.linalg.norm(q)) @ (K / np.linalg.norm(K, axis=0)).T
    """, ("columns",)),
    "cosine with one norm for the whole batch of queries": ("test_cosine_score", """
        def cosine_score(q, K):
            q, K = np.asarray(q, float), np.asarray(K, float)
            return q @ (K / np.linalg.norm(K, axis=-1, keepdims=True)).T / np.linalg.norm(q)
    """, ("own length",)),
    "bilinear for one query only (issue 17)": ("test_bilinear_score", """
        def bilinear_score(q, K, W):
            return np.asarray(K, float) @ (np.asarray(W, float).T @ np.asarray(q, float))
    """, ("batch of 2 queries",)),
    "bilinear with W transposed": ("test_bilinear_score", """
        def bilinear_score(q, K, W):
            return np.asarray(q, float) @ np.asarray(W, float).T @ np.asarray(K, float).T
    """, ("stopped with an error", "q @ w @ k.t")),
    "bilinear with W transposed, square W": ("test_bilinear_score", """
        def bilinear_score(q, K, W):
            W = np.asarray(W, float)
            W = W.T if W.shape[0] == W.shape[1] else W
            return np.asarray(q, float) @ W @ np.asarray(K, float).T
    """, ("you used w.t",)),
    "pooling as a loop returning a list (issue 17)": ("test_attention_pooling", """
        def attention_pooling(weights, V):
            return [sum(w * v for w, v in zip(weights, V))]
    """, ("numpy array", "list")),
    "pooling: plain mean": ("test_attention_pooling", """
        def attention_pooling(weights, V):
            return np.asarray(V, float).mean(axis=0)
    """, ("plain mean",)),
    "pooling for one query only": ("test_attention_pooling", """
        def attention_pooling(weights, V):
            return np.asarray(V, float).T @ np.asarray(weights, float)
    """, ("stopped with an error", "weights @ v")),
}


# ---------------------------------------------------------------------------- Chapter 4
ATTENTION = """
    def self_attention(X, W_q, W_k, W_v, mask=None):
        Q, K, V = X @ W_q, X @ W_k, X @ W_v
        scores = SCORES
        if mask is not None:
            scores = MASKED
        weights = WEIGHTS
        return weights @ V, weights
"""


def attention(scores="Q @ K.transpose(-2, -1) / math.sqrt(Q.shape[-1])",
              masked="scores.masked_fill(~mask, float('-inf'))", weights="torch.softmax(scores, dim=-1)"):
    return ATTENTION.replace("SCORES", scores).replace("MASKED", masked).replace("WEIGHTS", weights)


EQUIVARIANT = """
    def is_permutation_equivariant(fn, X, atol=1e-6):
        n = X.shape[1]
        perm = PERM
        return COMPARE
"""


def equivariant(perm="torch.arange(n).flip(0)", compare="bool(torch.allclose(fn(X[:, perm]), fn(X)[:, perm], atol=atol))"):
    return EQUIVARIANT.replace("PERM", perm).replace("COMPARE", compare)


WRONG["ch04"] = {
    "K.T on a 3-D tensor (raw error before)": ("test_self_attention", attention(
        scores="Q @ K.permute(2, 1, 0) / math.sqrt(Q.shape[-1])"),  # what K.T does to a 3-D K, without its warning
                                               ("stopped with an error", "k.transpose(-2, -1)")),
    "missing 1/sqrt(d_k)": ("test_self_attention", attention(scores="Q @ K.transpose(-2, -1)"), ("sqrt(d_k)",)),
    "divided by sqrt(d_model)": ("test_self_attention", attention(scores="Q @ K.transpose(-2, -1) / math.sqrt(X.shape[-1])"),
                                 ("sqrt(d_model)",)),
    "softmax over the queries": ("test_self_attention", attention(weights="torch.softmax(scores, dim=-2)"),
                                 ("last axis",)),
    "weights transposed (K Q^T)": ("test_self_attention", attention(scores="K @ Q.transpose(-2, -1) / math.sqrt(Q.shape[-1])"),
                                   ("transposed",)),
    "mask inverted": ("test_self_attention", attention(masked="scores.masked_fill(mask, float('-inf'))"),
                      ("inverted", "~mask")),
    "mask filled with 0": ("test_self_attention", attention(masked="scores.masked_fill(~mask, 0.0)"), ("-inf",)),
    "mask applied after the softmax": ("test_self_attention", attention(
        weights="torch.softmax(scores, dim=-1) * (mask if mask is not None else 1)",
        masked="scores"), ("after the softmax",)),
    "per-sequence mask ignored": ("test_self_attention", attention(
        masked="scores.masked_fill(~(mask[0] if mask.dim() == 3 else mask), float('-inf'))"), ("mask[b]",)),
    "dtype changed to float64": ("test_self_attention", attention(
        scores="(Q @ K.transpose(-2, -1) / math.sqrt(Q.shape[-1])).double()").replace(
        "return weights @ V, weights", "return weights @ V.double(), weights"), ("float32",)),
    "causal mask as floats": ("test_causal_mask", """
        def causal_mask(n):
            return torch.ones(n, n).tril()
    """, ("bool",)),
    "causal mask inverted (future allowed)": ("test_causal_mask", """
        def causal_mask(n):
            return torch.ones(n, n, dtype=torch.bool).triu(1)
    """, ("inverted",)),
    "causal mask without the diagonal": ("test_causal_mask", """
        def causal_mask(n):
            return torch.ones(n, n, dtype=torch.bool).tril(-1)
    """, ("diagonal",)),
    "sin and cos swapped": ("test_sinusoidal_positional_encoding", """
        def sinusoidal_positional_encoding(max_len, d_model):
            p = torch.arange(max_len, dtype=torch.float64)[:, None]
            f = 10000.0 ** (-torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)
            pe = torch.zeros(max_len, d_model)
            pe[:, 0::2], pe[:, 1::2] = torch.cos(p * f), torch.sin(p * f)
            return pe
    """, ("swapped",)),
    "exponent i/d_model instead of 2i/d_model": ("test_sinusoidal_positional_encoding", """
        def sinusoidal_positional_encoding(max_len, d_model):
            p = torch.arange(max_len, dtype=torch.float64)[:, None]
            f = 10000.0 ** (-torch.arange(d_model // 2, dtype=torch.float64) / d_model)
            pe = torch.zeros(max_len, d_model)
            pe[:, 0::2], pe[:, 1::2] = torch.sin(p * f), torch.cos(p * f)
            return pe
    """, ("1/d_model",)),
    "encoding of the wrong shape (d_model, max_len)": ("test_sinusoidal_positional_encoding", """
        def sinusoidal_positional_encoding(max_len, d_model):
            p = torch.arange(max_len, dtype=torch.float64)[:, None]
            f = 10000.0 ** (-torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)
            pe = torch.zeros(max_len, d_model)
            pe[:, 0::2], pe[:, 1::2] = torch.sin(p * f), torch.cos(p * f)
            return pe.T
    """, ("(10, 8)",)),
    "one random permutation, identity not excluded (issue 17)": ("test_is_permutation_equivariant",
                                                                 equivariant(perm="torch.randperm(n)"), ("identity",)),
    "identity permutation": ("test_is_permutation_equivariant", equivariant(perm="torch.arange(n)"), ("changes the order",)),
    "output not permuted": ("test_is_permutation_equivariant",
                            equivariant(compare="bool(torch.allclose(fn(X[:, perm]), fn(X), atol=atol))"),
                            ("permute the output",)),
    "batch axis permuted": ("test_is_permutation_equivariant", equivariant(
        perm="torch.arange(X.shape[0]).flip(0)", compare="bool(torch.allclose(fn(X[perm]), fn(X)[perm], atol=atol))"),
        ("axis 1",)),
    "atol ignored": ("test_is_permutation_equivariant",
                     equivariant(compare="bool(torch.allclose(fn(X[:, perm]), fn(X)[:, perm]))"), ("atol",)),
    "returns a tensor of booleans": ("test_is_permutation_equivariant",
                                     equivariant(compare="torch.isclose(fn(X[:, perm]), fn(X)[:, perm], atol=atol)"),
                                     ("true or false",)),
}


# ---------------------------------------------------------------------------- Chapter 5
MHA = """
    def multi_head_attention(X, W_q, W_k, W_v, W_o, num_heads, mask=None):
        Q, K, V = (split_heads(X @ W, num_heads) for W in (W_q, W_k, W_v))
        scores = Q @ K.transpose(-2, -1) / SCALE
        if mask is not None:
            scores = MASKED
        weights = torch.softmax(scores, dim=-1)
        return OUTPUT, weights
"""


def mha(scale="math.sqrt(Q.shape[-1])", masked="scores.masked_fill(~mask, float('-inf'))",
        output="merge_heads(weights @ V) @ W_o"):
    return MHA.replace("SCALE", scale).replace("MASKED", masked).replace("OUTPUT", output)


WRONG["ch05"] = {
    "split: plain reshape mixes positions": ("test_split_heads", """
        def split_heads(X, num_heads):
            batch, seq_len, d_model = X.shape
            return X.reshape(batch, num_heads, seq_len, d_model // num_heads)
    """, ("every position",)),
    "split: heads interleaved": ("test_split_heads", """
        def split_heads(X, num_heads):
            batch, seq_len, d_model = X.shape
            return X.reshape(batch, seq_len, d_model // num_heads, num_heads).permute(0, 3, 1, 2)
    """, ("interleaved",)),
    "split: no transpose (wrong shape)": ("test_split_heads", """
        def split_heads(X, num_heads):
            batch, seq_len, d_model = X.shape
            return X.reshape(batch, seq_len, num_heads, d_model // num_heads)
    """, ("(2, 4, 3, 2)",)),
    "split: d_k computed from num_heads wrongly (raw error before)": ("test_split_heads", """
        def split_heads(X, num_heads):
            batch, seq_len, d_model = X.shape
            return X.reshape(batch, seq_len, num_heads, num_heads).transpose(1, 2)
    """, ("stopped with an error", "d_k = 8 // 4")),
    "merge: reshape without transposing back": ("test_merge_heads", """
        def merge_heads(H):
            batch, num_heads, seq_len, d_k = H.shape
            return H.reshape(batch, seq_len, num_heads * d_k)
    """, ("without transposing back",)),
    "merge: view on a non-contiguous tensor (raw error before)": ("test_merge_heads", """
        def merge_heads(H):
            batch, num_heads, seq_len, d_k = H.shape
            return H.transpose(1, 2).view(batch, seq_len, num_heads * d_k)
    """, ("stopped with an error", "reshape")),
    "W_o forgotten": ("test_multi_head_attention", mha(output="merge_heads(weights @ V)"), ("w_o",)),
    "divided by sqrt(d_model)": ("test_multi_head_attention", mha(scale="math.sqrt(X.shape[-1])"), ("sqrt(d_model)",)),
    "no scaling": ("test_multi_head_attention", mha(scale="1.0"), ("sqrt(d_k)",)),
    "a correct multi_head_attention with a wrong split_heads": ("test_multi_head_attention", mha() + """
    def split_heads(X, num_heads):
        batch, seq_len, d_model = X.shape
        return X.reshape(batch, num_heads, seq_len, d_model // num_heads)
    """, ("fix split_heads first",)),
    "a correct multi_head_attention with a wrong merge_heads": ("test_multi_head_attention", mha() + """
    def merge_heads(H):
        batch, num_heads, seq_len, d_k = H.shape
        return H.reshape(batch, seq_len, num_heads * d_k)
    """, ("fix merge_heads first",)),
    "returns only the output": ("test_multi_head_attention", mha().replace("return merge_heads(weights @ V) @ W_o, weights",
                                                                           "return merge_heads(weights @ V) @ W_o"),
                                ("pair (output, weights)",)),
    "mask inverted": ("test_multi_head_attention_mask", mha(masked="scores.masked_fill(mask, float('-inf'))"),
                      ("inverted", "~mask")),
    "mask filled with 0": ("test_multi_head_attention_mask", mha(masked="scores.masked_fill(~mask, 0.0)"), ("-inf",)),
    "mask applied after the softmax": ("test_multi_head_attention_mask", mha(
        masked="scores", output="merge_heads(weights * mask @ V) @ W_o").replace(
        "return merge_heads(weights * mask @ V) @ W_o, weights",
        "weights = weights * mask if mask is not None else weights\n        return merge_heads(weights @ V) @ W_o, weights"),
        ("after the softmax",)),
    "padding mask not broadcast (raw error before)": ("test_multi_head_attention_mask", mha(
        masked="scores.masked_fill(~mask.reshape(scores.shape[-2:]), float('-inf')) if mask.dim() == 2 "
               "else scores.masked_fill(~mask.squeeze(), float('-inf'))"), ("stopped with an error", "broadcast")),
}


# ---------------------------------------------------------------------------- Chapter 6
BLOCK = """
    def transformer_block(x, params, mask=None):
        p = params
        batch, n, d = x.shape
        h = p["num_heads"]
        heads = lambda t: t.reshape(batch, n, h, d // h).transpose(1, 2)
        def attention(z):
            s = heads(z @ p["W_q"]) @ heads(z @ p["W_k"]).transpose(-2, -1) / SCALE
            if mask is not None:
                s = MASKED
            return (torch.softmax(s, -1) @ heads(z @ p["W_v"])).transpose(1, 2).reshape(batch, n, d) @ p["W_o"]
        ln = lambda z, i: F.layer_norm(z, (d,), p[f"ln{i}_weight"], p[f"ln{i}_bias"], eps=1e-5)
        ffn = lambda z: F.gelu(z @ p["W_1"] + p["b_1"]) @ p["W_2"] + p["b_2"]
        BODY
"""
PRE_NORM = "x = x + attention(ln(x, 1))\n        return x + ffn(ln(x, 2))"


def transformer(body=PRE_NORM, scale="math.sqrt(d // h)", masked="s.masked_fill(~mask, float('-inf'))"):
    return BLOCK.replace("BODY", body).replace("SCALE", scale).replace("MASKED", masked)


CACHE = """
    def causal_self_attention_with_cache(x_t, cache, W_q, W_k, W_v, W_o, num_heads):
        batch, n_new, d = x_t.shape
        d_k = d // num_heads
        heads = lambda t: t.reshape(batch, t.shape[1], num_heads, d_k).transpose(1, 2)
        q, k, v = heads(x_t @ W_q), heads(x_t @ W_k), heads(x_t @ W_v)
        if "k" in cache:
            k = torch.cat([cache["k"], k], dim=2)
            v = torch.cat([cache["v"], v], dim=2)
        UPDATE
        total = k.shape[2]
        allowed = ALLOWED
        s = (q @ k.transpose(-2, -1) / math.sqrt(d_k)).masked_fill(~allowed, float("-inf"))
        return (torch.softmax(s, -1) @ v).transpose(1, 2).reshape(batch, -1, d) @ W_o
"""


def cache_step(update='cache["k"], cache["v"] = k, v',
               allowed="torch.ones(total, total, dtype=torch.bool).tril()[total - n_new:]"):
    return CACHE.replace("UPDATE", update).replace("ALLOWED", allowed)


SAMPLE = """
    def sample_next_token(logits, temperature, generator=None):
        BODY
"""


def sampler(body):
    return SAMPLE.replace("BODY", body)


GOOD_DRAW = "torch.multinomial(torch.softmax(logits / temperature, -1), 1, generator=generator)"


WRONG["ch06"] = {
    "residual added to the normalised input": ("test_transformer_block", transformer(
        "z = ln(x, 1)\n        x = z + attention(z)\n        z = ln(x, 2)\n        return z + ffn(z)"), ("normalised input",)),
    "post-norm instead of pre-norm": ("test_transformer_block", transformer(
        "x = ln(x + attention(x), 1)\n        return ln(x + ffn(x), 2)"), ("post-norm",)),
    "no residual around the MLP": ("test_transformer_block", transformer(
        "x = x + attention(ln(x, 1))\n        return ffn(ln(x, 2))"), ("mlp has no residual",)),
    "no sqrt(d_k)": ("test_transformer_block", transformer(scale="1.0"), ("sqrt(d_k)",)),
    "sqrt(d_model) instead of sqrt(d_k)": ("test_transformer_block", transformer(scale="math.sqrt(d)"), ("sqrt(d_model)",)),
    "mask ignored (the LAST-token check on a pre-norm block, issue 17)": ("test_transformer_block", transformer(
        masked="s"), ("changing the last token",)),
    "mask inverted": ("test_transformer_block", transformer(masked="s.masked_fill(mask, float('-inf'))"),
                      ("nan", "~mask")),
    "MLP weights transposed, as in nn.Linear (raw error before)": ("test_transformer_block", transformer(
        "x = x + attention(ln(x, 1))\n        return x + F.gelu(ln(x, 2) @ p['W_1'].T + p['b_1']) @ p['W_2'].T + p['b_2']"),
        ("stopped with an error", "z @ w", "w_1 (16, 32)")),
    "cache rebound instead of updated (issue 17)": ("test_causal_self_attention_with_cache", cache_step(
        update='cache = {"k": k, "v": v}'), ("still empty", "rebinds")),
    "cache under other names": ("test_causal_self_attention_with_cache", cache_step(
        update='cache["keys"], cache["values"] = k, v'), ('cache["k"]',)),
    "causal mask missing on the prompt": ("test_causal_self_attention_with_cache", cache_step(
        allowed="torch.ones(n_new, total, dtype=torch.bool)"), ("causal mask",)),
    "mask not offset by the cached length": ("test_causal_self_attention_with_cache", cache_step(
        allowed="torch.ones(total, total, dtype=torch.bool).tril()[:n_new]"), ("offset the causal mask",)),
    "cache only stores the first call": ("test_causal_self_attention_with_cache", cache_step(
        update='cache.setdefault("k", k); cache.setdefault("v", v)'), ("append",)),
    "step returns every position so far (issue 17: size mismatch inside the test)": (
        "test_causal_self_attention_with_cache", cache_step(allowed="torch.ones(total, total, dtype=torch.bool).tril()").replace(
            "s = (q @", "q = heads(torch.cat([x_t.new_zeros(batch, total - n_new, d), x_t], 1) @ W_q)\n        s = (q @"),
        ("new positions only",)),
    "samples not squeezed (issue 17: bincount error)": ("test_sample_next_token", sampler(
        f"if temperature == 0:\n            return logits.argmax(-1)\n        return {GOOD_DRAW}"), ("(2,)", "(2, 1)")),
    "temperature 0 divides by zero (issue 17: inf/nan error)": ("test_sample_next_token", sampler(
        f"return {GOOD_DRAW}[:, 0]"), ("greedy", "before dividing")),
    "float token ids (issue 17: dtype reported as generator)": ("test_sample_next_token", sampler(
        f"if temperature == 0:\n            return logits.argmax(-1)\n        return {GOOD_DRAW}[:, 0].float()"), ("int64",)),
    "generator ignored": ("test_sample_next_token", sampler(
        "if temperature == 0:\n            return logits.argmax(-1)\n"
        "        return torch.multinomial(torch.softmax(logits / temperature, -1), 1)[:, 0]"), ("generator=generator",)),
    "temperature applied after the softmax": ("test_sample_next_token", sampler(
        "if temperature == 0:\n            return logits.argmax(-1)\n"
        "        return torch.multinomial(torch.softmax(logits, -1) / temperature, 1, generator=generator)[:, 0]"),
        ("divide the logits",)),
    "softmax by hand overflows on large logits": ("test_sample_next_token", sampler(
        "if temperature == 0:\n            return logits.argmax(-1)\n"
        "        e = torch.exp(logits / temperature)\n"
        "        return torch.multinomial(e / e.sum(-1, keepdim=True), 1, generator=generator)[:, 0]"),
        ("stopped with an error", "torch.softmax")),
    "cache step that only works for a batch of one": ("test_causal_self_attention_with_cache", cache_step().replace(
        "q, k, v = heads(x_t @ W_q)", "x_t = x_t[:1]\n        q, k, v = heads(x_t @ W_q)"), ("stopped with an error", "batch = 2")),
    "argmax over the batch axis": ("test_sample_next_token", sampler(
        f"if temperature == 0:\n            return logits.argmax(0)\n        return {GOOD_DRAW}[:, 0]"), ("(2,)",)),
}


# ---------------------------------------------------------------------------- the tests
CASES = [(chapter, name) for chapter, wrong in WRONG.items() for name in wrong]


def public_check_message(chapter: str, check_id: str, source: str) -> str:
    """Run the public part of a check after the wrong answer; return the AssertionError's message."""
    exercise = EXERCISES[chapter]
    ns = exercise.namespace()
    exec(compile(textwrap.dedent(source), "<wrong answer>", "exec"), ns)
    try:
        exec(compile(exercise.public(check_id), check_id, "exec"), ns)
    except AssertionError as error:
        return str(error)
    except Exception as error:  # a raw error reached the student
        raise AssertionError(f"{check_id} let a raw {type(error).__name__} through: {error}") from None
    raise AssertionError(f"the public part of {check_id} passed this wrong answer")


@pytest.mark.parametrize("chapter,name", CASES, ids=[f"{c}:{n}" for c, n in CASES])
def test_public_check_names_the_mistake(chapter, name):
    check_id, source, words = WRONG[chapter][name]
    message = public_check_message(chapter, check_id, source)
    missing = [w for w in words if w.lower() not in message.lower()]
    assert not missing, f"the message does not name the mistake (missing {missing}):\n{message}"


@pytest.mark.parametrize("chapter", sorted(WRONG))
def test_at_least_eight_wrong_answers_per_chapter(chapter):
    assert len(WRONG[chapter]) >= 8


@pytest.mark.parametrize("chapter", sorted(WRONG))
def test_every_check_rejects_a_named_wrong_answer(chapter):
    """Every check cell of the chapter appears here: none of them is a check that cannot fail."""
    assert {check_id for check_id, _, _ in WRONG[chapter].values()} == set(EXERCISES[chapter].graded)


@pytest.mark.parametrize("chapter", sorted(WRONG))
def test_the_public_checks_pass_the_solution(chapter):
    exercise = EXERCISES[chapter]
    ns = exercise.namespace()
    for check_id in exercise.graded:
        exec(compile(exercise.public(check_id), check_id, "exec"), ns)


# ---------------------------------------------------------------------------- the shared helpers
def test_run_turns_errors_into_sentences_but_lets_the_stub_through():
    import numpy as np

    from attention_course.grading import checks

    def crashes(x):
        return np.ones(3) @ np.ones(4)

    with pytest.raises(AssertionError, match=r"^f stopped with an error\. use K\.T \[Python said: ValueError"):
        checks.run("f", crashes, 1, expect="use K.T")

    def stub(x):
        raise NotImplementedError()

    with pytest.raises(NotImplementedError):
        checks.run("f", stub, 1)


def test_mask_mistake_names_each_masking_mistake():
    import torch

    from attention_course.grading import checks

    allowed = torch.ones(3, 3, dtype=torch.bool).tril()
    scores = torch.randn(3, 3)
    right = torch.softmax(scores.masked_fill(~allowed, float("-inf")), -1)
    assert checks.mask_mistake(right, allowed) is None
    assert "inverted" in checks.mask_mistake(torch.softmax(scores.masked_fill(allowed, float("-inf")), -1), allowed)
    assert "-inf before the softmax" in checks.mask_mistake(torch.softmax(scores.masked_fill(~allowed, 0.0), -1), allowed)
    assert "AFTER" in checks.mask_mistake(torch.softmax(scores, -1) * allowed, allowed)
    assert "cannot be broadcast" in checks.mask_mistake(torch.ones(2, 2), allowed)


def test_earlier_blames_the_earlier_function():
    from attention_course.grading import checks

    checks.earlier("double", lambda x: 2 * x, lambda x: x + x, 3.0)
    with pytest.raises(AssertionError, match="fix double first"):
        checks.earlier("double", lambda x: 3 * x, lambda x: x + x, 3.0, later="quadruple")

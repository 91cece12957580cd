"""The exercise checks of Chapters 4 and 5 can fail: each typical mistake is caught.

The solution cells and the check cells (public and hidden tests) are read from the nbgrader
source notebooks. The correct solution must pass every check; each wrong implementation
(a "mutant") replaces one function and must fail at least one check of that function.
"""
import math

import pytest
import torch

from course_tools import ROOT, ExerciseNotebook

NOTEBOOKS = {
    "ch04": ROOT / "solutions" / "ch04_self_attention" / "self_attention.ipynb",
    "ch05": ROOT / "solutions" / "ch05_multi_head_attention" / "multi_head_attention.ipynb",
}
EXERCISES = {chapter: ExerciseNotebook(path) for chapter, path in NOTEBOOKS.items()}


def failing_checks(chapter, replace):
    """Run every check cell with some functions replaced; return the ids of the checks that fail."""
    exercise = EXERCISES[chapter]
    failed = []
    for grade_id in exercise.graded:
        source = exercise.sources[grade_id]
        ns = exercise.namespace()
        ns.update(replace)
        try:
            exec(compile(source, grade_id, "exec"), ns)
        except Exception:  # an assertion, or a crash that the check lets through
            failed.append(grade_id)
    return failed


@pytest.mark.parametrize("chapter", sorted(NOTEBOOKS))
def test_solution_passes_every_check(chapter):
    assert failing_checks(chapter, {}) == []


# ---- Chapter 4 mutants -------------------------------------------------------------------

def _attention(X, W_q, W_k, W_v, mask=None, transpose=True, scale="d_k", fill=float("-inf"), after=False):
    Q, K, V = X @ W_q, X @ W_k, X @ W_v
    scores = Q @ (K.transpose(-2, -1) if transpose else K)
    if scale == "d_k":
        scores = scores / math.sqrt(Q.shape[-1])
    elif scale == "d_model":
        scores = scores / math.sqrt(X.shape[-1])
    if mask is not None and not after:
        scores = scores.masked_fill(~mask, fill)
    weights = torch.softmax(scores, dim=-1)
    if mask is not None and after:
        weights = weights * mask
    return weights @ V, weights


def _pe(max_len, d_model, swap=False, pair_exponent=True):
    p = torch.arange(max_len, dtype=torch.float64)[:, None]
    i = torch.arange(0, d_model, 2, dtype=torch.float64) if pair_exponent else torch.arange(d_model // 2, dtype=torch.float64)
    angle = p * 10000.0 ** (-i / d_model)
    pe = torch.zeros(max_len, d_model, dtype=torch.float64)
    pe[:, 0::2], pe[:, 1::2] = (torch.cos(angle), torch.sin(angle)) if swap else (torch.sin(angle), torch.cos(angle))
    return pe.float()


def _equivariant(fn, X, atol=1e-6, permute_output=True, axis=1, identity=False, use_atol=True):
    n = X.shape[axis]
    perm = torch.arange(n) if identity else torch.arange(n).flip(0)
    Xp = X[:, perm] if axis == 1 else X[perm]
    out = fn(X)
    expected = (out[:, perm] if axis == 1 else out[perm]) if permute_output else out
    return bool(torch.allclose(fn(Xp), expected, atol=atol)) if use_atol else bool(torch.equal(fn(Xp), expected))


CH04_MUTANTS = {
    "K not transposed": {"self_attention": lambda *a, **k: _attention(*a, **k, transpose=False)},
    "missing 1/sqrt(d_k)": {"self_attention": lambda *a, **k: _attention(*a, **k, scale=None)},
    "scaled by sqrt(d_model)": {"self_attention": lambda *a, **k: _attention(*a, **k, scale="d_model")},
    "mask with 0 instead of -inf": {"self_attention": lambda *a, **k: _attention(*a, **k, fill=0.0)},
    "mask applied after the softmax": {"self_attention": lambda *a, **k: _attention(*a, **k, after=True)},
    "softmax over the queries": {"self_attention": lambda X, W_q, W_k, W_v, mask=None: (
        lambda w: (w @ (X @ W_v), w))(torch.softmax((X @ W_q) @ (X @ W_k).transpose(-2, -1) / math.sqrt(W_q.shape[1]), dim=-2))},
    "causal mask without the diagonal": {"causal_mask": lambda n: torch.ones(n, n, dtype=torch.bool).tril(-1)},
    "causal mask upside down": {"causal_mask": lambda n: torch.ones(n, n, dtype=torch.bool).triu()},
    "causal mask as floats": {"causal_mask": lambda n: torch.ones(n, n).tril()},
    "sin/cos swapped": {"sinusoidal_positional_encoding": lambda m, d: _pe(m, d, swap=True)},
    "exponent i/d_model instead of 2i/d_model": {"sinusoidal_positional_encoding": lambda m, d: _pe(m, d, pair_exponent=False)},
    "output not permuted": {"is_permutation_equivariant": lambda fn, X, atol=1e-6: _equivariant(fn, X, atol, permute_output=False)},
    "batch axis permuted": {"is_permutation_equivariant": lambda fn, X, atol=1e-6: _equivariant(fn, X, atol, axis=0)},
    "identity permutation": {"is_permutation_equivariant": lambda fn, X, atol=1e-6: _equivariant(fn, X, atol, identity=True)},
    "atol ignored": {"is_permutation_equivariant": lambda fn, X, atol=1e-6: _equivariant(fn, X, atol, use_atol=False)},
    "always True": {"is_permutation_equivariant": lambda fn, X, atol=1e-6: True},
    "one random permutation, identity not excluded (issue 17)": {"is_permutation_equivariant": lambda fn, X, atol=1e-6: (
        lambda perm: bool(torch.allclose(fn(X[:, perm]), fn(X)[:, perm], atol=atol)))(torch.randperm(X.shape[1]))},
    "mask inverted": {"self_attention": lambda X, W_q, W_k, W_v, mask=None: _attention(
        X, W_q, W_k, W_v, None if mask is None else ~mask)},
    "K.T on a 3-D tensor": {"self_attention": lambda X, W_q, W_k, W_v, mask=None: (
        lambda w: (w @ (X @ W_v), w))(torch.softmax((X @ W_q) @ (X @ W_k).permute(2, 1, 0) / 2, -1))},  # what K.T does to a 3-D K
    "a (batch, seq_len, seq_len) mask reduced to its first sequence": {
        "self_attention": lambda X, W_q, W_k, W_v, mask=None: _attention(
            X, W_q, W_k, W_v, None if mask is None else (mask[0] if mask.dim() == 3 else mask))},
    "float32 turned into float64": {"self_attention": lambda X, W_q, W_k, W_v, mask=None: tuple(
        t.double() for t in _attention(X, W_q, W_k, W_v, mask))},
}


@pytest.mark.parametrize("mutant", sorted(CH04_MUTANTS))
def test_ch04_checks_catch(mutant):
    assert failing_checks("ch04", CH04_MUTANTS[mutant]), f"no check fails for the mistake: {mutant}"


# ---- Chapter 5 mutants -------------------------------------------------------------------

def _split_wrong(X, num_heads):  # right shape, positions mixed
    batch, seq_len, d_model = X.shape
    return X.reshape(batch, num_heads, seq_len, d_model // num_heads)


def _split_interleaved(X, num_heads):  # head h gets features h, h + num_heads, ...
    batch, seq_len, d_model = X.shape
    return X.reshape(batch, seq_len, d_model // num_heads, num_heads).permute(0, 3, 1, 2)


def _merge_wrong(H):
    batch, num_heads, seq_len, d_k = H.shape
    return H.reshape(batch, seq_len, num_heads * d_k)


def _mha(X, W_q, W_k, W_v, W_o, num_heads, mask=None, scale="d_k", use_w_o=True,
         fill=float("-inf"), after=False):
    batch, seq_len, d_model = X.shape
    d_k = d_model // num_heads
    split = lambda T: T.reshape(batch, seq_len, num_heads, d_k).transpose(1, 2)
    Q, K, V = split(X @ W_q), split(X @ W_k), split(X @ W_v)
    scores = Q @ K.transpose(-2, -1) / math.sqrt(d_k if scale == "d_k" else d_model)
    if mask is not None and not after:
        scores = scores.masked_fill(~mask, fill)
    weights = torch.softmax(scores, dim=-1)
    if mask is not None and after:
        weights = weights * mask
    merged = (weights @ V).transpose(1, 2).reshape(batch, seq_len, d_model)
    return (merged @ W_o if use_w_o else merged), weights


CH05_MUTANTS = {
    "heads split along the wrong axis (split_heads)": {"split_heads": _split_wrong},
    "heads interleaved (split_heads)": {"split_heads": _split_interleaved},
    "merge without transposing back": {"merge_heads": _merge_wrong},
    "W_o forgotten": {"multi_head_attention": lambda *a, **k: _mha(*a, **k, use_w_o=False)},
    "scaled by sqrt(d_model) instead of sqrt(d_k)": {"multi_head_attention": lambda *a, **k: _mha(*a, **k, scale="d_model")},
    "mask with 0 instead of -inf (multi-head)": {"multi_head_attention": lambda *a, **k: _mha(*a, **k, fill=0.0)},
    "mask applied after the softmax (multi-head)": {"multi_head_attention": lambda *a, **k: _mha(*a, **k, after=True)},
}


def _mha_wrong_split(X, W_q, W_k, W_v, W_o, num_heads, mask=None):
    """multi_head_attention that splits (and merges) along the wrong axis."""
    batch, seq_len, d_model = X.shape
    d_k = d_model // num_heads
    split = lambda T: T.reshape(batch, num_heads, seq_len, d_k)
    Q, K, V = split(X @ W_q), split(X @ W_k), split(X @ W_v)
    scores = Q @ K.transpose(-2, -1) / math.sqrt(d_k)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return (weights @ V).reshape(batch, seq_len, d_model) @ W_o, weights


CH05_MUTANTS["heads split along the wrong axis (multi_head_attention)"] = {"multi_head_attention": _mha_wrong_split}
CH05_MUTANTS["mask inverted (multi-head)"] = {"multi_head_attention": lambda X, W_q, W_k, W_v, W_o, num_heads, mask=None: _mha(
    X, W_q, W_k, W_v, W_o, num_heads, mask=None if mask is None else ~mask)}
CH05_MUTANTS["d_k fixed at 4 (multi-head)"] = {"multi_head_attention": lambda X, W_q, W_k, W_v, W_o, num_heads, mask=None: (
    lambda o: (o[0], o[1]))(_mha(X, W_q, W_k, W_v, W_o, num_heads, mask=mask, scale="d_model") if X.shape[-1] != 8
                            else _mha(X, W_q, W_k, W_v, W_o, num_heads, mask=mask))}


@pytest.mark.parametrize("mutant", sorted(CH05_MUTANTS))
def test_ch05_checks_catch(mutant):
    assert failing_checks("ch05", CH05_MUTANTS[mutant]), f"no check fails for the mistake: {mutant}"


def test_mask_mutants_fail_the_mask_check():
    """The mask mistakes must be caught by the mask check itself (with its message), not by luck."""
    for name in ("mask with 0 instead of -inf (multi-head)", "mask applied after the softmax (multi-head)",
                 "mask inverted (multi-head)"):
        assert "test_multi_head_attention_mask" in failing_checks("ch05", CH05_MUTANTS[name]), name
    for name in ("mask with 0 instead of -inf", "mask applied after the softmax"):
        assert "test_self_attention" in failing_checks("ch04", CH04_MUTANTS[name]), name

"""The typical wrong answers of Chapter 4 (self-attention, masks, positions): see tests/wrong_answers/__init__.py."""
from __future__ import annotations

from wrong_answers import Wrong

NOTEBOOK = "ch04_self_attention/self_attention.ipynb"  # in solutions/

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


_WRONG = {
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

# Caught by the whole check cell (tests/test_ch04_ch05_exercises.py); the message is not pinned.
_WRONG.update({
    "K not transposed": ("test_self_attention", attention(scores="Q @ K / math.sqrt(Q.shape[-1])"), None),
    "softmax over the queries, mask ignored": ("test_self_attention", attention(
        weights="torch.softmax(scores, dim=-2)", masked="scores"), None),
    "K.T on a 3-D tensor, divided by 2, mask ignored": ("test_self_attention", attention(
        scores="Q @ K.permute(2, 1, 0) / 2", masked="scores"), None),  # what K.T does to a 3-D K
    "float32 results turned into float64 at the end": ("test_self_attention", attention().replace(
        "return weights @ V, weights", "return (weights @ V).double(), weights.double()"), None),
    "causal mask upside down (the diagonal kept)": ("test_causal_mask", """
        def causal_mask(n):
            return torch.ones(n, n, dtype=torch.bool).triu()
    """, None),
    "atol ignored (exact equality)": ("test_is_permutation_equivariant",
                                      equivariant(compare="bool(torch.equal(fn(X[:, perm]), fn(X)[:, perm]))"), None),
    "always True": ("test_is_permutation_equivariant", equivariant(compare="True"), None),
})


WRONG: dict[str, Wrong] = {name: Wrong(*entry) for name, entry in _WRONG.items()}

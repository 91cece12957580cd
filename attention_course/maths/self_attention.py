"""Self-attention in matrix form, masks and positional encoding (Chapter 4).

Conventions used by every function here and in :mod:`attention_course.maths.multi_head`:

* sequences are batch-first: ``X`` has shape ``(batch, seq_len, d_model)``;
* a ``mask`` is a boolean tensor broadcastable to ``(..., seq_len_q, seq_len_k)``,
  **True where attention is allowed**. Disallowed scores are set to ``-inf`` *before*
  the softmax, so they get weight exactly 0. (``torch.nn.MultiheadAttention`` uses the
  opposite convention for a boolean ``attn_mask``: True = *not* allowed.)

Source: Vaswani et al. 2017, "Attention Is All You Need", Eq. 1 (scaled dot-product
attention) and §3.5 (sinusoidal positional encoding).
"""
from __future__ import annotations

import math

import torch

__all__ = [
    "masked_softmax",
    "scaled_dot_product_attention",
    "self_attention",
    "causal_mask",
    "window_mask",
    "padding_mask",
    "length_mask",
    "frequency_ladder",
    "sinusoidal_positional_encoding",
    "is_permutation_equivariant",
]


def _check_mask(mask: torch.Tensor | None, scores: torch.Tensor) -> torch.Tensor | None:
    if mask is None:
        return None
    if mask.dtype != torch.bool:
        raise ValueError(f"mask must be a bool tensor (True = may attend); got dtype {mask.dtype}")
    try:
        torch.broadcast_shapes(mask.shape, scores.shape)
    except RuntimeError:
        raise ValueError(
            f"mask of shape {tuple(mask.shape)} does not broadcast to the scores' shape "
            f"{tuple(scores.shape)} (..., seq_len_q, seq_len_k)"
        ) from None
    return mask


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Softmax over the last axis (the keys) in which disallowed positions get weight exactly 0.

    The package's one masked softmax: Bahdanau's attention over real source tokens (Chapter 2),
    causal and padding masks in self-attention (Chapters 4 to 6) all call it. Disallowed scores
    are set to ``-inf`` *before* the softmax, so they drop out of the normalising sum.

    **A row with no allowed position** (every key masked) gets weight 0 everywhere, so its
    attention output is the zero vector; never NaN (a plain softmax of a row of ``-inf`` is NaN,
    which would then spread through every later computation, even through a loss that ignores the
    row). With a causal mask or a padding mask on the keys this never happens: every query may at
    least see itself or a real token.

    Args:
        scores: ``(..., n_k)``.
        mask: optional bool, broadcastable to ``scores``' shape; True = may attend. ``None``: a
            plain softmax.

    Returns:
        Weights shaped like ``scores``: each row sums to 1 over its allowed positions (0 for a row
        with none), exactly 0 at the disallowed ones.

    Raises:
        ValueError: if ``mask`` is not boolean or does not broadcast to ``scores``.
    """
    mask = _check_mask(mask, scores)
    if mask is None:
        return torch.softmax(scores, dim=-1)
    scores = scores.masked_fill(~mask, float("-inf"))  # a copy; the unmasked scores can be freed
    weights = torch.softmax(scores, dim=-1)  # exactly 0 where masked
    if not bool(mask.any(dim=-1).all()):  # a row with nothing allowed is all NaN: make it 0
        weights = weights.masked_fill(~mask, 0.0)
    return weights


def scaled_dot_product_attention(Q: torch.Tensor, K: torch.Tensor, V: torch.Tensor,
                                 mask: torch.Tensor | None = None):
    """``softmax(Q K^T / sqrt(d_k)) V`` (Vaswani et al. 2017, Eq. 1).

    Args:
        Q: queries, shape ``(..., n_q, d_k)``.
        K: keys, shape ``(..., n_k, d_k)``.
        V: values, shape ``(..., n_k, d_v)``.
        mask: optional bool, broadcastable to ``(..., n_q, n_k)``; True = may attend.

    Returns:
        ``(output, weights)``: ``(..., n_q, d_v)`` and ``(..., n_q, n_k)``; each row of
        ``weights`` sums to 1 over the allowed keys (a query with no allowed key gets zero
        weights and a zero output: see :func:`masked_softmax`).

    Raises:
        ValueError: if the last dimensions of Q and K differ, K and V hold different
            numbers of positions, or the mask does not fit.
    """
    if Q.shape[-1] != K.shape[-1] or K.shape[-2] != V.shape[-2]:
        raise ValueError(
            f"expected Q (..., n_q, d_k), K (..., n_k, d_k), V (..., n_k, d_v); got Q {tuple(Q.shape)}, "
            f"K {tuple(K.shape)}, V {tuple(V.shape)}"
        )
    # scores (..., n_q, n_k), passed without keeping a name, so that only one n x n copy lives at a time
    weights = masked_softmax(Q @ K.transpose(-2, -1) / math.sqrt(K.shape[-1]), mask)  # over the keys
    return weights @ V, weights


def self_attention(X: torch.Tensor, W_q: torch.Tensor, W_k: torch.Tensor, W_v: torch.Tensor,
                   mask: torch.Tensor | None = None):
    """Single-head self-attention: queries, keys and values all come from ``X``.

    ``Q = X W_q``, ``K = X W_k``, ``V = X W_v``, then :func:`scaled_dot_product_attention`.
    (Row-vector convention: a token is a row of ``X``, so ``q = a W^q`` is the lecture's
    ``q = W^q a`` transposed.)

    Args:
        X: inputs, shape ``(batch, seq_len, d_model)``.
        W_q, W_k: shape ``(d_model, d_k)``.
        W_v: shape ``(d_model, d_v)``.
        mask: optional bool ``(seq_len, seq_len)`` or ``(batch, seq_len, seq_len)``; True = may attend.

    Returns:
        ``(output, weights)``: ``(batch, seq_len, d_v)`` and ``(batch, seq_len, seq_len)``.

    Raises:
        ValueError: if ``X`` is not 3-D or a weight matrix does not start with ``d_model``.
    """
    if X.dim() != 3:
        raise ValueError(f"X must be (batch, seq_len, d_model); got shape {tuple(X.shape)}")
    for name, W in (("W_q", W_q), ("W_k", W_k), ("W_v", W_v)):
        if W.dim() != 2 or W.shape[0] != X.shape[-1]:
            raise ValueError(f"{name} must be (d_model={X.shape[-1]}, d); got shape {tuple(W.shape)}")
    if W_q.shape[1] != W_k.shape[1]:
        raise ValueError(f"W_q {tuple(W_q.shape)} and W_k {tuple(W_k.shape)} must give the same d_k")
    return scaled_dot_product_attention(X @ W_q, X @ W_k, X @ W_v, mask)


def causal_mask(n: int, device=None) -> torch.Tensor:
    """Bool ``(n, n)`` lower-triangular mask: position i may attend to positions j <= i.

    Raises:
        ValueError: if ``n`` is not a positive integer.
    """
    if int(n) != n or n < 1:
        raise ValueError(f"causal_mask: n must be a positive integer; got {n}")
    return torch.ones(n, n, dtype=torch.bool, device=device).tril()


def window_mask(n: int, window: int, causal: bool = False, device=None) -> torch.Tensor:
    """Restricted (local) self-attention: position i may attend to j with |i - j| <= window.

    Vaswani et al. 2017, §4 and Table 1 ("self-attention (restricted)"): cost
    ``O(r n d)`` instead of ``O(n^2 d)``, where the paper's r is the *size* of the
    neighbourhood. Here ``window`` counts the neighbours on *each side*, so the
    paper's r is ``2 * window + 1`` (``window + 1`` with ``causal=True``).

    Args:
        n: sequence length.
        window: how many neighbours on each side (0 = only itself).
        causal: also forbid the future (j > i).

    Returns:
        Bool ``(n, n)`` mask, True = may attend.

    Raises:
        ValueError: if ``n < 1`` or ``window < 0``.
    """
    if n < 1 or window < 0:
        raise ValueError(f"window_mask: need n >= 1 and window >= 0; got n={n}, window={window}")
    i = torch.arange(n, device=device)
    mask = (i[:, None] - i[None, :]).abs() <= window
    return mask & causal_mask(n, device) if causal else mask


def frequency_ladder(d: int, base: float = 10000.0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The geometric ladder of frequencies ``base^(-2i/d)``, ``i = 0 .. d/2 - 1``.

    The sinusoidal encoding turns pair ``i`` by this many radians per position (Vaswani et al.
    2017, §3.5, with ``base = 10000``); RoPE rotates pair ``i`` of a query or key head by the same
    angles (Su et al. 2021, Eq. 15; :func:`attention_course.maths.positions.rope_frequencies`). The
    first pair turns by one radian per position, the last almost not at all.

    Args:
        d: the width the pairs come from (``d_model``, or one head's ``d_k``); even.
        base: the ladder's base (> 1).
        dtype: floating dtype of the result.

    Returns:
        ``(d // 2,)`` tensor of ``dtype``.

    Raises:
        ValueError: if ``d`` is odd or below 2, or ``base <= 1``.
    """
    if d < 2 or d % 2 or base <= 1:
        raise ValueError(f"frequency_ladder: need an even d >= 2 and base > 1; got d={d}, base={base}")
    return 1.0 / base ** (torch.arange(0, d, 2, dtype=dtype) / d)


def sinusoidal_positional_encoding(max_len: int, d_model: int) -> torch.Tensor:
    """The Transformer's fixed positional encoding (Vaswani et al. 2017, §3.5).

    ``PE[p, 2i] = sin(p / 10000^(2i/d_model))`` and ``PE[p, 2i+1] = cos(p / 10000^(2i/d_model))``:
    sine on even dimensions, cosine on odd ones, each pair a rotation at its own frequency,
    so that ``PE[p + k]`` is a fixed linear function of ``PE[p]``.

    Args:
        max_len: number of positions.
        d_model: encoding size; must be even.

    Returns:
        float32 tensor of shape ``(max_len, d_model)``.

    Raises:
        ValueError: if ``d_model`` is odd or either size is not positive.
    """
    if max_len < 1 or d_model < 2 or d_model % 2:
        raise ValueError(f"need max_len >= 1 and an even d_model >= 2; got {max_len}, {d_model}")
    position = torch.arange(max_len, dtype=torch.float64)[:, None]  # (max_len, 1)
    frequency = frequency_ladder(d_model, dtype=torch.float64)  # (d_model/2,)
    pe = torch.zeros(max_len, d_model, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(position * frequency)
    pe[:, 1::2] = torch.cos(position * frequency)
    return pe.float()


def is_permutation_equivariant(fn, X: torch.Tensor, atol: float = 1e-6, generator=None) -> bool:
    """Does permuting the positions of ``X`` permute ``fn(X)`` the same way?

    Checks ``fn(X[:, perm]) == fn(X)[:, perm]`` for a random permutation ``perm`` of the
    sequence axis. Self-attention without positional information passes; adding a
    positional encoding (or a causal mask) breaks it.

    Args:
        fn: maps ``(batch, seq_len, d)`` to ``(batch, seq_len, d_out)``; if it returns a
            tuple, its first element is used.
        X: shape ``(batch, seq_len, d)`` with ``seq_len >= 2``.
        atol: absolute tolerance.
        generator: optional ``torch.Generator`` for the permutation.

    Raises:
        ValueError: if ``X`` is not 3-D with at least two positions.
    """
    if X.dim() != 3 or X.shape[1] < 2:
        raise ValueError(f"X must be (batch, seq_len >= 2, d); got shape {tuple(X.shape)}")

    def first(out):
        return out[0] if isinstance(out, tuple) else out

    perm = torch.randperm(X.shape[1], generator=generator)
    while torch.equal(perm, torch.arange(X.shape[1])):  # a real reordering
        perm = torch.randperm(X.shape[1], generator=generator)
    return torch.allclose(first(fn(X[:, perm])), first(fn(X))[:, perm], atol=atol)


def padding_mask(lengths: torch.Tensor, T: int) -> torch.Tensor:
    """Key mask for attention over a padded source: bool ``(B, 1, 1, T)``, True at real tokens.

    It broadcasts over heads and query positions, so one mask serves the encoder's
    self-attention ``(B, h, T, T)`` and the decoder's cross-attention ``(B, h, L, T)``
    (masks follow :mod:`attention_course.maths.self_attention`: True = may attend).

    Raises:
        ValueError: if ``lengths`` is not ``(B,)`` with values in ``1..T``.
    """
    if lengths.dim() != 1 or int(lengths.min()) < 1 or int(lengths.max()) > T:
        raise ValueError(f"padding_mask: lengths must be (B,) in 1..{T}; got {lengths.tolist()}")
    return length_mask(lengths, T)[:, None, None, :]


def length_mask(lengths: torch.Tensor, T: int) -> torch.Tensor:
    """Which positions of a padded batch are real: bool ``(B, T)``, True at ``t < lengths[b]``.

    The one place a mask is built from lengths: RNNsearch's encoder and its alignment
    (Chapters 1-2) use it as it is, attention over a padded source as :func:`padding_mask`.

    Args:
        lengths: int ``(B,)``, real lengths (not checked here; :func:`padding_mask` checks them).
        T: the padded length.
    """
    return torch.arange(T, device=lengths.device)[None, :] < lengths[:, None]

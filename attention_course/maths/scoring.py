"""Scoring functions and attention pooling: the general form of attention (Chapter 3).

Every function here works on NumPy arrays and follows one convention:

* ``q`` is one query of shape ``(d,)`` or a batch of ``m`` queries, shape ``(m, d)``;
* ``K`` holds ``n`` keys, one per row, shape ``(n, d)``;
* ``V`` holds the ``n`` matching values, shape ``(n, d_v)``;
* a score function returns one score per key: shape ``(n,)`` for one query,
  ``(m, n)`` for a batch, so that the softmax over the *last* axis normalises
  over the keys.

The three stages of attention (score, normalise, weighted sum) are
``score(q, K)`` -> :func:`softmax` -> :func:`attention_pooling`; :func:`attention`
chains them. Bad shapes raise ``ValueError`` naming the shapes received.

References: Bahdanau, Cho & Bengio 2015 (additive score, eq. 6 and appendix A.1.2);
Luong, Pham & Manning 2015 (dot, "general" = bilinear, and "concat" scores, eq. 8);
Vaswani et al. 2017 (scaled dot product, eq. 1); Graves, Wayne & Danihelka 2014
(cosine similarity for content-based addressing, eq. 6).
"""
from __future__ import annotations

import numpy as np

__all__ = [
    "softmax",
    "dot_product_score",
    "scaled_dot_product_score",
    "additive_score",
    "cosine_score",
    "bilinear_score",
    "attention_pooling",
    "attention",
    "SCORE_FUNCTIONS",
]


def _as_query_and_keys(q, K, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Check the (query, keys) shapes shared by every score function."""
    q = np.asarray(q, dtype=float)
    K = np.asarray(K, dtype=float)
    if K.ndim != 2:
        raise ValueError(f"{name}: keys K must be 2-D (n, d); got shape {K.shape}")
    if q.ndim not in (1, 2):
        raise ValueError(f"{name}: query q must be (d,) or (m, d); got shape {q.shape}")
    if q.shape[-1] != K.shape[-1]:
        raise ValueError(
            f"{name}: query dimension {q.shape[-1]} (q shape {q.shape}) does not match "
            f"key dimension {K.shape[-1]} (K shape {K.shape})"
        )
    return q, K


def softmax(x, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax: ``exp(x - max) / sum(exp(x - max))`` along ``axis``.

    Subtracting the maximum leaves the result unchanged (softmax is invariant to
    adding a constant) but keeps ``exp`` from overflowing for large scores.

    Args:
        x: scores, any shape; ``-inf`` entries get weight exactly 0.
        axis: the axis to normalise over (the keys axis, ``-1`` by convention).

    Returns:
        Array of ``x``'s shape, non-negative, summing to 1 along ``axis``.

    Raises:
        ValueError: if ``x`` is empty along ``axis`` or a slice is all ``-inf``
        (no key to attend to).
    """
    x = np.asarray(x, dtype=float)
    if x.ndim == 0:
        raise ValueError("softmax: needs at least one axis; got a scalar")
    if x.shape[axis] == 0:
        raise ValueError(f"softmax: axis {axis} of shape {x.shape} is empty")
    x_max = np.max(x, axis=axis, keepdims=True)
    if np.any(np.isneginf(x_max)):
        raise ValueError("softmax: a slice is entirely -inf, so no key can receive weight")
    e = np.exp(x - x_max)
    return e / np.sum(e, axis=axis, keepdims=True)


def dot_product_score(q, K) -> np.ndarray:
    """Dot-product score ``e_i = q . k_i`` (Luong et al. 2015, eq. 8, "dot").

    Args:
        q: query, shape ``(d,)`` or ``(m, d)``.
        K: keys, shape ``(n, d)``.

    Returns:
        Scores of shape ``(n,)`` or ``(m, n)``.

    Raises:
        ValueError: if the shapes do not fit (the message names them).
    """
    q, K = _as_query_and_keys(q, K, "dot_product_score")
    return q @ K.T


def scaled_dot_product_score(q, K) -> np.ndarray:
    """Scaled dot-product score ``e_i = q . k_i / sqrt(d_k)`` (Vaswani et al. 2017, eq. 1).

    If the components of ``q`` and ``k`` are independent with mean 0 and variance 1,
    ``q . k`` has variance ``d_k``; dividing by ``sqrt(d_k)`` brings it back to 1 so the
    softmax does not saturate as ``d_k`` grows.

    Args:
        q: query, shape ``(d_k,)`` or ``(m, d_k)``.
        K: keys, shape ``(n, d_k)``.

    Returns:
        Scores of shape ``(n,)`` or ``(m, n)``.

    Raises:
        ValueError: if the shapes do not fit.
    """
    q, K = _as_query_and_keys(q, K, "scaled_dot_product_score")
    return (q @ K.T) / np.sqrt(K.shape[-1])


def additive_score(q, K, W_q, W_k, w_v) -> np.ndarray:
    """Additive (MLP, "perceptron") score ``e_i = w_v^T tanh(W_q q + W_k k_i)``.

    Bahdanau et al. 2015 (eq. 6 with the form of appendix A.1.2:
    ``a(s_{i-1}, h_j) = v_a^T tanh(W_a s_{i-1} + U_a h_j)``); Luong et al. 2015 call it "concat".
    Query and keys may have different sizes because each has its own projection. Computed by
    Chapter 2's :func:`attention_course.maths.bahdanau.additive_score` (in float64), the one implementation
    of this score in the package; here ``W_q, W_k, w_v`` are that function's ``W_s, W_h, v``.

    Args:
        q: query, shape ``(d_q,)`` or ``(m, d_q)``.
        K: keys, shape ``(n, d_k)``.
        W_q: query projection, shape ``(h, d_q)``.
        W_k: key projection, shape ``(h, d_k)``.
        w_v: output vector, shape ``(h,)``.

    Returns:
        Scores of shape ``(n,)`` or ``(m, n)``.

    Raises:
        ValueError: if any of the five shapes does not fit the others.
    """
    q = np.asarray(q, dtype=float)
    K = np.asarray(K, dtype=float)
    W_q, W_k, w_v = (np.asarray(a, dtype=float) for a in (W_q, W_k, w_v))
    shapes = f"q {q.shape}, K {K.shape}, W_q {W_q.shape}, W_k {W_k.shape}, w_v {w_v.shape}"
    if (
        q.ndim not in (1, 2) or K.ndim != 2 or W_q.ndim != 2 or W_k.ndim != 2 or w_v.ndim != 1
        or W_q.shape[1] != q.shape[-1] or W_k.shape[1] != K.shape[-1]
        or not (W_q.shape[0] == W_k.shape[0] == w_v.shape[0])
    ):
        raise ValueError(
            "additive_score: expected q (d_q,) or (m, d_q), K (n, d_k), W_q (h, d_q), "
            f"W_k (h, d_k), w_v (h,); got {shapes}"
        )
    import torch

    from attention_course.maths.bahdanau import additive_score as bahdanau_score  # the package's one additive score

    queries = torch.from_numpy(np.atleast_2d(q))  # (m, d_q): each query is a decoder state s_{i-1}
    keys = torch.from_numpy(np.ascontiguousarray(K))[None].expand(len(queries), -1, -1)  # (m, n, d_k)
    e = bahdanau_score(queries, keys, *(torch.from_numpy(np.ascontiguousarray(a)) for a in (W_q, W_k, w_v)))
    return e.numpy()[0] if q.ndim == 1 else e.numpy()  # (n,) or (m, n)


def cosine_score(q, K, eps: float = 1e-12) -> np.ndarray:
    """Cosine similarity ``e_i = q . k_i / (|q| |k_i|)`` (Graves et al. 2014, eq. 6).

    Ignores the vectors' lengths, so scores lie in ``[-1, 1]``; pair it with a
    temperature (sharpening factor) to get a peaked softmax.

    Args:
        q: query, shape ``(d,)`` or ``(m, d)``.
        K: keys, shape ``(n, d)``.
        eps: floor on the norms, so a zero vector scores 0 instead of NaN.

    Returns:
        Scores in ``[-1, 1]`` of shape ``(n,)`` or ``(m, n)``.

    Raises:
        ValueError: if the shapes do not fit.
    """
    q, K = _as_query_and_keys(q, K, "cosine_score")
    q_unit = q / np.maximum(np.linalg.norm(q, axis=-1, keepdims=True), eps)
    K_unit = K / np.maximum(np.linalg.norm(K, axis=-1, keepdims=True), eps)
    return q_unit @ K_unit.T


def bilinear_score(q, K, W) -> np.ndarray:
    """Bilinear ("general") score ``e_i = q^T W k_i`` (Luong et al. 2015, eq. 8).

    With ``W`` the identity it is the dot product; a learned ``W`` lets a query
    match keys that live in a different space.

    Args:
        q: query, shape ``(d_q,)`` or ``(m, d_q)``.
        K: keys, shape ``(n, d_k)``.
        W: shape ``(d_q, d_k)``.

    Returns:
        Scores of shape ``(n,)`` or ``(m, n)``.

    Raises:
        ValueError: if the shapes do not fit.
    """
    q = np.asarray(q, dtype=float)
    K = np.asarray(K, dtype=float)
    W = np.asarray(W, dtype=float)
    if q.ndim not in (1, 2) or K.ndim != 2 or W.shape != (q.shape[-1], K.shape[-1]):
        raise ValueError(
            "bilinear_score: expected q (d_q,) or (m, d_q), K (n, d_k), W (d_q, d_k); "
            f"got q {q.shape}, K {K.shape}, W {W.shape}"
        )
    return q @ W @ K.T


def attention_pooling(weights, V) -> np.ndarray:
    """Weighted sum of the values, ``c = sum_i alpha_i v_i`` (the third stage).

    Args:
        weights: attention weights, shape ``(n,)`` or ``(m, n)``, each row summing to 1.
        V: values, shape ``(n, d_v)``.

    Returns:
        Context vector(s) of shape ``(d_v,)`` or ``(m, d_v)``.

    Raises:
        ValueError: if the number of weights does not match the number of values.
    """
    weights = np.asarray(weights, dtype=float)
    V = np.asarray(V, dtype=float)
    if V.ndim != 2 or weights.ndim not in (1, 2) or weights.shape[-1] != V.shape[0]:
        raise ValueError(
            "attention_pooling: expected weights (n,) or (m, n) and V (n, d_v); "
            f"got weights {weights.shape} and V {V.shape}"
        )
    return weights @ V


SCORE_FUNCTIONS = {
    "dot": dot_product_score,
    "scaled_dot": scaled_dot_product_score,
    "additive": additive_score,
    "cosine": cosine_score,
    "bilinear": bilinear_score,
}


def attention(q, K, V, score: str = "scaled_dot", temperature: float = 1.0, **params):
    """The general form: score, normalise, weighted sum.

    ``alpha = softmax(score(q, K) / temperature)``, ``context = alpha @ V``.

    Args:
        q: query, shape ``(d,)`` or ``(m, d)``.
        K: keys, shape ``(n, d)``.
        V: values, shape ``(n, d_v)``.
        score: one of ``SCORE_FUNCTIONS`` (``"dot"``, ``"scaled_dot"``, ``"additive"``,
            ``"cosine"``, ``"bilinear"``).
        temperature: positive; below 1 sharpens the weights towards a hard lookup,
            above 1 flattens them towards the plain average.
        **params: the score's parameters (``W_q, W_k, w_v`` for additive, ``W`` for bilinear).

    Returns:
        ``(context, weights)``: shapes ``(d_v,)``/``(m, d_v)`` and ``(n,)``/``(m, n)``.

    Raises:
        ValueError: unknown score name, non-positive temperature, or shapes that do not fit.
    """
    if score not in SCORE_FUNCTIONS:
        raise ValueError(f"attention: unknown score {score!r}; choose from {sorted(SCORE_FUNCTIONS)}")
    if not temperature > 0:
        raise ValueError(f"attention: temperature must be positive; got {temperature}")
    weights = softmax(SCORE_FUNCTIONS[score](q, K, **params) / temperature, axis=-1)
    return attention_pooling(weights, V), weights

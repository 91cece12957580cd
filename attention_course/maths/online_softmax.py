"""Tiled attention with an online softmax: FlashAttention's forward pass, written plainly (Chapter 8).

Naive attention ``softmax(s q k^T) v`` (``s`` the scale, ``1/sqrt(d_k)`` by default) stores the
whole ``(n, N)`` score matrix before its softmax. FlashAttention (Dao et al. 2022, "FlashAttention:
Fast and Memory-Efficient Exact Attention with IO-Awareness", arXiv:2205.14135, Algorithm 1) never
does: it walks over blocks of ``B`` keys and values and keeps, per query row, only three running
quantities:

* ``m``, the largest score seen so far (the running maximum);
* ``l``, the running sum ``sum_j exp(s_j - m)`` over the keys seen so far;
* ``o``, the running *unnormalised* output ``sum_j exp(s_j - m) v_j``.

When a new block brings a larger maximum ``m_new``, every term already summed was taken relative
to the old maximum, so ``l`` and ``o`` are multiplied by ``exp(m_old - m_new)`` (at most 1) before
the block's own terms ``exp(s_j - m_new)`` are added. After the last block ``o / l`` is exactly
``softmax(scores) @ v``: the same numbers, summed in another order (so equal within rounding, not
bit for bit). Subtracting the running maximum also keeps every ``exp`` at most 1, so large scores
cannot overflow, as in the stable softmax of Chapter 3.

Dao et al.'s Algorithm 1 keeps ``o`` normalised after every block (it divides by ``l`` each time
and multiplies back at the next); dividing once at the end, as here, is how FlashAttention-2 (Dao
2023, arXiv:2307.08691, Algorithm 1) does it. Both compute the same output. The paper also tiles
the queries (its outer loop); each query row's computation is independent of the others, so that
tiling decides only what sits in fast memory and is left out here: all queries go through each key
block together.

Shapes: ``q (..., n, d_k)``, ``k (..., N, d_k)``, ``v (..., N, d_v)`` with leading dimensions that
broadcast (batch, heads). Everything is plain PyTorch, for reading, not for speed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from attention_course.maths.self_attention import masked_softmax

__all__ = ["TileStep", "tiled_attention", "naive_attention", "attention_mask", "negative_controls", "MISTAKES",
           "example"]

# The typical mistakes of an online softmax (for negative controls: each lands far from naive attention).
MISTAKES = {
    "no_rescale": "the old sum and output are not multiplied by exp(m_old - m_new) when the maximum grows",
    "wrong_sign": "the old sum and output are multiplied by exp(m_new - m_old) instead of exp(m_old - m_new)",
    "divide_per_block": "each block is normalised by its own sum and the blocks' outputs are averaged",
}


@dataclass(frozen=True)
class TileStep:
    """What the online softmax holds after one block of keys (one entry of :func:`tiled_attention`'s trace).

    Attributes:
        block: the block's index (0-based).
        start, stop: the keys it covers, ``start <= j < stop`` (0-based).
        scores: the block's scaled scores ``s q k_j^T``, ``(..., n, stop - start)``; ``-inf`` where
            a causal mask forbids the key.
        block_max: each row's largest score in this block, ``(..., n)``.
        m_old: the running maximum before the block, ``(..., n)`` (``-inf`` before the first).
        m: the running maximum after it, ``max(m_old, block_max)``, ``(..., n)``.
        rescale: ``exp(m_old - m)``, what the old sum and output were multiplied by, ``(..., n)``;
            1 where the maximum did not grow, 0 at the first block (nothing was summed yet).
        l: the running sum ``sum_{j < stop} exp(s_j - m)``, ``(..., n)``.
        unnormalised: the running output ``sum_{j < stop} exp(s_j - m) v_j``, ``(..., n, d_v)``.
        output: ``unnormalised / l``: attention over the keys seen so far, ``(..., n, d_v)``; after
            the last block, the attention output.
    """

    block: int
    start: int
    stop: int
    scores: torch.Tensor
    block_max: torch.Tensor
    m_old: torch.Tensor
    m: torch.Tensor
    rescale: torch.Tensor
    l: torch.Tensor
    unnormalised: torch.Tensor
    output: torch.Tensor

    def as_lists(self) -> dict:
        """The step as plain Python data (nested lists of floats; ``-inf`` stays ``float('-inf')``)."""
        return {name: (value.tolist() if isinstance(value, torch.Tensor) else value)
                for name, value in self.__dict__.items()}


def _check(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool, scale) -> float:
    """Validate the inputs; return the scale."""
    for name, x in (("q", q), ("k", k), ("v", v)):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor; got {type(x).__name__}")
        if x.ndim < 2:
            raise ValueError(f"{name} must have at least 2 dimensions (..., positions, features); got shape "
                             f"{tuple(x.shape)}")
        if not x.is_floating_point():
            raise TypeError(f"{name} must be floating point; got {x.dtype}")
    if not q.dtype == k.dtype == v.dtype:
        raise TypeError(f"q, k, v must share one dtype; got {q.dtype}, {k.dtype}, {v.dtype}")
    if q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ValueError(f"expected q (..., n, d_k), k (..., N, d_k), v (..., N, d_v); got q {tuple(q.shape)}, "
                         f"k {tuple(k.shape)}, v {tuple(v.shape)}")
    try:
        torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    except RuntimeError:
        raise ValueError(f"the leading (batch, head) dimensions of q {tuple(q.shape)}, k {tuple(k.shape)} and "
                         f"v {tuple(v.shape)} do not broadcast") from None
    if k.shape[-2] < 1:
        raise ValueError(f"k and v hold no positions (N = 0): k {tuple(k.shape)}")
    if causal and q.shape[-2] > k.shape[-2]:
        raise ValueError(f"causal attention needs at least as many keys as queries (query i sits at position "
                         f"N - n + i); got n = {q.shape[-2]} queries, N = {k.shape[-2]} keys")
    if scale is None:
        return 1.0 / math.sqrt(q.shape[-1])
    scale = float(scale)
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive finite number; got {scale}")
    return scale


def attention_mask(n: int, N: int, device=None) -> torch.Tensor:
    """Causal mask for ``n`` queries that are the *last* ``n`` of ``N`` positions: bool ``(n, N)``, True = may attend.

    Query ``i`` sits at position ``N - n + i`` and may attend to keys ``j <= N - n + i``. With
    ``n == N`` this is :func:`attention_course.maths.self_attention.causal_mask`; with ``n < N`` it is the
    mask of decoding with a KV cache (FlashAttention 2.1 and later align it the same way).

    Raises:
        ValueError: unless ``1 <= n <= N``.
    """
    if not (isinstance(n, int) and isinstance(N, int) and 1 <= n <= N):
        raise ValueError(f"attention_mask: need integers 1 <= n <= N; got n = {n}, N = {N}")
    return torch.ones(n, N, dtype=torch.bool, device=device).tril(diagonal=N - n)


def naive_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = False,
                    scale: float | None = None) -> torch.Tensor:
    """``softmax(scale * q k^T) v`` with the whole ``(..., n, N)`` score matrix in memory: the reference.

    Uses the course's one masked softmax (:func:`attention_course.maths.self_attention.masked_softmax`,
    a stable softmax). Unlike :func:`attention_course.training.attention_cost.naive_attention` it takes a
    scale and ``n != N`` queries and keys.

    Args:
        q: ``(..., n, d_k)``; k: ``(..., N, d_k)``; v: ``(..., N, d_v)``.
        causal: mask the future, with query ``i`` at position ``N - n + i`` (:func:`attention_mask`).
        scale: multiplies the scores; default ``1 / sqrt(d_k)`` (Vaswani et al. 2017, Eq. 1).

    Returns:
        ``(..., n, d_v)``.

    Raises:
        TypeError, ValueError: as :func:`tiled_attention`.
    """
    scale = _check(q, k, v, causal, scale)
    mask = attention_mask(q.shape[-2], k.shape[-2], device=q.device) if causal else None
    return masked_softmax(scale * (q @ k.transpose(-2, -1)), mask) @ v  # (..., n, N) @ (..., N, d_v)


def tiled_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, block_size: int, causal: bool = False,
                    scale: float | None = None) -> tuple[torch.Tensor, list[TileStep]]:
    """Attention computed block by block of keys with an online softmax (Dao et al. 2022, Algorithm 1).

    For each block of ``block_size`` keys and values (the last block may be shorter)::

        S     = scale * q @ k_blockᵀ                      # (..., n, B) the block's scores
        m_new = max(m, rowmax(S))                         # running maximum
        c     = exp(m - m_new)                            # rescale factor, <= 1
        l     = c * l + rowsum(exp(S - m_new))            # running sum
        o     = c * o + exp(S - m_new) @ v_block          # running unnormalised output

    and at the end ``output = o / l``, equal to :func:`naive_attention` within rounding.

    Args:
        q: queries ``(..., n, d_k)``.
        k: keys ``(..., N, d_k)``.
        v: values ``(..., N, d_v)`` (same dtype; leading dimensions broadcast).
        block_size: keys per block, a positive integer; it need not divide ``N`` (``block_size >= N``
            is one block: the ordinary stable softmax).
        causal: mask the future, with query ``i`` at position ``N - n + i`` (:func:`attention_mask`);
            needs ``n <= N``.
        scale: multiplies the scores; default ``1 / sqrt(d_k)``.

    Returns:
        ``(output, trace)``: ``output`` ``(..., n, d_v)`` in the inputs' dtype, and ``trace``, one
        :class:`TileStep` per block (``ceil(N / block_size)`` of them) holding the block's scores,
        ``m``, ``l``, the rescale factor and the partial output.

    Raises:
        TypeError: if an input is not a floating-point tensor or the dtypes differ.
        ValueError: if the shapes do not fit (the message gives them), ``block_size`` is not a
            positive integer, the scale is not positive, or ``causal`` with more queries than keys.

    Source: Dao et al. 2022, arXiv:2205.14135, Algorithm 1 (with the division by ``l`` moved to the
    end, as in Dao 2023, arXiv:2307.08691, Algorithm 1).
    """
    return _tiled(q, k, v, block_size, causal, scale, mistake=None)


def _tiled(q, k, v, block_size, causal, scale, mistake):
    """:func:`tiled_attention`, or one of :data:`MISTAKES` in its place (for negative controls)."""
    scale = _check(q, k, v, causal, scale)
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
        raise ValueError(f"block_size must be a positive integer; got {block_size!r}")
    if mistake is not None and mistake not in MISTAKES:
        raise ValueError(f"unknown mistake {mistake!r}; choose from {sorted(MISTAKES)}")
    n, N = q.shape[-2], k.shape[-2]
    lead = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    mask = attention_mask(n, N, device=q.device) if causal else None  # (n, N), True = may attend
    m = torch.full((*lead, n), float("-inf"), dtype=q.dtype, device=q.device)  # (..., n) running maximum
    l = torch.zeros((*lead, n), dtype=q.dtype, device=q.device)  # (..., n) running sum
    o = torch.zeros((*lead, n, v.shape[-1]), dtype=q.dtype, device=q.device)  # (..., n, d_v) unnormalised
    trace = []
    blocks = range(0, N, block_size)
    for block, start in enumerate(blocks):
        stop = min(start + block_size, N)
        scores = scale * (q @ k[..., start:stop, :].transpose(-2, -1))  # (..., n, B)
        if mask is not None:
            scores = scores.masked_fill(~mask[:, start:stop], float("-inf"))
        block_max = scores.amax(dim=-1)  # (..., n); -inf where the whole block is masked
        m_new = torch.maximum(m, block_max)
        # A row with no allowed key yet has m_new = -inf; subtract 0 there instead (its terms are all 0).
        reference = torch.where(torch.isfinite(m_new), m_new, torch.zeros_like(m_new))
        p = torch.exp(scores - reference.unsqueeze(-1))  # (..., n, B), each <= 1
        rescale = torch.exp(m - reference)  # (..., n): exp(m_old - m_new) <= 1; 0 before any key
        if mistake == "no_rescale":
            factor = torch.where(torch.isfinite(m), torch.ones_like(m), torch.zeros_like(m))
        elif mistake == "wrong_sign":
            factor = torch.where(torch.isfinite(m), torch.exp(reference - m), torch.zeros_like(m))
        else:
            factor = rescale
        if mistake == "divide_per_block":  # o and l hold the sum of the blocks' softmax outputs, l their count
            l = l + 1
            o = o + (p @ v[..., start:stop, :]) / p.sum(dim=-1, keepdim=True)
        else:
            l = factor * l + p.sum(dim=-1)
            o = factor.unsqueeze(-1) * o + p @ v[..., start:stop, :]  # (..., n, d_v)
        trace.append(TileStep(block, start, stop, scores, block_max, m, m_new, rescale, l, o,
                              o / l.unsqueeze(-1)))
        m = m_new
    return o / l.unsqueeze(-1), trace


def negative_controls(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, block_size: int, causal: bool = False,
                      scale: float | None = None) -> dict[str, float]:
    """Relative error against :func:`naive_attention` of each typical mistake (:data:`MISTAKES`).

    Each should land orders of magnitude above the rounding tolerance that :func:`tiled_attention`
    meets (:func:`attention_course.maths.numerics.rounding_tolerance`), as long as there is more than one
    block and some row's maximum grows after its first block (with one block every variant is the
    ordinary softmax).

    Returns:
        ``{mistake: relative error}`` (:func:`attention_course.maths.numerics.relative_error`).

    Raises:
        TypeError, ValueError: as :func:`tiled_attention`.
    """
    from attention_course.maths.numerics import relative_error

    expected = naive_attention(q, k, v, causal, scale)
    return {name: relative_error(_tiled(q, k, v, block_size, causal, scale, name)[0], expected) for name in MISTAKES}


def example(n: int = 3, N: int = 12, d_k: int = 4, d_v: int = 3, seed: int = 0,
            dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A small seeded example ``(q (n, d_k), k (N, d_k), v (N, d_v))`` for the explorer and the chapter.

    Queries and keys are standard normal times 1.5 (scores of a few units after the ``1/sqrt(d_k)``
    scale, so the softmax is neither flat nor one-hot); values standard normal. Random, hence the
    running maximum grows at some later block for most rows (tested for the defaults).

    Raises:
        ValueError: unless every size is a positive integer.
    """
    if not all(isinstance(x, int) and x >= 1 for x in (n, N, d_k, d_v)):
        raise ValueError(f"example: sizes must be positive integers; got n={n}, N={N}, d_k={d_k}, d_v={d_v}")
    generator = torch.Generator().manual_seed(seed)
    q = 1.5 * torch.randn(n, d_k, generator=generator, dtype=torch.float64)
    k = 1.5 * torch.randn(N, d_k, generator=generator, dtype=torch.float64)
    v = torch.randn(N, d_v, generator=generator, dtype=torch.float64)
    return q.to(dtype), k.to(dtype), v.to(dtype)

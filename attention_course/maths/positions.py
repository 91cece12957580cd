"""Positions and grouped key/value heads: the layer below attention.

Rotary position embeddings (RoPE, Su et al. 2021, RoFormer) rotate each query and key by an angle
proportional to its position, so that their dot product depends only on the distance between the two
positions; :func:`repeat_kv` lets several query heads share one key/value head (grouped-query
attention, Ainslie et al. 2023). Chapter 5's :func:`attention_course.maths.multi_head.multi_head_attention`
uses both, and Chapter 8 teaches them through :mod:`attention_course.maths.modern`, which
re-exports them. RoPE pairs feature ``i`` with feature ``i + head_dim/2`` ("rotate half"), the
layout of Hugging Face ``transformers``; see :mod:`attention_course.maths.modern` for the neighbour
layout of RoFormer and Meta's LLaMA code.
"""
from __future__ import annotations

import torch

from attention_course.maths.self_attention import frequency_ladder

__all__ = ["rope_frequencies", "rope_cos_sin", "rotate_half", "apply_rope", "repeat_kv"]


def rope_frequencies(head_dim: int, base: float = 10000.0) -> torch.Tensor:
    """The rotation speeds ``theta_i = base^(-2i / head_dim)``, ``i = 0 .. head_dim/2 - 1`` (Su et al. 2021, Eq. 15).

    The same geometric ladder of frequencies as the sinusoidal encoding (Vaswani et al. 2017, §3.5),
    :func:`attention_course.maths.self_attention.frequency_ladder`.

    Returns:
        float32 ``(head_dim // 2,)``.

    Raises:
        ValueError: if ``head_dim`` is odd or not positive, or ``base`` <= 1.
    """
    if head_dim < 2 or head_dim % 2 or base <= 1:
        raise ValueError(f"rope_frequencies: need an even head_dim >= 2 and base > 1; got {head_dim}, {base}")
    return frequency_ladder(head_dim, base, torch.float32)


def rope_cos_sin(positions: torch.Tensor, head_dim: int, base: float = 10000.0):
    """Cosines and sines of the angles ``p * theta_i``, laid out for the rotate-half pairing.

    Args:
        positions: int ``(seq_len,)`` or ``(batch, seq_len)``, absolute positions.
        head_dim: width of one head (even).
        base: RoPE's base (10000 in RoFormer; SmolLM2 uses ``config.rope_parameters["rope_theta"]``).

    Returns:
        ``(cos, sin)``, each float32 ``positions.shape + (head_dim,)``; the angle of pair ``i`` is
        repeated at features ``i`` and ``i + head_dim/2``.
    """
    angles = positions[..., None].float() * rope_frequencies(head_dim, base)  # (..., seq_len, head_dim/2)
    angles = torch.cat([angles, angles], dim=-1)  # (..., seq_len, head_dim)
    return angles.cos(), angles.sin()


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """``[x1, x2] -> [-x2, x1]`` where ``x1, x2`` are the two halves of the last axis.

    Multiplying by ``sin`` and adding ``x * cos`` turns each pair ``(x1_i, x2_i)`` by its angle:
    ``(x1 cos - x2 sin, x2 cos + x1 sin)``.
    """
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate queries or keys by their positions: ``x * cos + rotate_half(x) * sin`` (Su et al. 2021, Eq. 34).

    Only queries and keys are rotated, never values: the rotation is there to make the *score*
    ``q_m . k_n`` a function of ``m - n``.

    Args:
        x: ``(batch, heads, seq_len, head_dim)``.
        cos, sin: from :func:`rope_cos_sin`, ``(seq_len, head_dim)`` or ``(batch, seq_len, head_dim)``.

    Returns:
        Same shape as ``x``; each pair keeps its length.

    Raises:
        ValueError: if ``x`` is not 4-D or the tables do not match its last two axes.
    """
    if x.dim() != 4 or cos.shape[-2:] != x.shape[-2:] or sin.shape != cos.shape:
        raise ValueError(f"apply_rope: x must be (batch, heads, seq_len, head_dim) and cos, sin "
                         f"(seq_len, head_dim) or (batch, seq_len, head_dim); got x {tuple(x.shape)}, "
                         f"cos {tuple(cos.shape)}, sin {tuple(sin.shape)}")
    if cos.dim() == 3:  # (batch, seq_len, head_dim) -> broadcast over the heads
        cos, sin = cos[:, None], sin[:, None]
    return x * cos + rotate_half(x) * sin


def repeat_kv(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Let ``groups`` query heads share each key/value head.

    ``(batch, num_kv_heads, seq_len, head_dim)`` -> ``(batch, num_kv_heads * groups, seq_len, head_dim)``;
    query head ``h`` uses key/value head ``h // groups``.
    """
    return x if groups == 1 else x.repeat_interleave(groups, dim=1)

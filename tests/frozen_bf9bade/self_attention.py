# Frozen snapshot of attention_course/self_attention.py at commit bf9bade, kept as the reference of
# tests/test_refactor_equivalence.py. Do not edit (see __init__.py).
"""Scaled dot-product attention and the causal mask (Chapter 4). Masks: bool, True = may attend."""
from __future__ import annotations

import math

import torch


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


def scaled_dot_product_attention(Q: torch.Tensor, K: torch.Tensor, V: torch.Tensor,
                                 mask: torch.Tensor | None = None):
    """``softmax(Q K^T / sqrt(d_k)) V`` (Vaswani et al. 2017, Eq. 1): ``(output, weights)``."""
    if Q.shape[-1] != K.shape[-1] or K.shape[-2] != V.shape[-2]:
        raise ValueError(
            f"expected Q (..., n_q, d_k), K (..., n_k, d_k), V (..., n_k, d_v); got Q {tuple(Q.shape)}, "
            f"K {tuple(K.shape)}, V {tuple(V.shape)}"
        )
    scores = Q @ K.transpose(-2, -1) / math.sqrt(K.shape[-1])  # (..., n_q, n_k)
    mask = _check_mask(mask, scores)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)  # over the keys
    return weights @ V, weights


def causal_mask(n: int, device=None) -> torch.Tensor:
    """Bool ``(n, n)`` lower-triangular mask: position i may attend to positions j <= i."""
    if int(n) != n or n < 1:
        raise ValueError(f"causal_mask: n must be a positive integer; got {n}")
    return torch.ones(n, n, dtype=torch.bool, device=device).tril()

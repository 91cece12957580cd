"""Multi-head self-attention (Chapter 5), reused by the Transformer block of Chapter 6.

Source: Vaswani et al. 2017, §3.2.2: ``MultiHead(Q, K, V) = Concat(head_1, ..., head_h) W^O``
with ``head_i = Attention(Q W_i^Q, K W_i^K, V W_i^V)`` and ``d_k = d_v = d_model / h``.
Masks follow :mod:`attention_course.self_attention`: bool, True = may attend.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .self_attention import scaled_dot_product_attention

__all__ = ["split_heads", "merge_heads", "multi_head_attention", "MultiHeadSelfAttention"]


def split_heads(X: torch.Tensor, num_heads: int) -> torch.Tensor:
    """``(batch, seq_len, d_model)`` -> ``(batch, num_heads, seq_len, d_model // num_heads)``.

    The feature axis is cut into ``num_heads`` consecutive slices of size ``d_k``; head h
    gets features ``h*d_k ... (h+1)*d_k - 1`` of every position.

    Raises:
        ValueError: if ``X`` is not 3-D or ``d_model`` is not divisible by ``num_heads``.
    """
    if X.dim() != 3 or num_heads < 1 or X.shape[-1] % num_heads:
        raise ValueError(
            f"split_heads: X must be (batch, seq_len, d_model) with d_model divisible by "
            f"num_heads; got shape {tuple(X.shape)} and num_heads={num_heads}"
        )
    batch, seq_len, d_model = X.shape
    return X.reshape(batch, seq_len, num_heads, d_model // num_heads).transpose(1, 2)


def merge_heads(X: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`split_heads`: ``(batch, h, seq_len, d_k)`` -> ``(batch, seq_len, h*d_k)``.

    Raises:
        ValueError: if ``X`` is not 4-D.
    """
    if X.dim() != 4:
        raise ValueError(f"merge_heads: X must be (batch, num_heads, seq_len, d_k); got {tuple(X.shape)}")
    batch, num_heads, seq_len, d_k = X.shape
    return X.transpose(1, 2).reshape(batch, seq_len, num_heads * d_k)


def multi_head_attention(X: torch.Tensor, W_q: torch.Tensor, W_k: torch.Tensor, W_v: torch.Tensor,
                         W_o: torch.Tensor, num_heads: int, mask: torch.Tensor | None = None,
                         memory: torch.Tensor | None = None):
    """Multi-head attention with the heads' projections packed in one matrix each.

    Project (``X W_q`` etc., each ``(d_model, d_model)``), split into heads, attend in
    parallel, concatenate, multiply by ``W_o``. With ``memory`` given, keys and values
    come from it (encoder-decoder "cross" attention); otherwise from ``X`` (self-attention).

    Args:
        X: ``(batch, seq_len, d_model)``.
        W_q, W_k, W_v, W_o: ``(d_model, d_model)``; head h uses columns ``h*d_k:(h+1)*d_k``.
        num_heads: h; must divide ``d_model``.
        mask: optional bool, broadcastable to ``(batch, h, seq_len, seq_len_k)``; True = may attend.
        memory: optional ``(batch, seq_len_k, d_model)`` to attend to instead of ``X``.

    Returns:
        ``(output, weights)``: ``(batch, seq_len, d_model)`` and ``(batch, h, seq_len, seq_len_k)``.

    Raises:
        ValueError: if the weight shapes do not match ``d_model`` or the mask does not fit.
    """
    d_model = X.shape[-1]
    for name, W in (("W_q", W_q), ("W_k", W_k), ("W_v", W_v), ("W_o", W_o)):
        if tuple(W.shape) != (d_model, d_model):
            raise ValueError(f"{name} must be (d_model, d_model) = ({d_model}, {d_model}); got {tuple(W.shape)}")
    source = X if memory is None else memory
    Q = split_heads(X @ W_q, num_heads)  # (batch, h, seq_len, d_k)
    K = split_heads(source @ W_k, num_heads)  # (batch, h, seq_len_k, d_k)
    V = split_heads(source @ W_v, num_heads)  # (batch, h, seq_len_k, d_k)
    heads, weights = scaled_dot_product_attention(Q, K, V, mask)  # (batch, h, seq_len, d_k)
    return merge_heads(heads) @ W_o, weights


class MultiHeadSelfAttention(nn.Module):
    """``nn.Module`` wrapper of :func:`multi_head_attention` with learned, bias-free weights.

    Parameters: four ``(d_model, d_model)`` matrices, ``4 d_model^2`` numbers in all,
    independent of ``num_heads``. Initialised uniformly in ``±1/sqrt(d_model)``.

    Args:
        d_model: width of the inputs and outputs.
        num_heads: number of heads; must divide ``d_model``.

    Raises:
        ValueError: if ``num_heads`` does not divide ``d_model``.
    """

    def __init__(self, d_model: int, num_heads: int):
        super().__init__()
        if num_heads < 1 or d_model % num_heads:
            raise ValueError(f"num_heads={num_heads} must divide d_model={d_model}")
        self.d_model, self.num_heads = d_model, num_heads
        bound = 1 / math.sqrt(d_model)
        self.W_q, self.W_k, self.W_v, self.W_o = (
            nn.Parameter(torch.empty(d_model, d_model).uniform_(-bound, bound)) for _ in range(4)
        )

    def forward(self, X: torch.Tensor, mask: torch.Tensor | None = None,
                memory: torch.Tensor | None = None):
        """Returns ``(output, weights)`` as :func:`multi_head_attention`."""
        return multi_head_attention(X, self.W_q, self.W_k, self.W_v, self.W_o, self.num_heads,
                                    mask, memory)

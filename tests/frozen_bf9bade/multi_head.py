# Frozen snapshot of attention_course/multi_head.py at commit bf9bade, kept as the reference of
# tests/test_refactor_equivalence.py. Do not edit (see __init__.py).
"""Multi-head self-attention (Chapter 5), reused by the Transformer block of Chapter 6."""
from __future__ import annotations

import math

import torch
from torch import nn

from .self_attention import scaled_dot_product_attention


def split_heads(X: torch.Tensor, num_heads: int) -> torch.Tensor:
    """``(batch, seq_len, d_model)`` -> ``(batch, num_heads, seq_len, d_model // num_heads)``."""
    if X.dim() != 3 or num_heads < 1 or X.shape[-1] % num_heads:
        raise ValueError(
            f"split_heads: X must be (batch, seq_len, d_model) with d_model divisible by "
            f"num_heads; got shape {tuple(X.shape)} and num_heads={num_heads}"
        )
    batch, seq_len, d_model = X.shape
    return X.reshape(batch, seq_len, num_heads, d_model // num_heads).transpose(1, 2)


def merge_heads(X: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`split_heads`: ``(batch, h, seq_len, d_k)`` -> ``(batch, seq_len, h*d_k)``."""
    if X.dim() != 4:
        raise ValueError(f"merge_heads: X must be (batch, num_heads, seq_len, d_k); got {tuple(X.shape)}")
    batch, num_heads, seq_len, d_k = X.shape
    return X.transpose(1, 2).reshape(batch, seq_len, num_heads * d_k)


def multi_head_attention(X: torch.Tensor, W_q: torch.Tensor, W_k: torch.Tensor, W_v: torch.Tensor,
                         W_o: torch.Tensor, num_heads: int, mask: torch.Tensor | None = None,
                         memory: torch.Tensor | None = None):
    """Multi-head (self- or, with ``memory``, cross-) attention: ``(output, weights)``."""
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
    """``nn.Module`` wrapper of :func:`multi_head_attention`: four bias-free ``(d_model, d_model)`` weights."""

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

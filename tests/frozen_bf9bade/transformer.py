# Frozen snapshot of attention_course/transformer.py at commit bf9bade, kept as the reference of
# tests/test_refactor_equivalence.py. Do not edit (see __init__.py).
"""The Transformer block and its pieces (Chapter 6): pre- or post-norm encoder block, decoder block."""
from __future__ import annotations

import torch
from torch import nn

from .multi_head import MultiHeadSelfAttention
from .self_attention import causal_mask


class PositionwiseMLP(nn.Module):
    """``FFN(x) = W_2 act(W_1 x + b_1) + b_2``, applied to every position separately."""

    def __init__(self, d_model: int, d_ff: int | None = None, activation: str = "gelu"):
        super().__init__()
        if activation not in ("gelu", "relu"):
            raise ValueError(f"activation must be 'gelu' or 'relu'; got {activation!r}")
        self.fc1 = nn.Linear(d_model, d_ff or 4 * d_model)
        self.fc2 = nn.Linear(d_ff or 4 * d_model, d_model)
        self.act = nn.GELU() if activation == "gelu" else nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, seq_len, d_model)`` -> same shape."""
        return self.fc2(self.act(self.fc1(x)))  # (batch, seq_len, d_ff) inside


class TransformerBlock(nn.Module):
    """Encoder-style block: self-attention and MLP, residuals, LayerNorm (pre- or post-norm)."""

    def __init__(self, d_model: int, num_heads: int, d_ff: int | None = None, norm_first: bool = True,
                 activation: str = "gelu"):
        super().__init__()
        self.norm_first = norm_first
        self.attn = MultiHeadSelfAttention(d_model, num_heads)
        self.mlp = PositionwiseMLP(d_model, d_ff, activation)
        self.ln1, self.ln2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None):
        """``(output, weights)``: ``(batch, seq_len, d_model)`` and ``(batch, h, seq_len, seq_len)``."""
        if x.dim() != 3 or x.shape[-1] != self.attn.d_model:
            raise ValueError(f"x must be (batch, seq_len, {self.attn.d_model}); got {tuple(x.shape)}")
        if self.norm_first:  # x + Sublayer(LN(x))
            a, weights = self.attn(self.ln1(x), mask)
            x = x + a
            x = x + self.mlp(self.ln2(x))
        else:  # LN(x + Sublayer(x))
            a, weights = self.attn(x, mask)
            x = self.ln1(x + a)
            x = self.ln2(x + self.mlp(x))
        return x, weights


class DecoderBlock(nn.Module):
    """Pre-norm decoder block: causal self-attention, cross-attention to ``memory``, MLP."""

    def __init__(self, d_model: int, num_heads: int, d_ff: int | None = None):
        super().__init__()
        self.self_attn = MultiHeadSelfAttention(d_model, num_heads)
        self.cross_attn = MultiHeadSelfAttention(d_model, num_heads)
        self.mlp = PositionwiseMLP(d_model, d_ff)
        self.ln1, self.ln2, self.ln3 = (nn.LayerNorm(d_model) for _ in range(3))

    def forward(self, y: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor | None = None):
        """``y``: target ``(batch, m, d_model)``; ``memory``: source ``(batch, n, d_model)``.

        Returns ``(output, self_weights, cross_weights)``: ``(batch, m, d_model)``, ``(batch, h, m, m)``
        and ``(batch, h, m, n)``. ``memory_mask``: bool, True = a real (non-padding) source position.
        """
        if y.dim() != 3 or memory.dim() != 3 or y.shape[0] != memory.shape[0] or y.shape[2] != memory.shape[2]:
            raise ValueError(f"y (batch, m, d) and memory (batch, n, d) must agree; got {tuple(y.shape)} "
                             f"and {tuple(memory.shape)}")
        a, self_weights = self.self_attn(self.ln1(y), causal_mask(y.shape[1], y.device))
        y = y + a
        c, cross_weights = self.cross_attn(self.ln2(y), memory_mask, memory=memory)
        y = y + c
        return y + self.mlp(self.ln3(y)), self_weights, cross_weights

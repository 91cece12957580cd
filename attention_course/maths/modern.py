"""From the 2017 block to a 2024 model: RMSNorm, RoPE, grouped-query attention, SwiGLU (Chapter 8).

A LLaMA-style decoder such as SmolLM2 keeps the pre-norm block of GPT-2 and changes four pieces:

* **RMSNorm** instead of LayerNorm: divide by the root mean square, no mean, no bias
  (Zhang & Sennrich 2019);
* **rotary position embeddings (RoPE)** instead of a learned or sinusoidal vector added to the
  input: each query and key is rotated by an angle proportional to its position, so that their dot
  product depends only on the *distance* between the two positions (Su et al. 2021, RoFormer);
* **grouped-query attention (GQA)**: several query heads share one key/value head, which shrinks
  the KV cache (Ainslie et al. 2023);
* **SwiGLU**: a gated MLP, ``(SiLU(x W_gate) * (x W_up)) W_down`` (Shazeer 2020).

Conventions as in the rest of the package: batch-first, a token is a row (``x @ W``), boolean masks
are True where attention is allowed. RoPE pairs feature ``i`` with feature ``i + head_dim/2``
("rotate half"), the layout of Hugging Face ``transformers`` and so of SmolLM2, which is published in
that format. The RoFormer paper and Meta's reference code for LLaMA pair neighbours ``(2i, 2i+1)``
instead (LLaMA's code reads each pair as a complex number, ``torch.view_as_complex``). The two are
equivalent up to a permutation of the features: Hugging Face's script that converts Meta's LLaMA
checkpoints reorders the rows of ``q_proj`` and ``k_proj`` within each head so that neighbour pairs
become half pairs, and the converted model computes the same scores.
Every piece here is checked against SmolLM2's own modules in ``tests/test_smollm.py``.
The RoPE functions and :func:`repeat_kv` are defined one layer down, in
:mod:`attention_course.maths.positions` (Chapter 5's multi-head attention uses them too): import
them from there.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from attention_course.maths.multi_head import multi_head_attention
from attention_course.maths.positions import rope_cos_sin

__all__ = ["rms_norm", "RMSNorm", "grouped_query_attention", "GroupedQueryAttention", "SwiGLU", "kv_cache_bytes"]


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """``x / sqrt(mean(x^2) + eps) * weight`` over the last axis (Zhang & Sennrich 2019, Eq. 4).

    Unlike LayerNorm it does not subtract the mean and has no bias: one statistic per token instead of
    two. Computed in float32 whatever the input's dtype, as LLaMA does.

    Args:
        x: ``(..., d_model)``.
        weight: the gain ``g``, shape ``(d_model,)``.
        eps: added to the mean square before the square root.

    Returns:
        Same shape as ``x``; its dtype is ``x``'s when ``weight`` has that dtype (otherwise PyTorch's
        promotion of the two, e.g. float32 for float16 ``x`` and float32 ``weight``, as in Hugging Face's
        ``LlamaRMSNorm``, which multiplies the same way).

    Raises:
        ValueError: if ``weight`` is not ``(d_model,)``.
    """
    if weight.dim() != 1 or weight.shape[0] != x.shape[-1]:
        raise ValueError(f"rms_norm: weight must be (d_model,) = ({x.shape[-1]},) for x of shape "
                         f"{tuple(x.shape)}; got {tuple(weight.shape)}")
    x32 = x.float()
    normed = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps)  # (..., d_model)
    return weight * normed.to(x.dtype)


class RMSNorm(nn.Module):
    """Root-mean-square layer normalisation, :func:`rms_norm` with a learned gain (initialised to 1).

    Args:
        d_model: width of the features.
        eps: added to the mean square (SmolLM2: ``config.rms_norm_eps``).
    """

    def __init__(self, d_model: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(..., d_model)`` -> same shape."""
        return rms_norm(x, self.weight, self.eps)


def grouped_query_attention(x: torch.Tensor, W_q: torch.Tensor, W_k: torch.Tensor, W_v: torch.Tensor,
                            W_o: torch.Tensor, num_heads: int, num_kv_heads: int,
                            positions: torch.Tensor | None = None, rope_base: float | None = 10000.0,
                            mask: torch.Tensor | None = None):
    """Causal grouped-query self-attention with rotary positions (Ainslie et al. 2023; Su et al. 2021).

    ``num_heads`` query heads, ``num_kv_heads`` key/value heads; query head ``h`` attends with
    key/value head ``h // (num_heads // num_kv_heads)`` (:func:`repeat_kv`). ``num_kv_heads ==
    num_heads`` is ordinary multi-head attention, ``num_kv_heads == 1`` multi-query attention
    (Shazeer 2019). It is the package's one multi-head attention,
    :func:`attention_course.maths.multi_head.multi_head_attention`, with grouped heads, RoPE tables and
    the causal mask.

    Args:
        x: ``(batch, seq_len, d_model)``.
        W_q: ``(d_model, num_heads * head_dim)``.
        W_k, W_v: ``(d_model, num_kv_heads * head_dim)``.
        W_o: ``(num_heads * head_dim, d_model)``.
        num_heads, num_kv_heads: ``num_kv_heads`` must divide ``num_heads``.
        positions: int ``(seq_len,)`` absolute positions (default ``0 .. seq_len-1``).
        rope_base: RoPE's base; ``None`` for no rotation.
        mask: optional extra bool mask, True = may attend, broadcastable to
            ``(batch, num_heads, seq_len, seq_len)``; the causal mask is always applied.

    Returns:
        ``(output, weights)``: ``(batch, seq_len, d_model)`` and ``(batch, num_heads, seq_len, seq_len)``.

    Raises:
        ValueError: if the weights' shapes do not fit ``d_model``, the heads, or each other.
    """
    if x.dim() != 3:
        raise ValueError(f"x must be (batch, seq_len, d_model); got shape {tuple(x.shape)}")
    rope = None
    if rope_base is not None:
        if num_heads < 1 or W_q.shape[-1] % num_heads:
            raise ValueError(f"num_heads={num_heads} must divide W_q's {W_q.shape[-1]} columns")
        if positions is None:
            positions = torch.arange(x.shape[1], device=x.device)
        cos, sin = rope_cos_sin(positions, W_q.shape[-1] // num_heads, rope_base)  # (seq_len, head_dim)
        rope = (cos.to(x.dtype), sin.to(x.dtype))
    return multi_head_attention(x, W_q, W_k, W_v, W_o, num_heads, mask, num_kv_heads=num_kv_heads,
                                rope=rope, causal=True)


class GroupedQueryAttention(nn.Module):
    """Causal self-attention of a LLaMA-style model: GQA plus RoPE, bias-free (:func:`grouped_query_attention`).

    Parameters ``W_q (d_model, num_heads*head_dim)``, ``W_k, W_v (d_model, num_kv_heads*head_dim)``,
    ``W_o (num_heads*head_dim, d_model)``: the key and value projections are ``num_heads /
    num_kv_heads`` times smaller than in multi-head attention, and so is the KV cache.

    Args:
        d_model: width of the residual stream.
        num_heads: query heads.
        num_kv_heads: key/value heads; must divide ``num_heads``.
        head_dim: width of one head (default ``d_model // num_heads``).
        rope_base: RoPE's base, or ``None`` for no rotation.

    Raises:
        ValueError: if ``num_kv_heads`` does not divide ``num_heads``.
    """

    def __init__(self, d_model: int, num_heads: int, num_kv_heads: int, head_dim: int | None = None,
                 rope_base: float | None = 10000.0):
        super().__init__()
        if num_kv_heads < 1 or num_heads % num_kv_heads:
            raise ValueError(f"num_kv_heads={num_kv_heads} must divide num_heads={num_heads}")
        self.num_heads, self.num_kv_heads = num_heads, num_kv_heads
        self.head_dim = head_dim or d_model // num_heads
        self.rope_base = rope_base
        bound = 1 / math.sqrt(d_model)
        q_width, kv_width = num_heads * self.head_dim, num_kv_heads * self.head_dim
        self.W_q = nn.Parameter(torch.empty(d_model, q_width).uniform_(-bound, bound))
        self.W_k = nn.Parameter(torch.empty(d_model, kv_width).uniform_(-bound, bound))
        self.W_v = nn.Parameter(torch.empty(d_model, kv_width).uniform_(-bound, bound))
        self.W_o = nn.Parameter(torch.empty(q_width, d_model).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor, positions: torch.Tensor | None = None,
                mask: torch.Tensor | None = None):
        """``x``: ``(batch, seq_len, d_model)``; returns ``(output, weights)`` as :func:`grouped_query_attention`."""
        return grouped_query_attention(x, self.W_q, self.W_k, self.W_v, self.W_o, self.num_heads,
                                       self.num_kv_heads, positions, self.rope_base, mask)


class SwiGLU(nn.Module):
    """The gated MLP of LLaMA-style models: ``(SiLU(x W_gate) * (x W_up)) W_down`` (Shazeer 2020, Eq. 6).

    ``SiLU(z) = z * sigmoid(z)`` (Swish with beta = 1). One projection, passed through SiLU, opens or
    closes a *gate* on each hidden unit of another; there are three matrices instead of two, so the
    hidden width is usually ``8/3 d_model`` instead of ``4 d_model`` to keep the parameter count.
    The weights are bias-free ``nn.Linear`` layers named ``gate``, ``up`` and ``down``.

    Args:
        d_model: input and output width.
        d_ff: hidden width (default: ``8/3 d_model`` rounded up to a multiple of 64).
    """

    def __init__(self, d_model: int, d_ff: int | None = None):
        super().__init__()
        d_ff = d_ff or 64 * math.ceil(8 * d_model / 3 / 64)
        self.gate = nn.Linear(d_model, d_ff, bias=False)
        self.up = nn.Linear(d_model, d_ff, bias=False)
        self.down = nn.Linear(d_ff, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(..., d_model)`` -> same shape, ``(..., d_ff)`` inside.

        Raises:
            ValueError: if the last axis of ``x`` is not ``d_model``.
        """
        if x.shape[-1] != self.gate.in_features:
            raise ValueError(f"SwiGLU: x must be (..., d_model={self.gate.in_features}); got {tuple(x.shape)}")
        return self.down(F.silu(self.gate(x)) * self.up(x))


def kv_cache_bytes(num_layers: int, num_kv_heads: int, head_dim: int, seq_len: int,
                   bytes_per_number: int = 4) -> int:
    """Memory of a KV cache for one sequence: keys and values, every layer, every key/value head.

    ``2 * num_layers * num_kv_heads * head_dim * seq_len * bytes_per_number``: with grouped-query
    attention ``num_kv_heads`` is smaller than the number of query heads, and the cache shrinks by the
    same factor.
    """
    return 2 * num_layers * num_kv_heads * head_dim * seq_len * bytes_per_number

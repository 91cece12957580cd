"""The Transformer block and its pieces (Chapter 6).

A block = multi-head attention + position-wise MLP, each wrapped in a residual connection and a
LayerNorm. Two placements of the norm:

* **post-norm** (Vaswani et al. 2017, §3.1): ``x = LN(x + Sublayer(x))``;
* **pre-norm** (GPT-2, Radford et al. 2019, §2.3; Xiong et al. 2020): ``x = x + Sublayer(LN(x))``,
  which leaves an un-normalised "residual stream" from input to output and trains more stably
  without a learning-rate warm-up.

Attention is reused from :mod:`attention_course.maths.multi_head` (bool masks, True = may attend).
Shapes are batch-first: ``(batch, seq_len, d_model)``.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from attention_course.maths.multi_head import MultiHeadSelfAttention
from attention_course.maths.self_attention import causal_mask

__all__ = ["PositionwiseMLP", "TransformerBlock", "DecoderBlock", "transformer_block",
           "params_from_block", "label_smoothing_loss"]


class PositionwiseMLP(nn.Module):
    """``FFN(x) = W_2 act(W_1 x + b_1) + b_2``, applied to every position separately.

    Vaswani et al. 2017, Eq. 2 (ReLU, ``d_ff = 4 d_model``); GPT uses GELU.

    Args:
        d_model: input and output width.
        d_ff: hidden width (default ``4 * d_model``).
        activation: ``"gelu"`` or ``"relu"``.

    Raises:
        ValueError: for another activation.
    """

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
    """The package's one Transformer block: self-attention and MLP, each in a residual with a norm.

    Used by the chapters (encoder block, §6.1) and by the GPT (:mod:`attention_course.models.gpt`, pre-norm,
    causal, with biases and a KV cache). The 2024 pieces of Chapter 8 (SmolLM2's) are options: RMSNorm instead of
    LayerNorm, SwiGLU instead of the GELU MLP.

    Args:
        d_model: width.
        num_heads: attention heads; must divide ``d_model``.
        d_ff: MLP hidden width (default ``4 * d_model``; SwiGLU: ``8/3 d_model`` rounded up to 64).
        norm_first: True for pre-norm (GPT-2), False for post-norm (2017 paper).
        activation: MLP, ``"gelu"`` or ``"relu"`` (:class:`PositionwiseMLP`) or ``"swiglu"``
            (:class:`attention_course.maths.modern.SwiGLU`).
        norm: ``"layer"`` (LayerNorm) or ``"rms"`` (:class:`attention_course.maths.modern.RMSNorm`).
        bias: biases in the attention's projections (GPT-2 has them).

    Raises:
        ValueError: if ``num_heads`` does not divide ``d_model``, or for an unknown ``norm`` or
            ``activation``.
    """

    def __init__(self, d_model: int, num_heads: int, d_ff: int | None = None, norm_first: bool = True,
                 activation: str = "gelu", norm: str = "layer", bias: bool = False):
        super().__init__()
        from attention_course.maths.modern import RMSNorm, SwiGLU

        if norm not in ("layer", "rms"):
            raise ValueError(f"norm must be 'layer' or 'rms'; got {norm!r}")
        self.norm_first = norm_first
        Norm = nn.LayerNorm if norm == "layer" else RMSNorm
        self.ln1, self.ln2 = Norm(d_model), Norm(d_model)
        self.attn = MultiHeadSelfAttention(d_model, num_heads, bias=bias)
        self.mlp = SwiGLU(d_model, d_ff) if activation == "swiglu" else PositionwiseMLP(d_model, d_ff, activation)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, cache=None, layer: int = 0,
                causal: bool = False, need_weights: bool = True, rope=None):
        """``x``: ``(batch, seq_len, d_model)``; ``mask``: bool, True = may attend.

        Args:
            cache, layer, causal, need_weights, rope: passed to the attention
                (:func:`attention_course.maths.multi_head.multi_head_attention`; ``rope``: the ``(cos, sin)``
                tables of rotary position embeddings, Chapter 8).

        Returns:
            ``(output, weights)``: ``(batch, seq_len, d_model)`` and ``(batch, h, seq_len, seq_len_k)``
            (``None`` when ``need_weights`` is False).
        """
        if x.dim() != 3 or x.shape[-1] != self.attn.d_model:
            raise ValueError(f"x must be (batch, seq_len, {self.attn.d_model}); got {tuple(x.shape)}")
        options = dict(cache=cache, layer=layer, causal=causal, need_weights=need_weights, rope=rope)
        if self.norm_first:  # x + Sublayer(LN(x))
            a, weights = self.attn(self.ln1(x), mask, **options)
            x = x + a
            x = x + self.mlp(self.ln2(x))
        else:  # LN(x + Sublayer(x))
            a, weights = self.attn(x, mask, **options)
            x = self.ln1(x + a)
            x = self.ln2(x + self.mlp(x))
        return x, weights


class DecoderBlock(nn.Module):
    """Decoder block of the encoder-decoder Transformer (Vaswani et al. 2017, §3.1, Fig. 1), pre-norm.

    Three sublayers: masked (causal) self-attention over the target, **cross-attention** whose
    queries come from the target and whose keys and values come from the encoder's output
    (``memory``), and the MLP. The same code runs teacher forcing (all target positions at once)
    and greedy decoding with a KV cache (one new position per call).

    Args:
        d_model, num_heads, d_ff: as :class:`TransformerBlock`.
    """

    def __init__(self, d_model: int, num_heads: int, d_ff: int | None = None):
        super().__init__()
        self.self_attn = MultiHeadSelfAttention(d_model, num_heads)
        self.cross_attn = MultiHeadSelfAttention(d_model, num_heads)
        self.mlp = PositionwiseMLP(d_model, d_ff)
        self.ln1, self.ln2, self.ln3 = (nn.LayerNorm(d_model) for _ in range(3))

    def forward(self, y: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor | None = None,
                need_weights: bool = True, cache=None, layer: int = 0):
        """``y``: target ``(batch, m, d_model)``; ``memory``: source ``(batch, n, d_model)``.

        Args:
            memory_mask: optional bool ``(batch, 1, 1, n)`` or broadcastable; True = a real
                (non-padding) source position.
            need_weights: False uses PyTorch's fused attention (same maths, faster, as in
                :func:`attention_course.maths.multi_head.multi_head_attention`) and returns ``None``
                for both weights.
            cache: optional :class:`attention_course.maths.multi_head.KVCache`, for decoding one
                position at a time (Chapter 7): ``y`` holds only the ``m`` new positions, which
                follow the ``t`` cached ones. Their self-attention keys and values join layer
                ``layer``'s (Chapter 6, §6.5); the memory's cross-attention keys and values are
                projected at the first call and read from the cache after.
            layer: this block's index in the decoder (its entry in the cache).

        Returns:
            ``(output, self_weights, cross_weights)``: ``(batch, m, d_model)``,
            ``(batch, h, m, m)`` (lower-triangular; with a cache ``(batch, h, m, t + m)``) and
            ``(batch, h, m, n)``.

        Raises:
            ValueError: if ``y`` and ``memory`` do not fit together, or the cache holds another
                memory's keys.
        """
        if y.dim() != 3 or memory.dim() != 3 or y.shape[0] != memory.shape[0] or y.shape[2] != memory.shape[2]:
            raise ValueError(f"y (batch, m, d) and memory (batch, n, d) must agree; got {tuple(y.shape)} "
                             f"and {tuple(memory.shape)}")
        options = dict(cache=cache, layer=layer, need_weights=need_weights)
        if cache is None:  # teacher forcing: each of the m targets sees itself and the earlier ones
            a, self_weights = self.self_attn(self.ln1(y), causal_mask(y.shape[1], y.device), **options)
        else:  # step by step: the m new positions come after the cached ones (causal mask shifted)
            a, self_weights = self.self_attn(self.ln1(y), causal=True, **options)
        y = y + a
        c, cross_weights = self.cross_attn(self.ln2(y), memory_mask, memory=memory, **options)
        y = y + c
        return y + self.mlp(self.ln3(y)), self_weights, cross_weights


def transformer_block(x: torch.Tensor, params: dict, mask: torch.Tensor | None = None,
                      norm_first: bool = True) -> torch.Tensor:
    """Functional Transformer block (the exercise's reference), GELU MLP, LayerNorm eps 1e-5.

    :class:`TransformerBlock` run with the weights given in ``params`` (``torch.func.functional_call``).

    Args:
        x: ``(batch, seq_len, d_model)``.
        params: ``num_heads``; ``W_q, W_k, W_v, W_o`` ``(d_model, d_model)`` (row-vector
            convention, no biases); ``ln1_weight, ln1_bias, ln2_weight, ln2_bias`` ``(d_model,)``;
            ``W_1`` ``(d_model, d_ff)``, ``b_1`` ``(d_ff,)``, ``W_2`` ``(d_ff, d_model)``, ``b_2`` ``(d_model,)``.
        mask: optional bool, True = may attend.
        norm_first: pre-norm (default) or post-norm.

    Returns:
        ``(batch, seq_len, d_model)``.

    Raises:
        KeyError: naming a missing parameter.
    """
    needed = ["num_heads", "W_q", "W_k", "W_v", "W_o", "ln1_weight", "ln1_bias", "ln2_weight",
              "ln2_bias", "W_1", "b_1", "W_2", "b_2"]
    missing = [k for k in needed if k not in params]
    if missing:
        raise KeyError(f"transformer_block: params lacks {missing}")
    p = params
    # Not a second block: TransformerBlock itself, built without memory or random numbers (on the
    # "meta" device) and run with these weights (nn.Linear stores W_1, W_2 transposed).
    with torch.device("meta"):
        block = TransformerBlock(x.shape[-1], p["num_heads"], p["W_1"].shape[1], norm_first=norm_first)
    weights = {"attn.W_q": p["W_q"], "attn.W_k": p["W_k"], "attn.W_v": p["W_v"], "attn.W_o": p["W_o"],
               "ln1.weight": p["ln1_weight"], "ln1.bias": p["ln1_bias"], "ln2.weight": p["ln2_weight"],
               "ln2.bias": p["ln2_bias"], "mlp.fc1.weight": p["W_1"].T, "mlp.fc1.bias": p["b_1"],
               "mlp.fc2.weight": p["W_2"].T, "mlp.fc2.bias": p["b_2"]}
    return torch.func.functional_call(block, weights, (x, mask))[0]


def params_from_block(block: TransformerBlock) -> dict:
    """The ``params`` dict of :func:`transformer_block` holding ``block``'s weights (detached)."""
    a, m = block.attn, block.mlp
    return dict(num_heads=a.num_heads, W_q=a.W_q.detach(), W_k=a.W_k.detach(), W_v=a.W_v.detach(),
                W_o=a.W_o.detach(), ln1_weight=block.ln1.weight.detach(), ln1_bias=block.ln1.bias.detach(),
                ln2_weight=block.ln2.weight.detach(), ln2_bias=block.ln2.bias.detach(),
                W_1=m.fc1.weight.detach().T, b_1=m.fc1.bias.detach(), W_2=m.fc2.weight.detach().T,
                b_2=m.fc2.bias.detach())


def label_smoothing_loss(logits: torch.Tensor, targets: torch.Tensor, epsilon: float = 0.1) -> torch.Tensor:
    """Cross-entropy against smoothed targets (Szegedy et al. 2016; Vaswani et al. 2017, §5.4).

    The one-hot target becomes ``(1 - epsilon) * onehot + epsilon / V``: the model is never asked
    to put probability 1 on one token, which keeps logits from growing without bound.
    Equals ``F.cross_entropy(logits, targets, label_smoothing=epsilon)``.

    Args:
        logits: ``(N, V)`` unnormalised scores.
        targets: ``(N,)`` class indices in ``[0, V)``.
        epsilon: smoothing in ``[0, 1)``.

    Returns:
        Scalar mean loss in nats.

    Raises:
        ValueError: on mismatched shapes or ``epsilon`` outside ``[0, 1)``.
    """
    if logits.dim() != 2 or targets.shape != logits.shape[:1]:
        raise ValueError(f"logits must be (N, V) and targets (N,); got {tuple(logits.shape)}, {tuple(targets.shape)}")
    if not 0 <= epsilon < 1:
        raise ValueError(f"epsilon must be in [0, 1); got {epsilon}")
    log_p = F.log_softmax(logits, dim=-1)  # (N, V)
    smooth = torch.full_like(log_p, epsilon / logits.shape[-1])  # (N, V)
    smooth.scatter_add_(1, targets[:, None], torch.full_like(log_p[:, :1], 1 - epsilon))
    return -(smooth * log_p).sum(-1).mean()

"""Multi-head attention (Chapter 5): the package's one implementation, used by every chapter after it.

Source: Vaswani et al. 2017, §3.2.2: ``MultiHead(Q, K, V) = Concat(head_1, ..., head_h) W^O``
with ``head_i = Attention(Q W_i^Q, K W_i^K, V W_i^V)`` and ``d_k = d_v = d_model / h``.
Masks follow :mod:`attention_course.maths.self_attention`: bool, True = may attend.

:func:`multi_head_attention` serves Chapter 5's self-attention, the encoder and decoder blocks of
Chapter 6 (self- and cross-attention) and the GPT of Chapter 6, which adds biases, a causal mask
and a :class:`KVCache`; Chapter 7's encoder-decoder decodes through the same cache, which also keeps
the memory's cross-attention keys and values. Weights are always ``W_q, W_k, W_v, W_o`` of shape ``(d_model, d_model)``
multiplying rows (``X @ W_q``), with optional biases ``b_q, b_k, b_v, b_o``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from attention_course.maths.positions import apply_rope, repeat_kv
from attention_course.maths.self_attention import causal_mask, scaled_dot_product_attention

__all__ = ["split_heads", "merge_heads", "project_qkv", "multi_head_attention", "MultiHeadSelfAttention", "KVCache"]


@dataclass
class KVCache:
    """Per-layer keys and values kept between decoding steps (Chapter 6, §6.5; Chapter 7).

    * Self-attention: ``keys[l]`` and ``values[l]``, ``(batch, num_heads, length, d_k)``, those of
      the positions seen so far; :meth:`extend` appends the new positions' at every step.
    * Cross-attention (the encoder-decoder of Chapter 7): ``memory_keys[l]`` and ``memory_values[l]``,
      ``(batch, num_heads, T, d_k)``, the keys and values of the encoder's output (the memory).
      The memory does not change while the decoder writes, so :meth:`memory_kv` computes them at
      the first step and hands back the same tensors at every later one.

    Empty lists before the first call. One cache serves one batch of sequences (one memory); start
    a new one for another.
    """

    keys: list = field(default_factory=list)
    values: list = field(default_factory=list)
    memory_keys: list = field(default_factory=list)
    memory_values: list = field(default_factory=list)

    @property
    def length(self) -> int:
        """Number of cached positions (of self-attention; the memory's are not counted)."""
        return 0 if not self.keys else self.keys[0].shape[2]

    def extend(self, layer: int, K: torch.Tensor, V: torch.Tensor):
        """Append the new positions' keys and values ``(batch, h, n_new, d_k)`` to layer ``layer``'s.

        Returns:
            The keys and values of every position so far, ``(batch, h, n_total, d_k)`` each.
        """
        if len(self.keys) > layer:
            K = torch.cat([self.keys[layer], K], dim=2)  # (batch, h, n_total, d_k)
            V = torch.cat([self.values[layer], V], dim=2)
            self.keys[layer], self.values[layer] = K, V
        else:
            self.keys.append(K)
            self.values.append(V)
        return K, V

    def memory_kv(self, layer: int, memory: torch.Tensor, project):
        """The keys and values of ``memory`` for layer ``layer``'s cross-attention, projected once.

        Vaswani et al. 2017, §3.2.3: in encoder-decoder attention "the memory keys and values come
        from the output of the encoder", the same at every decoding step.

        Args:
            layer: the decoder layer; layers are filled in order (0, 1, ...) at the first step.
            memory: ``(batch, T, d_model)``, the encoder's output.
            project: ``project(memory)`` -> ``(K, V)``, each ``(batch, h, T, d_k)``; called only
                the first time for this layer.

        Returns:
            ``(K, V)``, ``(batch, h, T, d_k)`` each: computed now or kept from the first step.

        Raises:
            ValueError: if the kept keys belong to another memory (another batch size or length),
                or ``layer`` skips a layer not filled yet.
        """
        if len(self.memory_keys) > layer:
            K, V = self.memory_keys[layer], self.memory_values[layer]
            if (K.shape[0], K.shape[2]) != tuple(memory.shape[:2]):
                raise ValueError(f"KVCache.memory_kv: layer {layer} keeps the keys of a memory of "
                                 f"(batch, T) = {(K.shape[0], K.shape[2])}; got {tuple(memory.shape[:2])}")
            return K, V
        if layer != len(self.memory_keys):
            raise ValueError(f"KVCache.memory_kv: layer {layer} before layer {len(self.memory_keys)}")
        K, V = project(memory)
        self.memory_keys.append(K)
        self.memory_values.append(V)
        return K, V


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


def _affine(Z: torch.Tensor, W: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    """``Z @ W + b`` (row convention); with a bias as ``F.linear`` computes it."""
    return Z @ W if b is None else F.linear(Z, W.T, b)


def _check_weights(d_model: int, weights, num_heads: int, num_kv_heads: int, biases) -> None:
    """Raise ValueError unless ``weights`` = ``(W_q, W_k, W_v, W_o)`` and ``biases`` fit (see
    :func:`multi_head_attention`)."""
    W_q = weights[0]
    if num_heads < 1 or num_heads % num_kv_heads or W_q.shape[-1] % num_heads:
        raise ValueError(f"num_kv_heads={num_kv_heads} must divide num_heads={num_heads}, and num_heads must "
                         f"divide W_q's {W_q.shape[-1]} columns")
    d_k = W_q.shape[-1] // num_heads
    want = {"W_q": (d_model, num_heads * d_k), "W_k": (d_model, num_kv_heads * d_k),
            "W_v": (d_model, num_kv_heads * d_k), "W_o": (num_heads * d_k, d_model)}
    for name, W in zip(want, weights):
        if tuple(W.shape) != want[name]:
            raise ValueError(f"{name} must be {want[name]} (d_model={d_model}, num_heads={num_heads}, "
                             f"num_kv_heads={num_kv_heads}, d_k={d_k}); got {tuple(W.shape)}")
    if biases is not None and [tuple(b.shape) for b in biases] != [(W.shape[1],) for W in weights]:
        raise ValueError(f"biases must match the columns of W_q, W_k, W_v, W_o; got "
                         f"{[tuple(b.shape) for b in biases]}")


def project_qkv(X, memory, weights, biases, num_heads: int, num_kv_heads: int, cache=None, layer: int = 0):
    """The projections of :func:`multi_head_attention` (Vaswani et al. 2017, §3.2.2), split into heads.

    Args:
        X: ``(batch, seq_len, d_model)``, the positions that ask (queries) and, in self-attention,
            are looked at (keys, values).
        memory: ``None`` (self-attention) or ``(batch, seq_len_k, d_model)``, what cross-attention
            looks at.
        weights: ``(W_q, W_k, W_v)``; biases: ``(b_q, b_k, b_v)``, each ``None`` or a vector.
        num_heads, num_kv_heads: ``h`` query heads, ``g`` key/value heads.
        cache, layer: with a memory, its keys and values are projected at the first step only
            (:meth:`KVCache.memory_kv`).

    Returns:
        ``(Q, K, V)``: ``(batch, h, seq_len, d_k)``, ``(batch, g, seq_len_k, d_k)`` twice.
    """
    (W_q, W_k, W_v), (b_q, b_k, b_v) = weights, biases
    if memory is None and b_q is not None:  # GPT-2's layout: Q, K and V from one product
        widths = [W.shape[1] for W in weights]
        Q, K, V = _affine(X, torch.cat(weights, dim=1), torch.cat(biases)).split(widths, dim=-1)
    elif memory is not None and cache is not None:  # cross-attention, cached: the memory's K, V once
        def keys_values(source):  # (batch, g, T, d_k) each
            return (split_heads(_affine(source, W_k, b_k), num_kv_heads),
                    split_heads(_affine(source, W_v, b_v), num_kv_heads))

        return (split_heads(_affine(X, W_q, b_q), num_heads), *cache.memory_kv(layer, memory, keys_values))
    else:  # one product each (the same numbers up to float rounding; each layout keeps its own history)
        source = X if memory is None else memory  # cross-attention: keys and values from the memory
        Q, K, V = _affine(X, W_q, b_q), _affine(source, W_k, b_k), _affine(source, W_v, b_v)
    return split_heads(Q, num_heads), split_heads(K, num_kv_heads), split_heads(V, num_kv_heads)


def multi_head_attention(X: torch.Tensor, W_q: torch.Tensor, W_k: torch.Tensor, W_v: torch.Tensor,
                         W_o: torch.Tensor, num_heads: int, mask: torch.Tensor | None = None,
                         memory: torch.Tensor | None = None, *, biases=None, cache: KVCache | None = None,
                         layer: int = 0, causal: bool = False, need_weights: bool = True,
                         num_kv_heads: int | None = None, rope=None):
    """Multi-head attention with the heads' projections packed in one matrix each.

    Project (``X W_q`` etc., each ``(d_model, d_model)`` unless grouped), split into heads, attend in
    parallel, concatenate, multiply by ``W_o``. With ``memory`` given, keys and values
    come from it (encoder-decoder "cross" attention); otherwise from ``X`` (self-attention). With
    biases (the GPT), the three projections are one product ``X [W_q | W_k | W_v] + b`` as in GPT-2.

    Args:
        X: ``(batch, seq_len, d_model)``; with a ``cache``, only the new positions.
        W_q, W_k, W_v, W_o: ``(d_model, d_model)``; head h uses columns ``h*d_k:(h+1)*d_k``.
        num_heads: h; must divide ``d_model``.
        mask: optional bool, broadcastable to ``(batch, h, seq_len, seq_len_k)``; True = may attend.
        memory: optional ``(batch, seq_len_k, d_model)`` to attend to instead of ``X``.
        biases: optional ``(b_q, b_k, b_v, b_o)``, each ``(d_model,)`` (GPT-2 has them).
        cache: optional :class:`KVCache`. Self-attention: the new keys and values are appended to
            layer ``layer``'s and the queries attend to all of them (Chapter 6, §6.5).
            Cross-attention: the memory's keys and values are projected at the first call and
            kept (:meth:`KVCache.memory_kv`; Chapter 7).
        causal: add the causal mask: new position i (absolute position ``t_before + i``) may see
            positions ``0 .. t_before + i``.
        need_weights: False uses PyTorch's fused ``F.scaled_dot_product_attention`` (same maths,
            faster) and returns ``None`` for the weights.
        num_kv_heads: grouped-query attention (Ainslie et al. 2023; Chapter 8): ``g`` key/value
            heads shared by groups of ``num_heads / g`` query heads; then ``W_k, W_v`` are
            ``(d_model, g * d_k)`` and the cache holds ``g`` heads. Default: ``num_heads``.
        rope: optional ``(cos, sin)`` tables ``(seq_len, d_k)`` of the new positions
            (:func:`attention_course.maths.modern.rope_cos_sin`): queries and keys are rotated before the
            scores (Su et al. 2021). Self-attention only.

    Returns:
        ``(output, weights)``: ``(batch, seq_len, d_model)`` and ``(batch, h, seq_len, seq_len_k)``
        (or ``None``).

    Raises:
        ValueError: if the weight or bias shapes do not match ``d_model``, the mask does not fit,
            ``rope`` is given with ``memory``, or the cache holds another memory's keys.
    """
    num_kv_heads = num_kv_heads or num_heads
    _check_weights(X.shape[-1], (W_q, W_k, W_v, W_o), num_heads, num_kv_heads, biases)
    if rope is not None and memory is not None:
        raise ValueError("rope rotates the queries and keys of self-attention; got a memory as well")
    b_q, b_k, b_v, b_o = (None,) * 4 if biases is None else biases
    Q, K, V = project_qkv(X, memory, (W_q, W_k, W_v), (b_q, b_k, b_v), num_heads, num_kv_heads, cache, layer)
    if rope is not None:
        Q, K = apply_rope(Q, *rope), apply_rope(K, *rope)
    if cache is not None and memory is None:
        K, V = cache.extend(layer, K, V)  # (batch, g, n_total, d_k)
    if causal:
        n_new, n_total = Q.shape[2], K.shape[2]
        allowed = causal_mask(n_total, X.device)[n_total - n_new:]  # (n_new, n_total)
        mask = allowed if mask is None else mask & allowed
    if num_kv_heads != num_heads:  # each key/value head serves num_heads / g query heads
        K, V = repeat_kv(K, num_heads // num_kv_heads), repeat_kv(V, num_heads // num_kv_heads)
    if need_weights:
        heads, weights = scaled_dot_product_attention(Q, K, V, mask)  # (batch, h, seq_len, d_k)
    else:
        heads, weights = F.scaled_dot_product_attention(Q, K, V, attn_mask=mask), None
    return _affine(merge_heads(heads), W_o, b_o), weights


class MultiHeadSelfAttention(nn.Module):
    """``nn.Module`` holding the weights of :func:`multi_head_attention` (self- or cross-attention).

    Parameters: four ``(d_model, d_model)`` matrices ``W_q, W_k, W_v, W_o``, ``4 d_model^2`` numbers
    in all, independent of ``num_heads``, initialised uniformly in ``±1/sqrt(d_model)``; with
    ``bias=True`` also ``b_q, b_k, b_v, b_o`` ``(d_model,)``, drawn the same way (a model such as
    the GPT re-initialises them).

    Args:
        d_model: width of the inputs and outputs.
        num_heads: number of heads; must divide ``d_model``.
        bias: add learned biases to the four projections.

    Raises:
        ValueError: if ``num_heads`` does not divide ``d_model``.
    """

    def __init__(self, d_model: int, num_heads: int, bias: bool = False):
        super().__init__()
        if num_heads < 1 or d_model % num_heads:
            raise ValueError(f"num_heads={num_heads} must divide d_model={d_model}")
        self.d_model, self.num_heads = d_model, num_heads
        bound = 1 / math.sqrt(d_model)
        self.W_q, self.W_k, self.W_v, self.W_o = (
            nn.Parameter(torch.empty(d_model, d_model).uniform_(-bound, bound)) for _ in range(4)
        )
        if bias:
            self.b_q, self.b_k, self.b_v, self.b_o = (
                nn.Parameter(torch.empty(d_model).uniform_(-bound, bound)) for _ in range(4)
            )
        else:
            self.b_q = self.b_k = self.b_v = self.b_o = None

    def forward(self, X: torch.Tensor, mask: torch.Tensor | None = None,
                memory: torch.Tensor | None = None, cache: KVCache | None = None, layer: int = 0,
                causal: bool = False, need_weights: bool = True, rope=None):
        """Returns ``(output, weights)`` as :func:`multi_head_attention` (same arguments)."""
        biases = None if self.b_q is None else (self.b_q, self.b_k, self.b_v, self.b_o)
        return multi_head_attention(X, self.W_q, self.W_k, self.W_v, self.W_o, self.num_heads, mask, memory,
                                    biases=biases, cache=cache, layer=layer, causal=causal,
                                    need_weights=need_weights, rope=rope)

"""A small character-level GPT trained on a CPU, with a KV cache (Chapter 6).

Decoder-only Transformer as in GPT-2 (Radford et al. 2019): token + learned position
embeddings, pre-norm blocks of causal multi-head self-attention and a GELU MLP, a final
LayerNorm, and an output layer tied to the token embedding. The sizes follow nanoGPT's CPU
recipe for character-level Shakespeare (4 layers, 4 heads, width 128, context 64).

This module holds the model and its decoding. The text it learns from is in
:mod:`attention_course.data.fortunes`, training and evaluation in :mod:`attention_course.training.gpt_training`
(which imports this module, never the other way round).

KV cache (key/value cache): when generating token t+1 the keys and values of tokens 1..t do not
change (the mask stops them from seeing the future), so each layer keeps them and the new token
only computes its own query, key and value: one row of attention instead of the whole matrix.
"""
from __future__ import annotations

import math
from dataclasses import InitVar, dataclass

import torch
from torch import nn
from torch.nn import functional as F

from attention_course.env import torch_threads
from attention_course.maths.multi_head import KVCache, MultiHeadSelfAttention
from attention_course.maths.transformer import TransformerBlock

__all__ = ["GPTConfig", "GPT", "filter_logits", "sample_next_token", "generate"]


@dataclass
class GPTConfig:
    """Sizes of :class:`GPT` (defaults: nanoGPT's CPU character-level recipe).

    ``n_head`` is accepted as the old name of ``num_heads``.
    """

    vocab_size: int
    block_size: int = 64  # longest context, in tokens
    n_layer: int = 4
    num_heads: int = 4
    d_model: int = 128
    n_head: InitVar[int | None] = None

    def __post_init__(self, n_head):
        if n_head is not None:
            self.num_heads = n_head


class GPT(nn.Module):
    """Decoder-only Transformer language model (GPT-2 layout, Radford et al. 2019).

    Args:
        config: a :class:`GPTConfig`.
    """

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.tok_emb = nn.Embedding(config.vocab_size, config.d_model)
        self.pos_emb = nn.Embedding(config.block_size, config.d_model)
        self.blocks = nn.ModuleList(TransformerBlock(config.d_model, config.num_heads, norm_first=True, bias=True)
                                    for _ in range(config.n_layer))  # pre-norm, GELU MLP, LayerNorm
        self.ln_f = nn.LayerNorm(config.d_model)
        self.head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.head.weight = self.tok_emb.weight  # weight tying (Press & Wolf 2017)
        self.apply(self._init)
        std = 0.02 / math.sqrt(2 * config.n_layer)
        with torch.no_grad():  # GPT-2's scaled init of the residual projections W_o and fc2
            for block in self.blocks:
                block.attn.W_o.copy_(nn.init.normal_(torch.empty_like(block.attn.W_o), 0.0, std).T)
                nn.init.normal_(block.mlp.fc2.weight, 0.0, std)

    @staticmethod
    def _init(module):
        """GPT-2's initialisation: normal(0, 0.02) weights, zero biases.

        The attention's ``W_q, W_k, W_v`` are drawn as one ``(3 d_model, d_model)`` matrix and
        ``W_o`` as one ``(d_model, d_model)``, in ``nn.Linear``'s (out, in) layout, and transposed:
        the same random numbers, in the same order, as the earlier layout of this GPT (a packed
        ``qkv`` and a ``proj`` ``nn.Linear``), so a seeded model is the same model. State-dict
        mapping from that layout: ``attn.qkv.weight = cat([W_q, W_k, W_v], 1).T``,
        ``attn.qkv.bias = cat([b_q, b_k, b_v])``, ``attn.proj.weight = W_o.T``,
        ``attn.proj.bias = b_o``.
        """
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, 0.0, 0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
        if isinstance(module, MultiHeadSelfAttention):
            d = module.d_model
            with torch.no_grad():
                qkv = nn.init.normal_(torch.empty(3 * d, d), 0.0, 0.02)  # (3 d_model, d_model)
                for W, rows in zip((module.W_q, module.W_k, module.W_v), qkv.split(d)):
                    W.copy_(rows.T)
                module.W_o.copy_(nn.init.normal_(torch.empty(d, d), 0.0, 0.02).T)
                for b in (module.b_q, module.b_k, module.b_v, module.b_o):
                    b.zero_()

    def num_parameters(self) -> int:
        """Number of trainable numbers (the tied embedding counted once)."""
        return sum(p.numel() for p in self.parameters())

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None,
                cache: KVCache | None = None, need_weights: bool = False):
        """Next-token logits.

        Args:
            idx: token ids ``(batch, n)``; with a cache, only the *new* tokens.
            targets: optional ``(batch, n)`` next tokens, for the cross-entropy loss.
            cache: optional :class:`KVCache`, extended in place.
            need_weights: also return every layer's attention weights.

        Returns:
            ``(logits, loss)`` — ``(batch, n, vocab)`` and a scalar (or ``None``); with
            ``need_weights`` a third element, ``(n_layer, batch, h, n, n_total)``.

        Raises:
            ValueError: if the context would exceed ``block_size`` or ``idx`` is not 2-D.
        """
        if idx.dim() != 2:
            raise ValueError(f"idx must be (batch, n) token ids; got shape {tuple(idx.shape)}")
        start = cache.length if cache is not None else 0
        if start + idx.shape[1] > self.config.block_size:
            raise ValueError(f"context of {start + idx.shape[1]} tokens exceeds block_size="
                             f"{self.config.block_size}")
        positions = torch.arange(start, start + idx.shape[1], device=idx.device)  # (n,)
        x = self.tok_emb(idx) + self.pos_emb(positions)  # (batch, n, d_model)
        all_weights = []
        for layer, block in enumerate(self.blocks):
            x, weights = block(x, cache=cache, layer=layer, causal=True, need_weights=need_weights)
            all_weights.append(weights)
        logits = self.head(self.ln_f(x))  # (batch, n, vocab)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        if need_weights:
            return logits, loss, torch.stack(all_weights)
        return logits, loss


def _check_cut(top_k: int, top_p: float) -> None:
    """Raise ValueError unless ``top_k >= 0`` and ``0 < top_p <= 1``."""
    if top_k < 0 or not 0 < top_p <= 1:
        raise ValueError(f"need top_k >= 0 and 0 < top_p <= 1; got top_k={top_k}, top_p={top_p}")


def filter_logits(logits: torch.Tensor, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """Cut the tail of the next-token distribution: the logits outside it become ``-inf``.

    * ``top_k > 0`` keeps the ``top_k`` largest logits of each row (top-k sampling, Fan et al. 2018);
    * ``top_p < 1`` keeps the smallest set of tokens, most probable first, whose probabilities
      (softmax of the logits given) add up to at least ``top_p`` (nucleus sampling, Holtzman et al.
      2020, §3.1). The most probable token is always kept.

    Both may be given (top-k first). With the defaults the logits come back unchanged.

    Args:
        logits: ``(batch, vocab)``, already divided by the temperature.
        top_k: how many tokens to keep, 0 for all.
        top_p: the probability mass to keep, in (0, 1].

    Returns:
        ``(batch, vocab)``, the kept logits unchanged and the others ``-inf``.

    Raises:
        ValueError: if ``top_k`` < 0, ``top_p`` is not in (0, 1], or ``logits`` is not 2-D.
    """
    if logits.dim() != 2:
        raise ValueError(f"logits must be (batch, vocab); got shape {tuple(logits.shape)}")
    _check_cut(top_k, top_p)
    if 0 < top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]  # (batch, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1:
        probs, order = torch.sort(torch.softmax(logits, dim=-1), dim=-1, descending=True)  # (batch, vocab)
        before = probs.cumsum(dim=-1) - probs  # the mass of the more probable tokens
        drop = torch.zeros_like(logits, dtype=torch.bool).scatter(-1, order, before >= top_p)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def sample_next_token(logits: torch.Tensor, temperature: float = 1.0,
                      generator: torch.Generator | None = None, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """Draw the next token from ``softmax(logits / temperature)``, optionally cut by top-k / top-p.

    The temperature divides the *logits* (before the softmax); ``temperature == 0`` means
    greedy (argmax). ``top_k`` and ``top_p`` then keep only the head of the distribution
    (:func:`filter_logits`); with their defaults the draw is the plain one.

    Args:
        logits: ``(batch, vocab)``.
        temperature: >= 0.
        generator: optional ``torch.Generator`` for repeatable draws.
        top_k: keep the ``top_k`` most probable tokens (0: all).
        top_p: keep the most probable tokens that make up at least this probability (1: all).

    Returns:
        int64 ``(batch,)``.

    Raises:
        ValueError: if ``temperature`` < 0, ``logits`` is not 2-D, or ``top_k`` / ``top_p`` are out
            of range (:func:`filter_logits`).
    """
    if logits.dim() != 2:
        raise ValueError(f"logits must be (batch, vocab); got shape {tuple(logits.shape)}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0; got {temperature}")
    _check_cut(top_k, top_p)
    if temperature == 0:
        return logits.argmax(dim=-1)
    scaled = logits / temperature
    if top_k or top_p < 1:
        scaled = filter_logits(scaled, top_k, top_p)
    probs = torch.softmax(scaled, dim=-1)  # (batch, vocab)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]


@torch.no_grad()
def generate(model: GPT, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
             generator: torch.Generator | None = None, use_cache: bool = True, top_k: int = 0,
             top_p: float = 1.0) -> torch.Tensor:
    """Autoregressive decoding: append one sampled token at a time.

    Without the cache every step re-runs the model on the whole (cropped) context. With it,
    the prompt is processed once and each step feeds only the newest token. Both give the same
    logits (up to float rounding), hence the same tokens. Once the context is longer than
    ``block_size`` the oldest tokens drop out and every position shifts, so the cached keys are
    stale: the cache is then rebuilt from the last ``block_size`` tokens at each step, which is
    exactly what the full recomputation does (a model with relative positions could keep it).

    Args:
        model: a :class:`GPT` (put in eval mode here).
        idx: prompt ids ``(batch, n)``, ``n >= 1``.
        max_new_tokens: how many tokens to add.
        temperature, generator, top_k, top_p: as :func:`sample_next_token`.
        use_cache: use a :class:`KVCache`.

    Returns:
        ``(batch, n + max_new_tokens)`` token ids.
    """
    if idx.dim() != 2 or idx.shape[1] < 1:
        raise ValueError(f"idx must be a (batch, n >= 1) prompt; got shape {tuple(idx.shape)}")
    model.eval()
    with torch_threads():
        return _generate(model, idx, max_new_tokens, temperature, generator, use_cache, top_k, top_p)


def _generate(model, idx, max_new_tokens, temperature, generator, use_cache, top_k=0, top_p=1.0):
    block = model.config.block_size
    cache = None
    for _ in range(max_new_tokens):
        if not use_cache:
            logits, _ = model(idx[:, -block:])
        elif cache is not None and cache.length < block:
            logits, _ = model(idx[:, -1:], cache=cache)  # only the newest token
        else:  # first step, or the window is full: (re)fill the cache from the last block tokens
            cache = KVCache()
            logits, _ = model(idx[:, -block:], cache=cache)
        next_token = sample_next_token(logits[:, -1], temperature, generator, top_k, top_p)  # (batch,)
        idx = torch.cat([idx, next_token[:, None]], dim=1)
    return idx

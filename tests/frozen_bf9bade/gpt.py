# Frozen snapshot of attention_course/gpt.py at commit bf9bade, kept as the reference of
# tests/test_refactor_equivalence.py. Do not edit (see __init__.py).
"""A small character-level GPT with a KV cache (Chapter 6), as it was before it used the package's
one Transformer block and one attention: its own ``CausalSelfAttention`` (a packed ``qkv`` and a
``proj`` ``nn.Linear``) and ``Block``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from .env import torch_threads
from .multi_head import merge_heads, split_heads
from .self_attention import causal_mask, scaled_dot_product_attention
from .transformer import PositionwiseMLP


@dataclass
class GPTConfig:
    """Sizes of :class:`GPT` (defaults: nanoGPT's CPU character-level recipe)."""

    vocab_size: int
    block_size: int = 64  # longest context, in tokens
    n_layer: int = 4
    n_head: int = 4
    d_model: int = 128


@dataclass
class KVCache:
    """Per-layer keys and values ``(batch, n_head, length, d_head)`` of the tokens seen so far."""

    keys: list = field(default_factory=list)
    values: list = field(default_factory=list)

    @property
    def length(self) -> int:
        """Number of cached positions."""
        return 0 if not self.keys else self.keys[0].shape[2]


class CausalSelfAttention(nn.Module):
    """Causal multi-head self-attention with an optional KV cache."""

    def __init__(self, d_model: int, n_head: int):
        super().__init__()
        if d_model % n_head:
            raise ValueError(f"n_head={n_head} must divide d_model={d_model}")
        self.n_head = n_head
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0,
                need_weights: bool = False):
        """``x``: ``(batch, n_new, d_model)``; ``(output, weights or None)``."""
        q, k, v = self.qkv(x).split(x.shape[-1], dim=-1)  # 3 x (batch, n_new, d_model)
        q, k, v = (split_heads(t, self.n_head) for t in (q, k, v))  # (batch, h, n_new, d_head)
        if cache is not None:
            if len(cache.keys) > layer:  # append the new keys/values to the stored ones
                k = torch.cat([cache.keys[layer], k], dim=2)  # (batch, h, n_total, d_head)
                v = torch.cat([cache.values[layer], v], dim=2)
                cache.keys[layer], cache.values[layer] = k, v
            else:
                cache.keys.append(k)
                cache.values.append(v)
        n_new, n_total = q.shape[2], k.shape[2]
        # new token i sits at absolute position n_total - n_new + i: it may see keys 0..that
        mask = causal_mask(n_total, x.device)[n_total - n_new:]  # (n_new, n_total)
        if need_weights:
            out, weights = scaled_dot_product_attention(q, k, v, mask)
        else:
            out, weights = F.scaled_dot_product_attention(q, k, v, attn_mask=mask), None
        return self.proj(merge_heads(out)), weights


class Block(nn.Module):
    """Pre-norm GPT block: ``x + attn(LN(x))`` then ``x + MLP(LN(x))``."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(config.d_model), nn.LayerNorm(config.d_model)
        self.attn = CausalSelfAttention(config.d_model, config.n_head)
        self.mlp = PositionwiseMLP(config.d_model)

    def forward(self, x, cache=None, layer=0, need_weights=False):
        a, weights = self.attn(self.ln1(x), cache, layer, need_weights)
        x = x + a
        return x + self.mlp(self.ln2(x)), weights


class GPT(nn.Module):
    """Decoder-only Transformer language model (GPT-2 layout, Radford et al. 2019)."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.tok_emb = nn.Embedding(config.vocab_size, config.d_model)
        self.pos_emb = nn.Embedding(config.block_size, config.d_model)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.d_model)
        self.head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.head.weight = self.tok_emb.weight  # weight tying (Press & Wolf 2017)
        self.apply(self._init)
        for name, p in self.named_parameters():  # GPT-2's scaled init of residual projections
            if name.endswith(("proj.weight", "fc2.weight")):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init(module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, 0.0, 0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None,
                cache: KVCache | None = None, need_weights: bool = False):
        """``(logits, loss)``, and with ``need_weights`` every layer's attention weights."""
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
            x, weights = block(x, cache, layer, need_weights)
            all_weights.append(weights)
        logits = self.head(self.ln_f(x))  # (batch, n, vocab)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        if need_weights:
            return logits, loss, torch.stack(all_weights)
        return logits, loss


def sample_next_token(logits: torch.Tensor, temperature: float = 1.0,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw the next token from ``softmax(logits / temperature)`` (argmax for temperature 0)."""
    if logits.dim() != 2:
        raise ValueError(f"logits must be (batch, vocab); got shape {tuple(logits.shape)}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0; got {temperature}")
    if temperature == 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits / temperature, dim=-1)  # (batch, vocab)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]


@torch.no_grad()
def generate(model: GPT, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
             generator: torch.Generator | None = None, use_cache: bool = True) -> torch.Tensor:
    """Autoregressive decoding with a KV cache: ``(batch, n + max_new_tokens)`` token ids."""
    if idx.dim() != 2 or idx.shape[1] < 1:
        raise ValueError(f"idx must be a (batch, n >= 1) prompt; got shape {tuple(idx.shape)}")
    model.eval()
    with torch_threads():
        return _generate(model, idx, max_new_tokens, temperature, generator, use_cache)


def _generate(model, idx, max_new_tokens, temperature, generator, use_cache):
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
        next_token = sample_next_token(logits[:, -1], temperature, generator)  # (batch,)
        idx = torch.cat([idx, next_token[:, None]], dim=1)
    return idx


def get_batch(data: torch.Tensor, block_size: int, batch_size: int, generator: torch.Generator):
    """Random windows of ``data``: inputs ``(batch, block)`` and targets shifted by one."""
    start = torch.randint(len(data) - block_size - 1, (batch_size,), generator=generator)
    x = torch.stack([data[s:s + block_size] for s in start.tolist()])
    y = torch.stack([data[s + 1:s + 1 + block_size] for s in start.tolist()])
    return x, y


@torch.no_grad()
def evaluate(model: GPT, data: torch.Tensor, max_windows: int | None = None, batch_size: int = 256) -> float:
    """Mean next-token cross-entropy (nats per character) over non-overlapping windows of ``data``."""
    model.eval()
    with torch_threads():
        return _evaluate(model, data, max_windows, batch_size)


def _evaluate(model, data, max_windows, batch_size):
    block = model.config.block_size
    n = (len(data) - 1) // block
    if max_windows is not None:
        n = min(n, max_windows)
    x = data[: n * block].view(n, block)
    y = data[1: n * block + 1].view(n, block)
    total = 0.0
    for s in range(0, n, batch_size):
        _, loss = model(x[s:s + batch_size], y[s:s + batch_size])
        total += loss.item() * len(x[s:s + batch_size])
    return total / n


def train_gpt(model: GPT, train_data: torch.Tensor, val_data: torch.Tensor, steps: int = 2000,
              batch_size: int = 12, lr: float = 1e-3, min_lr: float = 1e-4, warmup: int = 100,
              eval_every: int = 250, eval_windows: int = 200, seed: int = 0) -> dict:
    """Train with AdamW and a warm-up + cosine learning-rate schedule (nanoGPT's CPU recipe).

    (The snapshot drops the original's progress bar and timing.) Returns ``history``: ``step``,
    ``train_loss``, ``val_loss``, lists, every ``eval_every`` steps and at the end.
    """
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.99), weight_decay=0.1)

    def rate(step):
        if step < warmup:
            return lr * (step + 1) / warmup
        progress_ = (step - warmup) / max(1, steps - warmup)
        return min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * progress_))

    history = {"step": [], "train_loss": [], "val_loss": []}
    with torch_threads():
        _train_loop(model, train_data, val_data, steps, batch_size, eval_every, eval_windows,
                    optimizer, rate, generator, history)
    history["step"].append(steps)
    history["train_loss"].append(evaluate(model, train_data, eval_windows))
    history["val_loss"].append(evaluate(model, val_data, eval_windows))
    model.eval()
    return history


def _train_loop(model, train_data, val_data, steps, batch_size, eval_every, eval_windows, optimizer,
                rate, generator, history):
    for step in range(steps):
        if step % eval_every == 0 or step == steps - 1:
            history["step"].append(step)
            history["train_loss"].append(evaluate(model, train_data, eval_windows))
            history["val_loss"].append(evaluate(model, val_data, eval_windows))
        model.train()
        for group in optimizer.param_groups:
            group["lr"] = rate(step)
        x, y = get_batch(train_data, model.config.block_size, batch_size, generator)
        _, loss = model(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

"""A small character-level GPT trained on a CPU, with a KV cache (Chapter 6).

Decoder-only Transformer as in GPT-2 (Radford et al. 2019): token + learned position
embeddings, pre-norm blocks of causal multi-head self-attention and a GELU MLP, a final
LayerNorm, and an output layer tied to the token embedding. The sizes follow nanoGPT's CPU
recipe for character-level Shakespeare (4 layers, 4 heads, width 128, context 64).

Training text: Debian's ``fortunes`` package (``/usr/share/games/fortunes``, BSD fortune(6)
quotations: English prose, poems, jokes, ~2.4 MB), which is installable offline both here and in
Colab with ``apt-get install fortunes``.

KV cache (key/value cache): when generating token t+1 the keys and values of tokens 1..t do not
change (the mask stops them from seeing the future), so each layer keeps them and the new token
only computes its own query, key and value: one row of attention instead of the whole matrix.
"""
from __future__ import annotations

import math
import time
from dataclasses import InitVar, dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from .env import torch_threads
from .multi_head import KVCache, MultiHeadSelfAttention
from .transformer import TransformerBlock

__all__ = ["FORTUNE_DIR", "FORTUNE_FILES", "load_fortunes", "CharTokenizer", "split_quotes",
           "GPTConfig", "KVCache", "GPT", "sample_next_token", "generate",
           "get_batch", "evaluate", "train_gpt", "clip_gradients", "ngram_baseline"]

FORTUNE_DIR = Path("/usr/share/games/fortunes")
# Every text file of Debian's `fortunes` package except `ascii-art` (pictures, not language).
FORTUNE_FILES = (
    "art", "computers", "cookie", "debian", "definitions", "disclaimer", "drugs", "education",
    "ethnic", "food", "fortunes", "goedel", "humorists", "kids", "knghtbrd", "law", "linux",
    "linuxcookie", "literature", "love", "magic", "medicine", "men-women", "miscellaneous", "news",
    "paradoxum", "people", "perl", "pets", "platitudes", "politics", "pratchett", "riddles",
    "science", "songs-poems", "sports", "startrek", "tao", "translate-me", "wisdom", "work", "zippy",
)


def load_fortunes(directory: str | Path | None = None) -> list[str]:
    """The quotations of Debian's ``fortunes`` package, one string per quotation.

    Files hold quotations separated by lines containing only ``%``.

    Args:
        directory: where the files are (default ``/usr/share/games/fortunes``).

    Returns:
        A list of quotations (stripped, non-empty), in file order.

    Raises:
        FileNotFoundError: if none of the files is there (install them with
            ``apt-get install fortunes``; the chapter's Colab cell does this).
    """
    directory = Path(directory or FORTUNE_DIR)
    quotes = []
    for name in FORTUNE_FILES:
        path = directory / name
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        quotes += [q.strip("\n") for q in text.split("\n%\n") if q.strip()]
    if not quotes:
        raise FileNotFoundError(f"no fortune files in {directory}: run `apt-get install fortunes`")
    return quotes


def split_quotes(quotes: list[str], every: int = 10) -> tuple[str, str]:
    """Deterministic train/validation split: every ``every``-th quotation goes to validation.

    Quotations are joined with a blank line between them. Taking every tenth quotation (rather
    than the last tenth of the text) gives both parts the same mix of topics.

    Returns:
        ``(train_text, val_text)``.
    """
    val = [q for i, q in enumerate(quotes) if i % every == every - 1]
    train = [q for i, q in enumerate(quotes) if i % every != every - 1]
    return "\n\n".join(train) + "\n\n", "\n\n".join(val) + "\n\n"


class CharTokenizer:
    """Characters as tokens: the vocabulary is the sorted set of characters of a text.

    Characters missing from the vocabulary are encoded as ``unknown`` (default: a space).
    """

    def __init__(self, text: str, unknown: str = " "):
        self.chars = sorted(set(text) | {unknown})
        self.index = {c: i for i, c in enumerate(self.chars)}
        self.unknown = self.index[unknown]

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> torch.Tensor:
        """``str`` -> int64 tensor ``(len(text),)``."""
        return torch.tensor([self.index.get(c, self.unknown) for c in text], dtype=torch.long)

    def decode(self, ids) -> str:
        """Token ids (any iterable of ints) -> ``str``."""
        return "".join(self.chars[int(i)] for i in ids)


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


def sample_next_token(logits: torch.Tensor, temperature: float = 1.0,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw the next token from ``softmax(logits / temperature)``.

    The temperature divides the *logits* (before the softmax); ``temperature == 0`` means
    greedy (argmax).

    Args:
        logits: ``(batch, vocab)``.
        temperature: >= 0.
        generator: optional ``torch.Generator`` for repeatable draws.

    Returns:
        int64 ``(batch,)``.

    Raises:
        ValueError: if ``temperature`` < 0 or ``logits`` is not 2-D.
    """
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
        temperature, generator: as :func:`sample_next_token`.
        use_cache: use a :class:`KVCache`.

    Returns:
        ``(batch, n + max_new_tokens)`` token ids.
    """
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
    """Mean next-token cross-entropy (nats per character) over non-overlapping windows of ``data``.

    Args:
        max_windows: use only the first this many windows (``None``: all of them).
    """
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
              eval_every: int = 250, eval_windows: int = 200, seed: int = 0,
              progress: bool = True) -> dict:
    """Train with AdamW and a warm-up + cosine learning-rate schedule (nanoGPT's CPU recipe).

    A fixed number of ``steps`` (not a time budget), so the result does not depend on the
    machine's load.

    Returns:
        ``history``: ``step``, ``train_loss``, ``val_loss`` (lists, every ``eval_every`` steps,
        on the first ``eval_windows`` windows of each set), ``seconds`` (training time only).
    """
    from tqdm.auto import tqdm

    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.99), weight_decay=0.1)

    def rate(step):
        if step < warmup:
            return lr * (step + 1) / warmup
        progress_ = (step - warmup) / max(1, steps - warmup)
        return min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * progress_))

    history = {"step": [], "train_loss": [], "val_loss": [], "seconds": 0.0}
    bar = tqdm(range(steps), desc="training", disable=not progress)
    seconds = 0.0
    with torch_threads():
        _train_loop(model, train_data, val_data, steps, batch_size, eval_every, eval_windows,
                    optimizer, rate, generator, history, bar)
    bar.close()
    history["step"].append(steps)
    history["train_loss"].append(evaluate(model, train_data, eval_windows))
    history["val_loss"].append(evaluate(model, val_data, eval_windows))
    model.eval()
    return history


def clip_gradients(model: GPT, max_norm: float = 1.0) -> torch.Tensor:
    """``clip_grad_norm_``, with the norm summed over GPT-2's grouping of the attention's parameters.

    Scaling every gradient by ``min(1, max_norm / norm)`` does not depend on how the numbers are
    grouped into tensors, but the float rounding of the total norm does. The attention used to be a
    packed ``qkv`` and a ``proj`` ``nn.Linear``; this sums the norm over those same tensors
    (``cat([W_q, W_k, W_v], 1).T``, ``cat([b_q, b_k, b_v])``, ``W_o.T``, ``b_o``), in the same order,
    so that training gives the same model, to the last bit, as before the package had one attention.

    Returns:
        The total gradient norm before clipping.
    """
    params = dict(model.named_parameters())
    grouped, done = [], set()
    for name, p in params.items():
        if name in done or p.grad is None:
            continue
        if name.endswith("attn.W_q"):
            prefix = name[: -len("W_q")]
            g = {k: params[prefix + k].grad for k in ("W_q", "W_k", "W_v", "W_o", "b_q", "b_k", "b_v", "b_o")}
            grouped += [torch.cat([g["W_q"].T, g["W_k"].T, g["W_v"].T]), torch.cat([g["b_q"], g["b_k"], g["b_v"]]),
                        g["W_o"].T.contiguous(), g["b_o"]]
            done |= {prefix + k for k in g}
        else:
            grouped.append(p.grad)
    if not hasattr(torch.nn.utils, "get_total_norm"):  # PyTorch < 2.6: the plain grouping
        return torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    total = torch.nn.utils.get_total_norm(grouped)
    torch.nn.utils.clip_grads_with_norm_(model.parameters(), max_norm, total)
    return total


def _train_loop(model, train_data, val_data, steps, batch_size, eval_every, eval_windows, optimizer,
                rate, generator, history, bar):
    seconds = 0.0
    for step in bar:
        if step % eval_every == 0 or step == steps - 1:
            history["step"].append(step)
            history["train_loss"].append(evaluate(model, train_data, eval_windows))
            history["val_loss"].append(evaluate(model, val_data, eval_windows))
            bar.set_postfix(val=f"{history['val_loss'][-1]:.3f}")
        start = time.perf_counter()
        model.train()
        for group in optimizer.param_groups:
            group["lr"] = rate(step)
        x, y = get_batch(train_data, model.config.block_size, batch_size, generator)
        _, loss = model(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clip_gradients(model, 1.0)
        optimizer.step()
        seconds += time.perf_counter() - start
        history["seconds"] = seconds


def ngram_baseline(train_data: torch.Tensor, val_data: torch.Tensor, vocab_size: int, order: int = 1) -> float:
    """Validation cross-entropy (nats/char) of a unigram (``order=1``) or bigram (``order=2``)
    model counted on the training text, with add-one smoothing: what a model gets without
    looking further back than ``order - 1`` characters.
    """
    if order == 1:
        counts = torch.bincount(train_data, minlength=vocab_size).double() + 1
        logp = (counts / counts.sum()).log()
        return float(-logp[val_data].mean())
    if order == 2:
        pair = train_data[:-1] * vocab_size + train_data[1:]
        counts = torch.bincount(pair, minlength=vocab_size ** 2).double().view(vocab_size, vocab_size) + 1
        logp = (counts / counts.sum(1, keepdim=True)).log()
        return float(-logp[val_data[:-1], val_data[1:]].mean())
    raise ValueError(f"order must be 1 or 2; got {order}")

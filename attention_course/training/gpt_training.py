"""Training and evaluating the small GPT of Chapter 6: batches, loss, AdamW with warm-up and cosine decay.

nanoGPT's CPU recipe (Karpathy 2022): random windows of the text, AdamW, a linear warm-up then a
cosine decay of the learning rate, gradients clipped to norm 1. Unigram and bigram baselines say
what a loss means.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import torch

from attention_course.env import cache_root, torch_threads
from attention_course.models.gpt import GPT
from attention_course.training.loop import Recipe, cache_key, read_cache, run_steps, tensors_digest, write_cache

__all__ = ["get_batch", "evaluate", "train_gpt", "clip_gradients", "ngram_baseline"]


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
              progress: bool = True, use_cache: bool = True, threads: int | None = 1) -> dict:
    """Train with AdamW and a warm-up + cosine learning-rate schedule (nanoGPT's CPU recipe).

    A fixed number of ``steps`` (not a time budget), so the result does not depend on the
    machine's load. Training is deterministic (seeded batches, one thread), so the trained weights
    are cached under ``cache_root()/gpt``, keyed by the model's configuration and initial weights,
    the data, every argument here, the torch version and the thread count: a second run loads
    exactly what retraining would produce (and the global random state training left behind).

    Args:
        model: the GPT to train in place (its initial weights are part of the cache key).
        train_data, val_data: token ids ``(n,)``.
        use_cache: read and write the cache.
        threads: ``torch.set_num_threads`` during training (``None`` leaves it; one thread is the
            default for the reason given in :func:`attention_course.env.torch_threads`). Evaluation
            runs on one thread either way.

    Returns:
        ``history``: ``step``, ``train_loss``, ``val_loss`` (lists, every ``eval_every`` steps,
        on the first ``eval_windows`` windows of each set), ``seconds`` (training time only, of the
        run that trained it), ``cached`` (True when loaded from the cache).
    """
    settings = dict(steps=steps, batch_size=batch_size, lr=lr, min_lr=min_lr, warmup=warmup, eval_every=eval_every,
                    eval_windows=eval_windows, seed=seed)
    with torch_threads(threads):
        path = _cache_file(model, train_data, val_data, settings)
        stored = read_cache(path) if use_cache else None
        if stored is not None:
            model.load_state_dict(stored["state"])
            torch.set_rng_state(stored["rng_state"])
            model.eval()
            return {**stored["history"], "cached": True}
        history = _train(model, train_data, val_data, settings, progress)
    if use_cache:
        write_cache(path, {"state": model.state_dict(), "history": history, "rng_state": torch.get_rng_state()})
    return {**history, "cached": False}


def _cache_file(model: GPT, train_data: torch.Tensor, val_data: torch.Tensor, settings: dict) -> Path:
    """The trained model's file: what the trained weights depend on, hashed (call inside the thread
    setting training uses)."""
    fields = {"config": dataclasses.asdict(model.config),
              "tensors": tensors_digest([*model.state_dict().values(), train_data, val_data]), **settings}
    return cache_root() / "gpt" / f"gpt-{cache_key(fields, version=1)}.pt"


def _learning_rate(settings: dict):
    """Step (from 0) -> rate: a linear warm-up to ``lr``, then a cosine decay to ``min_lr``."""
    lr, min_lr, warmup, steps = (settings[k] for k in ("lr", "min_lr", "warmup", "steps"))

    def rate(step):
        if step < warmup:
            return lr * (step + 1) / warmup
        progress_ = (step - warmup) / max(1, steps - warmup)
        return min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * progress_))

    return rate


def _train(model: GPT, train_data: torch.Tensor, val_data: torch.Tensor, settings: dict, progress: bool) -> dict:
    """Train ``model`` in place; the history :func:`train_gpt` returns (without ``cached``)."""
    steps, eval_every, eval_windows = settings["steps"], settings["eval_every"], settings["eval_windows"]
    generator = torch.Generator().manual_seed(settings["seed"])
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings["lr"], betas=(0.9, 0.99), weight_decay=0.1)
    history = {"step": [], "train_loss": [], "val_loss": [], "seconds": 0.0}

    def record(step):
        history["step"].append(step)
        history["train_loss"].append(evaluate(model, train_data, eval_windows))
        history["val_loss"].append(evaluate(model, val_data, eval_windows))

    def before_step(step, bar):
        if step % eval_every == 0 or step == steps - 1:
            record(step)
            bar.set_postfix(val=f"{history['val_loss'][-1]:.3f}")

    def loss(model, batch):
        return model(*batch)[1], None

    recipe = Recipe(lambda step: get_batch(train_data, model.config.block_size, settings["batch_size"], generator),
                    loss, optimizer, learning_rate=_learning_rate(settings), clip=lambda m: clip_gradients(m, 1.0),
                    before_step=before_step, postfix_every=None)
    history["seconds"] = run_steps(model, model.config, recipe, range(steps), progress=progress).seconds
    record(steps)
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

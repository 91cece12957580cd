"""Training and running the encoder-decoders of Chapters 1 and 2: batches, a small on-disk cache, greedy translation.

The trained models are cached under :func:`cache_dir` (``$ATTENTION_COURSE_CACHE`` or
``~/.cache/attention_course/seq2seq``), keyed by the configuration, the data, the torch version, the
thread count and a layout version: the state dict's layout is part of the key, so a change of layout
never loads a stale file.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from attention_course.env import cache_root, torch_threads
from attention_course.models.seq2seq import ModelConfig, _Seq2Seq, build_model

__all__ = ["encode_batch", "batches", "cache_dir", "TrainResult", "train_model", "translate"]


def _pad(seqs, value=0):
    T = max(len(s) for s in seqs)
    out = torch.full((len(seqs), T), value, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.tensor(s, dtype=torch.long)
    return out


def encode_batch(pairs, source_vocab, target_vocab):
    """``(src, lengths, tgt_in, tgt_out)``: ids ``(B, T)``, ``(B,)``, ``(B, L)``, ``(B, L)``."""
    src = [source_vocab.encode(s, eos=False) for s, _ in pairs]
    tgt = [target_vocab.encode(t, bos=True, eos=True) for _, t in pairs]
    return (_pad(src), torch.tensor([len(s) for s in src]), _pad([t[:-1] for t in tgt]),
            _pad([t[1:] for t in tgt]))


def batches(n_items: int, lengths, batch_size: int, rng: np.random.Generator):
    """Index batches of similar length (less padding): shuffle, sort in pools of 50 batches."""
    order = rng.permutation(n_items)
    pool = 50 * batch_size
    out = []
    for k in range(0, n_items, pool):
        chunk = sorted(order[k:k + pool], key=lambda i: lengths[i])
        out += [chunk[j:j + batch_size] for j in range(0, len(chunk), batch_size)]
    rng.shuffle(out)
    return out


def cache_dir() -> Path:
    """``$ATTENTION_COURSE_CACHE`` or ``~/.cache/attention_course/seq2seq`` (outside the repository)."""
    return cache_root() / "seq2seq"


@dataclass
class TrainResult:
    """A trained model, its loss per step, checkpoints and the training time.

    Attributes:
        model: the trained model (eval mode).
        config: its :class:`ModelConfig`.
        losses: mean cross-entropy (nats per target character) of each step.
        checkpoints: ``{step: state_dict}`` saved during training.
        seconds: wall-clock seconds the training took when it ran.
        cached: True if loaded from the cache instead of trained now.
    """

    model: _Seq2Seq
    config: ModelConfig
    losses: list
    checkpoints: dict = field(default_factory=dict)
    seconds: float = 0.0
    cached: bool = False

    def at_checkpoint(self, step: int) -> _Seq2Seq:
        """A copy of the model with the weights it had after ``step`` updates."""
        model = copy.deepcopy(self.model)
        model.load_state_dict(self.checkpoints[step])
        return model.eval()


def training_cache_key(config, data, version: int) -> str:
    """Name of a cached model trained on the date data: 20 hex digits.

    The same ``config`` (a dataclass), data, torch version, thread count and ``version`` (raised
    when the training code changes what it produces) give the same key. Chapter 2's RNNsearch
    and Chapter 7's Transformer both use it.
    """
    text = json.dumps({"model": asdict(config), "data": data.config, "fingerprint": data.fingerprint(),
                       "torch": torch.__version__.split("+")[0], "threads": torch.get_num_threads(),
                       "version": version}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def train_model(data, config: ModelConfig = ModelConfig(), progress: bool = True,
                use_cache: bool = True, threads: int | None = 1) -> TrainResult:
    """Train one model on ``data.train`` for ``config.steps`` updates (Adam, teacher forcing).

    Deterministic: the same config, data, torch version and thread count give the
    same weights, so a cached result (under :func:`cache_dir`, keyed by all of these)
    is exactly what retraining would produce. Chapter 2 thereby reuses Chapter 1's
    model when it exists and retrains it identically otherwise.

    Args:
        data: a :class:`attention_course.data.dates.DateData`.
        config: sizes and budget.
        progress: show a ``tqdm.auto`` progress bar with the running loss.
        use_cache: read and write the cache.
        threads: ``torch.set_num_threads`` during training (``None`` leaves it). One
            thread is the default: these models run many small operations in sequence,
            which a second thread does not speed up, and on a busy machine the threads'
            synchronisation made training more than ten times slower (measured).
    """
    with torch_threads(threads):
        return _train(data, config, progress, use_cache)


def _train(data, config: ModelConfig, progress: bool, use_cache: bool) -> TrainResult:
    from tqdm.auto import tqdm

    path = cache_dir() / f"{'rnnsearch' if config.attention else 'encdec'}-{training_cache_key(config, data, version=3)}.pt"
    sv, tv = data.source_vocab, data.target_vocab
    model = build_model(config, len(sv), len(tv))
    if use_cache and path.is_file():
        stored = torch.load(path, weights_only=False)
        model.load_state_dict(stored["state"])
        return TrainResult(model.eval(), config, stored["losses"], stored["checkpoints"],
                           stored["seconds"], cached=True)

    rng = np.random.default_rng(config.seed)
    lengths = [len(s) for s, _ in data.train]
    optimiser = torch.optim.Adam(model.parameters(), lr=config.lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda k: 1.0 - k / config.steps)
    loss_fn = nn.CrossEntropyLoss(ignore_index=0)
    losses, checkpoints, queue = [], {}, []
    start = time.perf_counter()
    model.train()
    bar = tqdm(total=config.steps, desc="RNNsearch" if config.attention else "encoder-decoder",
               disable=not progress, leave=True)
    for step in range(config.steps + 1):
        if step in config.checkpoints:
            checkpoints[step] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if step == config.steps:
            break
        if not queue:
            queue = batches(len(data.train), lengths, config.batch_size, rng)
        src, src_len, tgt_in, tgt_out = encode_batch([data.train[i] for i in queue.pop()], sv, tv)
        logits, _ = model(src, src_len, tgt_in)
        loss = loss_fn(logits.reshape(-1, logits.shape[-1]), tgt_out.reshape(-1))
        optimiser.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        schedule.step()
        losses.append(loss.item())
        bar.update(1)
        if step % 20 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
    bar.close()
    seconds = time.perf_counter() - start
    checkpoints[config.steps] = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.eval()
    if use_cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        torch.save({"state": model.state_dict(), "losses": losses, "checkpoints": checkpoints,
                    "seconds": seconds, "config": asdict(config)}, tmp)
        tmp.replace(path)
    return TrainResult(model, config, losses, checkpoints, seconds)


def translate(model: _Seq2Seq, sources, data, batch_size: int = 250, max_len: int = 80):
    """Greedy translations of ``sources`` (strings) and their attention matrices.

    Returns:
        ``(translations, attentions)``: a list of strings and a list of ``(L_i, T_i)``
        NumPy arrays (output characters incl. ``EOS`` × source characters), or
        ``None`` entries for a model without attention.
    """
    model.eval()
    texts, attentions = [], []
    with torch_threads(1):  # small sequential operations: see train_model
        _translate(model, sources, data, batch_size, max_len, texts, attentions)
    return texts, attentions


def _translate(model, sources, data, batch_size, max_len, texts, attentions):
    sv, tv = data.source_vocab, data.target_vocab
    for k in range(0, len(sources), batch_size):
        chunk = list(sources[k:k + batch_size])
        ids = [sv.encode(s, eos=False) for s in chunk]
        lengths = torch.tensor([len(i) for i in ids])
        out, attention = model.greedy(_pad(ids), lengths, max_len=max_len,
                                      bos=tv.BOS, eos=tv.EOS)
        for b in range(len(chunk)):
            row = out[b].tolist()
            n_out = row.index(tv.EOS) + 1 if tv.EOS in row else len(row)
            texts.append(tv.decode(row))
            attentions.append(None if attention is None
                              else attention[b, :n_out, : len(ids[b])].numpy())

"""Training and running the encoder-decoders of Chapters 1 and 2: batches, training, greedy translation.

Training runs :func:`attention_course.training.loop.run_steps`. The trained models are cached under
:func:`cache_dir` (``$ATTENTION_COURSE_CACHE`` or ``~/.cache/attention_course/seq2seq``), keyed
(:func:`attention_course.training.loop.cache_key`) by the configuration, the data, the torch version,
the thread count and a layout version: the state dict's layout is part of the key, so a change of
layout never loads a stale file.
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from attention_course.env import cache_root, torch_threads
from attention_course.models.seq2seq import ModelConfig, _Seq2Seq, build_model
from attention_course.training.loop import Recipe, TrainResult, cache_key, cached_result, run_steps

__all__ = ["encode_batch", "batches", "cache_dir", "date_task_fields", "train_model", "translate"]


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


def date_task_fields(config, data) -> dict:
    """What a model trained on the date data depends on, for :func:`attention_course.training.loop.cache_key`.

    ``{"model": asdict(config), "data": data.config, "fingerprint": data.fingerprint()}``: the
    configuration (a dataclass), the arguments the data was made with and a hash of its pairs.
    Chapter 2's RNNsearch and Chapter 7's Transformer both use it.
    """
    return {"model": asdict(config), "data": data.config, "fingerprint": data.fingerprint()}


def train_model(data, config: ModelConfig = ModelConfig(), progress: bool = True,
                use_cache: bool = True, threads: int | None = 1) -> TrainResult:
    """Train one model on ``data.train`` for ``config.steps`` updates (Adam, teacher forcing).

    Adam with a learning rate falling linearly from ``config.lr`` to zero, gradients clipped to norm
    1, batches of similar length (:func:`batches`, seeded by ``config.seed``), the cross-entropy
    of the non-padding target characters.

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

    Returns:
        A :class:`attention_course.training.loop.TrainResult`: the model (eval mode), the loss of
        each step (nats per target character), the weights after each of ``config.checkpoints``
        and after the last step, the training's seconds.
    """
    with torch_threads(threads):
        path = _cache_file(config, data)
        model = build_model(config, len(data.source_vocab), len(data.target_vocab))
        return cached_result(path, use_cache, model, config, lambda: _train(data, config, model, progress))


def _cache_file(config: ModelConfig, data) -> Path:
    """The trained model's file (call inside the thread setting of training: the count is in the key)."""
    kind = "rnnsearch" if config.attention else "encdec"
    return cache_dir() / f"{kind}-{cache_key(date_task_fields(config, data), version=3)}.pt"


def _train(data, config: ModelConfig, model: _Seq2Seq, progress: bool) -> TrainResult:
    rng = np.random.default_rng(config.seed)
    lengths = [len(s) for s, _ in data.train]
    queue = []

    def batch(step):
        if not queue:
            queue.extend(batches(len(data.train), lengths, config.batch_size, rng))
        return encode_batch([data.train[i] for i in queue.pop()], data.source_vocab, data.target_vocab)

    loss_fn = nn.CrossEntropyLoss(ignore_index=0)

    def loss(model, batch):
        src, src_len, tgt_in, tgt_out = batch
        logits, _ = model(src, src_len, tgt_in)
        return loss_fn(logits.reshape(-1, logits.shape[-1]), tgt_out.reshape(-1)), None

    optimiser = torch.optim.Adam(model.parameters(), lr=config.lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda k: 1.0 - k / config.steps)
    recipe = Recipe(batch, loss, optimiser, schedule=schedule)
    result = run_steps(model, config, recipe, range(config.steps), config.checkpoints,
                       desc="RNNsearch" if config.attention else "encoder-decoder", progress=progress)
    result.checkpoints[config.steps] = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return result


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

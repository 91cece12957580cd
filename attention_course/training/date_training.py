"""Training Chapter 7's date Transformer, and translating with it.

Training (:func:`train_transformer`) follows §5.3-5.4 of Vaswani et al. 2017 (arXiv:1706.03762):
Adam with ``beta = (0.9, 0.98)``, ``eps = 1e-9``, the learning rate of Eq. 3 (:func:`noam_lr`,
``d_model^-0.5 · min(step^-0.5, step · warmup^-1.5)``; the course keeps its warm-up and replaces
its ``step^-0.5`` decay by a linear one to zero, :func:`scheduled_lr`) and label smoothing
(:func:`attention_course.maths.transformer.label_smoothing_loss`) over the non-padding target
positions. Like :func:`attention_course.training.seq2seq_training.train_model` it is deterministic for a given
configuration, data, torch version and thread count, and caches its result under
``cache_root()/date_transformer`` (:func:`attention_course.env.cache_root`). The model is
:class:`attention_course.models.date_transformer.DateTransformer`.

Shapes: ``B`` batch, ``L`` target length, ``V`` target vocabulary size.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from attention_course.env import cache_root, torch_threads
from attention_course.maths.transformer import label_smoothing_loss
from attention_course.models.date_transformer import DateTransformer, TransformerConfig, build_transformer, separator_ids
from attention_course.training.loop import Recipe, TrainResult, cache_key, cached_result, run_steps
from attention_course.training.seq2seq_training import batches, date_task_fields, encode_batch

__all__ = ["noam_lr", "scheduled_lr", "smoothed_target", "sequence_loss", "train_transformer", "translate"]


# ---------------------------------------------------------------------------
# The two training devices of §5.3-5.4


def noam_lr(step, d_model: int, warmup: int, use_warmup: bool = True):
    """The learning rate of Vaswani et al. 2017, Eq. 3, at optimiser step ``step`` (counted from 1).

    ``lrate = d_model^-0.5 · min(step^-0.5, step · warmup^-1.5)``: it grows linearly for the
    first ``warmup`` steps, peaks at ``(d_model · warmup)^-0.5`` and then decays like
    ``step^-0.5``. With ``use_warmup=False`` the ramp is removed and nothing else changed:
    ``d_model^-0.5 · max(step, warmup)^-0.5``, i.e. the peak rate from the first step, then
    the same decay (the ablation of Chapter 7).

    Args:
        step: a step number ``>= 1``, or a NumPy array of them.
        d_model: model width (> 0).
        warmup: warm-up steps (> 0).
        use_warmup: False for the schedule without its ramp.

    Returns:
        A float (or an array of the shape of ``step``).

    Raises:
        ValueError: if a step is below 1 or ``d_model``/``warmup`` is not positive.
    """
    s = np.asarray(step, dtype=float)
    if d_model <= 0 or warmup <= 0:
        raise ValueError(f"noam_lr: d_model and warmup must be positive; got {d_model}, {warmup}")
    if np.any(s < 1):
        raise ValueError(f"noam_lr: steps are counted from 1; got {step}")
    if use_warmup:
        lr = d_model ** -0.5 * np.minimum(s ** -0.5, s * warmup ** -1.5)
    else:
        lr = d_model ** -0.5 * np.maximum(s, warmup) ** -0.5
    return float(lr) if lr.ndim == 0 else lr


def scheduled_lr(step, config: "TransformerConfig"):
    """The learning rate :func:`train_transformer` uses at ``step`` (from 1) for ``config``.

    ``config.lr_factor`` times:

    * ``decay="inverse_sqrt"``: Eq. 3, :func:`noam_lr` (``use_warmup`` as there);
    * ``decay="linear"``: the same ramp to the same peak ``(d_model · warmup)^-0.5``, then a
      straight line from the peak at step ``warmup`` to zero after the last step (``config.steps``),
      like the schedule of :func:`attention_course.training.seq2seq_training.train_model` (Chapter 2) and BERT's
      (Devlin et al. 2019). Without the warm-up the rate is the peak until step ``warmup``.

    Args:
        step: a step number ``>= 1``, or a NumPy array of them.
        config: a :class:`TransformerConfig`.

    Returns:
        A float (or an array of the shape of ``step``).

    Raises:
        ValueError: for an unknown ``decay``, ``warmup >= steps`` with ``decay="linear"``, or as
            :func:`noam_lr`.
    """
    lr = noam_lr(step, config.d_model, config.warmup, config.use_warmup)
    if config.decay == "linear":
        if config.warmup >= config.steps:
            raise ValueError(f"scheduled_lr: warmup={config.warmup} must be below steps={config.steps}")
        s = np.asarray(step, dtype=float)
        peak = (config.d_model * config.warmup) ** -0.5
        ramp = np.minimum(1.0, s / config.warmup) if config.use_warmup else 1.0
        fall = np.clip((config.steps - s + 1) / (config.steps - config.warmup + 1), 0.0, 1.0)
        lr = peak * np.minimum(ramp, fall)
        lr = float(lr) if np.ndim(lr) == 0 else lr
    elif config.decay != "inverse_sqrt":
        raise ValueError(f"scheduled_lr: decay must be 'inverse_sqrt' or 'linear'; got {config.decay!r}")
    return config.lr_factor * lr


def smoothed_target(targets: torch.Tensor, vocab_size: int, epsilon: float) -> torch.Tensor:
    """The distribution label smoothing trains towards: ``(1 - epsilon) · onehot + epsilon / V``.

    Szegedy et al. 2016, §7; Vaswani et al. 2017, §5.4 (``epsilon = 0.1``). The cross-entropy
    against it is :func:`attention_course.maths.transformer.label_smoothing_loss`.

    Args:
        targets: ``(N,)`` class indices in ``[0, vocab_size)``.
        vocab_size: ``V``.
        epsilon: in ``[0, 1)``.

    Returns:
        ``(N, V)`` float tensor whose rows sum to 1.

    Raises:
        ValueError: if ``epsilon`` is outside ``[0, 1)`` or an index is out of range.
    """
    if not 0 <= epsilon < 1:
        raise ValueError(f"smoothed_target: epsilon must be in [0, 1); got {epsilon}")
    if targets.numel() and (int(targets.min()) < 0 or int(targets.max()) >= vocab_size):
        raise ValueError(f"smoothed_target: targets must lie in [0, {vocab_size})")
    out = torch.full((targets.shape[0], vocab_size), epsilon / vocab_size)
    out[torch.arange(targets.shape[0]), targets] += 1 - epsilon
    return out


def sequence_loss(logits: torch.Tensor, targets: torch.Tensor, epsilon: float = 0.0,
                  pad: int = 0) -> torch.Tensor:
    """Mean (label-smoothed) cross-entropy over the non-padding target positions.

    Args:
        logits: ``(B, L, V)``.
        targets: ``(B, L)`` ids; positions equal to ``pad`` are left out.
        epsilon: label smoothing (0 = plain cross-entropy).

    Returns:
        Scalar, nats per target character.
    """
    keep = targets != pad  # (B, L)
    return label_smoothing_loss(logits[keep], targets[keep], epsilon)  # (N, V), (N,)


# ---------------------------------------------------------------------------
# Training in the course's cached loop


def train_transformer(data, config: TransformerConfig = TransformerConfig(), progress: bool = True,
                      use_cache: bool = True, threads: int | None = 1,
                      desc: str = "Transformer") -> TrainResult:
    """Train a :class:`DateTransformer` on ``data.train`` for ``config.steps`` updates.

    Adam (``betas=(0.9, 0.98)``, ``eps=1e-9``, Vaswani et al. 2017, §5.3) with the learning rate
    :func:`scheduled_lr` (by default Eq. 3, :func:`noam_lr`) set before every step, label smoothing
    ``config.label_smoothing`` (§5.4),
    gradients clipped to norm 1, batches of similar length as Chapter 2
    (:func:`attention_course.training.seq2seq_training.batches`, seeded by ``config.seed``); the
    steps run in :func:`attention_course.training.loop.run_steps`.

    Deterministic: the same config, data, torch version and thread count give the same weights,
    so the cached result (``transformer-<key>.pt`` under ``cache_root()/date_transformer``,
    :func:`attention_course.env.cache_root`) is exactly what retraining would produce.

    Args:
        data: a :class:`attention_course.data.dates.DateData`.
        config: sizes, budget and the two training devices.
        progress: show a ``tqdm.auto`` progress bar with the running loss.
        use_cache: read and write the cache.
        threads: ``torch.set_num_threads`` during training (``None`` leaves it; one thread is
            the default for the reason given in :func:`attention_course.env.torch_threads`).
        desc: the progress bar's label.

    Returns:
        A :class:`attention_course.training.loop.TrainResult`: the model (eval mode), per step the
        objective (``losses``), the plain cross-entropy (``nll``, nats per target character) and the
        learning rate (``lrs``), the weights after each of ``config.checkpoints`` reached, the
        training's seconds.

    Raises:
        ValueError: if ``config.stop_after`` is not in ``1..config.steps`` (when it trains).
    """
    with torch_threads(threads):
        path = _cache_file(config, data)
        model = build_transformer(config, len(data.source_vocab), len(data.target_vocab), separator_ids(data))
        return cached_result(path, use_cache, model, config, lambda: _train(data, config, model, progress, desc),
                             stored=("losses", "nll", "lrs", "checkpoints", "seconds"))


def _cache_file(config: TransformerConfig, data) -> Path:
    """The trained model's file (call inside the thread setting of training: the count is in the key)."""
    return cache_root() / "date_transformer" / f"transformer-{cache_key(date_task_fields(config, data), version=1)}.pt"


def _train(data, config: TransformerConfig, model: DateTransformer, progress: bool, desc: str) -> TrainResult:
    rng = np.random.default_rng(config.seed)
    lengths = [len(s) for s, _ in data.train]
    n_steps = config.steps if config.stop_after is None else config.stop_after
    if not 1 <= n_steps <= config.steps:
        raise ValueError(f"train_transformer: stop_after={config.stop_after} must lie in 1..steps={config.steps}")
    queue = []

    def batch(step):
        if not queue:
            queue.extend(batches(len(data.train), lengths, config.batch_size, rng))
        return encode_batch([data.train[i] for i in queue.pop()], data.source_vocab, data.target_vocab)

    def loss(model, batch):
        src, src_len, tgt_in, tgt_out = batch
        logits, _ = model(src, src_len, tgt_in, need_weights=False)  # (B, L, V); fused attention
        objective = sequence_loss(logits, tgt_out, config.label_smoothing)
        with torch.no_grad():  # the plain cross-entropy, comparable with and without smoothing
            keep = tgt_out != 0
            nll = F.cross_entropy(logits[keep], tgt_out[keep])
        return objective, nll

    optimiser = torch.optim.Adam(model.parameters(), lr=1.0, betas=(0.9, 0.98), eps=1e-9)
    recipe = Recipe(batch, loss, optimiser, learning_rate=lambda step: scheduled_lr(step, config))
    return run_steps(model, config, recipe, range(1, n_steps + 1), config.checkpoints, desc=desc,
                     progress=progress)


# ---------------------------------------------------------------------------
# Inference


def translate(model: DateTransformer, sources, data, batch_size: int = 250, max_len: int = 80):
    """Greedy translations of ``sources`` (strings) and their cross-attention maps.

    The counterpart of :func:`attention_course.training.seq2seq_training.translate` for the Transformer.

    Returns:
        ``(translations, attentions)``: a list of strings and a list of NumPy arrays
        ``(dec_layers, h, L_i, T_i)`` (output characters incl. ``EOS`` × source characters).
    """
    sv, tv = data.source_vocab, data.target_vocab
    model.eval()
    texts, attentions = [], []
    with torch_threads(1):
        for k in range(0, len(sources), batch_size):
            chunk = list(sources[k:k + batch_size])
            ids = [sv.encode(s, eos=False) for s in chunk]
            lengths = torch.tensor([len(i) for i in ids])
            src = torch.zeros(len(ids), int(lengths.max()), dtype=torch.long)  # (B, T)
            for b, row in enumerate(ids):
                src[b, :len(row)] = torch.tensor(row)
            out, cross = model.greedy(src, lengths, max_len=max_len, bos=tv.BOS, eos=tv.EOS)
            for b in range(len(chunk)):
                row = out[b].tolist()
                n_out = row.index(tv.EOS) + 1 if tv.EOS in row else len(row)
                texts.append(tv.decode(row))
                attentions.append(cross[b, :, :, :n_out, :len(ids[b])].numpy())
    return texts, attentions

"""The one cached, deterministic training loop behind Chapters 1-2, 6 and 7 (and Chapter 8's GPTs).

Each trainer (:func:`attention_course.training.seq2seq_training.train_model`,
:func:`attention_course.training.date_training.train_transformer`,
:func:`attention_course.training.gpt_training.train_gpt`) builds its model, says what its weights
depend on, and hands this module a :class:`Recipe`: its batches, its loss, its optimiser and its
learning-rate schedule. Everything else happens here, once:

* :func:`cache_key` names a trained model by what it depends on (plus the torch version and the
  thread count); :func:`tensors_digest` hashes tensors (initial weights, a text) for it;
* :func:`read_cache` and :func:`write_cache` load and store a trained model's file (the write goes to
  a temporary file that then replaces the target, so a reader never sees half a file);
* :func:`run_steps` is the step loop, with a ``tqdm`` progress bar: batch, loss, gradients, clipping,
  update, the checkpoints asked for, and the record of each step;
* :class:`TrainResult` is what a training run gives back; :func:`cached_result` loads it from the
  cache, or trains and stores it.

The loop draws no random numbers itself: given the same recipe (seeded batches) the same weights
come out, bit for bit, on the same machine, torch version and thread count.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["cache_key", "tensors_digest", "read_cache", "write_cache", "TrainResult", "cached_result",
           "Recipe", "run_steps", "clip_norm"]

#: Names :func:`cache_key` adds itself; the fields a trainer describes must not use them.
RESERVED_KEY_FIELDS = ("torch", "threads", "version")


# ---------------------------------------------------------------------------
# The cache


def cache_key(fields: dict, version: int) -> str:
    """Name of a cached trained model: 20 hex digits.

    The SHA-256 of ``fields`` with the torch version (without a ``+cpu``-style suffix), the current
    ``torch.get_num_threads()`` and ``version`` added, written as JSON with sorted keys. The same
    description on the same torch version and thread count gives the same key, so call it inside
    the thread setting training will use.

    Args:
        fields: what the trained weights depend on (JSON-serialisable: configurations as dicts,
            data fingerprints, :func:`tensors_digest` of initial weights, training settings).
        version: raised when the training code changes what it produces.

    Returns:
        ``str`` of 20 lowercase hex digits.

    Raises:
        ValueError: if ``fields`` uses one of :data:`RESERVED_KEY_FIELDS`.
        TypeError: if ``fields`` is not JSON-serialisable.
    """
    clash = [name for name in RESERVED_KEY_FIELDS if name in fields]
    if clash:
        raise ValueError(f"cache_key: fields must not contain {clash}; cache_key adds them itself")
    text = json.dumps({**fields, "torch": torch.__version__.split("+")[0], "threads": torch.get_num_threads(),
                       "version": version}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def tensors_digest(tensors) -> str:
    """SHA-256 (64 hex digits) of the bytes of ``tensors``, in order (any shapes and dtypes).

    For :func:`cache_key`: a model's initial weights and its data, which no configuration describes.
    """
    digest = hashlib.sha256()
    for tensor in tensors:
        digest.update(tensor.detach().contiguous().cpu().numpy().tobytes())
    return digest.hexdigest()


def read_cache(path: Path) -> dict | None:
    """The dict stored at ``path`` by :func:`write_cache` (or by the trainers before it), or ``None``
    if there is no such file."""
    if not path.is_file():
        return None
    return torch.load(path, weights_only=False)


def write_cache(path: Path, payload: dict) -> None:
    """Store ``payload`` (tensors, lists, numbers) at ``path`` with ``torch.save``, atomically.

    It is written to ``<path>.tmp<pid>`` first and then renamed onto ``path``, so another process
    (a second notebook, a benchmark) reads either no file or the whole file. Missing folders are
    created.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    torch.save(payload, tmp)
    tmp.replace(path)


# ---------------------------------------------------------------------------
# What a training run gives back


@dataclass
class TrainResult:
    """A trained model and its training record.

    Attributes:
        model: the trained model (eval mode).
        config: its configuration (a dataclass).
        losses: the training objective of each step (nats per target character; label-smoothed for
            a Transformer with ``label_smoothing > 0``).
        checkpoints: ``{step: state_dict}``, the weights after ``step`` updates, kept during training.
        seconds: wall-clock seconds the training took when it ran.
        cached: True if loaded from the cache instead of trained now.
        nll: the plain cross-entropy of each step's batch (nats per target character), kept where the
            objective is another (Chapter 7's label smoothing), so runs with and without it compare;
            empty otherwise.
        lrs: the learning rate of each step, kept by trainers that set it themselves every step
            (Chapter 7's Transformer); empty otherwise.
    """

    model: nn.Module
    config: Any
    losses: list
    checkpoints: dict = field(default_factory=dict)
    seconds: float = 0.0
    cached: bool = False
    nll: list = field(default_factory=list)
    lrs: list = field(default_factory=list)

    def at_checkpoint(self, step: int) -> nn.Module:
        """A copy of the model with the weights it had after ``step`` updates (eval mode).

        Raises:
            KeyError: if no checkpoint was kept at ``step``.
        """
        if step not in self.checkpoints:
            raise KeyError(f"no checkpoint at step {step}; kept: {sorted(self.checkpoints)}")
        model = copy.deepcopy(self.model)
        model.load_state_dict(self.checkpoints[step])
        return model.eval()


def cached_result(path: Path, use_cache: bool, model: nn.Module, config, train: Callable[[], TrainResult],
                  stored: tuple = ("losses", "checkpoints", "seconds")) -> TrainResult:
    """The :class:`TrainResult` stored at ``path``, or ``train()``'s, then stored there.

    The file holds ``{"state": state_dict, <each field in stored>, "config": asdict(config)}``.

    Args:
        path: the cache file (named with :func:`cache_key`).
        use_cache: False trains without reading or writing the file.
        model: the freshly built model, into which cached weights are loaded.
        config: the model's configuration (a dataclass).
        train: trains ``model`` and returns its result (called only on a cache miss).
        stored: the :class:`TrainResult` fields kept in the file besides the weights.

    Raises:
        KeyError: if the file lacks one of ``stored``.
    """
    found = read_cache(path) if use_cache else None
    if found is not None:
        model.load_state_dict(found["state"])
        return TrainResult(model.eval(), config, cached=True, **{name: found[name] for name in stored})
    result = train()
    if use_cache:
        write_cache(path, {"state": result.model.state_dict(), **{name: getattr(result, name) for name in stored},
                           "config": asdict(config)})
    return result


# ---------------------------------------------------------------------------
# The step loop


def clip_norm(max_norm: float = 1.0) -> Callable[[nn.Module], torch.Tensor]:
    """A :attr:`Recipe.clip`: ``nn.utils.clip_grad_norm_`` of all parameters to ``max_norm``."""
    return lambda model: nn.utils.clip_grad_norm_(model.parameters(), max_norm)


@dataclass
class Recipe:
    """What a trainer hands :func:`run_steps`: how to get a batch, the loss, the update.

    Attributes:
        batch: ``step -> batch`` (any object :attr:`loss` reads), drawn from the trainer's own seeded
            generator.
        loss: ``(model, batch) -> (objective, nll)``: the scalar tensor to minimise and, if it is
            not the plain cross-entropy, that cross-entropy (a scalar tensor, kept in
            :attr:`TrainResult.nll`), else ``None``.
        optimiser: the optimiser of the model's parameters.
        learning_rate: ``step -> rate``, set on every parameter group before each step and kept in
            :attr:`TrainResult.lrs`; ``None`` leaves the rate to :attr:`schedule`.
        schedule: a ``torch.optim.lr_scheduler`` stepped after each update, or ``None``.
        clip: ``model -> None``, clips the gradients before the update (:func:`clip_norm` by default).
        before_step: ``(step, bar) -> None`` run before each step and not timed (Chapter 6's
            evaluations), or ``None``.
        postfix_every: show the mean loss of the last this many steps on the bar after every step
            whose number is a multiple of it; ``None`` leaves the bar's postfix to :attr:`before_step`.
    """

    batch: Callable[[int], Any]
    loss: Callable[[nn.Module, Any], tuple]
    optimiser: torch.optim.Optimizer
    learning_rate: Callable[[int], float] | None = None
    schedule: Any = None
    clip: Callable[[nn.Module], Any] = field(default_factory=clip_norm)
    before_step: Callable[[int, Any], None] | None = None
    postfix_every: int | None = 20


def _state(model: nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _update(model: nn.Module, recipe: Recipe, step: int, result: TrainResult) -> None:
    """One optimiser step of ``model`` on ``recipe.batch(step)``; its loss, nll and rate go to ``result``."""
    model.train()
    if recipe.learning_rate is not None:
        lr = recipe.learning_rate(step)
        for group in recipe.optimiser.param_groups:
            group["lr"] = lr
        result.lrs.append(lr)
    objective, nll = recipe.loss(model, recipe.batch(step))
    recipe.optimiser.zero_grad(set_to_none=True)
    objective.backward()
    recipe.clip(model)
    recipe.optimiser.step()
    if recipe.schedule is not None:
        recipe.schedule.step()
    result.losses.append(objective.item())
    if nll is not None:
        result.nll.append(nll.item())


def run_steps(model: nn.Module, config, recipe: Recipe, steps: range, checkpoints=(), desc: str = "training",
              progress: bool = True) -> TrainResult:
    """Train ``model`` in place, one update per step of ``steps``, and return its record.

    ``steps`` numbers the updates the way the trainer's schedule counts them (``range(n)`` or
    ``range(1, n + 1)``); :attr:`Recipe.batch`, :attr:`Recipe.learning_rate` and
    :attr:`Recipe.before_step` get that number. Each update: ``model.train()``, the rate, a batch,
    the loss, ``zero_grad``, ``backward``, clipping, ``optimiser.step()``, the schedule. ``seconds``
    counts the updates only, not :attr:`Recipe.before_step`.

    Args:
        model: the model to train (left in eval mode).
        config: its configuration, kept in the result.
        recipe: batches, loss, optimiser and schedule.
        steps: the step numbers, one update each.
        checkpoints: numbers of updates after which to keep a copy of the weights (0: before the first).
        desc: the progress bar's label.
        progress: show a ``tqdm.auto`` bar (total ``len(steps)``).

    Returns:
        A :class:`TrainResult` with ``losses`` (and ``nll``, ``lrs`` if the recipe gives them), the
        ``checkpoints`` asked for and the training ``seconds``; ``cached`` False.
    """
    from tqdm.auto import tqdm

    result = TrainResult(model, config, [])
    keep = set(checkpoints)
    if 0 in keep:
        result.checkpoints[0] = _state(model)
    bar = tqdm(total=len(steps), desc=desc, disable=not progress, leave=True)
    for done, step in enumerate(steps, start=1):
        if recipe.before_step is not None:
            recipe.before_step(step, bar)
        start = time.perf_counter()
        _update(model, recipe, step, result)
        if done in keep:
            result.checkpoints[done] = _state(model)
        bar.update(1)
        if recipe.postfix_every and step % recipe.postfix_every == 0:
            bar.set_postfix(loss=f"{np.mean(result.losses[-recipe.postfix_every:]):.3f}")
        result.seconds += time.perf_counter() - start
    bar.close()
    model.eval()
    return result

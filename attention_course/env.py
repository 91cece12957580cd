"""Run-time setup shared by every notebook: seeding, the course's language, environment checks."""
from __future__ import annotations

import contextlib
import os
import random
import sys
from pathlib import Path

import numpy as np

__all__ = ["seed_everything", "in_colab", "torch_threads", "cache_root", "LANGUAGES", "course_language",
           "set_language"]

#: The languages the course speaks: English (the source) and simplified Chinese (the second edition).
LANGUAGES = ("en", "zh_CN")


def cache_root() -> Path:
    """Where trained models and converted checkpoints are kept between runs.

    ``$ATTENTION_COURSE_CACHE`` if set, else ``~/.cache/attention_course``: outside the
    repository, so a clone stays clean and a fresh runtime (Colab) simply trains again.
    """
    return Path(os.environ.get("ATTENTION_COURSE_CACHE") or Path.home() / ".cache" / "attention_course")


def course_language() -> str:
    """The language the exercise checks and explorers speak in this process: ``"en"`` or ``"zh_CN"``.

    ``$ATTENTION_COURSE_LANGUAGE`` if set (the Chinese notebooks' setup cell sets it with
    :func:`set_language`; the grader sets it from a submission's notebook metadata), else English.

    Raises:
        ValueError: if the variable names a language the course does not have.
    """
    language = os.environ.get("ATTENTION_COURSE_LANGUAGE") or LANGUAGES[0]
    if language not in LANGUAGES:
        raise ValueError(f"ATTENTION_COURSE_LANGUAGE={language!r}: the course speaks {', '.join(LANGUAGES)}")
    return language


def set_language(language: str) -> None:
    """Make the exercise checks and explorers of this process (and its subprocesses) speak ``language``.

    Raises:
        ValueError: if ``language`` is not one of :data:`LANGUAGES`.
    """
    if language not in LANGUAGES:
        raise ValueError(f"set_language({language!r}): the course speaks {', '.join(LANGUAGES)}")
    os.environ["ATTENTION_COURSE_LANGUAGE"] = language


def in_colab() -> bool:
    """True when running inside Google Colab."""
    return "google.colab" in sys.modules


def seed_everything(seed: int = 0) -> np.random.Generator:
    """Seed Python, NumPy and PyTorch so that a notebook's output is repeatable.

    Also limits PyTorch to deterministic algorithms where it can (``warn_only``), without
    its costly filling of new tensors with NaN, and sets ``PYTHONHASHSEED`` for any subprocess.

    Args:
        seed: a non-negative integer.

    Returns:
        A fresh ``numpy.random.Generator`` seeded with ``seed``, for code that
        prefers an explicit generator over the global state.
    """
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed_everything: seed must be a non-negative int; got {seed!r}")
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed)
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is in the requirements
        pass
    else:
        torch.manual_seed(seed)
        # torch.use_deterministic_algorithms(True, warn_only=True) minus its first line, which
        # imports torch.compile's configuration (1.5 s of CPU at every start, in every notebook
        # and every graded submission) to set a flag only torch.compile reads.
        set_deterministic = getattr(torch._C, "_set_deterministic_algorithms", None)
        if set_deterministic is None:  # pragma: no cover - a torch without the private setter
            torch.use_deterministic_algorithms(True, warn_only=True)
        else:
            set_deterministic(True, warn_only=True)
        # Deterministic mode also fills every new tensor with NaN by default, to expose
        # reads of uninitialised memory; on the CPU that doubled training time in
        # Chapter 6 and makes no result more repeatable. (torch >= 2.1)
        torch.utils.deterministic.fill_uninitialized_memory = False
    return np.random.default_rng(seed)


@contextlib.contextmanager
def torch_threads(threads: int | None = 1):
    """Run a block with ``torch.set_num_threads(threads)``; the previous count is restored on exit.

    The course's models are small: matrices of width 64-128, long chains of small
    operations. They are too small to split between threads, and on a busy 2-core
    machine two threads waiting for each other made a training step 10-20 times
    slower than one thread (measured). ``threads=None`` leaves the setting alone.
    """
    import torch

    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)

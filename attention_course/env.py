"""Run-time setup shared by every notebook: seeding and environment checks."""
from __future__ import annotations

import os
import random
import sys

import numpy as np

__all__ = ["seed_everything", "in_colab"]


def in_colab() -> bool:
    """True when running inside Google Colab."""
    return "google.colab" in sys.modules


def seed_everything(seed: int = 0) -> np.random.Generator:
    """Seed Python, NumPy and PyTorch so that a notebook's output is repeatable.

    Also limits PyTorch to deterministic algorithms where it can (``warn_only``) and
    sets ``PYTHONHASHSEED`` for any subprocess.

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
        torch.use_deterministic_algorithms(True, warn_only=True)
    return np.random.default_rng(seed)

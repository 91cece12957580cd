# Frozen snapshot of attention_course/env.py at commit bf9bade, kept as the reference of
# tests/test_refactor_equivalence.py. Do not edit (see __init__.py).
"""Run-time setup: the thread count the models run with."""
from __future__ import annotations

import contextlib


@contextlib.contextmanager
def torch_threads(threads: int | None = 1):
    """Run a block with ``torch.set_num_threads(threads)``; the previous count is restored on exit."""
    import torch

    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)

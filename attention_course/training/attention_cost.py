"""The cost of attention, measured: naive attention against PyTorch's fused kernel (Chapter 6).

Naive attention materialises the ``(n, n)`` score matrix and the ``(n, n)`` weight matrix of
every head, so its memory grows like ``n^2``. ``torch.nn.functional.scaled_dot_product_attention``
dispatches on a CPU to a FlashAttention-style kernel (Dao et al. 2022) that walks over blocks of
keys with an online softmax and never stores the whole matrix: its extra memory grows like ``n``.
Both still do ``O(n^2 d)`` arithmetic.

Peak memory is measured as the growth of the process's resident memory (Linux's ``VmHWM``
high-water mark, reset before each call): it sees every allocation, inside PyTorch's fused
kernels too, which an allocation profiler of Python objects (``tracemalloc``) cannot.
"""
from __future__ import annotations

import math
import re
import time
from pathlib import Path

import torch
from torch.nn import functional as F

from attention_course.env import torch_threads
from attention_course.maths.self_attention import causal_mask, scaled_dot_product_attention

__all__ = ["naive_attention", "fused_attention", "peak_memory_bytes", "time_call",
           "measure_attention_cost"]


def naive_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = True) -> torch.Tensor:
    """``softmax(q k^T / sqrt(d) + mask) v`` as Chapter 4 writes it, storing the full score matrix.

    Calls :func:`attention_course.maths.self_attention.scaled_dot_product_attention`, so the cost
    measured is that of the course's own implementation.

    Args:
        q, k, v: ``(batch, heads, n, d)``.
        causal: mask the future.

    Returns:
        ``(batch, heads, n, d)``.
    """
    mask = causal_mask(q.shape[-2], device=q.device) if causal else None  # (n, n), True = may attend
    return scaled_dot_product_attention(q, k, v, mask)[0]


def fused_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = True) -> torch.Tensor:
    """The same maths with ``torch.nn.functional.scaled_dot_product_attention``."""
    return F.scaled_dot_product_attention(q, k, v, is_causal=causal)


def _status_bytes(key: str) -> int:
    text = Path("/proc/self/status").read_text()
    return int(re.search(key + r":\s+(\d+) kB", text).group(1)) * 1024


def _release_free_memory() -> None:
    """Give freed heap memory back to the system (glibc ``malloc_trim``), so that reusing it
    shows up again as resident memory."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def peak_memory_bytes(fn, *args) -> int | None:
    """Peak growth of the process's resident memory while ``fn(*args)`` runs, in bytes.

    Linux only: writing ``5`` to ``/proc/self/clear_refs`` resets the kernel's high-water mark
    of resident memory (``VmHWM``); after the call, ``VmHWM`` minus the resident memory before
    it is the most the call had alive at once, whatever allocated it (PyTorch's kernels
    included). Large tensors are returned to the system when freed, so successive
    measurements do not hide each other (freed heap memory is handed back first with glibc's
    ``malloc_trim``); the reading is rounded to the page size.

    Returns:
        Bytes, or ``None`` where ``/proc`` is not available (macOS, Windows).
    """
    _release_free_memory()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        before = _status_bytes("VmRSS")
    except (OSError, AttributeError):
        return None
    with torch.no_grad():
        out = fn(*args)
        del out
    return max(0, _status_bytes("VmHWM") - before)


def time_call(fn, *args, repeats: int = 3) -> float:
    """Best wall time in seconds of ``fn(*args)`` over ``repeats`` runs (after one warm-up)."""
    with torch.no_grad():
        fn(*args)
        best = math.inf
        for _ in range(repeats):
            start = time.perf_counter()
            fn(*args)
            best = min(best, time.perf_counter() - start)
    return best


def measure_attention_cost(lengths=(256, 512, 1024, 2048, 4096), heads: int = 4, d: int = 64,
                           repeats: int = 3, seed: int = 0, threads: int | None = 1) -> list[dict]:
    """Time and peak memory of naive and fused causal attention for each sequence length.

    Runs on ``threads`` CPU threads (default 1, restored afterwards; ``None``: leave as is), so
    that timings on a shared machine are not dominated by threads waiting for each other.

    Returns:
        One dict per length: ``n``, ``naive_s``, ``fused_s`` (seconds), ``naive_bytes``,
        ``fused_bytes`` (peak extra bytes, ``None`` without ``/proc``), ``matrix_bytes`` (one float32 ``heads x n x n``
        matrix, the size theory predicts for the naive version's largest tensor) and
        ``max_abs_diff`` between the two outputs.
    """
    with torch_threads(threads):
        return _measure(lengths, heads, d, repeats, seed)


def _measure(lengths, heads, d, repeats, seed):
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for n in lengths:
        q, k, v = (torch.randn(1, heads, n, d, generator=generator) for _ in range(3))
        with torch.no_grad():
            diff = (naive_attention(q, k, v) - fused_attention(q, k, v)).abs().max().item()
        rows.append(dict(
            n=n,
            naive_s=time_call(naive_attention, q, k, v, repeats=repeats),
            fused_s=time_call(fused_attention, q, k, v, repeats=repeats),
            naive_bytes=peak_memory_bytes(naive_attention, q, k, v),
            fused_bytes=peak_memory_bytes(fused_attention, q, k, v),
            matrix_bytes=heads * n * n * 4,
            max_abs_diff=diff,
        ))
    return rows

"""Chapter 8's explorer: tiled attention stepped block by block (front-end ``static/explorers/online_softmax.js``).

The maths is :mod:`attention_course.maths.online_softmax`; this module only packs a small example into an
:class:`~attention_course.views.explorer.Explorer`. The browser recomputes everything (float64) from the
saved ``q``, ``k`` and ``v``: every block size, every step's running maximum ``m``, running sum ``l``,
rescale factor and partial output, and naive attention beside it, with no kernel.
``tests/browser/test_online_softmax_explorer.py`` checks that JavaScript against
:func:`~attention_course.maths.online_softmax.tiled_attention`.
"""
from __future__ import annotations

import math

import torch

from attention_course.views.explorer import Explorer, say
from attention_course.maths.numerics import relative_error
from attention_course.maths.online_softmax import example, naive_attention, tiled_attention

__all__ = ["OnlineSoftmaxExplorer", "widget", "describe"]

MAX_QUERIES, MAX_KEYS, MAX_FEATURES = 6, 32, 16  # what the drawing has room for


class OnlineSoftmaxExplorer(Explorer, kind="online_softmax"):
    """Chapter 8's explorer (front-end: ``static/explorers/online_softmax.js``).

    Synced ``data``: ``{"q": (n, d_k), "k": (N, d_k), "v": (N, d_v)`` as nested lists of floats,
    ``"scale"``, ``"causal"``, ``"block_sizes"`` (the options of the block-size control),
    ``"query_labels"``, ``"key_labels"``, ``"value_labels"}``; ``controls``: ``{"block_size",
    "step", "query"}`` (``step`` 0-based: the state after that block).
    """


def _as_matrix(x, name: str) -> torch.Tensor:
    t = torch.as_tensor(x)
    if t.ndim != 2:
        raise ValueError(f"widget: {name} must be a matrix (one row per position); got shape {tuple(t.shape)}")
    if not t.is_floating_point():
        raise TypeError(f"widget: {name} must be floating point; got {t.dtype}")
    return t.detach().to("cpu", torch.float64)  # float32 -> float64 is exact: the page holds the same numbers


def describe(q, k, v, block_size: int, step: int = 0, query: int = 0, causal: bool = False,
             scale: float | None = None) -> str:
    """One paragraph saying what the explorer shows for these controls (its text alternative), in the course's language.

    Args:
        q ``(n, d_k)``, k ``(N, d_k)``, v ``(N, d_v)``; block_size, step (0-based block), query (row)
        as in :func:`widget`.
    """
    out, trace = tiled_attention(q, k, v, block_size, causal, scale)
    s = trace[step]
    blocks = len(trace)
    grew = bool(s.block > 0 and s.m[query] > s.m_old[query])
    text = say("online_softmax", "alt", n=q.shape[0], keys=k.shape[0], blocks=blocks, size=block_size, block=step + 1,
               start=s.start + 1, stop=s.stop, query=f"q{query + 1}", m=f"{s.m[query]:.2f}", l=f"{s.l[query]:.2f}")
    if s.block == 0:
        text += say("online_softmax", "alt_first")
    elif grew:
        text += say("online_softmax", "alt_grew", old=f"{s.m_old[query]:.2f}", m=f"{s.m[query]:.2f}",
                    rescale=f"{s.rescale[query]:.2f}")
    else:
        text += say("online_softmax", "alt_stays")
    naive = naive_attention(q, k, v, causal, scale)
    if step == blocks - 1:
        text += say("online_softmax", "alt_last", error=f"{relative_error(out, naive):.1e}")
    else:
        text += say("online_softmax", "alt_partial", error=f"{relative_error(s.output, naive):.2f}")
    return text


def widget(q=None, k=None, v=None, block_size: int = 4, causal: bool = False, scale: float | None = None,
           step: int = 0, query: int = 0, key_labels=None, block_sizes=None) -> OnlineSoftmaxExplorer:
    """The explorer of tiled attention with an online softmax, live in the browser (also in the static book).

    Args:
        q: queries ``(n, d_k)``, n <= 6; k: keys ``(N, d_k)``, N <= 32; v: values ``(N, d_v)``, d_v <= 16.
            Default: :func:`attention_course.maths.online_softmax.example` (3 queries, 12 keys, d_k 4, d_v 3).
            Any float dtype; the page holds them as float64 and computes in float64.
        block_size: the initial number of keys per block.
        causal: mask the future, query ``i`` at position ``N - n + i``.
        scale: multiplies the scores; default ``1 / sqrt(d_k)``.
        step: the initial block (0-based); query: the initial query row whose numbers the text reads out.
        key_labels: ``N`` names for the keys (default ``k1`` ... ``kN``).
        block_sizes: the block sizes offered (default 1 to N).

    Raises:
        ValueError: if the shapes do not fit (as :func:`~attention_course.maths.online_softmax.tiled_attention`),
            the example is larger than the drawing has room for, or a control is out of range.
    """
    if q is None and k is None and v is None:
        q, k, v = example()
    elif q is None or k is None or v is None:
        raise ValueError("widget: give all of q, k and v, or none of them (the default example)")
    q, k, v = _as_matrix(q, "q"), _as_matrix(k, "k"), _as_matrix(v, "v")
    naive_attention(q, k, v, causal, scale)  # checks the shapes, with the course's messages
    n, N, d_k, d_v = q.shape[0], k.shape[0], q.shape[1], v.shape[1]
    if n > MAX_QUERIES or N > MAX_KEYS or max(d_k, d_v) > MAX_FEATURES:
        raise ValueError(f"widget: the drawing has room for at most {MAX_QUERIES} queries, {MAX_KEYS} keys and "
                         f"{MAX_FEATURES} features; got q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}")
    block_sizes = list(range(1, N + 1)) if block_sizes is None else sorted({int(b) for b in block_sizes})
    if not block_sizes or min(block_sizes) < 1:
        raise ValueError(f"widget: block sizes must be positive integers; got {block_sizes}")
    if block_size not in block_sizes:
        raise ValueError(f"widget: block_size {block_size} is not among the options {block_sizes}")
    steps = math.ceil(N / block_size)
    if not (0 <= step < steps and 0 <= query < n):
        raise ValueError(f"widget: step must lie in [0, {steps - 1}] and query in [0, {n - 1}]; got {step}, {query}")
    key_labels = [f"k{j + 1}" for j in range(N)] if key_labels is None else [str(s) for s in key_labels]
    if len(key_labels) != N:
        raise ValueError(f"widget: {len(key_labels)} key labels for {N} keys")
    scale = 1.0 / math.sqrt(d_k) if scale is None else float(scale)
    data = {
        "q": q.tolist(), "k": k.tolist(), "v": v.tolist(), "scale": scale, "causal": bool(causal),
        "block_sizes": block_sizes, "query_labels": [f"q{i + 1}" for i in range(n)], "key_labels": key_labels,
        "value_labels": [f"o{c + 1}" for c in range(d_v)],
    }
    return OnlineSoftmaxExplorer(data=data, controls={"block_size": int(block_size), "step": int(step), "query": int(query)},
                                 alt=describe(q, k, v, block_size, step, query, causal, scale))

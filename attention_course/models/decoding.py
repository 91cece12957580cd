"""Greedy decoding, once for every encoder-decoder of the course (Chapters 1, 2 and 7).

The models share one contract: a ``step`` function takes the output written so far, ``BOS``
first, and returns the next position's logits and whatever attention the model wants kept. The
RNN decoders (:mod:`attention_course.models.seq2seq`) read only the newest id and carry their own
state; the Transformer (:mod:`attention_course.models.date_transformer`) reads the prefix, with a
:class:`attention_course.maths.multi_head.KVCache` so that a step costs one position's work. The
GPT's :func:`attention_course.models.gpt.generate` is a different contract (it samples, has no
``EOS``, and slides a window over a fixed context), so it keeps its own loop.
"""
from __future__ import annotations

from typing import Callable

import torch

__all__ = ["greedy_decode"]


def greedy_decode(step: Callable[[torch.Tensor], tuple[torch.Tensor, object]], batch: int, bos: int, eos: int,
                  max_len: int) -> tuple[torch.Tensor, list]:
    """Write the most likely id at every position until each row has written ``eos`` or ``max_len`` ids.

    Args:
        step: ``step(prefix)`` with ``prefix`` the ids so far ``(batch, t + 1)`` (``bos`` first)
            returns ``(logits, extra)``: the next position's logits ``(batch, V)`` and anything the
            caller keeps per step (attention weights).
        batch: number of rows ``B``.
        bos, eos: the target vocabulary's start and end ids.
        max_len: most ids to write (including ``eos``); at least 1.

    Returns:
        ``(ids, extras)``: ``(B, L')`` written ids (``L' <= max_len``; a row that has written ``eos``
        continues with padding, id 0) and the list of the ``L'`` steps' ``extra``.

    Raises:
        ValueError: if ``max_len < 1`` or ``batch < 1``.
    """
    if max_len < 1 or batch < 1:
        raise ValueError(f"greedy_decode: need max_len >= 1 and batch >= 1; got {max_len}, {batch}")
    done = torch.zeros(batch, dtype=torch.bool)
    out, extras = [], []
    for _ in range(max_len):
        prefix = torch.stack([torch.full((batch,), bos, dtype=torch.long)] + out, 1)  # (B, t + 1)
        logits, extra = step(prefix)
        y = logits.argmax(-1).masked_fill(done, 0)  # (B,)
        out.append(y)
        extras.append(extra)
        done |= y == eos
        if bool(done.all()):
            break
    return torch.stack(out, 1), extras

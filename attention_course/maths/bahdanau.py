"""Bahdanau attention, equation by equation: the reference functions of Chapters 1 and 2.

Bahdanau, Cho and Bengio 2015 (arXiv:1409.0473): the additive alignment model
``e_ij = v^T tanh(W_s s_{i-1} + W_h h_j)`` (Eq. 6, App. A.1.2), the weights
``alpha_ij = softmax_j(e_ij)`` over the real source positions (:func:`attention_course.maths.self_attention.masked_softmax`,
the package's one masked softmax), the context vector ``c_i = sum_j alpha_ij h_j`` (Eq. 5), one
decoder step ``s_i = f(s_{i-1}, y_{i-1}, c_i)`` (§3.1), the bidirectional annotations
``h_j = [forward h_j; backward h_j]`` (§3.2) and, for Chapter 1, the fixed-length context.

The exercises ask for these functions; :class:`attention_course.models.seq2seq.RNNsearch` calls
:func:`decoder_step` (hence :func:`additive_score`) at every step, and
:func:`attention_course.maths.scoring.additive_score` (Chapter 3) is this same score on NumPy arrays.

Shapes: ``B`` batch, ``T`` source length (padded), ``d_h`` encoder size per direction, ``d_s``
decoder state size, ``d_a`` alignment size, ``d_H = 2 d_h``.
"""
from __future__ import annotations

import torch
from torch import nn

from attention_course.maths.self_attention import length_mask, masked_softmax

__all__ = ["additive_score", "context_vector", "decoder_step",
           "bidirectional_annotations", "final_context"]


def additive_score(s_prev: torch.Tensor, H: torch.Tensor, W_s: torch.Tensor,
                   W_h: torch.Tensor, v: torch.Tensor, keys: torch.Tensor | None = None) -> torch.Tensor:
    """Bahdanau's alignment model ``e_ij = v^T tanh(W_s s_{i-1} + W_h h_j)`` for all ``j``.

    :class:`RNNsearch` calls this at every decoder step; ``W_h h_j`` does not depend on the step,
    so it computes ``keys = H @ W_h.T`` once per sentence and passes it in.

    Args:
        s_prev: decoder state ``s_{i-1}``, shape ``(B, d_s)``.
        H: encoder annotations, shape ``(B, T, d_H)``.
        W_s: ``(d_a, d_s)``; W_h: ``(d_a, d_H)``; v: ``(d_a,)``.
        keys: optional ``H @ W_h.T``, ``(B, T, d_a)``, computed beforehand.

    Returns:
        Scores ``e_i``, shape ``(B, T)``.

    Raises:
        ValueError: if the shapes do not fit together.
    """
    if s_prev.dim() != 2 or H.dim() != 3 or H.shape[0] != s_prev.shape[0]:
        raise ValueError(f"additive_score: expected s_prev (B, d_s) and H (B, T, d_H); "
                         f"got s_prev {tuple(s_prev.shape)}, H {tuple(H.shape)}")
    if (W_s.shape != (v.shape[0], s_prev.shape[1]) or W_h.shape != (v.shape[0], H.shape[2])
            or v.dim() != 1):
        raise ValueError(f"additive_score: expected W_s (d_a, {s_prev.shape[1]}), W_h (d_a, "
                         f"{H.shape[2]}), v (d_a,); got W_s {tuple(W_s.shape)}, W_h "
                         f"{tuple(W_h.shape)}, v {tuple(v.shape)}")
    query = s_prev @ W_s.T  # (B, d_a)
    if keys is None:
        keys = H @ W_h.T  # (B, T, d_a)
    return torch.tanh(query[:, None, :] + keys) @ v  # (B, T)


def context_vector(weights: torch.Tensor, H: torch.Tensor) -> torch.Tensor:
    """``c_i = sum_j alpha_ij h_j``: weights ``(B, T)`` and annotations ``(B, T, d_H)`` → ``(B, d_H)``.

    Raises:
        ValueError: if the batch or source lengths differ.
    """
    if weights.dim() != 2 or H.dim() != 3 or weights.shape != H.shape[:2]:
        raise ValueError(f"context_vector: expected weights (B, T) and H (B, T, d_H); got "
                         f"weights {tuple(weights.shape)}, H {tuple(H.shape)}")
    return torch.bmm(weights[:, None, :], H).squeeze(1)


def decoder_step(y_prev: torch.Tensor, s_prev: torch.Tensor, H: torch.Tensor,
                 mask: torch.Tensor, W_s: torch.Tensor, W_h: torch.Tensor, v: torch.Tensor,
                 cell: nn.GRUCell, keys: torch.Tensor | None = None):
    """One RNNsearch decoder step (Bahdanau et al. 2015, Eqs. 4-6).

    Scores with the *previous* state ``s_{i-1}``, normalises over the real source
    positions, reads the context vector and updates the state:
    ``s_i = cell([y_{i-1}; c_i], s_{i-1})``.

    Args:
        y_prev: embedding of the previous output symbol ``y_{i-1}``, ``(B, d_y)``.
        s_prev: ``s_{i-1}``, ``(B, d_s)``.
        H: annotations ``(B, T, d_H)``; mask: bool ``(B, T)``.
        W_s, W_h, v: alignment-model parameters (see :func:`additive_score`).
        cell: a ``GRUCell(d_y + d_H, d_s)``.
        keys: optional precomputed ``H @ W_h.T`` (see :func:`additive_score`).

    Returns:
        ``(s_i, c_i, alpha_i)`` of shapes ``(B, d_s)``, ``(B, d_H)``, ``(B, T)``.
    """
    if y_prev.dim() != 2 or y_prev.shape[0] != s_prev.shape[0]:
        raise ValueError(f"decoder_step: expected y_prev (B, d_y) for B = {s_prev.shape[0]}; "
                         f"got {tuple(y_prev.shape)}")
    alpha = masked_softmax(additive_score(s_prev, H, W_s, W_h, v, keys), mask)  # (B, T)
    c = context_vector(alpha, H)  # (B, d_H)
    s = cell(torch.cat([y_prev, c], dim=-1), s_prev)  # (B, d_s)
    return s, c, alpha


def bidirectional_annotations(x: torch.Tensor, lengths: torch.Tensor,
                              forward_cell: nn.GRUCell, backward_cell: nn.GRUCell) -> torch.Tensor:
    """``h_j = [forward h_j; backward h_j]`` step by step (Bahdanau et al. 2015, §3.2 / App. A.2.1).

    The forward RNN reads ``x_1 .. x_{T_x}``; the backward RNN reads ``x_{T_x} .. x_1``,
    starting at each sequence's **last real** position, not at the padding. Padding
    positions get zero annotations. (Slow and explicit; :class:`Encoder` computes the
    same with ``nn.GRU``.)

    Args:
        x: embedded source ``(B, T, d_x)``; lengths: ``(B,)`` real lengths.
        forward_cell, backward_cell: ``GRUCell(d_x, d_h)`` each.

    Returns:
        ``(B, T, 2 d_h)``.
    """
    B, T, _ = x.shape
    if lengths.shape != (B,) or int(lengths.min()) < 1 or int(lengths.max()) > T:
        raise ValueError(f"bidirectional_annotations: lengths must be (B,) = ({B},) in 1..{T}; "
                         f"got {tuple(lengths.shape)} {lengths.tolist()}")
    d_h = forward_cell.hidden_size
    real = length_mask(lengths, T).to(x.dtype)  # (B, T)
    fwd, bwd = [], [None] * T
    h = x.new_zeros(B, d_h)
    for t in range(T):
        h = forward_cell(x[:, t], h) * real[:, t, None]
        fwd.append(h)
    h = x.new_zeros(B, d_h)
    for t in reversed(range(T)):  # state stays zero until the last real position
        h = backward_cell(x[:, t], h) * real[:, t, None]
        bwd[t] = h
    return torch.cat([torch.stack(fwd, 1), torch.stack(bwd, 1)], dim=-1)


def final_context(encoder_outputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The output at each sequence's last **real** position: ``(B, T, d)`` → ``(B, d)``.

    For a one-way encoder this is the fixed-length context vector of Chapter 1.

    Raises:
        ValueError: if ``lengths`` is not ``(B,)`` with values in ``1..T``.
    """
    B, T = encoder_outputs.shape[:2]
    if encoder_outputs.dim() != 3 or lengths.shape != (B,):
        raise ValueError(f"final_context: expected outputs (B, T, d) and lengths (B,); got "
                         f"{tuple(encoder_outputs.shape)} and {tuple(lengths.shape)}")
    if int(lengths.min()) < 1 or int(lengths.max()) > T:
        raise ValueError(f"final_context: lengths must lie in 1..{T}; got {lengths.tolist()}")
    return encoder_outputs[torch.arange(B), lengths.long() - 1]

"""Encoder-decoder translation with and without attention (Chapters 1 and 2).

Two character-level models share one bidirectional GRU encoder and differ only in
what the decoder sees of the source:

* :class:`EncoderDecoder` (Chapter 1; Cho et al. 2014, Sutskever et al. 2014): the
  encoder's final states form **one** fixed-length context vector ``c``, fed to every
  decoder step.
* :class:`RNNsearch` (Chapter 2; Bahdanau, Cho and Bengio 2015, arXiv:1409.0473):
  at every output step ``i`` the decoder scores all encoder annotations
  ``h_j = [forward h_j; backward h_j]`` with the additive alignment model
  ``e_ij = v^T tanh(W s_{i-1} + U h_j)`` (Eq. 6, App. A.1.2), normalises the scores
  over the real source positions (Eq. 6) and reads ``c_i = sum_j alpha_ij h_j``
  (Eq. 5). ``c_i`` enters the new state ``s_i = f(s_{i-1}, y_{i-1}, c_i)`` (§3.1, the
  unnumbered line under Eq. 4) and the output ``p(y_i | y_<i, x) = g(y_{i-1}, s_i, c_i)`` (Eq. 4).

This module holds the models. The equations' reference functions (the exercises ask for them;
the models call them) are in :mod:`attention_course.maths.bahdanau`, the quality measures in
:mod:`attention_course.training.seq2seq_metrics`, training, the cache
and translation in :mod:`attention_course.training.seq2seq_training`, which imports this module (never the
other way round).

Shapes: ``B`` batch, ``T`` source length (padded), ``L`` target length, ``d_h``
encoder size per direction, ``d_s`` decoder state size, ``d_a`` alignment size.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from attention_course.maths.bahdanau import decoder_step, final_context
from attention_course.maths.self_attention import length_mask
from attention_course.models.decoding import greedy_decode

__all__ = ["Encoder", "EncoderDecoder", "RNNsearch", "ModelConfig", "build_model", "COURSE_DATA", "course_config"]


@dataclass(frozen=True)
class ModelConfig:
    """Sizes and training budget; identical for both models except ``attention``.

    ``steps`` is a fixed number of optimiser updates (not seconds), so results do
    not depend on the machine's load.
    """

    attention: bool = True
    embed: int = 32
    enc_hidden: int = 64  # per direction: annotations have 2 * enc_hidden
    dec_hidden: int = 128
    align: int = 16
    batch_size: int = 64
    steps: int = 700
    lr: float = 5e-3  # decays linearly to 0 over the steps
    seed: int = 0
    checkpoints: tuple = (0, 25, 50, 100, 200, 400)


#: The data both chapters and the benchmark train on (arguments of ``make_date_data``).
COURSE_DATA = dict(n_train=20_000, n_test=2_000, seed=0, max_dates=4)


def course_config(attention: bool) -> ModelConfig:
    """The chapters' budget: the same sizes and steps for both models, only ``attention`` differs."""
    return ModelConfig(attention=attention)


class Encoder(nn.Module):
    """Character embedding and a bidirectional GRU: ids ``(B, T)`` → annotations ``(B, T, 2 d_h)``.

    Two one-way ``nn.GRU`` run over the padded batch. The forward one reads each
    source left to right (padding comes after the real characters, so it cannot
    change them); the backward one reads each source reversed *within its own length*,
    so it starts at the last real character, never at the padding. This equals a
    packed bidirectional ``nn.GRU`` (and :func:`bidirectional_annotations`) and is
    faster on a CPU: forward and backward pass of 64 inputs of 40-80 characters took
    42 ms instead of 70 ms with a packed sequence on the course's 2-core machine.
    """

    def __init__(self, vocab_size: int, embed: int, hidden: int):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed, padding_idx=0)
        self.forward_rnn = nn.GRU(embed, hidden, batch_first=True)
        self.backward_rnn = nn.GRU(embed, hidden, batch_first=True)
        self.hidden = hidden

    def forward(self, src: torch.Tensor, lengths: torch.Tensor):
        """Returns ``(H, mask)``: ``(B, T, 2 d_h)`` annotations (zero at padding) and ``(B, T)`` bool.

        Raises:
            ValueError: if ``src`` is not ``(B, T)`` or ``lengths`` not ``(B,)`` in ``1..T``.
        """
        if src.dim() != 2 or lengths.shape != src.shape[:1]:
            raise ValueError(f"Encoder: expected src (B, T) and lengths (B,); got "
                             f"{tuple(src.shape)} and {tuple(lengths.shape)}")
        T = src.shape[1]
        if int(lengths.min()) < 1 or int(lengths.max()) > T:
            raise ValueError(f"Encoder: lengths must lie in 1..{T}; got {lengths.tolist()}")
        x = self.embed(src)  # (B, T, d_x)
        t = torch.arange(T)[None, :]
        mask = length_mask(lengths, T)  # (B, T)
        # position t of the reversed source: the character at lengths - 1 - t (padding stays put)
        flip = torch.where(mask, lengths[:, None] - 1 - t, t)[:, :, None]  # (B, T, 1)
        forward_h, _ = self.forward_rnn(x)  # (B, T, d_h)
        backward_h, _ = self.backward_rnn(x.gather(1, flip.expand_as(x)))
        backward_h = backward_h.gather(1, flip.expand_as(backward_h))  # back to source order
        H = torch.cat([forward_h, backward_h], dim=-1) * mask[:, :, None]
        return H, mask


class _Seq2Seq(nn.Module):
    """What both models share: encoder, target embedding, GRU decoder cell, output layer."""

    def __init__(self, src_vocab: int, tgt_vocab: int, config: ModelConfig):
        super().__init__()
        self.config = config
        d_H = 2 * config.enc_hidden
        self.encoder = Encoder(src_vocab, config.embed, config.enc_hidden)
        self.embed = nn.Embedding(tgt_vocab, config.embed)
        self.init = nn.Linear(d_H, config.dec_hidden)  # s_0 = tanh(W_init ...)
        self.cell = nn.GRUCell(config.embed + d_H, config.dec_hidden)  # f
        # g(y_{i-1}, s_i, c_i): one tanh layer ("deep output", App. A.2.2) then the vocabulary.
        self.out_hidden = nn.Linear(config.embed + config.dec_hidden + d_H, config.dec_hidden)
        self.out = nn.Linear(config.dec_hidden, tgt_vocab)

    def output(self, y_prev, s, c):
        """Logits of ``p(y_i | y_<i, x) = g(y_{i-1}, s_i, c_i)``: ``(B, V)`` (or ``(B, L, V)`` for all steps)."""
        return self.out(torch.tanh(self.out_hidden(torch.cat([y_prev, s, c], dim=-1))))

    def start(self, src, lengths):  # -> state dict for advance()
        raise NotImplementedError

    def advance(self, y_prev, state):  # -> (s_i, c_i, alpha_i or None, new state)
        raise NotImplementedError

    def forward(self, src: torch.Tensor, lengths: torch.Tensor, tgt_in: torch.Tensor):
        """Teacher forcing: ``tgt_in`` ``(B, L)`` starts with ``BOS``; returns logits ``(B, L, V)``
        and attention ``(B, L, T)`` (``None`` without attention)."""
        state = self.start(src, lengths)
        emb = self.embed(tgt_in)  # (B, L, d_y)
        states, contexts, alphas = self.run(emb, state)  # (B, L, d_s), (B, L, d_H), (B, L, T)
        return self.output(emb, states, contexts), alphas

    def run(self, emb, state):
        """Decoder states, context vectors and weights for all teacher-forced steps."""
        states, contexts, alphas = [], [], []
        for i in range(emb.shape[1]):
            s, c, alpha, state = self.advance(emb[:, i], state)
            states.append(s)
            contexts.append(c)
            alphas.append(alpha)
        attention = torch.stack(alphas, 1) if alphas[0] is not None else None
        return torch.stack(states, 1), torch.stack(contexts, 1), attention

    def step(self, y_prev, state):
        """One decoding step: ``(logits (B, V), new state, alpha (B, T) or None)``."""
        s, c, alpha, state = self.advance(y_prev, state)
        return self.output(y_prev, s, c), state, alpha

    @torch.no_grad()
    def greedy(self, src: torch.Tensor, lengths: torch.Tensor, max_len: int = 80, bos: int = 1,
               eos: int = 2):
        """Greedy decoding: ids ``(B, L')`` (up to and including ``EOS``) and attention
        ``(B, L', T)`` (``None`` without attention)."""
        state = self.start(src, lengths)

        def step(prefix):  # the newest id and the carried state are all the RNN decoder reads
            nonlocal state
            logits, state, alpha = self.step(self.embed(prefix[:, -1]), state)
            return logits, alpha

        ids, alphas = greedy_decode(step, src.shape[0], bos, eos, max_len)
        return ids, (torch.stack(alphas, 1) if alphas[0] is not None else None)


class EncoderDecoder(_Seq2Seq):
    """RNN encoder-decoder without attention (Cho et al. 2014): one context vector.

    ``c = [forward h_{T_x}; backward h_1]``, the two directions' final states, each
    taken at the last position the direction reads (:func:`final_context` for the
    forward one). ``s_0 = tanh(W c)``; every step uses the same ``c``:
    ``s_i = f(s_{i-1}, y_{i-1}, c)``, ``p(y_i) = g(y_{i-1}, s_i, c)``.
    """

    def start(self, src, lengths):
        H, _ = self.encoder(src, lengths)  # (B, T, 2 d_h)
        d_h = self.config.enc_hidden
        c = torch.cat([final_context(H[..., :d_h], lengths), H[:, 0, d_h:]], dim=-1)  # (B, 2 d_h)
        return {"s": torch.tanh(self.init(c)), "c": c}

    def __init__(self, src_vocab: int, tgt_vocab: int, config: ModelConfig):
        super().__init__(src_vocab, tgt_vocab, config)
        # f as an nn.GRU (the same equations as the GRUCell): without attention every
        # step's input [y_{i-1}; c] is known in advance, so teacher forcing runs all steps
        # in one call instead of a Python loop.
        self.cell = nn.GRU(config.embed + 2 * config.enc_hidden, config.dec_hidden, batch_first=True)

    def advance(self, y_prev, state):
        x = torch.cat([y_prev, state["c"]], dim=-1)[:, None, :]  # (B, 1, d_y + d_H)
        s = self.cell(x, state["s"][None])[0][:, 0]  # (B, d_s)
        return s, state["c"], None, {"s": s, "c": state["c"]}

    def run(self, emb, state):
        c = state["c"][:, None, :].expand(-1, emb.shape[1], -1)  # (B, L, d_H)
        states, _ = self.cell(torch.cat([emb, c], dim=-1), state["s"][None])  # (B, L, d_s)
        return states, c, None


class RNNsearch(_Seq2Seq):
    """Bahdanau et al. (2015): bidirectional encoder, additive attention at every step.

    ``s_0 = tanh(W backward h_1)`` (App. A.2.2); then per step :func:`decoder_step`
    and ``p(y_i) = g(y_{i-1}, s_i, c_i)``. The alignment parameters are ``W_s``
    ``(d_a, d_s)``, ``W_h`` ``(d_a, 2 d_h)`` and ``v`` ``(d_a,)``.
    """

    def __init__(self, src_vocab: int, tgt_vocab: int, config: ModelConfig):
        super().__init__(src_vocab, tgt_vocab, config)
        d_H, d_s, d_a = 2 * config.enc_hidden, config.dec_hidden, config.align
        self.init = nn.Linear(config.enc_hidden, d_s)
        self.W_s = nn.Parameter(torch.randn(d_a, d_s) * d_s ** -0.5)
        self.W_h = nn.Parameter(torch.randn(d_a, d_H) * d_H ** -0.5)
        self.v = nn.Parameter(torch.randn(d_a) * d_a ** -0.5)

    def start(self, src, lengths):
        H, mask = self.encoder(src, lengths)
        s = torch.tanh(self.init(H[:, 0, self.config.enc_hidden:]))  # backward h_1
        return {"s": s, "H": H, "mask": mask, "keys": H @ self.W_h.T}  # keys: U h_j, computed once

    def advance(self, y_prev, state):
        # Chapter 2's decoder_step, with U h_j (the keys) computed once per sentence in start()
        s, c, alpha = decoder_step(y_prev, state["s"], state["H"], state["mask"], self.W_s, self.W_h,
                                   self.v, self.cell, keys=state["keys"])  # (B, d_s), (B, 2 d_h), (B, T)
        return s, c, alpha, {**state, "s": s}


def build_model(config: ModelConfig, src_vocab: int, tgt_vocab: int) -> _Seq2Seq:
    """A fresh model, its parameters seeded by ``config.seed``."""
    torch.manual_seed(config.seed)
    return (RNNsearch if config.attention else EncoderDecoder)(src_vocab, tgt_vocab, config)


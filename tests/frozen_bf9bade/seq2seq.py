# Frozen snapshot of attention_course/seq2seq.py at commit bf9bade, kept as the reference of
# tests/test_refactor_equivalence.py. Do not edit (see __init__.py).
"""Encoder-decoder translation with and without attention (Chapters 1 and 2): the two models.

:class:`EncoderDecoder` (Cho et al. 2014) feeds one fixed context vector to every decoder step;
:class:`RNNsearch` (Bahdanau et al. 2015) scores all encoder annotations at every step with
``e_ij = v^T tanh(W s_{i-1} + U h_j)``. Shapes: ``B`` batch, ``T`` source length, ``L`` target length.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax over the last axis that gives padding (``mask`` False) exactly zero weight."""
    if mask.shape != scores.shape or mask.dtype != torch.bool:
        raise ValueError(f"masked_softmax: mask must be a bool tensor shaped like the scores "
                         f"{tuple(scores.shape)}; got {mask.dtype} {tuple(mask.shape)}")
    if not bool(mask.any(dim=-1).all()):
        raise ValueError("masked_softmax: every row of the mask needs at least one True")
    weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
    return weights.masked_fill(~mask, 0.0)  # exact zeros (already 0; also drops any nan)


def context_vector(weights: torch.Tensor, H: torch.Tensor) -> torch.Tensor:
    """``c_i = sum_j alpha_ij h_j``: weights ``(B, T)`` and annotations ``(B, T, d_H)`` → ``(B, d_H)``."""
    if weights.dim() != 2 or H.dim() != 3 or weights.shape != H.shape[:2]:
        raise ValueError(f"context_vector: expected weights (B, T) and H (B, T, d_H); got "
                         f"weights {tuple(weights.shape)}, H {tuple(H.shape)}")
    return torch.bmm(weights[:, None, :], H).squeeze(1)


def final_context(encoder_outputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The output at each sequence's last **real** position: ``(B, T, d)`` → ``(B, d)``."""
    B, T = encoder_outputs.shape[:2]
    if encoder_outputs.dim() != 3 or lengths.shape != (B,):
        raise ValueError(f"final_context: expected outputs (B, T, d) and lengths (B,); got "
                         f"{tuple(encoder_outputs.shape)} and {tuple(lengths.shape)}")
    if int(lengths.min()) < 1 or int(lengths.max()) > T:
        raise ValueError(f"final_context: lengths must lie in 1..{T}; got {lengths.tolist()}")
    return encoder_outputs[torch.arange(B), lengths.long() - 1]


@dataclass(frozen=True)
class ModelConfig:
    """Sizes (the snapshot drops the original's training budget: batch size, steps, lr, checkpoints)."""

    attention: bool = True
    embed: int = 32
    enc_hidden: int = 64  # per direction: annotations have 2 * enc_hidden
    dec_hidden: int = 128
    align: int = 16
    seed: int = 0


class Encoder(nn.Module):
    """Character embedding and a bidirectional GRU: ids ``(B, T)`` → annotations ``(B, T, 2 d_h)``."""

    def __init__(self, vocab_size: int, embed: int, hidden: int):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed, padding_idx=0)
        self.forward_rnn = nn.GRU(embed, hidden, batch_first=True)
        self.backward_rnn = nn.GRU(embed, hidden, batch_first=True)
        self.hidden = hidden

    def forward(self, src: torch.Tensor, lengths: torch.Tensor):
        """Returns ``(H, mask)``: ``(B, T, 2 d_h)`` annotations (zero at padding) and ``(B, T)`` bool."""
        if src.dim() != 2 or lengths.shape != src.shape[:1]:
            raise ValueError(f"Encoder: expected src (B, T) and lengths (B,); got "
                             f"{tuple(src.shape)} and {tuple(lengths.shape)}")
        T = src.shape[1]
        if int(lengths.min()) < 1 or int(lengths.max()) > T:
            raise ValueError(f"Encoder: lengths must lie in 1..{T}; got {lengths.tolist()}")
        x = self.embed(src)  # (B, T, d_x)
        t = torch.arange(T)[None, :]
        mask = t < lengths[:, None]  # (B, T)
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
        """Teacher forcing: logits ``(B, L, V)`` and attention ``(B, L, T)`` (``None`` without attention)."""
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
        """Greedy decoding: ids ``(B, L')`` and attention ``(B, L', T)`` (``None`` without attention)."""
        state = self.start(src, lengths)
        y = torch.full((src.shape[0],), bos, dtype=torch.long)
        done = torch.zeros(src.shape[0], dtype=torch.bool)
        out, alphas = [], []
        for _ in range(max_len):
            logits, state, alpha = self.step(self.embed(y), state)
            y = logits.argmax(-1).masked_fill(done, 0)
            out.append(y)
            alphas.append(alpha)
            done |= y == eos
            if bool(done.all()):
                break
        attention = torch.stack(alphas, 1) if alphas[0] is not None else None
        return torch.stack(out, 1), attention


class EncoderDecoder(_Seq2Seq):
    """RNN encoder-decoder without attention (Cho et al. 2014): one context vector."""

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
    """Bahdanau et al. (2015): bidirectional encoder, additive attention at every step."""

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
        H, mask, s_prev = state["H"], state["mask"], state["s"]
        # decoder_step, with U h_j precomputed once per sentence instead of at every step
        e = torch.tanh((s_prev @ self.W_s.T)[:, None, :] + state["keys"]) @ self.v  # (B, T)
        alpha = masked_softmax(e, mask)  # (B, T)
        c = context_vector(alpha, H)  # (B, 2 d_h)
        s = self.cell(torch.cat([y_prev, c], dim=-1), s_prev)  # (B, d_s)
        return s, c, alpha, {**state, "s": s}


def build_model(config: ModelConfig, src_vocab: int, tgt_vocab: int) -> _Seq2Seq:
    """A fresh model, its parameters seeded by ``config.seed``."""
    torch.manual_seed(config.seed)
    return (RNNsearch if config.attention else EncoderDecoder)(src_vocab, tgt_vocab, config)

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

The small functions :func:`additive_score`, :func:`masked_softmax`,
:func:`context_vector`, :func:`decoder_step`, :func:`bidirectional_annotations`,
:func:`final_context` and :func:`accuracy_by_length` are the course's reference
implementations (the exercises ask for them); the models call the first four.

Shapes: ``B`` batch, ``T`` source length (padded), ``L`` target length, ``d_h``
encoder size per direction, ``d_s`` decoder state size, ``d_a`` alignment size.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .env import torch_threads
from .self_attention import masked_softmax  # the package's one masked softmax (also Chapters 4-6)

__all__ = [
    "additive_score", "masked_softmax", "context_vector", "decoder_step",
    "bidirectional_annotations", "final_context", "accuracy_by_length",
    "Encoder", "EncoderDecoder", "RNNsearch", "ModelConfig", "TrainResult", "train_model",
    "build_model", "encode_batch", "batches", "translate", "COURSE_DATA", "course_config", "quality_by_length", "char_bleu", "cache_dir",
]


# ---------------------------------------------------------------------------
# Reference implementations of the equations


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
    real = (torch.arange(T)[None, :] < lengths[:, None]).to(x.dtype)  # (B, T)
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


def accuracy_by_length(predictions, targets, lengths, bins) -> np.ndarray:
    """Exact-match accuracy per length bucket ``[bins[k], bins[k+1])``.

    Args:
        predictions, targets: sequences of equal length (strings or lists of tokens).
        lengths: the length of each example's *input* (any number).
        bins: increasing bucket edges; ``K + 1`` edges make ``K`` buckets.

    Returns:
        ``(K,)`` float array; ``nan`` for an empty bucket. Examples outside all
        buckets are ignored.

    Raises:
        ValueError: for sequences of different lengths or non-increasing edges.
    """
    if not len(predictions) == len(targets) == len(lengths):
        raise ValueError(f"accuracy_by_length: {len(predictions)} predictions, {len(targets)} "
                         f"targets and {len(lengths)} lengths")
    bins = np.asarray(bins, dtype=float)
    if bins.ndim != 1 or len(bins) < 2 or np.any(np.diff(bins) <= 0):
        raise ValueError(f"accuracy_by_length: bins must be >= 2 increasing edges; got {bins}")
    correct = np.array([p == t for p, t in zip(predictions, targets)], dtype=float)
    lengths = np.asarray(lengths, dtype=float)
    out = np.full(len(bins) - 1, np.nan)
    for k in range(len(bins) - 1):
        inside = (lengths >= bins[k]) & (lengths < bins[k + 1])
        if inside.any():
            out[k] = correct[inside].mean()
    return out


# ---------------------------------------------------------------------------
# Models


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


# ---------------------------------------------------------------------------
# Data to tensors


def _pad(seqs, value=0):
    T = max(len(s) for s in seqs)
    out = torch.full((len(seqs), T), value, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.tensor(s, dtype=torch.long)
    return out


def encode_batch(pairs, source_vocab, target_vocab):
    """``(src, lengths, tgt_in, tgt_out)``: ids ``(B, T)``, ``(B,)``, ``(B, L)``, ``(B, L)``."""
    src = [source_vocab.encode(s, eos=False) for s, _ in pairs]
    tgt = [target_vocab.encode(t, bos=True, eos=True) for _, t in pairs]
    return (_pad(src), torch.tensor([len(s) for s in src]), _pad([t[:-1] for t in tgt]),
            _pad([t[1:] for t in tgt]))


def batches(n_items: int, lengths, batch_size: int, rng: np.random.Generator):
    """Index batches of similar length (less padding): shuffle, sort in pools of 50 batches."""
    order = rng.permutation(n_items)
    pool = 50 * batch_size
    out = []
    for k in range(0, n_items, pool):
        chunk = sorted(order[k:k + pool], key=lambda i: lengths[i])
        out += [chunk[j:j + batch_size] for j in range(0, len(chunk), batch_size)]
    rng.shuffle(out)
    return out


# ---------------------------------------------------------------------------
# Training with a small on-disk cache


def cache_dir() -> Path:
    """``$ATTENTION_COURSE_CACHE`` or ``~/.cache/attention_course/seq2seq`` (outside the repository)."""
    root = os.environ.get("ATTENTION_COURSE_CACHE") or Path.home() / ".cache" / "attention_course"
    return Path(root) / "seq2seq"


@dataclass
class TrainResult:
    """A trained model, its loss per step, checkpoints and the training time.

    Attributes:
        model: the trained model (eval mode).
        config: its :class:`ModelConfig`.
        losses: mean cross-entropy (nats per target character) of each step.
        checkpoints: ``{step: state_dict}`` saved during training.
        seconds: wall-clock seconds the training took when it ran.
        cached: True if loaded from the cache instead of trained now.
    """

    model: _Seq2Seq
    config: ModelConfig
    losses: list
    checkpoints: dict = field(default_factory=dict)
    seconds: float = 0.0
    cached: bool = False

    def at_checkpoint(self, step: int) -> _Seq2Seq:
        """A copy of the model with the weights it had after ``step`` updates."""
        model = copy.deepcopy(self.model)
        model.load_state_dict(self.checkpoints[step])
        return model.eval()


def _cache_key(config: ModelConfig, data) -> str:
    text = json.dumps({"model": asdict(config), "data": data.config, "fingerprint": data.fingerprint(),
                       "torch": torch.__version__.split("+")[0], "threads": torch.get_num_threads(),
                       "version": 3}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def train_model(data, config: ModelConfig = ModelConfig(), progress: bool = True,
                use_cache: bool = True, threads: int | None = 1) -> TrainResult:
    """Train one model on ``data.train`` for ``config.steps`` updates (Adam, teacher forcing).

    Deterministic: the same config, data, torch version and thread count give the
    same weights, so a cached result (under :func:`cache_dir`, keyed by all of these)
    is exactly what retraining would produce. Chapter 2 thereby reuses Chapter 1's
    model when it exists and retrains it identically otherwise.

    Args:
        data: a :class:`attention_course.dates.DateData`.
        config: sizes and budget.
        progress: show a ``tqdm.auto`` progress bar with the running loss.
        use_cache: read and write the cache.
        threads: ``torch.set_num_threads`` during training (``None`` leaves it). One
            thread is the default: these models run many small operations in sequence,
            which a second thread does not speed up, and on a busy machine the threads'
            synchronisation made training more than ten times slower (measured).
    """
    with torch_threads(threads):
        return _train(data, config, progress, use_cache)


def _train(data, config: ModelConfig, progress: bool, use_cache: bool) -> TrainResult:
    from tqdm.auto import tqdm

    path = cache_dir() / f"{'rnnsearch' if config.attention else 'encdec'}-{_cache_key(config, data)}.pt"
    sv, tv = data.source_vocab, data.target_vocab
    model = build_model(config, len(sv), len(tv))
    if use_cache and path.is_file():
        stored = torch.load(path, weights_only=False)
        model.load_state_dict(stored["state"])
        return TrainResult(model.eval(), config, stored["losses"], stored["checkpoints"],
                           stored["seconds"], cached=True)

    rng = np.random.default_rng(config.seed)
    lengths = [len(s) for s, _ in data.train]
    optimiser = torch.optim.Adam(model.parameters(), lr=config.lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda k: 1.0 - k / config.steps)
    loss_fn = nn.CrossEntropyLoss(ignore_index=0)
    losses, checkpoints, queue = [], {}, []
    start = time.perf_counter()
    model.train()
    bar = tqdm(total=config.steps, desc="RNNsearch" if config.attention else "encoder-decoder",
               disable=not progress, leave=True)
    for step in range(config.steps + 1):
        if step in config.checkpoints:
            checkpoints[step] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if step == config.steps:
            break
        if not queue:
            queue = batches(len(data.train), lengths, config.batch_size, rng)
        src, src_len, tgt_in, tgt_out = encode_batch([data.train[i] for i in queue.pop()], sv, tv)
        logits, _ = model(src, src_len, tgt_in)
        loss = loss_fn(logits.reshape(-1, logits.shape[-1]), tgt_out.reshape(-1))
        optimiser.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        schedule.step()
        losses.append(loss.item())
        bar.update(1)
        if step % 20 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
    bar.close()
    seconds = time.perf_counter() - start
    checkpoints[config.steps] = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.eval()
    if use_cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        torch.save({"state": model.state_dict(), "losses": losses, "checkpoints": checkpoints,
                    "seconds": seconds, "config": asdict(config)}, tmp)
        tmp.replace(path)
    return TrainResult(model, config, losses, checkpoints, seconds)


# ---------------------------------------------------------------------------
# Inference and evaluation


def translate(model: _Seq2Seq, sources, data, batch_size: int = 250, max_len: int = 80):
    """Greedy translations of ``sources`` (strings) and their attention matrices.

    Returns:
        ``(translations, attentions)``: a list of strings and a list of ``(L_i, T_i)``
        NumPy arrays (output characters incl. ``EOS`` × source characters), or
        ``None`` entries for a model without attention.
    """
    sv, tv = data.source_vocab, data.target_vocab
    model.eval()
    texts, attentions = [], []
    with torch_threads(1):  # small sequential operations: see train_model
        _translate(model, sources, data, batch_size, max_len, texts, attentions)
    return texts, attentions


def _translate(model, sources, data, batch_size, max_len, texts, attentions):
    sv, tv = data.source_vocab, data.target_vocab
    for k in range(0, len(sources), batch_size):
        chunk = list(sources[k:k + batch_size])
        ids = [sv.encode(s, eos=False) for s in chunk]
        lengths = torch.tensor([len(i) for i in ids])
        out, attention = model.greedy(_pad(ids), lengths, max_len=max_len,
                                      bos=tv.BOS, eos=tv.EOS)
        for b in range(len(chunk)):
            row = out[b].tolist()
            n_out = row.index(tv.EOS) + 1 if tv.EOS in row else len(row)
            texts.append(tv.decode(row))
            attentions.append(None if attention is None
                              else attention[b, :n_out, : len(ids[b])].numpy())


def char_bleu(predictions, targets) -> float:
    """Corpus BLEU on characters (``sacrebleu``, ``tokenize="char"``), 0-100."""
    import sacrebleu

    if not predictions:
        return float("nan")
    return sacrebleu.corpus_bleu(list(predictions), [list(targets)], tokenize="char").score


def quality_by_length(predictions, targets, groups) -> list[dict]:
    """Exact match (%) and character BLEU per group (e.g. number of dates in the input).

    Returns:
        One dict per distinct group value, sorted: ``{"group", "n", "exact", "bleu"}``.
    """
    if not len(predictions) == len(targets) == len(groups):
        raise ValueError("quality_by_length: predictions, targets and groups differ in length")
    rows = []
    for g in sorted(set(groups)):
        idx = [i for i, x in enumerate(groups) if x == g]
        p, t = [predictions[i] for i in idx], [targets[i] for i in idx]
        rows.append({"group": g, "n": len(idx),
                     "exact": 100.0 * float(np.mean([a == b for a, b in zip(p, t)])),
                     "bleu": char_bleu(p, t)})
    return rows

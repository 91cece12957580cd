"""Positions beyond the training length: learned, sinusoidal and rotary, measured (Chapter 8).

Chapter 8 says that rotary position embeddings (RoPE, Su et al. 2021) make a score depend on the
distance between query and key only, while the 2017 Transformer *adds* a vector per absolute
position (sinusoidal, Vaswani et al. 2017, §3.5; or learned, as in GPT-2). This module measures
what that means for a model that reads a longer text than it was trained on (the question of
Press et al. 2022, "Train short, test long"): three small character GPTs, identical but for how
they are told positions, are trained on windows of ``block_size`` characters of the fortunes
(:mod:`attention_course.data.fortunes`) and then read windows four times as long; the loss at each
position shows where each one stops working.

* ``"learned"``: a table of ``max_positions`` trained vectors added to the tokens (GPT-2). No
  gradient reaches the rows beyond ``block_size``: they stay the random vectors they were drawn as,
  only shrunk by AdamW's weight decay.
* ``"sinusoidal"``: the fixed encoding of Vaswani et al., defined for every position.
* ``"rope"``: nothing added; queries and keys are rotated in every layer (:mod:`attention_course.maths.modern`).

The models are :class:`attention_course.models.gpt.GPT` with the position part swapped, trained by
:func:`attention_course.training.gpt_training.train_gpt` (cached, one thread, deterministic).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from attention_course.env import torch_threads
from attention_course.models.gpt import GPT, GPTConfig
from attention_course.maths.self_attention import sinusoidal_positional_encoding

__all__ = ["POSITION_KINDS", "PositionConfig", "PositionGPT", "COURSE_SIZES", "train_position_model",
           "loss_by_position", "bucket_means"]

#: How a model is told positions (see the module docstring).
POSITION_KINDS = ("learned", "sinusoidal", "rope")


@dataclass
class PositionConfig(GPTConfig):
    """A :class:`~attention_course.models.gpt.GPTConfig` plus how positions enter.

    ``block_size`` is the training context; ``max_positions`` the longest text the model may read
    afterwards; ``rope_base`` is RoPE's base (10000, as in RoFormer). ``version`` names what
    :meth:`PositionGPT.forward` computes: it is part of the training cache's key, so raise it when
    the forward pass changes, or cached weights trained by the old code would be loaded.
    """

    positions: str = "learned"
    max_positions: int = 256
    rope_base: float = 10000.0
    version: int = 1


class PositionGPT(GPT):
    """The course's GPT with the position embedding chosen by ``config.positions``.

    Args:
        config: a :class:`PositionConfig`.

    Raises:
        ValueError: for an unknown ``positions``, ``max_positions < block_size``, or (RoPE) an odd
            head width.
    """

    def __init__(self, config: PositionConfig):
        if config.positions not in POSITION_KINDS:
            raise ValueError(f"positions must be one of {POSITION_KINDS}; got {config.positions!r}")
        if config.max_positions < config.block_size:
            raise ValueError(f"max_positions={config.max_positions} must be >= block_size={config.block_size}")
        head_dim = config.d_model // config.num_heads
        if config.positions == "rope" and head_dim % 2:
            raise ValueError(f"RoPE needs an even head width; d_model / num_heads = {head_dim}")
        super().__init__(config)
        del self.pos_emb
        if config.positions == "learned":  # trained rows 0 .. block_size-1; the rest only decay
            self.pos_emb = nn.Embedding(config.max_positions, config.d_model)
            nn.init.normal_(self.pos_emb.weight, 0.0, 0.02)
        elif config.positions == "sinusoidal":
            self.register_buffer("pe", sinusoidal_positional_encoding(config.max_positions, config.d_model),
                                 persistent=False)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None, cache=None,
                need_weights: bool = False):
        """Next-token logits for ``idx`` ``(batch, n)``, ``n <= max_positions``.

        Returns:
            ``(logits, loss)``: ``(batch, n, vocab)`` and the mean cross-entropy (or ``None``).

        Raises:
            ValueError: if ``idx`` is not 2-D, is longer than ``max_positions``, or a cache or
                ``need_weights`` is asked for (this model is for measuring losses only).
        """
        if cache is not None or need_weights:
            raise ValueError("PositionGPT measures losses only: no KV cache, no attention weights")
        if idx.dim() != 2 or idx.shape[1] > self.config.max_positions:
            raise ValueError(f"idx must be (batch, n) with n <= max_positions={self.config.max_positions}; "
                             f"got shape {tuple(idx.shape)}")
        n = idx.shape[1]
        positions = torch.arange(n, device=idx.device)  # (n,)
        x = self.tok_emb(idx)  # (batch, n, d_model)
        rope = None
        if self.config.positions == "learned":
            x = x + self.pos_emb(positions)
        elif self.config.positions == "sinusoidal":  # the paper scales the embeddings by sqrt(d_model) (§3.4)
            x = x * self.config.d_model ** 0.5 + self.pe[:n]
        else:
            from attention_course.maths.positions import rope_cos_sin

            rope = rope_cos_sin(positions, self.config.d_model // self.config.num_heads, self.config.rope_base)
        for layer, block in enumerate(self.blocks):
            x, _ = block(x, layer=layer, causal=True, need_weights=False, rope=rope)
        logits = self.head(self.ln_f(x))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        return logits, loss


#: Chapter 8's models: a quarter of Chapter 6's GPT in depth and half in width, trained on windows of
#: 64 characters (Chapter 6's context) and read on windows of 256.
COURSE_SIZES = dict(block_size=64, n_layer=2, num_heads=4, d_model=64, max_positions=256)
#: Chapter 8's training recipe (Chapter 6's, shortened; train_gpt's arguments).
COURSE_TRAINING = dict(steps=1200, batch_size=16, lr=3e-3, eval_every=300)


def train_position_model(positions: str, seed: int, train_ids: torch.Tensor, val_ids: torch.Tensor,
                         vocab_size: int, progress: bool = True, **sizes) -> tuple[PositionGPT, dict]:
    """A :class:`PositionGPT` of :data:`COURSE_SIZES` (or ``sizes``), trained with :data:`COURSE_TRAINING`.

    The initial weights are drawn after ``torch.manual_seed(seed)`` and training uses ``seed`` for
    its batches, so a run is reproducible and cached by :func:`attention_course.training.gpt_training.train_gpt`.

    Args:
        positions: one of :data:`POSITION_KINDS`.
        seed: the run's seed.
        train_ids, val_ids: token ids ``(n,)``.
        vocab_size: the tokenizer's vocabulary size.

    Returns:
        ``(model, history)``, the model in eval mode and ``train_gpt``'s history.

    Raises:
        ValueError: as :class:`PositionGPT`.
    """
    from attention_course.training.gpt_training import train_gpt

    torch.manual_seed(seed)
    config = PositionConfig(vocab_size=vocab_size, positions=positions, **{**COURSE_SIZES, **sizes})
    model = PositionGPT(config)
    history = train_gpt(model, train_ids, val_ids, seed=seed, progress=progress,
                        **COURSE_TRAINING)
    return model, history


@torch.no_grad()
def loss_by_position(model: PositionGPT, data: torch.Tensor, length: int, windows: int = 64,
                     batch_size: int = 16) -> torch.Tensor:
    """Mean next-character cross-entropy at each position of windows ``length`` characters long.

    The first ``windows`` non-overlapping windows of ``data`` are read whole (causal attention over
    the window); position ``t``'s loss is that of predicting character ``t + 1`` from ``0 .. t``.

    Args:
        model: a trained :class:`PositionGPT`.
        data: token ids ``(n,)``.
        length: window length, at most ``model.config.max_positions``.
        windows: how many windows to average over.

    Returns:
        float64 ``(length,)``, nats per character.

    Raises:
        ValueError: if ``data`` holds fewer than ``windows`` windows or ``length`` is out of range.
    """
    if not 1 <= length <= model.config.max_positions:
        raise ValueError(f"length must be in 1..{model.config.max_positions}; got {length}")
    if (len(data) - 1) // length < windows:
        raise ValueError(f"data of {len(data)} tokens holds fewer than {windows} windows of {length}")
    model.eval()
    x = data[: windows * length].view(windows, length)
    y = data[1: windows * length + 1].view(windows, length)
    total = torch.zeros(length, dtype=torch.float64)
    with torch_threads():
        for s in range(0, windows, batch_size):
            logits, _ = model(x[s:s + batch_size])
            losses = F.cross_entropy(logits.transpose(1, 2), y[s:s + batch_size], reduction="none")  # (b, length)
            total += losses.double().sum(0)
    return total / windows


def bucket_means(losses: torch.Tensor, edges) -> list[float]:
    """Mean of ``losses`` ``(length,)`` over each ``[edges[i], edges[i+1])``.

    Raises:
        ValueError: if the edges are not increasing within ``0 .. len(losses)``.
    """
    edges = list(edges)
    if len(edges) < 2 or edges[0] < 0 or edges[-1] > len(losses) or any(a >= b for a, b in zip(edges, edges[1:])):
        raise ValueError(f"edges must increase within 0..{len(losses)}; got {edges}")
    return [float(losses[a:b].mean()) for a, b in zip(edges, edges[1:])]

"""Helper package for the course *Attention Mechanisms*.

Each chapter teaches a component and later chapters import it from here, never paste it again. The
modules form layers, listed here from the bottom up: a module imports only from its own group or the
groups before it (``farm-studio look`` draws them; there is no import cycle).

Setup: :mod:`~attention_course.env` — seeding and environment checks.

Attention maths (no models, no training, no views), each module using only those before it:

* :mod:`~attention_course.numerics` — when two float computations agree: the tolerance policy.
* :mod:`~attention_course.self_attention` — the one masked softmax, attention in matrix form,
  masks and the sinusoidal encoding (Chapter 4).
* :mod:`~attention_course.positions` — RoPE's tables and rotation, ``repeat_kv`` for shared
  key/value heads (Chapter 8's pieces, used by Chapter 5's attention).
* :mod:`~attention_course.multi_head` — the one multi-head attention, with its KV cache (Chapter 5).
* :mod:`~attention_course.bahdanau` — Bahdanau attention, equation by equation (Chapters 1-2).
* :mod:`~attention_course.scoring` — the general form (Chapter 3): softmax, five scores, pooling.
* :mod:`~attention_course.online_softmax` — FlashAttention's tiled online softmax (Chapter 8).
* :mod:`~attention_course.modern` — RMSNorm, RoPE, grouped-query attention, SwiGLU (Chapter 8);
  :mod:`~attention_course.transformer` — the one Transformer block, with them as options (Chapter 6).

Data: :mod:`~attention_course.dates` (the date task and its splits, Chapters 1, 2, 7) and
:mod:`~attention_course.fortunes` (the text of Chapter 6's GPT).

Models and their training (cached on disk, deterministic):

* :mod:`~attention_course.seq2seq` — the encoder-decoders of Chapters 1-2; training and greedy
  translation in :mod:`~attention_course.seq2seq_training`, quality in
  :mod:`~attention_course.seq2seq_metrics`.
* :mod:`~attention_course.gpt` — the small GPT and its decoding (Chapter 6); training in
  :mod:`~attention_course.gpt_training`; :mod:`~attention_course.extrapolation` — the same GPT with
  learned, sinusoidal or rotary positions, read past its training length (Chapter 8).
* :mod:`~attention_course.date_transformer` — the whole encoder-decoder Transformer (Chapter 7).
* Pretrained models, offline: :mod:`~attention_course.embeddings` and
  :mod:`~attention_course.pretrained` (all-MiniLM-L6-v2, Chapters 3-6), :mod:`~attention_course.smollm`
  (SmolLM2, Chapters 6 and 8).
* :mod:`~attention_course.attention_cost` — attention's time and memory, measured (Chapter 6);
  :mod:`~attention_course.spread` — measured results shipped with the package (over seeds, and
  Chapter 7's validation runs).

Views (figures and the explorers, live with or without a kernel):

* :mod:`~attention_course.plotting` (figures), :mod:`~attention_course.explorer` (the one widget
  class; front-end in ``static/``), :mod:`~attention_course.display` (glue, self-checks, predictions,
  source listings).
* One module per explorer: :mod:`~attention_course.widgets` (Chapters 1 and 3),
  :mod:`~attention_course.alignment_viewer` (2), :mod:`~attention_course.head_viewer` (4-5),
  :mod:`~attention_course.gpt_widget` (6), :mod:`~attention_course.transformer_viewer` (7),
  :mod:`~attention_course.online_softmax_viewer` (8); :mod:`~attention_course.onnx_export` exports
  the small models for the browser.

Exercises and grading:

* :mod:`~attention_course.checks`, :mod:`~attention_course.checks_transformer` (Chapter 7),
  :mod:`~attention_course.checks_modern` (Chapter 8) — the exercise notebooks' check helpers.
* :mod:`~attention_course.grade` — the instructors' command; the sandboxed grader in
  :mod:`attention_course.grading`.
"""
from .env import in_colab, seed_everything

__version__ = "0.1.0"
__all__ = ["in_colab", "seed_everything", "__version__"]

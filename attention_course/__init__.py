"""Helper package for the course *Attention Mechanisms*.

Each chapter teaches a component and later chapters import it from here:

* :mod:`attention_course.scoring` — the general form of attention (Chapter 3):
  softmax, the five scoring functions, attention pooling.
* :mod:`attention_course.bahdanau`, :mod:`attention_course.seq2seq` — Bahdanau attention's equations
  and the encoder-decoders of Chapters 1-2 (training in ``seq2seq_training``, metrics in
  ``seq2seq_metrics``).
* :mod:`attention_course.self_attention`, :mod:`attention_course.multi_head`,
  :mod:`attention_course.transformer` — the one masked softmax, the one multi-head attention (KV
  cache, grouped key/value heads, RoPE) and the one Transformer block (Chapters 4-6); the RoPE
  functions and ``repeat_kv`` sit one layer below, in :mod:`attention_course.positions`.
* :mod:`attention_course.gpt` — the small GPT of Chapter 6 (data in ``fortunes``, training in
  ``gpt_training``).
* :mod:`attention_course.modern` — RMSNorm, RoPE, grouped-query attention and SwiGLU, checked
  against SmolLM2 (:mod:`attention_course.smollm`); :mod:`attention_course.extrapolation` — learned,
  sinusoidal and rotary positions past the training length; :mod:`attention_course.online_softmax`
  — FlashAttention's tiled online softmax, stepped through by ``online_softmax_viewer`` (Chapter 8).
* :mod:`attention_course.embeddings` — real sentence embeddings from the pretrained
  all-MiniLM-L6-v2 model, offline.
* :mod:`attention_course.plotting`, :mod:`attention_course.widgets` — figures and widgets.
* :mod:`attention_course.env` — seeding and environment checks.
"""
from .env import in_colab, seed_everything

__version__ = "0.1.0"
__all__ = ["in_colab", "seed_everything", "__version__"]

"""Helper package for the course *Attention Mechanisms*.

Each chapter teaches a component and later chapters import it from here, never paste it again. The
package is in layer folders, listed from the bottom up; a module imports only from its own folder
or the folders below it, and callers import each name from the module that defines it
(``tests/test_architecture.py`` fails on an import that runs upwards or in a circle).
``ARCHITECTURE.md`` at the repository's root describes every folder and module.

* :mod:`attention_course.env` — seeding, thread settings, the model cache's folder.
* :mod:`attention_course.maths` — the attention maths, with no models, training or views:
  scores, masks, positions, attention, multi-head attention and its cache, the Transformer blocks,
  today's pieces (RMSNorm, RoPE, grouped-query attention, SwiGLU, online softmax).
* :mod:`attention_course.data` — the date task and its splits; the text of Chapter 6's GPT.
* :mod:`attention_course.models` — RNNsearch, the GPT, the date Transformer, and the adapters of the
  pretrained models the course ships (all-MiniLM-L6-v2, SmolLM2).
* :mod:`attention_course.training` — cached, deterministic training; quality and cost measures;
  results measured over seeds and shipped with the package.
* :mod:`attention_course.views` — figures, the explorers (Python and their JavaScript in
  ``views/static``), self-checks and predictions, the ONNX export for the browser.
* :mod:`attention_course.grading` — the exercise notebooks' checks and the instructors' sandboxed
  grader (``python -m attention_course.grading``).
"""
__version__ = "0.1.0"

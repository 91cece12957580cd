"""Helper package for the course *Attention Mechanisms*.

Each chapter teaches a component and later chapters import it from here:

* :mod:`attention_course.scoring` — the general form of attention (Chapter 3):
  softmax, the five scoring functions, attention pooling.
* :mod:`attention_course.embeddings` — real sentence embeddings from the pretrained
  all-MiniLM-L6-v2 model, offline.
* :mod:`attention_course.plotting`, :mod:`attention_course.widgets` — figures and widgets.
* :mod:`attention_course.env` — seeding and environment checks.
"""
from .env import in_colab, seed_everything

__version__ = "0.1.0"
__all__ = ["in_colab", "seed_everything", "__version__"]

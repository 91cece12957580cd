# Frozen snapshot of attention_course at commit bf9bade, kept as the reference of
# tests/test_refactor_equivalence.py. Do not edit: it is the code *before* the refactor, trimmed to
# what that test runs (no caches, widgets, data loading or unused functions, shorter docstrings). Every
# line of code kept is as it was, except that imports stay inside this package and train_gpt lost its
# progress bar and timing; no arithmetic and no order of parameter creation was changed.
"""The package as it was at bf9bade (before one attention served the whole package), for comparison."""
from . import env, gpt, multi_head, self_attention, seq2seq, transformer

__all__ = ["env", "gpt", "multi_head", "self_attention", "seq2seq", "transformer"]

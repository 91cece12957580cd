"""The typical wrong answers of each chapter's exercises: one table per chapter (``chNN.WRONG``).

Two test files read the same table:

* the mutant tests (``tests/test_chNN_exercises.py``) run EVERY entry against its whole check cell
  (public and hidden tests): it must raise ``AssertionError``, the way a student would see it;
* ``tests/test_exercise_messages.py`` runs the entries that have ``words`` against the PUBLIC part
  of the check alone (what a student sees; the hidden tests are cut off in the release): it must raise
  ``AssertionError`` (never a raw framework error) whose message contains every one of ``words``
  (case-insensitive). ``words=()`` asks only that the public part reject the answer.

An entry is ``name: Wrong(check, source, words)``: ``check`` is the grade id of the check cell,
``source`` defines the wrong function(s) (run after the notebook's imports and reference solutions,
so it replaces only what it defines), ``words`` is a tuple, or ``None`` for a mistake that only the
hidden tests catch (varied data) or whose message is not pinned.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[2]

CHAPTERS = ("ch01", "ch02", "ch03", "ch04", "ch05", "ch06")


class Wrong(NamedTuple):
    check: str  # grade id of the check cell that must reject the answer
    source: str  # the wrong answer: Python source defining the student's function(s)
    words: tuple[str, ...] | None  # words the public check's message must contain; None: hidden tests only


def table(chapter: str) -> dict[str, Wrong]:
    """The wrong answers of ``chapter`` ("ch01" ... "ch06")."""
    return importlib.import_module(f"{__name__}.{chapter}").WRONG


def notebook(chapter: str) -> Path:
    """The chapter's nbgrader source notebook, whose check cells the table's answers must fail."""
    return ROOT / "solutions" / importlib.import_module(f"{__name__}.{chapter}").NOTEBOOK

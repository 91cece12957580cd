"""Showing the helper package's own code inside a chapter, so it is written once."""
from __future__ import annotations

import inspect

__all__ = ["show_source"]


def show_source(*objects):
    """Display the source of functions or classes as highlighted Python.

    A chapter that teaches a component shows the implementation that later
    chapters import, instead of pasting a copy into the notebook.

    Returns:
        An ``IPython.display.Code`` object (rendered by Jupyter, Colab and the book).
    """
    from IPython.display import Code

    source = "\n\n".join(inspect.getsource(obj).rstrip() for obj in objects)
    return Code(source, language="python")

"""What a chapter shows besides its code: the package's own source and glued numbers."""
from __future__ import annotations

import inspect

__all__ = ["glue", "show_source"]


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


# --- Numbers the text quotes: myst-nb glue, or nothing outside the book build ------------------

def glue(name: str, value, display: bool = False) -> None:
    """Record ``value`` under ``name`` for the chapter text.

    The book's markdown inserts it with ``{glue:text}`name:.2f``` (myst-nb's glue roles), so
    the text always says what the code computed. NumPy and PyTorch scalars are turned into
    plain Python numbers first, so that format specs such as ``:.2f`` apply to them (myst-nb
    formats the ``text/plain`` form, and ``np.float64(0.25)`` is not a number to it).

    Where myst-nb is not installed (Colab, a plain Jupyter), this does nothing: the chapter's
    printed output already shows the number. With myst-nb, the glued value is stored in an
    output that Jupyter does not display. Nothing is returned, so a ``glue`` call on a cell's
    last line adds no output.

    Args:
        name: the glue key, unique within the notebook.
        value: a number (Python, NumPy or a one-element tensor) or a string.
        display: also show the value as the cell's output (myst-nb's own switch).

    Raises:
        TypeError: ``value`` is an array or tensor with more than one element.
    """
    if hasattr(value, "item") and not isinstance(value, str):  # NumPy scalars and arrays, tensors
        count = value.numel() if hasattr(value, "numel") else getattr(value, "size", 1)  # torch / NumPy
        if count != 1:
            raise TypeError(f"glue({name!r}) needs one number, got an array of shape {tuple(value.shape)}")
        value = value.item()
    try:
        from myst_nb import glue as myst_glue
    except ImportError:  # Colab or plain Jupyter: the printout already shows the number
        return
    myst_glue(name, value, display=display)


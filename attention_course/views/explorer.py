"""One widget class for every explorer: live in Jupyter, Colab *and* the static book.

An :class:`Explorer` is an `anywidget <https://anywidget.dev>`_ widget. Its front-end is
the shared ``static/explorer_core.js`` followed by one file per kind,
``static/explorers/<kind>.js``; its style is ``static/explorer.css``. Python hands the
front-end a JSON-able ``data`` dict (everything the drawing and the recomputation need) and
the initial ``controls``; the browser draws and recomputes from them. Because the ES module and
the data are part of the widget's state, myst-nb saves them in the page, and the explorer
keeps working in the published book with no kernel (the book serves anywidget's front-end
itself: ``scripts/vendor_static.sh``).

With a kernel the two talk both ways. The page sends requests (``{"type": ..., "request": id,
...}``, ``core.ask``) that a handler registered with :meth:`Explorer.on_request` answers. The
kernel has ONE channel to the page: it assigns a new ``data`` dict (``core.onData`` in the
browser), at any time; an answer to a request is new data too (:meth:`Explorer.answer`: the
answer in ``data["answer"]``, with the request's id, and any other keys of ``data`` it
changes), and so is an error raised by a handler. :meth:`Explorer.accept_typed` is what every
explorer with a "your own input" box does with what the reader types (``core.ownInput``).

A new kind is a subclass that names its kind::

    class AlignmentExplorer(Explorer, kind="alignment"):   # uses static/explorers/alignment.js
        ...

Every text an explorer shows, in the page or from Python (alt text, messages sent as answers), is in
``static/strings.json``: one section per kind (and ``core``), each with an ``"en"`` and a ``"zh-CN"``
table. :func:`build_esm` puts the ``core`` and kind sections into the module (``core.t`` in the
browser); :func:`say` reads the same table in Python. Which language the page shows: the
``language`` the data carries (:func:`attention_course.env.course_language` when the explorer was
made) with a kernel (Jupyter, Colab); in the static book, the page's own ``<html lang>`` (both
editions embed the same saved widget state, so the page decides when it is shown).

Works with ipywidgets 8 (here) and 7.7 (Colab's custom widget manager).
"""
from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Callable

import anywidget
import numpy as np
import traitlets

from attention_course.env import course_language

__all__ = ["Explorer", "build_esm", "encode_unit", "STATIC", "STRINGS", "language_tag", "say"]

STATIC = Path(__file__).resolve().parent / "static"
#: Every text of the explorers: ``STRINGS[section][language][key]`` (``static/strings.json``), a
#: section per explorer kind plus ``"core"``, languages ``"en"`` and ``"zh-CN"``. A value is a
#: string with ``{name}`` fields, or ``{"one": ..., "other": ...}`` chosen by the field ``n``.
STRINGS: dict = json.loads((STATIC / "strings.json").read_text(encoding="utf-8"))
_FIELD = re.compile(r"\{(\w+)\}")


def language_tag(language: str | None = None) -> str:
    """The strings table's name of ``language`` (default: the course's language): ``"en"`` or ``"zh-CN"``."""
    language = course_language() if language is None else language
    return "zh-CN" if language.lower().startswith("zh") else "en"


def say(section: str, key: str, language: str | None = None, /, **fields) -> str:
    """The text ``key`` of ``section`` of :data:`STRINGS` in ``language`` (default: the course's), filled in.

    ``{name}`` is replaced by ``fields[name]`` (as ``core.t`` does in the browser); a text with
    plural forms takes ``"one"`` when ``fields["n"] == 1``, else ``"other"``.

    Raises:
        KeyError: if the table has no such section or key.
    """
    value = STRINGS[section][language_tag(language)][key]
    if isinstance(value, dict):
        value = value["one" if fields.get("n") == 1 else "other"]
    return _FIELD.sub(lambda m: str(fields[m.group(1)]) if m.group(1) in fields else m.group(0), value)


def build_esm(kind: str) -> str:
    """The ES module of one explorer kind: the shared core, its texts (``STRINGS``), then ``explorers/<kind>.js``.

    Raises:
        ValueError: if there is no front-end file for ``kind``.
    """
    path = STATIC / "explorers" / f"{kind}.js"
    if not path.is_file():
        known = sorted(p.stem for p in (STATIC / "explorers").glob("*.js"))
        raise ValueError(f"no front-end for explorer kind {kind!r} ({path}); known kinds: {known}")
    core = (STATIC / "explorer_core.js").read_text(encoding="utf-8")
    sections = [STRINGS[name] for name in ("core", kind) if name in STRINGS]
    table = {language: {k: v for section in sections for k, v in section[language].items()}
             for language in STRINGS["core"]}
    strings = f"// ---- strings (static/strings.json: core, {kind}) ----\n" \
              f"const STRINGS = {json.dumps(table, ensure_ascii=False, separators=(',', ':'))};\n"
    # After the core, whose functions read STRINGS only when an explorer renders (the whole module has run).
    return f"{core}\n{strings}// ---- explorer kind: {kind} ----\n{path.read_text(encoding='utf-8')}"


def encode_unit(weights) -> dict:
    """Pack numbers in ``[0, 1]`` (attention weights) compactly for the front-end.

    Each value is rounded to the nearest multiple of 1/255 and stored as one byte; the bytes
    are base64-encoded. ``core.decodeUnit(b64, shape)`` in the browser undoes it (max error
    1/510, invisible in a heatmap and below the two decimals the readouts print).

    Returns:
        ``{"b64": str, "shape": list[int]}``.

    Raises:
        ValueError: if any value lies outside ``[0, 1]`` (beyond rounding) or is not finite.
    """
    w = np.asarray(weights, dtype=float)
    if not np.all(np.isfinite(w)) or w.min(initial=0) < -1e-6 or w.max(initial=0) > 1 + 1e-6:
        raise ValueError(f"encode_unit: values must lie in [0, 1]; got range "
                         f"[{np.nanmin(w)}, {np.nanmax(w)}] for shape {w.shape}")
    q = np.rint(np.clip(w, 0, 1) * 255).astype(np.uint8)
    return {"b64": base64.b64encode(q.tobytes()).decode("ascii"), "shape": list(w.shape)}


class Explorer(anywidget.AnyWidget):
    """Base class of the course's explorers (one per ``kind``).

    Synced traits:
        kind: the front-end file's name (``static/explorers/<kind>.js``).
        data: JSON-able dict: what the front-end draws and recomputes from; its ``language`` is
            the course's language when the explorer was made (the page speaks it with a kernel).
        controls: JSON-able dict: the controls' initial values (e.g. ``{"layer": 3}``).
        alt: one sentence describing the initial drawing (the explorer's text alternative).

    Subclasses name their kind in the class statement: ``class X(Explorer, kind="x")``.
    """

    kind = traitlets.Unicode("").tag(sync=True)
    data = traitlets.Dict().tag(sync=True)
    controls = traitlets.Dict().tag(sync=True)
    alt = traitlets.Unicode("").tag(sync=True)
    _css = (STATIC / "explorer.css").read_text(encoding="utf-8")
    _kind_name: str | None = None

    def __init_subclass__(cls, kind: str | None = None, **kwargs):
        super().__init_subclass__(**kwargs)
        if kind is not None:
            cls._kind_name = kind
            cls._esm = build_esm(kind)

    def __init__(self, data: dict | None = None, controls: dict | None = None, alt: str = "", **kwargs):
        if self._kind_name is None:
            raise TypeError("Explorer is a base class: subclass it with class X(Explorer, kind='...')")
        data = {"language": course_language(), **(data or {})}
        super().__init__(kind=self._kind_name, data=data, controls=controls or {}, alt=alt, **kwargs)
        self._handlers: dict[str, Callable[[dict], None]] = {}
        self.on_msg(self._dispatch)

    def on_request(self, name: str, handler: Callable[[dict], None]) -> None:
        """Call ``handler(message)`` when the front-end sends ``{"type": name, ...}`` (kernel only)."""
        self._handlers[name] = handler

    def answer(self, request: dict, reply: dict | None = None, **changes) -> None:
        """Answer the front-end's ``request`` by assigning new ``data`` (the kernel's one channel).

        The new data is the old with ``changes`` applied (e.g. ``sentences=[...]``) and
        ``data["answer"] = {"type": request["type"], "request": request["request"], **reply}``;
        the page acts on an answer whose ``request`` is the id it sent. A handler may answer one
        request several times (e.g. a text as it is written); the last answer stays in ``data``.
        """
        header = {"type": request.get("type"), "request": request.get("request")}
        self.data = {**self.data, **changes, "answer": {**header, **(reply or {})}}

    def accept_typed(self, name: str, presets, data_for: Callable[[list[str]], dict],
                     check: Callable[[str], object], keep: int = 12) -> None:
        """With a kernel, add what the reader types into the "your own input" box to the choices.

        The box (``core.ownInput`` in the browser) sends ``{"type": name, "request": id, "text"}``.
        The text, stripped, goes to ``check``, which raises ``ValueError`` (the message the page
        shows) for an input Python cannot compute; otherwise it joins the typed inputs (the last
        ``keep``, none repeated, no preset) and the answer carries ``data_for(presets + typed)``,
        the data keys that change (the page then finds the text among its choices).
        """
        typed: list[str] = []

        def add(message: dict) -> None:
            text = str(message.get("text", "")).strip()
            check(text)
            if text not in presets and text not in typed:
                typed.append(text)
                del typed[:-keep]
            self.answer(message, **data_for(list(presets) + typed))

        self.on_request(name, add)

    def _dispatch(self, _widget, content, _buffers) -> None:
        if isinstance(content, dict) and content.get("type") in self._handlers:
            try:
                self._handlers[content["type"]](content)
            except Exception as error:  # report to the page instead of losing it in the kernel log
                self.answer(content, {"error": str(error)})
                raise

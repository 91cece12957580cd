"""Glued numbers in figures' alt text.

myst-nb parses a figure's caption (cell metadata ``mystnb.figure.caption``) as MyST, so
``{glue:text}`key:.2f``` works there, but it copies the alt text (``mystnb.image.alt``) into
the ``<img>`` verbatim. This extension fills the same roles in alt text, from the glue data
that myst-nb saved for the page while executing it (``jupyter_execute/<page>.glue.json``),
formatted exactly as myst-nb formats ``{glue:text}``. An unknown key is a warning, which the
book's ``-W`` build turns into a failure, so alt text can no more drift from the code than the
prose can.

For the gettext builder (tools/i18n.py update) the roles stay as they are: the message a
translator sees, and the one the Chinese build's Locale transform looks up before this
extension runs, is the alt text with its roles.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from docutils import nodes
from sphinx.util import logging

ROLE = re.compile(r"\{glue(?::text)?\}`([^`]+)`")
LOGGER = logging.getLogger(__name__)


def page_glue(env) -> dict:
    """The glue data myst-nb saved for the page being read (``{key: {"data": {mime: ...}}}``).

    Read once per page; ``_ext/editions.py`` uses it for glue roles in translated messages.
    """
    cache = env.temp_data.setdefault("page_glue", {})
    if env.docname not in cache:
        glue_file = Path(env.mystnb_config.output_folder, f"{env.docname}.glue.json")
        cache[env.docname] = json.loads(glue_file.read_text(encoding="utf-8")) if glue_file.is_file() else {}
    return cache[env.docname]


def edition_key(data: dict, key: str, language: str) -> str:
    """The glue key to show in the ``language`` edition: ``<key>__<language>`` where the chapter glued
    one (a phrase worded for that edition: "3 和 4" for "3 and 4"), else ``key`` itself.

    >>> edition_key({"a": 1, "a__zh_CN": 2}, "a", "zh_CN"), edition_key({"a": 1}, "a", "zh_CN")
    ('a__zh_CN', 'a')
    """
    worded = f"{key}__{language}"
    return worded if worded in data else key


def _fill_alt(app, doctree):
    if app.builder.name == "gettext":
        return
    images = [node for node in doctree.findall(nodes.image) if "{glue" in node.get("alt", "")]
    if not images:
        return
    from myst_nb.core.variables import format_plain_text

    data = page_glue(app.env)

    for image in images:
        def fill(match):
            key, _, fmt = match.group(1).partition(":")
            key = edition_key(data, key, app.config.language)
            if key not in data or "text/plain" not in data[key].get("data", {}):
                LOGGER.warning(f"alt text glues {key!r}, which the notebook does not glue",
                               location=image, type="glue", subtype="alt")
                return match.group(0)
            try:
                return format_plain_text(data[key]["data"]["text/plain"], fmt)
            except ValueError as error:
                LOGGER.warning(f"alt text cannot format glue {key!r}: {error}",
                               location=image, type="glue", subtype="alt")
                return match.group(0)

        image["alt"] = ROLE.sub(fill, image["alt"])


def setup(app):
    app.connect("doctree-read", _fill_alt)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

"""The built book's two editions each show a chapter figure in their own language (tests/test_figure_languages.py
tests the mechanism: attention_course.views.plotting.bilingual and _ext/figure_languages.py)."""
from __future__ import annotations

import base64
import hashlib
import sys
from pathlib import Path

from conftest import HTML, ROOT

sys.path.insert(0, str(ROOT / "_ext"))
import figure_languages  # noqa: E402

BUILD = ROOT / "_build"


def _bilingual_images(nb: dict):
    for cell in nb["cells"]:
        for output in cell.get("outputs", []):
            languages = figure_languages.figure_languages(output)
            if languages:
                yield {language: hashlib.sha256(base64.b64decode(output["data"][mime])).hexdigest()
                       for language, mime in languages.items()}


def _executed_chapters() -> dict[str, dict]:
    """The build's executed chapters (``_build/.jupyter_cache``, where myst-nb keeps their outputs), by stem."""
    if not (BUILD / ".jupyter_cache").is_dir():
        return {}
    from jupyter_cache import get_cache

    cache = get_cache(str(BUILD / ".jupyter_cache"))
    return {Path(record.uri).stem: cache.get_cache_bundle(record.pk).nb for record in cache.list_cache_records()
            if Path(record.uri).parent.name == "book"}


def test_the_built_book_shows_each_edition_its_own_figures():
    pages = [(nb, HTML.parent / "html" / "book" / f"{stem}.html", HTML.parent / "html" / "zh_CN" / "book" / f"{stem}.html")
             for stem, nb in _executed_chapters().items()]
    pages = [(nb, en, zh) for nb, en, zh in pages if en.is_file() and zh.is_file() and any(_bilingual_images(nb))]
    assert pages, "the built book has no chapter with bilingual figures (Chapters 1-2 have them)"
    for nb, english, chinese in pages:
        english, chinese = english.read_text(encoding="utf-8"), chinese.read_text(encoding="utf-8")
        for names in _bilingual_images(nb):  # myst-nb names an output image by the hash of its bytes
            assert names["en"] in english and names["en"] not in chinese, english[:80]
            assert names["zh_CN"] in chinese and names["zh_CN"] not in english, chinese[:80]

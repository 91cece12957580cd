"""The download button's link to the whole book as a PDF, in the page's edition.

sphinx-book-theme's download menu offers the page's notebook, its source and ".pdf", which
prints the one page. This adds "the whole book (PDF)": the PDF that ``tools/pdf.py``
(``bash scripts/build_pdf.sh``) prints from the built book into ``_build/html/pdf/``, beside the
site: ``pdf/attention-mechanisms.pdf`` for the English pages, ``pdf/attention-mechanisms-zh_CN.pdf``
for the Chinese ones (whose site is ``zh_CN/`` inside the English one). Links are relative, so
they work from any folder or host.
"""
from __future__ import annotations

SOURCE_LANGUAGE = "en"
PDF_FOLDER = "pdf"  # inside the English site's root, _build/html/
FILES = {"en": "attention-mechanisms.pdf", "zh_CN": "attention-mechanisms-zh_CN.pdf"}  # = tools/pdf.py's
LABELS = {
    "en": ("Book (PDF)", "Download the whole book as a PDF"),
    "zh_CN": ("全书（PDF）", "下载全书的 PDF 版"),
}


def book_pdf_href(pagename: str, language: str) -> str:
    """Relative link from page ``pagename`` of the ``language`` edition to that edition's PDF.

    >>> book_pdf_href("book/01_origin", "en")
    '../pdf/attention-mechanisms.pdf'
    >>> book_pdf_href("book/01_origin", "zh_CN")
    '../../pdf/attention-mechanisms-zh_CN.pdf'
    >>> book_pdf_href("intro", "en")
    'pdf/attention-mechanisms.pdf'

    Raises:
        ValueError: no PDF edition in ``language``.
    """
    if language not in FILES:
        raise ValueError(f"no PDF edition in {language!r}: expected one of {sorted(FILES)}")
    up = "../" * (pagename.count("/") + (language != SOURCE_LANGUAGE))
    return f"{up}{PDF_FOLDER}/{FILES[language]}"


def _add_book_pdf(app, pagename, templatename, context, doctree):
    language = app.config.language or SOURCE_LANGUAGE
    groups = [g for g in context.get("header_buttons", []) if g.get("label") == "download-buttons"]
    if not groups or language not in FILES:
        return
    text, tooltip = LABELS[language]
    groups[0]["buttons"].append({
        "type": "link",
        "url": book_pdf_href(pagename, language),
        "text": text,
        "tooltip": tooltip,
        "icon": "fas fa-book",
        "label": "download-book-pdf-button",
    })


def setup(app):
    # after sphinx-book-theme's add_header_buttons (priority 501), which makes the download menu
    app.connect("html-page-context", _add_book_pdf, priority=503)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

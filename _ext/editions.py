"""Two editions of the book from one source: English, and Chinese through Sphinx's gettext.

The English build (``language = "en"``) writes ``_build/html/``; the Chinese build
(``tools/i18n.py build``, ``language = "zh_CN"``, catalogues in ``locales/zh_CN/LC_MESSAGES/``)
writes ``_build/html/zh_CN/``. This extension, loaded by both builds, adds:

* **The switcher.** Every page gets a link, in the article header beside the theme's buttons,
  to the same page in the other edition. Links are relative, so both editions work from any
  folder or host: from ``book/01_origin.html`` to ``zh_CN/book/01_origin.html`` and back.
* **Chinese labels** (Chinese build only). Sphinx reads ``locales/zh_CN/LC_MESSAGES/sphinx.po``
  before its own catalogue; ``booktheme.po`` is put before sphinx-book-theme's (which leaves
  several labels in English and some in traditional characters); the search box's placeholder
  is a theme option, set here.
* **Glued numbers in translated text** (Chinese build only). Sphinx parses each translated
  message as a document of its own, where myst-nb's ``{glue:text}`` role finds no notebook and
  no glue data. For those messages the numbers are read from the glue data myst-nb saved for
  the page while executing it (``<output folder>/<page>.glue.json``, read by ``glue_alt.page_glue``),
  so the Chinese text shows exactly the English text's numbers. Where a glued value is words, not
  a number ("3 and 4"), the chapter also glues ``<key>__zh_CN`` ("3 和 4"), which the Chinese text
  shows instead.
* **Chinese search** (Chinese build only). Sphinx indexes Chinese text cut into words by jieba,
  but in the browser it splits a query only at spaces and punctuation, so a query such as
  上下文向量 (one word to the reader, two in the index) found nothing. The query's runs of
  Chinese characters are now cut by longest match against the index's own terms.
* **Chinese notebooks behind the buttons** (Chinese build only). sphinx-book-theme's launch
  buttons (Colab, Binder, ...: ``_config.yml``'s ``launch_buttons``) open the page's notebook in
  the repository, ``book/01_origin.ipynb``; on a Chinese page they open its Chinese twin,
  ``zh_CN/book/01_origin.ipynb`` (written by ``tools/zh_notebooks.py``), and the download
  button's ``.ipynb`` (``_sources/<page>.ipynb``) is that notebook too. A notebook page without a
  Chinese notebook, or a launch link this cannot redirect, is a warning.
* **No silent drift** (Chinese build only). Sphinx's ``Locale`` transform marks every
  translatable node ``translated=True`` or ``False``. A message with no translation, a fuzzy one
  (sphinx-intl leaves fuzzy entries out of the compiled catalogue) or a page with no catalogue
  at all is a warning naming the page and the English text, and the build runs with ``-W``, so
  a change to the English text fails CI until its translation is updated
  (``tools/i18n.py update``, then translate the new entries).
"""
from __future__ import annotations

from pathlib import Path

from docutils import nodes
from sphinx.transforms import SphinxTransform
from sphinx.util import logging
from sphinx.util.nodes import extract_messages

logger = logging.getLogger(__name__)

SOURCE_LANGUAGE = "en"
TRANSLATED = "zh_CN"  # the other edition, built into <English root>/zh_CN/
SWITCH = {
    # language of this build: (label of the link, its language tag, its accessible name)
    SOURCE_LANGUAGE: ("中文", "zh-CN", "阅读本页的中文版"),
    TRANSLATED: ("English", "en", "Read this page in English"),
}


def _translating(config) -> bool:
    """True in the Chinese build (any build whose language is not the source's)."""
    return config.language not in (None, SOURCE_LANGUAGE)


def _glue_in_translated_messages() -> None:
    """Let myst-nb's glue roles and directives read the page's glue data in a translated message."""
    from glue_alt import edition_key, page_glue  # a sibling local extension (_ext/ is on the path)
    from myst_nb.core.variables import RetrievalError, VariableOutput
    from myst_nb.ext.glue import directives, roles, utils

    original = utils.retrieve_glue_data
    if getattr(roles.retrieve_glue_data, "editions", False):
        return

    def retrieve_glue_data(document, key):
        env = getattr(document.settings, "env", None)
        if ("nb_renderer" in document or env is None
                or not str(getattr(document, "current_source", "")).endswith("<translated>")):
            return original(document, key)
        data = page_glue(env)
        key = edition_key(data, key, env.config.language)
        if key not in data:
            raise RetrievalError(f"No key {key!r} found in glue data for page {env.docname!r}.")
        return VariableOutput(data=data[key]["data"], metadata=data[key].get("metadata", {}),
                              nb_renderer=None, vtype="glue")

    retrieve_glue_data.editions = True
    roles.retrieve_glue_data = directives.retrieve_glue_data = retrieve_glue_data


CHINESE_SPLITTER = r"""
function splitQuery(query) {
  // Latin words as Sphinx splits them; each run of Chinese characters cut by longest match
  // against the index's terms (jieba cut the pages into those words), one character at worst.
  const terms = (typeof Search !== "undefined" && Search._index) ? Search._index.terms : {};
  const known = (word) => Object.prototype.hasOwnProperty.call(terms, word);
  const out = [];
  for (const part of query.split(/[^\p{Letter}\p{Number}_\p{Emoji_Presentation}]+/u)) {
    for (const run of part.match(/\p{Script=Han}+|[^\p{Script=Han}]+/gu) || []) {
      if (!/\p{Script=Han}/u.test(run)) { out.push(run); continue; }
      for (let i = 0; i < run.length;) {
        let j = Math.min(run.length, i + 8);
        while (j > i + 1 && !known(run.slice(i, j))) j--;
        out.push(run.slice(i, j));
        i = j;
      }
    }
  }
  return out;
}
"""


def _chinese_search_language():
    from sphinx.search.zh import SearchChinese

    class ChineseSearch(SearchChinese):
        js_splitter_code = CHINESE_SPLITTER

    return ChineseSearch


def other_edition_href(pagename: str, language: str) -> str:
    """Relative link from page ``pagename`` of the ``language`` edition to the same page in the other.

    >>> other_edition_href("book/01_origin", "en")
    '../zh_CN/book/01_origin.html'
    >>> other_edition_href("book/01_origin", "zh_CN")
    '../../book/01_origin.html'

    Raises:
        ValueError: ``language`` is not one of the two editions.
    """
    up = "../" * pagename.count("/")
    if language == SOURCE_LANGUAGE:
        return f"{up}{TRANSLATED}/{pagename}.html"
    if language == TRANSLATED:
        return f"{up}../{pagename}.html"
    raise ValueError(f"no edition for language {language!r}: expected {SOURCE_LANGUAGE!r} or {TRANSLATED!r}")


class RememberEnglishAltTexts(SphinxTransform):
    """Keep each image's English alt text: Locale translates alt texts without marking them."""

    default_priority = 19  # just before Locale

    def apply(self, **kwargs) -> None:
        if not _translating(self.config):
            return
        for image in self.document.findall(nodes.image):
            image["english_alt"] = image.get("alt", "")


def _is_translated(node) -> bool:
    if isinstance(node, nodes.image) and "english_alt" in node:
        return node.get("alt", "") != node["english_alt"]
    return bool(node.get("translated"))


def _not_text(node) -> bool:
    """Nodes that are not the page's text: a code cell's LaTeX output, the page's metadata."""
    if isinstance(node, nodes.math_block) and "text_latex" in node.get("classes", []):
        return True  # myst-nb's rendering of a text/latex output (e.g. show_source's listing)
    while node is not None:
        # the notebook's metadata, as front matter: a field list outside any section, which
        # Sphinx turns into docinfo and removes from the page after these transforms
        if isinstance(node, nodes.docinfo) or (isinstance(node, nodes.field_list)
                                               and isinstance(node.parent, nodes.document)):
            return True
        node = node.parent
    return False


class UntranslatedMessages(SphinxTransform):
    """Warn about every translatable node the Locale transform (priority 20) left in English.

    Sphinx also leaves a message in English when its translation parses as something other
    than a paragraph, e.g. a title translated as ``5. 多头自注意力`` (a numbered list): write
    ``5\\. 多头自注意力``. ``tools/i18n.py check`` says so too.
    """

    default_priority = 26  # after Locale and TranslationProgressTotaliser

    def apply(self, **kwargs) -> None:
        if not _translating(self.config):
            return
        source = self.document.get("source", "")
        if source.endswith("<translated>"):  # a message being parsed, not a page
            return
        missing = [(node, msg) for node, msg in extract_messages(self.document)
                   if not _is_translated(node) and not _not_text(node)]
        if not missing:
            return
        if all("translated" not in node for node, _ in missing):
            logger.warning("%s: no %s catalogue for this page (tools/i18n.py update, then translate it)",
                           self.env.docname, self.config.language, location=self.env.docname,
                           type="i18n", subtype="catalogue")
            return
        for node, msg in missing:
            logger.warning("untranslated or fuzzy message (%s): %s", self.config.language,
                           _shorten(msg), location=node, type="i18n", subtype="untranslated")


def _shorten(text: str, limit: int = 100) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _translate_toctree_captions(app, doctree) -> None:
    """Translate the captions of the toctrees sphinx-external-toc inserts after Locale has run.

    The gettext builder extracts them (from the root page's catalogue), but Locale has already
    translated the page when they are added, so the sidebar's "Chapters" stayed English.
    An untranslated caption is a warning, like any other message.
    """
    if not _translating(app.config):
        return
    from os import path

    from sphinx import addnodes
    from sphinx.locale import init as init_locale
    from sphinx.util.i18n import docname_to_domain

    toctrees = [node for node in doctree.findall(addnodes.toctree) if node.get("caption")]
    if not toctrees:
        return
    domain = docname_to_domain(app.env.docname, app.config.gettext_compact)
    catalog, _ = init_locale([path.join(app.srcdir, d) for d in app.config.locale_dirs],
                             app.config.language, domain)
    for toctree in toctrees:
        translated = catalog.gettext(toctree["caption"])
        if translated == toctree["caption"]:
            logger.warning("untranslated toctree caption (%s): %s", app.config.language, translated,
                           location=app.env.docname, type="i18n", subtype="untranslated")
        toctree["caption"] = translated


def _add_switch(app, pagename, templatename, context, doctree):
    language = app.config.language or SOURCE_LANGUAGE
    if language not in SWITCH:
        return
    label, hreflang, title = SWITCH[language]
    context["edition_switch"] = {
        "href": other_edition_href(pagename, language),
        "label": label,
        "hreflang": hreflang,
        "title": title,
    }


def translated_notebook(pagename: str) -> str:
    """Path of the page's notebook in the translated edition, relative to the book's folder.

    >>> translated_notebook("notebooks/ch01_origin/origin")
    'zh_CN/notebooks/ch01_origin/origin.ipynb'
    """
    return f"{TRANSLATED}/{pagename}.ipynb"


def translated_launch_url(url: str, pagename: str, path_to_docs: str = "") -> str:
    """The theme's launch link ``url`` for page ``pagename``, opening the translated notebook instead.

    The theme ends each link with the notebook's path in the repository (``path_to_docs`` +
    page + ``.ipynb``); that path is replaced by the translated notebook's.

    >>> translated_launch_url("https://colab.research.google.com/github/o/r/blob/main/book/01_origin.ipynb",
    ...                       "book/01_origin")
    'https://colab.research.google.com/github/o/r/blob/main/zh_CN/book/01_origin.ipynb'
    >>> translated_launch_url("https://mybinder.org/v2/gh/o/r/main?urlpath=tree/book/01_origin.ipynb",
    ...                       "book/01_origin")
    'https://mybinder.org/v2/gh/o/r/main?urlpath=tree/zh_CN/book/01_origin.ipynb'

    Raises:
        ValueError: ``url`` does not name the page's notebook.
    """
    folder = path_to_docs.strip("/") + "/" if path_to_docs.strip("/") else ""
    english, translated = f"/{folder}{pagename}.ipynb", f"/{folder}{translated_notebook(pagename)}"
    if english not in url:
        raise ValueError(f"no {english[1:]!r} in the launch link {url!r}")
    head, _, tail = url.rpartition(english)
    return head + translated + tail


def _translated_launch_buttons(app, pagename, templatename, context, doctree):
    """Point the Chinese page's launch buttons at its Chinese notebook (after the theme made them)."""
    if not _translating(app.config):
        return
    launch = [group for group in context.get("header_buttons", []) if group.get("label") == "launch-buttons"]
    if not launch:
        return  # not a notebook page
    if not Path(app.srcdir, translated_notebook(pagename)).is_file():
        logger.warning("no %s notebook for this page, the launch buttons would open the English one "
                       "(run tools/zh_notebooks.py)", app.config.language, location=pagename,
                       type="i18n", subtype="notebook")
        return
    path_to_docs = app.config.html_theme_options.get("path_to_docs", "")
    for button in launch[0].get("buttons", []):
        if button.get("type") == "link":
            try:
                button["url"] = translated_launch_url(button["url"], pagename, path_to_docs)
            except ValueError as error:
                logger.warning("%s", error, location=pagename, type="i18n", subtype="notebook")


def _translated_notebook_downloads(app, exception):
    """The download button's ``_sources/<page>.ipynb`` of each Chinese page: its Chinese notebook.

    Sphinx copies the English source there as it writes each page, so this runs at the end.
    """
    if exception is not None or not _translating(app.config) or app.builder.format != "html":
        return
    import shutil

    for pagename in sorted(app.env.found_docs):
        notebook = Path(app.srcdir, translated_notebook(pagename))
        target = Path(app.outdir, "_sources", f"{pagename}.ipynb")
        if notebook.is_file() and target.is_file():
            shutil.copyfile(notebook, target)


SEARCH_PLACEHOLDER = {TRANSLATED: "搜索本书……"}


def _register_template(app, config):
    # first, before the themes' component folders: two of their templates are overridden here
    config.templates_path.insert(0, str(Path(__file__).parent / "templates"))
    options = config.html_theme_options
    if config.language in SEARCH_PLACEHOLDER:
        options["search_bar_text"] = SEARCH_PLACEHOLDER[config.language]
    end = list(options.get("article_header_end") or ["article-header-buttons.html"])
    if "edition-switch.html" not in end:
        end.append("edition-switch.html")
    options["article_header_end"] = end


def _theme_labels_first(app):
    """Put ``locales/<language>/LC_MESSAGES/booktheme.po`` before sphinx-book-theme's catalogue.

    The first catalogue registered for a domain is the one consulted first; this extension is
    set up before the theme's, so its translations win and the theme's remain the fallback.
    """
    from sphinx.util.i18n import CatalogInfo

    if not _translating(app.config):
        return
    language = app.config.language
    for directory in app.config.locale_dirs:
        folder = Path(app.srcdir, directory, language, "LC_MESSAGES")
        if (folder / "booktheme.po").is_file():
            catalogue = CatalogInfo(str(folder), "booktheme", app.config.source_encoding)
            if catalogue.is_outdated():
                catalogue.write_mo(language)
            app.add_message_catalog("booktheme", str(Path(app.srcdir, directory)))


def setup(app):
    _theme_labels_first(app)
    if _translating(app.config):
        _glue_in_translated_messages()
    if app.config.language == TRANSLATED:
        app.add_search_language(_chinese_search_language())
    app.connect("config-inited", _register_template)
    app.connect("html-page-context", _add_switch)
    # after sphinx-book-theme's add_launch_buttons (priority 501)
    app.connect("html-page-context", _translated_launch_buttons, priority=502)
    app.connect("build-finished", _translated_notebook_downloads)
    app.connect("doctree-read", _translate_toctree_captions)
    app.add_transform(RememberEnglishAltTexts)
    app.add_transform(UntranslatedMessages)
    app.add_css_file("editions.css")
    return {"parallel_read_safe": True, "parallel_write_safe": True}

"""The Chinese edition's catalogues: complete, nothing fuzzy, maths/roles/code intact (tools/i18n.py).

Whether the catalogues match the *current* English text is checked by the Chinese build itself:
``_ext/editions.py`` warns about every message it cannot translate and the build runs with -W.
"""
import sys

import pytest

from course_tools import ROOT

sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "_ext"))
import editions  # noqa: E402
import i18n  # noqa: E402


def test_every_page_has_a_complete_and_intact_catalogue():
    problems = i18n.check(i18n.book_pages())
    assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(map(str, problems[:40]))


def test_book_pages_come_from_the_toc():
    pages = i18n.book_pages()
    assert pages[0] == "book/intro" and "book/glossary" in pages
    assert "notebooks/ch03_general_form/general_form" in pages


@pytest.mark.parametrize("english, chinese, lost", [
    # a maths span rewritten
    ("The weights $\\alpha_{ij}$ sum to one.", "权重 $\\alpha_{i j}$ 之和为一。", "$\\alpha_{ij}$"),
    # a display equation dropped
    ("It is $$e = a^\\top b$$ here.", "此处为。", "$$e = a^\\top b$$"),
    # a glued number's name or format changed
    ("It reached {glue:text}`bleu:.1f` BLEU.", "达到 {glue:text}`bleu:.2f` BLEU。", "{glue:text}`bleu:.1f`"),
    # a citation key translated
    ("As {cite:t}`bahdanau2015` showed.", "正如 {cite:t}`巴达瑙2015` 所示。", "{cite:t}`bahdanau2015`"),
    # a cross-reference pointed elsewhere
    ("See {ref}`the table <tab-a>`.", "见 {ref}`表格 <tab-b>`。", "{ref}tab-a"),
    # inline code translated
    ("Call `softmax(x)` first.", "先调用 `软最大(x)`。", "`softmax(x)`"),
    # a link target lost
    ("Read [the paper](https://arxiv.org/abs/1409.0473).", "阅读论文。", "](https://arxiv.org/abs/1409.0473)"),
])
def test_a_translation_that_changes_markup_is_caught(english, chinese, lost):
    want, got = i18n.invariants(english), i18n.invariants(chinese)
    assert want != got and lost in (want - got), (want, got)


@pytest.mark.parametrize("english, chinese", [
    ("See {ref}`the table <tab-a>` and $x_i$.", "见 {ref}`表格 <tab-a>` 与 $x_i$。"),
    ("The {term}`context vector` $\\mathbf c$.", "{term}`上下文向量 <context vector>` $\\mathbf c$。"),
    ("Cost $O(n^2)$ and $$y = Wx$$", "代价为 $O(n^2)$，且 $$y = Wx$$"),
    ("Use `torch.softmax` with {glue:text}`acc:.1f`%.", "使用 `torch.softmax`，准确率 {glue:text}`acc:.1f`%。"),
])
def test_a_faithful_translation_passes(english, chinese):
    assert i18n.invariants(english) == i18n.invariants(chinese)


def test_the_switcher_links_each_page_to_itself_in_the_other_edition():
    assert editions.other_edition_href("intro", "en") == "zh_CN/intro.html"
    assert editions.other_edition_href("book/01_origin", "en") == "../zh_CN/book/01_origin.html"
    assert editions.other_edition_href("book/01_origin", "zh_CN") == "../../book/01_origin.html"
    assert (editions.other_edition_href("notebooks/ch01_origin/origin", "zh_CN")
            == "../../../notebooks/ch01_origin/origin.html")
    with pytest.raises(ValueError, match="fr"):
        editions.other_edition_href("intro", "fr")


def test_a_translation_read_as_a_list_is_caught(tmp_path, monkeypatch):
    """Sphinx silently keeps the English when a translated title parses as a numbered list."""
    folder = tmp_path / "zh_CN" / "LC_MESSAGES" / "book"
    folder.mkdir(parents=True)
    po = folder / "x.po"
    po.write_text('msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=utf-8\\n"\n\n'
                  'msgid "5. Multi-head self-attention"\nmsgstr "5. 多头自注意力"\n\n'
                  'msgid "1.2 The context vector"\nmsgstr "1.2 上下文向量"\n\n'
                  'msgid "3. Grade"\nmsgstr "3\\\\. 评分"\n', encoding="utf-8")
    monkeypatch.setattr(i18n, "CATALOGUES", tmp_path / "zh_CN" / "LC_MESSAGES")
    problems = i18n.check_catalogue(po)
    assert [p.msgid for p in problems] == ["5. Multi-head self-attention"], problems
    assert "escape" in problems[0].what

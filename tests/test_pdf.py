"""The PDF editions' pieces that need no browser: the download button's links, the pages printed,
the quizzes found in a page and the front matter (tools/pdf.py, _ext/pdf_download.py).
The printed PDFs themselves are checked in tests/browser/test_pdf.py, after the book build."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "_ext"))
import pdf as pdf_tool  # noqa: E402
import pdf_download  # noqa: E402

from attention_course.views.display import load_predictions, load_quiz  # noqa: E402


@pytest.mark.parametrize("language", ["en", "zh_CN"])
@pytest.mark.parametrize("pagename", ["intro", "book/01_origin", "notebooks/ch01_origin/origin"])
def test_the_download_link_leads_from_the_page_to_its_editions_pdf(pagename, language):
    site = Path("/site")  # the English site's root; the Chinese pages are in zh_CN/ inside it
    page = site / ("zh_CN" if language == "zh_CN" else "") / pagename
    target = (page.parent / pdf_download.book_pdf_href(pagename, language)).resolve()
    assert target == site / pdf_download.PDF_FOLDER / pdf_tool.EDITIONS[language].filename


def test_the_download_link_refuses_an_edition_without_a_pdf():
    with pytest.raises(ValueError, match="no PDF edition"):
        pdf_download.book_pdf_href("intro", "fr")


def test_every_page_of_the_toc_is_printed_in_its_order():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    listed = [c["file"] for part in toc["parts"] for c in part["chapters"]]
    pages = pdf_tool.book_pages()
    assert pages[0] == toc["root"] and pages[1:] == listed


def test_the_quizzes_of_a_page_come_from_the_quiz_files_in_both_languages():
    key = next(iter(load_predictions("ch03")))
    source = (f'<div id="selfcheckch03"></div><div id="selfcheckch03_zh_CN"></div>'
              f'<div id="predictch03_{key}"></div><div id="predictch03_{key}_zh_CN"></div>')
    strings = pdf_tool.EDITIONS["en"].strings
    quizzes = pdf_tool.page_quizzes(source, strings)
    expected = {"selfcheckch03": load_quiz("ch03", "en"), "selfcheckch03_zh_CN": load_quiz("ch03", "zh_CN"),
                f"predictch03_{key}": [load_predictions("ch03", "en")[key]],
                f"predictch03_{key}_zh_CN": [load_predictions("ch03", "zh_CN")[key]]}
    assert quizzes.keys() == expected.keys()
    for quiz_id, questions in expected.items():
        printed = quizzes[quiz_id]["questions"]
        assert [q["question"] for q in printed] == [q["question"] for q in questions]
        for shown, source_question in zip(printed, questions):  # the same options, in another order
            assert sorted(map(str, shown["answers"])) == sorted(map(str, source_question["answers"]))
    assert quizzes[f"predictch03_{key}"]["lead"] == strings["predict"]
    # both editions print a question's options in the same order: the same letter in both keys
    for english, chinese in zip(quizzes["selfcheckch03"]["questions"], quizzes["selfcheckch03_zh_CN"]["questions"]):
        assert [a["correct"] for a in english["answers"]] == [a["correct"] for a in chinese["answers"]]


def test_the_right_answer_is_not_always_the_same_letter_on_paper():
    """The quiz files list the right answer first; the printed options must not give it away."""
    letters = [[a["correct"] for a in q["answers"]].index(True)
               for quiz in pdf_tool.page_quizzes('<div id="selfcheckch03"></div><div id="selfcheckch05"></div>',
                                                 pdf_tool.EDITIONS["en"].strings).values()
               for q in quiz["questions"]]
    assert len(set(letters)) > 1, letters


def test_both_editions_have_the_same_printed_labels():
    english, chinese = (pdf_tool.EDITIONS[e].strings for e in ("en", "zh_CN"))
    assert english.keys() == chinese.keys()
    assert all(value != chinese[key] for key, value in english.items())
    for strings in (english, chinese):
        assert "{title}" in strings["live_explorer"] and "{url}" in strings["live_explorer"]


def test_the_contents_give_each_chapter_and_section_its_page():
    chapters = [pdf_tool.Printed("book/intro", "Intro", b"", [("How to read", 1)]),
                pdf_tool.Printed("book/01_origin", "1. Origin", b"", [(r"1.1 Why \(\sqrt{d_k}\)", 0)])]
    document = pdf_tool.front_matter(pdf_tool.EDITIONS["en"], chapters, [1, 4], "http://127.0.0.1:1",
                                     {"book/01_origin": "The lecture"})
    entries = [line.split('<span class="num">')[1].split("<")[0]
               for line in document.split('<div class="entry')[1:]]
    assert entries == ["1", "2", "4", "4"]
    assert r"\(\sqrt{d_k}\)" in document  # typeset by the book's MathJax when printed
    assert document.index("The lecture") < document.index("1. Origin")  # the part's caption first

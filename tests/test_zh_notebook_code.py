"""The Chinese notebooks' code cells: only comments, docstrings and printed text are translated.

tools/zh_notebooks.py rewrites those through ``locales/zh_CN/code/notebooks.po``; everything else
of a code cell must stay the English one, token for token, and every f-string keeps its fields.
"""
from __future__ import annotations

import ast
import io
import json
import sys
import textwrap
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import i18n  # noqa: E402
import zh_notebooks as zh  # noqa: E402

CJK = zh._CJK
STUDENT = [source for source in zh.sources() if source.parts[0] == "notebooks"]


def _cells(source: Path):
    """(index, English source as the Chinese cell starts from it, Chinese source) of each code cell."""
    english = json.loads((ROOT / source).read_text(encoding="utf-8"))
    chinese = json.loads(zh.target(source).read_text(encoding="utf-8"))
    for index, (en_cell, zh_cell) in enumerate(zip(english["cells"], chinese["cells"])):
        if en_cell["cell_type"] == "code":
            text = "".join(en_cell["source"])
            if "colab-setup" in en_cell["metadata"].get("tags", []):
                text = text.replace(zh.SETUP_EN, zh.SETUP_ZH)  # the Chinese setup cell's one change of code
            yield index, text, "".join(zh_cell["source"])


def _code_tokens(source: str) -> list:
    """The cell's tokens without comments and blank lines; adjacent strings as one group."""
    out = []
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type in (tokenize.COMMENT, tokenize.NL):
            continue
        if token.type == tokenize.STRING:
            if out and out[-1][0] == "STRINGS":
                out[-1] = ("STRINGS", out[-1][1] + 1)
            else:
                out.append(("STRINGS", 1))
            continue
        out.append((tokenize.tok_name[token.type], token.string))
    return [("STRINGS",) if kind == "STRINGS" else (kind, text) for kind, text in out]


class _Skeleton(ast.NodeTransformer):
    """Blanks what may be translated: docstrings, and the texts of print/raise string arguments
    (an f-string keeps its fields, sorted, with the texts its ``if ... else`` chooses blanked)."""

    def _blank_text(self, node):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return ast.Constant("")
        if isinstance(node, ast.JoinedStr):
            fields = [self._field(value) for value in node.values if isinstance(value, ast.FormattedValue)]
            return ast.JoinedStr(sorted(fields, key=ast.dump))
        return self.visit(node)

    def _field(self, value):
        for inner in ast.walk(value):
            if isinstance(inner, ast.IfExp):
                for name in ("body", "orelse"):
                    branch = getattr(inner, name)
                    if isinstance(branch, ast.Constant) and isinstance(branch.value, str):
                        setattr(inner, name, ast.Constant(""))
        return value

    def _docstring(self, node):
        self.generic_visit(node)
        first = node.body[0] if node.body else None
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
            first.value = ast.Constant("")
        return node

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _docstring

    def visit_Call(self, node):
        if isinstance(node.func, ast.Name) and node.func.id == "print":
            node.args = [self._blank_text(arg) for arg in node.args]
            node.keywords = [self.visit(keyword) for keyword in node.keywords]
            node.func = self.visit(node.func)
            return node
        return self.generic_visit(node)

    def visit_Raise(self, node):
        if isinstance(node.exc, ast.Call):
            node.exc.args = [self._blank_text(arg) for arg in node.exc.args]
        return self.generic_visit(node)


def skeleton(source: str) -> str:
    return ast.dump(_Skeleton().visit(ast.parse(source)))


@pytest.mark.parametrize("source", zh.sources(), ids=str)
def test_code_cells_differ_only_in_comments_docstrings_and_printed_text(source):
    changed = 0
    for index, english, chinese in _cells(source):
        assert _code_tokens(chinese) == _code_tokens(english), f"{source} cell {index}: a code token changed"
        # the same program apart from the translatable texts; every f-string keeps its fields
        assert skeleton(chinese) == skeleton(english), f"{source} cell {index}: a string that is code or data changed"
        changed += chinese != english
    assert changed > 3, f"{source}: only {changed} code cells translated"


def test_the_skeleton_sees_a_changed_field_and_a_changed_data_string():
    english = 'print(f"{n:>5} steps", d["key"])\n'
    assert skeleton('print(f"{n:>5} 步", d["key"])\n') == skeleton(english)
    assert skeleton('print(f"{n:>6} 步", d["key"])\n') != skeleton(english)   # format spec changed
    assert skeleton('print(f"步", d["key"])\n') != skeleton(english)          # field lost
    assert skeleton('print(f"{n:>5} 步", d["键"])\n') != skeleton(english)   # data translated
    assert _code_tokens("x = 1  # a comment\n") == _code_tokens("x = 1  # 注释\n")
    assert _code_tokens("x = 1\n") != _code_tokens("x = 2\n")


def _english_left(source: str) -> list[str]:
    """Comments, docstrings and printed strings of a cell that are English text (no Chinese)."""
    left = []
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT and not zh._TOOL_COMMENT.match(token.string) \
                and zh.is_text(token.string) and not CJK.search(token.string):
            left.append(token.string)
    for text in zh.code_texts(source):  # docstrings and printed strings still English
        left.append(text.msgid)
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and ast.get_docstring(node) \
                and not CJK.search(ast.get_docstring(node)):
            left.append(ast.get_docstring(node))
    return left


@pytest.mark.parametrize("source", STUDENT, ids=str)
def test_a_chinese_student_notebook_has_no_english_comment_docstring_or_message(source):
    english_found = chinese_left = 0
    for index, english, chinese in _cells(source):
        english_found += len(_english_left(english))
        left = [text for text in _english_left(chinese) if not CJK.search(text)]
        assert not left, f"{zh.target(source).relative_to(ROOT)} cell {index} still has English: {left}"
        chinese_left += len(left)
    assert english_found > 5 and chinese_left == 0  # the English notebook has what the check looks for


def test_the_code_catalogue_holds_exactly_the_notebooks_texts():
    """After changing a code cell, run ``.venv/bin/python tools/zh_notebooks.py update`` and translate."""
    catalogue = zh.Catalogue.read_file(zh.CODE_CATALOGUE)
    extracted = {message.id for message in zh.extract() if message.id}
    assert extracted == set(catalogue.translations) and not catalogue.fuzzy, (
        f"new: {sorted(extracted - set(catalogue.translations))[:5]}, "
        f"gone: {sorted(set(catalogue.translations) - extracted)[:5]}")
    assert i18n.CODE_CATALOGUE == zh.CODE_CATALOGUE
    assert i18n.check_catalogue(i18n.CODE_CATALOGUE) == []


def test_i18n_check_reports_an_untranslated_or_fuzzy_code_message(tmp_path, monkeypatch):
    catalogue = tmp_path / "notebooks.po"
    catalogue.write_text(textwrap.dedent('''\
        msgid ""
        msgstr ""
        "Content-Type: text/plain; charset=utf-8\\n"

        msgid "a comment"
        msgstr ""

        #, fuzzy
        msgid "KV cache per token"
        msgstr "每个词元的 KV 缓存"
        '''), encoding="utf-8")
    monkeypatch.setattr(i18n, "CODE_CATALOGUE", catalogue)
    found = [str(problem) for problem in i18n.check()]
    assert any("untranslated: 'a comment'" in problem for problem in found), found
    assert any("fuzzy" in problem and "KV cache" in problem for problem in found), found
    assert any("uses KV 缓存 where the edition says 键值缓存" in problem for problem in found), found


# ---------------------------------------------------------------------------------------------
# The rewriting, on a cell of every kind

CELL = '''\
import torch  # noqa: F401
# A block of full-line comments
# over two lines.
x = torch.zeros(2, 3)  # (batch, d): a shape with words
y = x  # (batch, d)


def f(a):
    """One line.

    More lines.
    """
    return a


print(f"{x.shape[0]} rows{' (cached)' if True else ''}, "
      f"{x.shape[1]:>3d} columns", "done", sep="|")
raise SystemExit("stopped")
'''
MESSAGES = {
    "A block of full-line comments over two lines.": "一组整行注释，共两行。",
    "(batch, d): a shape with words": "(batch, d)：带文字的形状",
    "One line.\n\nMore lines.": "一行。\n\n更多行。",
    "{x.shape[0]} rows{' (cached)' if True else ''}, {x.shape[1]:>3d} columns":
        "{x.shape[0]} 行{' (cached)' if True else ''}，¶{x.shape[1]:>3d} 列".replace("¶", "\n"),
    " (cached)": "（已缓存）",
    "done": "完成",
    "stopped": "已停止",
}
EXPECTED = '''\
import torch  # noqa: F401
# 一组整行注释，共两行。
x = torch.zeros(2, 3)  # (batch, d)：带文字的形状
y = x  # (batch, d)


def f(a):
    """一行。

    更多行。
    """
    return a


print(f"{x.shape[0]} 行{'（已缓存）' if True else ''}，"
      f"{x.shape[1]:>3d} 列", "完成", sep="|")
raise SystemExit("已停止")
'''


def _translator(messages: dict[str, str]) -> zh.Translator:
    return zh.Translator("test.ipynb", zh.Catalogue({}), cell=2, code_catalogue=zh.Catalogue(dict(messages)))


def test_comments_docstrings_and_printed_strings_are_translated_and_nothing_else():
    assert [text.msgid for text in zh.code_texts(CELL)] == list(MESSAGES)
    translate = _translator(MESSAGES)
    result = zh.translate_code(CELL, translate)
    assert not translate.problems, translate.problems
    assert result == EXPECTED
    assert skeleton(result) == skeleton(CELL) and _code_tokens(result) == _code_tokens(CELL)


@pytest.mark.parametrize("message, translation, problem", [
    ("{x.shape[0]} rows{' (cached)' if True else ''}, {x.shape[1]:>3d} columns",
     "{x.shape[0]} 行，{x.shape[1]:>4d} 列", "replacement fields"),                      # a field changed
    ("{x.shape[0]} rows{' (cached)' if True else ''}, {x.shape[1]:>3d} columns",
     "{x.shape[0]} 行{' (cached)' if True else ''}", "replacement fields"),            # a field lost
    ("done", 'the "end"', "has the quote"),                                              # breaks the literal
    ("(batch, d): a shape with words", "两行\n注释", "comment after code has a line break"),
    ("One line.\n\nMore lines.", 'a """ b', "cannot be written in its quotes"),
])
def test_a_translation_that_would_change_the_code_is_an_error(message, translation, problem):
    translate = _translator({**MESSAGES, message: translation})
    zh.translate_code(CELL, translate)
    assert translate.problems and problem in translate.problems[0], translate.problems
    assert translate.problems[0].startswith("test.ipynb, cell 2: ")


def test_a_missing_code_translation_is_an_error_not_english():
    translate = _translator({key: value for key, value in MESSAGES.items() if key != "done"})
    zh.translate_code(CELL, translate)
    assert translate.problems == ["test.ipynb, cell 2: missing translation in locales/zh_CN/code/notebooks.po for 'done'"]


def test_what_is_text():
    assert not zh.is_text("# (batch, seq_len, d_model) = (2, 5, 8)") and not zh.is_text("# x**2 > 65504")
    assert zh.is_text("# stays float64") and zh.is_text(" (last digit)", shapes=False)
    assert zh.wrap("一二三四五六，七八", 12) == ["一二三四五六，", "七八"]  # no line starts with a comma
    lines = zh.wrap("注意力权重（attention weights）之和为 1" * 3, 20)
    assert "".join(lines).replace(" ", "") == ("注意力权重（attention weights）之和为 1" * 3).replace(" ", "")
    assert all(zh.display_width(line) <= 20 + 2 for line in lines)  # a closing bracket may hang over
    assert not any(line.endswith("（") or line.startswith("）") for line in lines), lines


# ---------------------------------------------------------------------------------------------
# The grader

def test_the_grader_recognises_each_chinese_student_notebook_and_finds_no_edited_cell():
    from attention_course.grading.checker import plan_cells
    from attention_course.grading.cli import detect_chapter
    from attention_course.grading.course import load_course

    assignments = load_course(ROOT)
    for source in STUDENT:
        notebook = json.loads(zh.target(source).read_text(encoding="utf-8"))
        chapter, why = detect_chapter(notebook, assignments)
        assert chapter == source.parent.name, (source, why)
        _, notes = plan_cells(assignments[chapter], notebook)
        assert notes == [], (source, notes)

"""The Chinese edition's wording: one word for each thing (tools/i18n.py, the glossary's table
``(glossary-wording)=``)."""
import subprocess
import sys

import pytest

from course_tools import ROOT

sys.path.insert(0, str(ROOT / "tools"))
import i18n  # noqa: E402

HEADER = 'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=utf-8\\n"\n\n'


def po_entry(msgid, msgstr):
    def quote(text):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"msgid {quote(msgid)}\nmsgstr {quote(msgstr)}\n\n"


@pytest.fixture
def catalogue(tmp_path, monkeypatch):
    """Writes a one-page catalogue under a temporary LC_MESSAGES and returns its path."""
    folder = tmp_path / "zh_CN" / "LC_MESSAGES"
    (folder / "book").mkdir(parents=True)
    monkeypatch.setattr(i18n, "CATALOGUES", folder)

    def write(*entries):
        path = folder / "book" / "x.po"
        path.write_text(HEADER + "".join(po_entry(*e) for e in entries), encoding="utf-8")
        return path
    return write


def test_the_term_list_comes_from_the_glossary():
    terms = {w.term: {v.text for v in w.variants} for w in i18n.wordings()}
    assert terms["缩放的点积"] >= {"缩放点积"}
    assert terms["键值缓存"] >= {"KV 缓存"}
    # d2l-zh's term, where the course's differs, is a variant too
    assert terms["层归一化"] == {"层规范化"} and terms["教师强制"] == {"强制教学"}
    assert terms["上下文向量"] == {"上下文变量"} and terms["掩码"] == {"掩蔽"}


def test_a_catalogue_with_a_variant_fails(catalogue):
    path = catalogue(("The scaled dot product.", "缩放点积。"),
                     ("A heatmap of the weights.", "权重的热力图。"),
                     ("With a KV cache.", "使用 KV缓存。"),
                     ("Open the notebook.", "打开 notebook。"),
                     ("The explorer below.", "下面的浏览器。"),
                     ("as in Equation {eq}`eq-a`", "如式 {eq}`eq-a` 所示"))
    problems = i18n.check_catalogue(path)
    found = {(p.line, p.what) for p in problems}
    assert found == {
        (5, "uses 缩放点积 where the edition says 缩放的点积"),
        (8, "uses 热力图 where the edition says 热图"),
        (11, "uses KV 缓存 where the edition says 键值缓存"),
        (14, "uses notebook where the edition says 记事本"),
        (17, "uses 浏览器 where the edition says 探索器"),
        (20, "uses 式 {eq} where the edition says 公式 {eq}"),
    }, problems
    line = str(next(p for p in problems if p.line == 5))
    assert line.startswith("book/x.po:5: uses 缩放点积 where the edition says 缩放的点积"), line


def test_what_is_not_a_variant(catalogue):
    path = catalogue(
        # the settled terms themselves, a variant inside a longer settled term (式 {eq} in 公式 {eq})
        ("as in Equation {eq}`eq-a`, the scaled dot product", "如公式 {eq}`eq-a` 所示，缩放的点积"),
        # a variant the English itself quotes (the lecture's words)
        ("d2l-zh says 层规范化 (layer normalisation).", "d2l-zh 称之为层规范化。"),
        # the word it rightly translates: browser, laptop, comment
        ("The explorer runs in your browser.", "探索器在你的浏览器中运行。"),
        ("On a laptop, the notebook takes a minute.", "在笔记本电脑上，这个记事本只需一分钟。"),
        ("The comment in the cell says why.", "单元格中的注释说明了原因。"),
        # an English gloss in brackets, maths, code and role targets
        ("a one-hot vector", "独热（one-hot）向量"),
        ("$\\text{one-hot}$ and `notebooks/ch01`", "$\\text{one-hot}$ 与 `notebooks/ch01`"),
        ("The {doc}`exercises <../notebooks/ch01_origin/origin>`.", "{doc}`练习 <../notebooks/ch01_origin/origin>`。"),
        # a message kept as it is
        ("one-hot", "one-hot"),
    )
    assert i18n.check_catalogue(path) == []


def test_the_variant_counts_against_its_english_word(catalogue):
    """浏览器 is fine for "browser", but not a second time for "explorer" in the same message."""
    path = catalogue(("The explorer below runs in your browser.", "下面的浏览器在你的浏览器中运行。"))
    assert [p.what for p in i18n.check_catalogue(path)] == ["uses 浏览器 where the edition says 探索器"]


def test_check_fails_with_a_line_per_variant(catalogue):
    path = catalogue(("A heatmap.", "一幅热力图。"))
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "i18n.py"), "check", str(path)],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 1
    assert f"{path.name}:5: uses 热力图 where the edition says 热图" in result.stdout


def test_the_real_catalogues_keep_the_wording():
    terms = i18n.wordings()
    problems = [p for path in sorted(i18n.CATALOGUES.rglob("*.po"))
                for p in i18n.check_catalogue(path, terms) if p.line]
    assert not problems, "\n".join(map(str, problems))

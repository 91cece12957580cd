"""The explorers' texts (attention_course/views/static/strings.json) exist in English and in Chinese.

Every key the front-end (``t("key")`` in static/explorers/*.js and the core) or Python (``say(section, key)``
in attention_course/views) asks for is in its section in both languages, with the same fields and plural
forms, and the Chinese texts keep to the course's settled wordings (book/glossary.md, glossary-wording).
"""
from __future__ import annotations

import re

import pytest

from attention_course.views.explorer import STATIC, STRINGS, say

VIEWS = STATIC.parent
FIELDS = re.compile(r"\{(\w+)\}")
# Words of the glossary's 不用 column (and d2l-zh's differing terms) that the explorers' Chinese avoids.
NOT_USED = ["交互探索器", "热力图", "缩放点积", "笔记本", "精确匹配", "注释", "KV 缓存"]


def forms(value) -> list[str]:
    return list(value.values()) if isinstance(value, dict) else [value]


@pytest.mark.parametrize("section", sorted(STRINGS))
def test_every_text_is_in_both_languages_with_the_same_fields(section):
    english, chinese = STRINGS[section]["en"], STRINGS[section]["zh-CN"]
    assert set(STRINGS[section]) == {"en", "zh-CN"}
    assert set(english) == set(chinese), f"{section}: keys in one language only: {set(english) ^ set(chinese)}"
    for key, value in english.items():
        fields = {f for form in forms(value) for f in FIELDS.findall(form)}
        assert fields == {f for form in forms(chinese[key]) for f in FIELDS.findall(form)}, f"{section}.{key}"
        if isinstance(value, dict):
            assert set(value) == {"one", "other"}, f"{section}.{key}: plural forms are one and other (chosen by n)"
        for form in forms(chinese[key]):
            assert not [w for w in NOT_USED if w in form], f"{section}.{key}: {form}"


def test_every_key_the_front_end_asks_for_exists():
    core = set(STRINGS["core"]["en"])
    assert not {k for k in re.findall(r'\bt\("(\w+)"', (STATIC / "explorer_core.js").read_text()) if k not in core}
    for path in sorted((STATIC / "explorers").glob("*.js")):
        asked = set(re.findall(r'\bt\("([\w:]+)"', path.read_text(encoding="utf-8")))
        missing = asked - core - set(STRINGS[path.stem]["en"])
        assert asked and not missing, f"{path.name} asks for texts the table lacks: {missing}"


def test_every_key_python_asks_for_exists_in_both_languages():
    asked = set()
    for path in VIEWS.glob("*.py"):
        asked |= set(re.findall(r'say\(\s*"(\w+)",\s*"(\w+)"', path.read_text(encoding="utf-8")))
        asked |= set(re.findall(r"say\('(\w+)', '(\w+)'\)", path.read_text(encoding="utf-8")))
    assert len(asked) >= 25
    for section, key in sorted(asked):
        for language in ("en", "zh_CN"):
            assert say(section, key, language), (section, key, language)


def test_python_texts_follow_the_course_language(monkeypatch):
    from attention_course.views.transformer_viewer import source_problem

    assert say("seq2seq_outputs", "dates", "en", n=1) == "1 date"
    assert say("seq2seq_outputs", "dates", "en", n=3) == "3 dates"
    assert source_problem("", "abc", 10) == "The input is empty: type one or more dates."
    monkeypatch.setenv("ATTENTION_COURSE_LANGUAGE", "zh_CN")
    assert say("seq2seq_outputs", "dates", n=3) == "3 个日期"
    assert source_problem("abcd", "abc", 3) == '模型在训练中从未见过 "d"，所以无法读取：请只使用留出输入中出现过的字符。'
    assert source_problem("abcd", "abcd", 3) == "输入有 4 个字符；Transformer 最多读取 3 个。"
    assert source_problem("x", "x", 3, "en") is None


def test_the_module_of_a_kind_carries_only_its_texts():
    from attention_course.views.explorer import build_esm

    esm = build_esm("gpt")
    assert "const STRINGS = " in esm and STRINGS["gpt"]["zh-CN"]["generate"] in esm
    assert STRINGS["online_softmax"]["zh-CN"]["title"] not in esm

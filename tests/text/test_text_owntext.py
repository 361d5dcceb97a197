"""Own text: forwarded chains, retweet prefixes and mentions are not the poster's words."""

from __future__ import annotations

import pytest

from crisiswatch.detectors.text.lang import detect_lang, resolve_lang
from crisiswatch.detectors.text.normalize import safe_text
from crisiswatch.detectors.text.owntext import has_content, own_text

OWN_TEXT_CASES = [
    # (post text, own text)
    ("说得对//@张三: 快递三天没到//@李四: 原文", "说得对"),
    ("//@张三: 快递三天没到", ""),
    ("转发微博", ""),
    ("转发微博//@张三: 太差了", ""),
    ("Repost", ""),
    ("轉發微博。", ""),
    ("回复@张三: 我也遇到了同样的问题", "我也遇到了同样的问题"),
    ("回复@张三：客服根本不理人", "客服根本不理人"),
    ("RT @user: worst airline ever", ""),
    ("rt @user worst airline ever", ""),
    ("So true RT @user: worst airline ever", "So true"),
    ("@united @AmericanAir my bag is lost again", "my bag is lost again"),
    ("@united", ""),
    ("@小米客服 @雷军 手机又坏了", "手机又坏了"),
    ("@a @b !!!", ""),
    ("Art @gallery today", "Art today"),
    ("mail me@example.com today", "mail me@example.com today"),
    ("plain text stays", "plain text stays"),
    ("😡😡😡", "😡😡😡"),
    ("", ""),
    ("   ", ""),
    ("...", ""),
]


@pytest.mark.parametrize(("text", "expected"), OWN_TEXT_CASES)
def test_own_text(text: str, expected: str) -> None:
    assert own_text(text) == expected


def test_has_content_counts_letters_digits_and_emoji_not_punctuation() -> None:
    assert has_content("a")
    assert has_content("7")
    assert has_content("😀")
    assert has_content("好")
    assert not has_content("?!.,")
    assert not has_content("\ufffd")


SAFE_CASES = [
    ("a\x00b", "ab"),
    ("a\ud800b", "a\ufffdb"),
    ("  many   spaces\tand\nlines ", "many spaces and lines"),
    ("zero\u200bwidth", "zerowidth"),
    (None, ""),
    (123, ""),
]


@pytest.mark.parametrize(("value", "expected"), SAFE_CASES)
def test_safe_text(value: object, expected: str) -> None:
    assert safe_text(value, 2000) == expected


def test_safe_text_cuts_long_text() -> None:
    assert len(safe_text("x" * 70_000, 2000)) == 2000


LANG_CASES = [
    ("my order never arrived", "en"),
    ("快递三天没到", "zh"),
    ("iPhone 15 的电池太差了", "zh"),
    ("I bought a 华为 phone and it broke after two days", "en"),
    ("", "en"),
    ("😀", "en"),
    ("これはひどい", "zh"),  # Kana goes to the CJK model: the only one sharing its script
]


@pytest.mark.parametrize(("text", "expected"), LANG_CASES)
def test_detect_lang(text: str, expected: str) -> None:
    assert detect_lang(text) == expected


def test_declared_lang_wins_when_modelled() -> None:
    assert resolve_lang("zh", "hello") == "zh"
    assert resolve_lang("EN", "你好") == "en"
    assert resolve_lang("fr", "bonjour") == "en"
    assert resolve_lang("ja", "これはひどい") == "zh"
    assert resolve_lang(None, "你好") == "zh"

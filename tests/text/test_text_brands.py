"""Brand matching: aliases in any script, sigils, word boundaries, exclusions."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crisiswatch.detectors.events import BrandProfile
from crisiswatch.detectors.text import brands
from crisiswatch.detectors.text.brands import BrandMatcher

BRANDS = [
    BrandProfile(
        "Apple",
        aliases=("@Apple", "#AppleSupport", "$AAPL", "苹果", "iPhone"),
        exclude=("apple pie", "苹果汁"),
    ),
    BrandProfile("Huawei", aliases=("华为", "@华为终端"), role="competitor", lang="zh"),
    BrandProfile("AT&T", aliases=("ATT",)),
    BrandProfile("Coca-Cola", aliases=("Coke", "可口可乐")),
]

CASES = [
    # (text, brands found)
    ("My APPLE watch died", ("Apple",)),
    ("apple's support is slow", ("Apple",)),
    ("pineapple juice", ()),
    ("I love apple pie", ()),
    ("Apple pie, and my apple watch broke", ("Apple",)),
    ("#apple is trending", ("Apple",)),
    ("@apple fix this", ("Apple",)),
    ("@AppleSupport help", ()),  # a different handle
    ("#AppleSupport help", ("Apple",)),
    ("#applesupport broken", ("Apple",)),
    ("$AAPL down 5%", ("Apple",)),
    ("AAPL down 5%", ()),  # the cashtag alias needs its sigil
    ("我的苹果手机坏了", ("Apple",)),
    ("喝苹果汁", ()),
    ("iPhone sucks", ("Apple",)),
    ("iphones", ()),
    ("华为Mate60发热", ("Huawei",)),
    ("@华为终端 手机坏了", ("Huawei",)),
    ("苹果和华为都不行", ("Apple", "Huawei")),
    ("华为比苹果好用", ("Huawei", "Apple")),  # in the order the text names them
    ("Switching to Coke after Apple lost my order", ("Coca-Cola", "Apple")),
    ("at&t dropped my call", ("AT&T",)),
    ("ATT dropped my call", ("AT&T",)),
    ("coca-cola and coke", ("Coca-Cola",)),
    ("可口可乐太甜了", ("Coca-Cola",)),
    ("", ()),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_match(text: str, expected: tuple[str, ...]) -> None:
    assert BrandMatcher(BRANDS).match(text) == expected


def test_no_brands_matches_nothing() -> None:
    assert BrandMatcher([]).match("Apple") == ()


def test_blank_aliases_are_ignored() -> None:
    matcher = BrandMatcher([BrandProfile("Acme", aliases=("", "  "))])
    assert matcher.match("acme rocks") == ("Acme",)
    assert matcher.match("nothing here") == ()


def test_regex_metacharacters_in_aliases_are_literal() -> None:
    matcher = BrandMatcher([BrandProfile("C++ Corp", aliases=("C++", "a.b"))])
    assert matcher.match("I write C++ daily") == ("C++ Corp",)
    assert matcher.match("axb") == ()


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_any_text_gives_a_tuple(text: str) -> None:
    found = BrandMatcher(BRANDS).match(text)
    assert isinstance(found, tuple)
    assert set(found) <= {b.name for b in BRANDS}


def test_the_fold_traps_are_every_character_that_matches_an_ascii_letter_without_lowering_to_it() -> None:
    """`_FOLD_TRAPS` makes the literal prefilter exact: every other code point that re.IGNORECASE matches
    to an ASCII letter is turned into that letter by `str.lower()` (checked over all of Unicode)."""
    letter = re.compile("[a-z]", re.IGNORECASE)
    escaped = []
    for code_point in range(0x80, 0x110000):
        char = chr(code_point)
        if letter.fullmatch(char) and not (len(char.lower()) == 1 and char.lower().isascii()):
            escaped.append(char)
    assert escaped == ["\u0130", "\u0131", "\u017f"]
    assert all(brands._FOLD_TRAPS.search(char) for char in escaped)


MIXED = [
    *BRANDS,
    BrandProfile("Skip", aliases=("Sky Lark", "#跳过")),
    BrandProfile("Café Noir", aliases=("cafe noir",)),  # not ASCII/CJK: always checked by the regexes
]


def _by_regex_only(matcher: BrandMatcher) -> BrandMatcher:
    """The same matcher without the literal prefilter (what `match` must agree with)."""
    matcher = BrandMatcher(matcher.brands)
    matcher._literals = [None] * len(matcher.brands)
    return matcher


@pytest.mark.parametrize(
    "text",
    [
        "SKİP the queue",  # İ matches i under IGNORECASE; lowered it is two characters
        "skıp it",
        "ſkip it",
        "\u212aoke and sky   lark",  # the Kelvin sign lowers to k
        "#跳过# 话题",
        "CAFÉ NOIR was closed",
        "nothing here",
        "Sky\nLark delays",
    ],
)
def test_the_literal_prefilter_agrees_with_the_regexes(text: str) -> None:
    matcher = BrandMatcher(MIXED)
    assert matcher.match(text) == _by_regex_only(matcher).match(text)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "apple",
                "APPLE",
                "苹果",
                "sky",
                "lark",
                "Sky Lark",
                "#跳过",
                "skip",
                "SKİP",
                "ıphone",
                "iPhone",
                "coke",
                "AT&T",
                "att",
                "café noir",
                "pie",
                " ",
                "\n",
                "华为",
                "@华为终端",
                "x",
                "-",
            ]
        ),
        max_size=8,
    )
)
def test_the_literal_prefilter_agrees_with_the_regexes_on_mixed_texts(pieces: list[str]) -> None:
    text = "".join(pieces)
    matcher = BrandMatcher(MIXED)
    assert matcher.match(text) == _by_regex_only(matcher).match(text)

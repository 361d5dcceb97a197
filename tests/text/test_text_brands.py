"""Brand matching: aliases in any script, sigils, word boundaries, exclusions."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crisiswatch.detectors.events import BrandProfile
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

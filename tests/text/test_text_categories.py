"""Complaint categories: transparent keyword rules in English and Chinese."""

from __future__ import annotations

import pytest

from crisiswatch.detectors.text.categories import DEFAULT_CATEGORIES, CategoryMatcher, CategoryRule

CASES = [
    ("My package never arrived and the courier lost it", "delivery"),
    ("快递三天了还没到", "delivery"),
    ("I was double charged, I want a refund", "billing"),
    ("乱收费，还不给退款", "billing"),
    ("the screen cracked after a week, poor quality", "product_quality"),
    ("质量太差，用了两天就坏了", "product_quality"),
    ("customer service was rude and hung up on me", "service"),
    ("客服态度太差了", "service"),
    ("the battery caught fire!", "safety"),
    ("吃完拉肚子，食物中毒了", "safety"),
    ("my personal data was leaked", "privacy"),
    ("个人信息被泄露了", "privacy"),
    ("what a lovely day", None),
    ("", None),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_default_categories(text: str, expected: str | None) -> None:
    assert CategoryMatcher(DEFAULT_CATEGORIES).category(text) == expected


def test_default_categories_cover_both_languages() -> None:
    names = [rule.name for rule in DEFAULT_CATEGORIES]
    assert set(names) >= {"delivery", "product_quality", "service", "billing", "safety", "privacy"}
    assert all(rule.en and rule.zh for rule in DEFAULT_CATEGORIES)


def test_prefix_wildcard_and_word_boundaries() -> None:
    matcher = CategoryMatcher([CategoryRule("billing", en=("refund*",))])
    assert matcher.category("they refunded me") == "billing"
    assert matcher.category("REFUNDS please") == "billing"
    assert matcher.category("prefund") is None


def test_most_keywords_win_and_ties_go_to_the_earlier_category() -> None:
    rules = [CategoryRule("first", en=("late",)), CategoryRule("second", en=("late", "rude"))]
    assert CategoryMatcher(rules).category("late and rude") == "second"
    assert CategoryMatcher(rules).category("late") == "first"


def test_no_rules() -> None:
    assert CategoryMatcher([]).category("anything") is None

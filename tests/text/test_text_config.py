"""The `text` config section."""

from __future__ import annotations

import jsonschema
import pytest

from crisiswatch.detectors.settings import ConfigError
from crisiswatch.detectors.text.config import CONFIG_SCHEMA, TextConfig


def test_empty_section_is_valid_and_schema_accepts_it() -> None:
    config = TextConfig.from_mapping({})
    jsonschema.validate({}, CONFIG_SCHEMA)
    assert config.zh_neutral_band == (0.2, 0.65)
    assert {rule.name for rule in config.categories} >= {"delivery", "safety", "privacy"}


def test_full_section() -> None:
    data = {
        "model_manifest": "models/manifest.json",
        "cache_size": 10,
        "max_chars": 500,
        "zh_neutral_band": [0.4, 0.6],
        "complaint_threshold": 0.6,
        "categories": {
            "delivery": {"en": ["parcel*"], "zh": ["快递"]},
            "privacy": None,
            "recall": {"en": ["recall*"]},
        },
    }
    jsonschema.validate(data, CONFIG_SCHEMA)
    config = TextConfig.from_mapping(data)
    names = [rule.name for rule in config.categories]
    assert "privacy" not in names and names[-1] == "recall"
    delivery = next(rule for rule in config.categories if rule.name == "delivery")
    assert delivery.en == ("parcel*",) and delivery.zh == ("快递",)
    assert config.zh_neutral_band == (0.4, 0.6)


def test_default_categories_off() -> None:
    config = TextConfig.from_mapping({"default_categories": False, "categories": {"x": {"en": ["y"]}}})
    assert [rule.name for rule in config.categories] == ["x"]


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"cache_size": -1}, "cache_size"),
        ({"cache_size": True}, "cache_size"),
        ({"max_chars": 3}, "max_chars"),
        ({"zh_neutral_band": [0.7, 0.3]}, "zh_neutral_band"),
        ({"zh_neutral_band": [0.3]}, "zh_neutral_band"),
        ({"complaint_threshold": 1.0}, "complaint_threshold"),
        ({"categories": {"x": {"en": []}}}, "categories.x"),
        ({"categories": {"x": {"fr": ["a"]}}}, "categories.x.fr"),
        ({"categories": {"x": {"en": [""]}}}, "categories.x.en"),
        ({"categories": ["delivery"]}, "categories"),
        ({"default_categories": "yes"}, "default_categories"),
        ({"nonsense": 1}, "nonsense"),
    ],
)
def test_errors_name_the_key(data: dict, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        TextConfig.from_mapping(data)
    assert caught.value.key == key

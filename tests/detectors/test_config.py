"""The `detectors` config section: defaults, validation messages, per-brand overrides, schema."""

from __future__ import annotations

import jsonschema
import pytest

from crisiswatch.detectors.config import CONFIG_SCHEMA, DetectorsConfig
from crisiswatch.detectors.settings import ConfigError


def test_empty_section_is_valid_and_matches_schema():
    config = DetectorsConfig.from_mapping({})
    assert config == DetectorsConfig()
    jsonschema.validate({}, CONFIG_SCHEMA)
    jsonschema.validate(config.to_mapping(), CONFIG_SCHEMA)


@pytest.mark.parametrize(
    ("data", "key", "fragment"),
    [
        ({"forward_surge": {"min_events": 0}}, "forward_surge.min_events", ">= 1"),
        ({"forward_surge": {"window_s": 70}}, "forward_surge.window_s", "multiple"),
        ({"forward_surge": {"surge_z": "high"}}, "forward_surge.surge_z", "a number"),
        ({"volume_surge": {"bucket_s": 7}}, "volume_surge.bucket_s", "divisor of 86400"),
        ({"negative_surge": {"resolve_z": 5}}, "negative_surge.resolve_z", "less than surge_z"),
        ({"paging": {"spread_only_severity": "warning"}}, "paging.spread_only_severity", "never pages"),
        ({"nope": 1}, "nope", "one of"),
        ({"forward_surge": []}, "forward_surge", "a mapping"),
    ],
)
def test_errors_name_key_value_and_expectation(data, key, fragment):
    with pytest.raises(ConfigError) as caught:
        DetectorsConfig.from_mapping(data)
    assert caught.value.key == key
    assert fragment in caught.value.expected


def test_brand_overrides_merge_nested_and_validate():
    base = DetectorsConfig.from_mapping({"forward_surge": {"min_events": 20}})
    brand = base.with_overrides({"forward_surge": {"surge_z": 6}, "cascade_idle_s": 7200})
    assert brand.forward_surge.min_events == 20 and brand.forward_surge.surge_z == 6.0
    assert brand.cascade_idle_s == 7200.0
    assert base.with_overrides({}) is base
    with pytest.raises(ConfigError):
        base.with_overrides({"forward_surge": {"resolve_z": 99}})

"""The `text` config section: model file, caches, the Chinese neutral band, complaint categories.

```yaml
text:
  model_manifest: null          # path to a retrained manifest.json; null = the shipped weights
  cache_size: 65536             # analyses remembered by hash of normalised own text (reposts repeat)
  max_chars: 2000               # longer texts are cut before scoring
  zh_neutral_band: [0.2, 0.65]  # Chinese has no neutral class: P(negative) inside this band is "neutral"
  complaint_threshold: 0.5      # P(complaint) at or above this is a complaint
  default_categories: true      # keep the shipped categories; false = only the ones below
  categories:                   # name -> keywords; replaces a shipped category of the same name
    delivery: {en: ["deliver*", "courier"], zh: ["快递", "物流"]}
    privacy: null               # drop a shipped category
```
English keywords match whole words (case-insensitive) and a trailing `*` matches any word ending;
Chinese keywords match as substrings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from crisiswatch.detectors.settings import ConfigError, require
from crisiswatch.detectors.text.categories import DEFAULT_CATEGORIES, CategoryRule

CONFIG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "model_manifest": {"type": ["string", "null"]},
        "cache_size": {"type": "integer", "minimum": 0},
        "max_chars": {"type": "integer", "minimum": 16},
        "zh_neutral_band": {
            "type": "array",
            "items": {"type": "number", "minimum": 0, "maximum": 1},
            "minItems": 2,
            "maxItems": 2,
        },
        "complaint_threshold": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
        "default_categories": {"type": "boolean"},
        "categories": {
            "type": "object",
            "additionalProperties": {
                "oneOf": [
                    {"type": "null"},
                    {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "en": {"type": "array", "items": {"type": "string", "minLength": 1}},
                            "zh": {"type": "array", "items": {"type": "string", "minLength": 1}},
                        },
                    },
                ]
            },
        },
    },
}

_KNOWN_KEYS = frozenset(CONFIG_SCHEMA["properties"])


@dataclass(frozen=True)
class TextConfig:
    model_manifest: str | None = None
    cache_size: int = 65536
    max_chars: int = 2000
    zh_neutral_band: tuple[float, float] = (0.2, 0.65)
    complaint_threshold: float = 0.5
    categories: tuple[CategoryRule, ...] = field(default_factory=lambda: DEFAULT_CATEGORIES)

    def __post_init__(self) -> None:
        require(
            self.model_manifest is None or isinstance(self.model_manifest, str),
            "model_manifest",
            self.model_manifest,
            "a path string or null",
        )
        require(
            _is_int(self.cache_size) and self.cache_size >= 0,
            "cache_size",
            self.cache_size,
            "an integer >= 0 (0 disables the cache)",
        )
        require(
            _is_int(self.max_chars) and self.max_chars >= 16, "max_chars", self.max_chars, "an integer >= 16"
        )
        band = self.zh_neutral_band
        require(
            isinstance(band, tuple)
            and len(band) == 2
            and all(_is_number(x) for x in band)
            and 0.0 <= band[0] <= band[1] <= 1.0,
            "zh_neutral_band",
            band,
            "two probabilities [low, high] with 0 <= low <= high <= 1",
        )
        require(
            _is_number(self.complaint_threshold) and 0.0 < self.complaint_threshold < 1.0,
            "complaint_threshold",
            self.complaint_threshold,
            "a probability strictly between 0 and 1",
        )
        names = [rule.name for rule in self.categories]
        require(len(names) == len(set(names)), "categories", names, "unique category names")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> TextConfig:
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise ConfigError("", data, "a mapping")
        unknown = sorted(set(data) - _KNOWN_KEYS)
        require(not unknown, unknown[0] if unknown else "", None, f"one of {sorted(_KNOWN_KEYS)}")
        kwargs: dict[str, Any] = {}
        for key in ("model_manifest", "cache_size", "max_chars", "complaint_threshold"):
            if key in data:
                kwargs[key] = data[key]
        if "zh_neutral_band" in data:
            band = data["zh_neutral_band"]
            require(
                isinstance(band, list | tuple) and len(band) == 2,
                "zh_neutral_band",
                band,
                "a list of two probabilities [low, high]",
            )
            kwargs["zh_neutral_band"] = tuple(band)
        keep_defaults = data.get("default_categories", True)
        require(isinstance(keep_defaults, bool), "default_categories", keep_defaults, "true or false")
        kwargs["categories"] = _categories(data.get("categories") or {}, keep_defaults)
        return cls(**kwargs)


def _categories(raw: Any, keep_defaults: bool) -> tuple[CategoryRule, ...]:
    require(
        isinstance(raw, Mapping), "categories", raw, "a mapping of category name to {en: [...], zh: [...]}"
    )
    rules = {rule.name: rule for rule in DEFAULT_CATEGORIES} if keep_defaults else {}
    for name, spec in raw.items():
        key = f"categories.{name}"
        require(isinstance(name, str) and name.strip() != "", key, name, "a non-empty category name")
        if spec is None:
            rules.pop(name, None)
            continue
        require(isinstance(spec, Mapping), key, spec, "a mapping with keyword lists under 'en' and/or 'zh'")
        extra = sorted(set(spec) - {"en", "zh"})
        require(not extra, f"{key}.{extra[0]}" if extra else key, None, "only 'en' and 'zh' keyword lists")
        lists: dict[str, tuple[str, ...]] = {}
        for lang in ("en", "zh"):
            words = spec.get(lang) or []
            require(
                isinstance(words, list | tuple) and all(isinstance(w, str) and w.strip() for w in words),
                f"{key}.{lang}",
                words,
                "a list of non-empty keyword strings",
            )
            lists[lang] = tuple(w.strip() for w in words)
        require(bool(lists["en"] or lists["zh"]), key, spec, "at least one keyword (or null to drop it)")
        rules[name] = CategoryRule(name=name, en=lists["en"], zh=lists["zh"])
    return tuple(rules.values())


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)

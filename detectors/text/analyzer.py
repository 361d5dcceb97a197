"""Batch text understanding for posts: language, own text, sentiment, complaint, category.

`TextAnalyzer.analyze_many` is what the Faust agent and replay call (many posts per call). Results are
cached by a hash of the normalised own text, because reposted text repeats; the cache is bounded.
Any input gives an analysis, never an exception.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from crisiswatch.detectors.text.categories import CategoryMatcher
from crisiswatch.detectors.text.config import TextConfig
from crisiswatch.detectors.text.features import FeatureBatch
from crisiswatch.detectors.text.lang import resolve_lang
from crisiswatch.detectors.text.model import LinearModel, ModelBundle, load_bundle, sigmoid, softmax
from crisiswatch.detectors.text.normalize import safe_text
from crisiswatch.detectors.text.owntext import own_text

SENTIMENT_LABELS: tuple[str, ...] = ("negative", "neutral", "positive")
COMPLAINT_LABELS: tuple[str, ...] = ("complaint", "not_complaint")


@dataclass(frozen=True, slots=True)
class TextAnalysis:
    lang: str
    # The poster's own words (forward chains and mentions removed), cut to `max_chars`.
    own_text: str
    # P(negative) of the own text; None when there is no own text.
    negative_probability: float | None
    sentiment_label: str  # "negative" | "neutral" | "positive" ("neutral" when there is no own text)
    complaint_probability: float | None
    category: str | None


# What the cache keeps per normalised own text (the own text itself comes from each post).
_Scores = tuple[float, str, float, str | None]


class TextAnalyzer:
    """Scores texts with the shipped (or a retrained) model bundle; see `TextConfig` for the knobs."""

    def __init__(self, bundle: ModelBundle, config: TextConfig | None = None) -> None:
        self.bundle = bundle
        self.config = config or TextConfig()
        self._categories = CategoryMatcher(self.config.categories)
        self._cache: OrderedDict[bytes, _Scores] = OrderedDict()
        self.cache_hits = 0
        self.cache_misses = 0

    @classmethod
    def load_default(cls, config: TextConfig | None = None) -> TextAnalyzer:
        """The shipped weights (or `config.model_manifest`), checksum-verified, loaded without pickle."""
        config = config or TextConfig()
        return cls(load_bundle(config.model_manifest), config)

    @classmethod
    def load(cls, manifest: str | Path, config: TextConfig | None = None) -> TextAnalyzer:
        return cls(load_bundle(manifest), config)

    @property
    def version(self) -> str:
        return self.bundle.version

    # -- batch API -------------------------------------------------------------------------------------

    def analyze(self, text: str, lang: str | None = None) -> TextAnalysis:
        return self.analyze_many([text], [lang])[0]

    def analyze_many(
        self, texts: Sequence[str], langs: Sequence[str | None] | None = None
    ) -> list[TextAnalysis]:
        """One analysis per text, in order. `langs[i]` is the post's declared language (None = detect)."""
        count = len(texts)
        if langs is None:
            langs = [None] * count
        max_chars = self.config.max_chars
        owns: list[str] = []
        resolved: list[str] = []
        keys: list[bytes] = []
        scores: list[_Scores | None] = []
        missing: dict[bytes, tuple[str, str]] = {}
        for index in range(count):
            text = safe_text(texts[index], max_chars)
            own = own_text(text)
            given = langs[index] if index < len(langs) else None
            lang = resolve_lang(given if isinstance(given, str) else None, own or text)
            owns.append(own)
            resolved.append(lang)
            if not own:
                keys.append(b"")
                scores.append(None)
                continue
            key = _cache_key(lang, own)
            keys.append(key)
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                self.cache_hits += 1
            elif key not in missing:
                missing[key] = (lang, own)
                self.cache_misses += 1
            scores.append(cached)
        if missing:
            computed = self._score_unique(missing)
            for index in range(count):
                if scores[index] is None and keys[index]:
                    scores[index] = computed[keys[index]]
            self._remember(computed)
        results: list[TextAnalysis] = []
        for index in range(count):
            entry = scores[index]
            if entry is None:
                results.append(TextAnalysis(resolved[index], owns[index], None, "neutral", None, None))
            else:
                negative, label, complaint, category = entry
                results.append(
                    TextAnalysis(resolved[index], owns[index], negative, label, complaint, category)
                )
        return results

    # -- CLI API: scores the own text even when it is empty, so every line gets a label -----------------

    def classify(self, texts: Sequence[str], task: str, lang: str | None = None) -> list[tuple[str, float]]:
        """(label, probability of negative / of complaint) per text; `lang` None or "auto" = detect."""
        if task not in ("sentiment", "complaint"):
            raise ValueError(f"task must be 'sentiment' or 'complaint', got {task!r}")
        forced = None if lang in (None, "auto") else lang
        max_chars = self.config.max_chars
        groups: dict[str, list[int]] = {}
        owns: list[str] = []
        for index, raw in enumerate(texts):
            text = safe_text(raw, max_chars)
            own = own_text(text)
            owns.append(own)
            groups.setdefault(resolve_lang(forced, own or text), []).append(index)
        out: list[tuple[str, float]] = [("", 0.0)] * len(texts)
        for lang_code, members in groups.items():
            member_texts = [owns[i] for i in members]
            if task == "sentiment":
                probabilities, labels = self._sentiment(lang_code, member_texts)
            else:
                probabilities = self._complaint(lang_code, member_texts)
                threshold = self.config.complaint_threshold
                labels = [
                    COMPLAINT_LABELS[0] if p >= threshold else COMPLAINT_LABELS[1] for p in probabilities
                ]
            for position, index in enumerate(members):
                out[index] = (labels[position], float(probabilities[position]))
        return out

    # -- internals ---------------------------------------------------------------------------------------

    def _score_unique(self, missing: dict[bytes, tuple[str, str]]) -> dict[bytes, _Scores]:
        by_lang: dict[str, list[bytes]] = {}
        for key, (lang, _own) in missing.items():
            by_lang.setdefault(lang, []).append(key)
        computed: dict[bytes, _Scores] = {}
        for lang, keys in by_lang.items():
            member_texts = [missing[key][1] for key in keys]
            batch = self._features(lang, member_texts)
            memo: dict[str, np.ndarray] = {}
            negative, labels = self._sentiment(lang, member_texts, batch, memo)
            complaint = self._complaint(lang, member_texts, batch, memo)
            for position, key in enumerate(keys):
                category = self._categories.category(member_texts[position])
                computed[key] = (
                    float(negative[position]),
                    labels[position],
                    float(complaint[position]),
                    category,
                )
        return computed

    def _remember(self, computed: dict[bytes, _Scores]) -> None:
        limit = self.config.cache_size
        if limit <= 0:
            return
        cache = self._cache
        for key, value in computed.items():
            cache[key] = value
        while len(cache) > limit:
            cache.popitem(last=False)

    def _model_lang(self, lang: str) -> str:
        return lang if lang in self.bundle.featurizers else "en"

    def _features(self, lang: str, texts: Sequence[str]) -> FeatureBatch:
        return self.bundle.featurizers[self._model_lang(lang)].batch(texts)

    def _sentiment(
        self,
        lang: str,
        texts: Sequence[str],
        batch: FeatureBatch | None = None,
        memo: dict[str, np.ndarray] | None = None,
    ) -> tuple[np.ndarray, list[str]]:
        lang = self._model_lang(lang)
        model = self._require(f"{lang}_sentiment")
        batch = batch if batch is not None else self._features(lang, texts)
        logits = self.bundle.logits(model.name, batch, texts, memo)
        if model.outputs == 1:
            negative = sigmoid(logits[:, 0])
            low, high = self.config.zh_neutral_band
            labels = ["negative" if p > high else "positive" if p < low else "neutral" for p in negative]
            return negative, labels
        probabilities = softmax(logits)
        negative = probabilities[:, model.classes.index("negative")]
        choice = np.argmax(logits + model.label_offsets, axis=1)
        return negative, [model.classes[int(c)] for c in choice]

    def _complaint(
        self,
        lang: str,
        texts: Sequence[str],
        batch: FeatureBatch | None = None,
        memo: dict[str, np.ndarray] | None = None,
    ) -> np.ndarray:
        lang = self._model_lang(lang)
        model = self._require(f"{lang}_complaint")
        batch = batch if batch is not None else self._features(lang, texts)
        return sigmoid(self.bundle.logits(model.name, batch, texts, memo)[:, 0])

    def _require(self, name: str) -> LinearModel:
        model = self.bundle.get(name)
        if model is None:
            raise KeyError(f"model bundle {self.bundle.version} has no model {name!r}")
        return model


def _cache_key(lang: str, own: str) -> bytes:
    normalised = f"{lang}\x00{own.lower()}"
    return hashlib.blake2b(normalised.encode("utf-8", "surrogatepass"), digest_size=16).digest()

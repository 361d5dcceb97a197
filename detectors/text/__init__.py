"""Text understanding: language, own text, sentiment, complaint, complaint category, brand matching."""

from crisiswatch.detectors.text.analyzer import TextAnalysis, TextAnalyzer
from crisiswatch.detectors.text.brands import BrandMatcher
from crisiswatch.detectors.text.config import CONFIG_SCHEMA, TextConfig

__all__ = ["CONFIG_SCHEMA", "BrandMatcher", "TextAnalysis", "TextAnalyzer", "TextConfig"]

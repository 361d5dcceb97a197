from __future__ import annotations

from pathlib import Path

import pytest

from crisiswatch.detectors.text import TextAnalyzer

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
LABELLED_ZH = Path(__file__).resolve().parent / "data" / "zh_complaints_labelled.tsv"


@pytest.fixture(scope="session")
def analyzer() -> TextAnalyzer:
    return TextAnalyzer.load_default()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The team's shared data sets; tests that need them skip on a machine without them."""
    if not (SHARED_DATA / "sentiment").is_dir():
        pytest.skip(f"shared data not present at {SHARED_DATA}")
    return SHARED_DATA

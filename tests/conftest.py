"""Shared fixtures. The real-broker fixtures live in tests/kafka_broker.py (a pytest plugin)."""

from __future__ import annotations

import sys
from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parent
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

pytest_plugins = ["kafka_broker"]

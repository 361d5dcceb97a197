"""The one wall clock. Only `streams/` reads it; `detectors/` and `alerts/` are handed a clock."""

from __future__ import annotations

import time


class WallClock:
    def now(self) -> float:
        return time.time()

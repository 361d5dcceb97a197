"""How `replay_source` runs: GC thresholds raised for the replay and put back, stage timing on any clock."""

from __future__ import annotations

import gc
import io
import time

import pytest
from replay_helpers import demo_stream

from crisiswatch.streams.config import load_settings
from crisiswatch.streams.replay import REPLAY_GC_YOUNG_THRESHOLD, fewer_gc_passes, replay_source
from crisiswatch.streams.sources import FileSource


def test_fewer_gc_passes_restores_the_thresholds_after_success_and_failure() -> None:
    before = gc.get_threshold()
    with fewer_gc_passes():
        assert gc.get_threshold() == (max(before[0], REPLAY_GC_YOUNG_THRESHOLD), *before[1:])
    assert gc.get_threshold() == before
    with pytest.raises(RuntimeError), fewer_gc_passes():
        raise RuntimeError("replay failed")
    assert gc.get_threshold() == before


def test_stage_timings_on_the_cpu_clock_give_the_same_alerts() -> None:
    stream = demo_stream()
    settings = load_settings(str(stream.config), environ={})
    before = gc.get_threshold()
    plain, timed = io.StringIO(), io.StringIO()
    replay_source(FileSource([str(stream.posts)]), settings, plain)
    result = replay_source(
        FileSource([str(stream.posts)]), settings, timed, timings=True, stage_clock=time.process_time
    )
    assert gc.get_threshold() == before
    assert timed.getvalue() == plain.getvalue() and plain.getvalue()
    assert result.timings is not None
    assert all(seconds >= 0 for seconds in result.timings.to_dict().values())
    assert result.timings.decode > 0 and result.timings.detect > 0

"""The worker's cycle-collector policy (streams/gc_policy.py), and the property it relies on: the pipeline's
state is freed by reference counting, so freezing long-lived objects keeps no garbage that grows."""

from __future__ import annotations

import dataclasses
import gc
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from crisiswatch.streams.config import load_settings
from crisiswatch.streams.gc_policy import CycleCollectorPolicy
from crisiswatch.streams.replay import replay_source
from crisiswatch.streams.scenarios import generate, iter_jsonl, preset
from crisiswatch.streams.sources import FileSource


@pytest.fixture
def collector_restored() -> Iterator[None]:
    """Whatever a test does to the process's collector is undone."""
    was_enabled = gc.isenabled()
    yield
    gc.unfreeze()
    if was_enabled:
        gc.enable()


class Cycle:
    def __init__(self) -> None:
        self.me = self


def pause_count(registry: CollectorRegistry, generation: str) -> float:
    value = registry.get_sample_value("crisiswatch_gc_pause_seconds_count", {"generation": generation})
    return value or 0.0


def test_a_tick_collects_new_garbage_then_freezes_the_survivors(collector_restored: None) -> None:
    registry = CollectorRegistry()
    policy = CycleCollectorPolicy(10.0, registry)
    policy.start()
    try:
        frozen_at_start = gc.get_freeze_count()
        assert frozen_at_start > 0  # start-up's objects are frozen at once
        Cycle()  # garbage before the tick: collected by its full pass, not frozen
        kept = [Cycle() for _ in range(100)]
        policy.tick()
        assert gc.get_freeze_count() >= frozen_at_start + 100
        assert gc.collect() == 0  # nothing unfrozen is garbage after the tick
        assert pause_count(registry, "2") >= 2  # start and tick each ran a full pass, recorded
        # the gauge is the count at the tick (frozen objects freed since then lower the live count)
        assert registry.get_sample_value("crisiswatch_gc_frozen_objects") >= frozen_at_start + 100
        del kept  # frozen cycles that became garbage: kept until the final pass counts them
        assert gc.collect() == 0
    finally:
        found = policy.stop()
    assert found >= 100
    assert gc.get_freeze_count() == 0


def test_with_freezing_off_the_pauses_are_still_recorded(collector_restored: None) -> None:
    registry = CollectorRegistry()
    policy = CycleCollectorPolicy(0.0, registry)
    policy.start()
    try:
        gc.collect(1)
        policy.tick()
        assert gc.get_freeze_count() == 0
        assert pause_count(registry, "1") >= 1
    finally:
        policy.stop()


def test_a_policy_never_started_leaves_the_process_collector_alone(collector_restored: None) -> None:
    """A Worker built in a test (or any caller that did not start the policy) changes nothing."""
    policy = CycleCollectorPolicy(10.0, CollectorRegistry())
    callbacks = list(gc.callbacks)
    policy.tick()
    assert gc.get_freeze_count() == 0
    assert gc.callbacks == callbacks
    assert policy.stop() == 0


def test_the_pipelines_cyclic_garbage_does_not_grow_with_the_stream(
    tmp_path: Path, collector_restored: None
) -> None:
    """What freezing gives up is cyclic garbage among frozen objects. The whole replay (decode, text,
    detectors with state expiring over a week of event time, incidents, alerts) leaves the same fixed
    amount of it (closures built once) for 8k posts as for 17k: per-post and per-cascade objects are
    freed by reference counting."""
    found = []
    for rate_scale in (0.02, 0.1):
        scenario = generate(preset("week", rate_scale=rate_scale))
        settings = dataclasses.replace(load_settings(None, environ={}), brands=scenario.brand_profiles())
        path = tmp_path / f"week-{rate_scale}.jsonl"
        path.write_text("\n".join(iter_jsonl(scenario)) + "\n", encoding="utf-8")
        del scenario
        gc.collect()
        gc.freeze()
        gc.disable()
        result = replay_source(FileSource([str(path)]), settings, io.StringIO())
        assert result.events > 0
        del result
        found.append(gc.collect())
        gc.enable()
        gc.unfreeze()
    assert found[0] == found[1], found

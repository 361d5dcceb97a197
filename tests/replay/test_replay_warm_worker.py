"""`worker --initial-state`: a key the tables do not know starts from the replay's saved state."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from replay_helpers import demo_stream, run_cli

from crisiswatch.streams.app import Worker
from crisiswatch.streams.config import load_settings
from crisiswatch.streams.pipeline import RawRecord
from crisiswatch.streams.replay import read_state_file


def test_worker_loads_saved_baselines_on_first_sight_of_a_key(tmp_path: Path) -> None:
    stream = demo_stream()
    state_path = tmp_path / "state.json.gz"
    run = run_cli(
        "replay",
        str(stream.posts),
        "--config",
        str(stream.config),
        "--alerts-out",
        str(tmp_path / "a.jsonl"),
        "--quiet",
        "--save-state",
        str(state_path),
    )
    assert run.status == 0, run.err
    saved = read_state_file(str(state_path))
    worker = Worker(load_settings(stream.config), initial_state=str(state_path))

    brands = worker._partition_state(worker.brands, 0)
    assert brands.pipeline.engine.brand_state("Northwind Air") is None
    assert not worker._brand_applied(brands, "Northwind Air", 0, 10)
    assert brands.pipeline.engine.brand_state("Northwind Air") == saved["brands"]["Northwind Air"]
    worker._brand_applied(brands, "Never Seen", 0, 10)
    assert brands.pipeline.engine.brand_state("Never Seen") is None

    cascades = worker._partition_state(worker.cascades, 0)
    root = next(iter(saved["cascades"]))
    post = SimpleNamespace(root_id=root)
    assert not worker._cascade_applied(cascades, post, RawRecord(b"{}", 0, 3))
    assert cascades.pipeline.engine.cascade_state(root) == saved["cascades"][root]


def test_without_initial_state_the_worker_starts_cold() -> None:
    worker = Worker(load_settings(demo_stream().config))
    assert worker.warm_start is None

"""`crisiswatch tune`: trials, the Pareto front, the stated rule, and a config file the loader accepts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from replay_helpers import demo_stream, run_cli

from crisiswatch.detectors.settings import ConfigError
from crisiswatch.streams.tune import TrialResult, choose, mark_pareto, parse_param, trials_for


def _trial(
    index: int, recall: float, false_per_day: float, delay: float | None, precision: float = 1.0
) -> TrialResult:
    return TrialResult(
        index,
        {"forward_surge.surge_z": index},
        metrics={
            "recall": recall,
            "precision": precision,
            "false_alerts_per_brand_day": false_per_day,
            "median_delay_min": delay,
            "early_share": 1.0,
        },
    )


def test_pareto_front_and_the_rule() -> None:
    trials = [
        _trial(0, 0.90, 0.10, 10.0),
        _trial(1, 1.00, 0.50, 5.0),  # best recall, over budget
        _trial(2, 0.95, 0.15, 12.0),  # best recall in budget
        _trial(3, 0.95, 0.15, 14.0),  # dominated by 2 (slower)
        _trial(4, 0.80, 0.30, 20.0),  # dominated by 0
        TrialResult(5, {"x": 1}, error="bad"),
    ]
    front = mark_pareto(trials)
    assert [t.index for t in front] == [0, 1, 2]
    chosen, rule = choose(trials, max_false_per_day=0.2)
    assert chosen is not None and chosen.index == 2
    assert "best recall" in rule and "0.2" in rule
    nothing, fallback = choose(trials, max_false_per_day=0.01)
    assert nothing is not None and nothing.index == 0 and "no trial met the budget" in fallback
    # out of budget, a tie on false alerts and recall goes to the faster trial, not the earlier one
    tie, _ = choose([_trial(0, 0.9, 0.3, 19.8), _trial(1, 0.9, 0.3, 15.4)], max_false_per_day=0.2)
    assert tie is not None and tie.index == 1
    floor, _ = choose(
        [_trial(0, 0.9, 0.1, 5.0, precision=0.5), _trial(1, 0.8, 0.1, 5.0, precision=0.95)],
        0.2,
        min_precision=0.9,
    )
    assert floor is not None and floor.index == 1


def test_search_spaces() -> None:
    assert parse_param("forward_surge.surge_z=3,4.5,5") == ("forward_surge.surge_z", [3, 4.5, 5])
    assert parse_param("negative_surge.min_posts=10:30") == ("negative_surge.min_posts", (10, 30))
    for bad in ("surge_z=3", "forward_surge.surge_z", "a.b=5:1"):
        with pytest.raises(ConfigError):
            parse_param(bad)
    grid = trials_for({"a.x": [1, 2], "a.y": [3, 4, 5]}, search="grid", budget=100, seed=1)
    assert grid[0] == {} and len(grid) == 7
    sampled = trials_for({"a.x": [1, 2], "a.y": [3, 4, 5]}, search="grid", budget=4, seed=1)
    assert len(sampled) == 4 and sampled == trials_for(
        {"a.x": [1, 2], "a.y": [3, 4, 5]}, search="grid", budget=4, seed=1
    )
    drawn = trials_for({"a.x": (1, 10), "a.y": (0.5, 0.9)}, search="random", budget=6, seed=3)
    assert len(drawn) == 6 and all(
        1 <= t["a.x"] <= 10 and isinstance(t["a.x"], int) and 0.5 <= t["a.y"] <= 0.9 for t in drawn[1:]
    )


def test_tune_writes_a_config_that_config_check_accepts(tmp_path: Path) -> None:
    stream = demo_stream()
    base = tmp_path / "base.yaml"
    document = yaml.safe_load(stream.config.read_text(encoding="utf-8"))
    document["detectors"] = {"negative_surge": {"min_posts": 20}}
    base.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    chosen = tmp_path / "chosen.yaml"
    results = tmp_path / "results.json"
    run = run_cli(
        "tune", "--config", str(base), "--stream", f"{stream.posts}:{stream.incidents}",
        "--param", "forward_surge.surge_z=3,5", "--param", "forward_surge.resolve_z=1.5,6",
        "--search", "grid", "--budget", "5", "--jobs", "2", "--out", str(chosen), "--results-out", str(results),
    )  # fmt: skip
    assert run.status == 0, run.err
    assert (
        "Pareto front" in run.out
        and "rule: " in run.out
        and "best recall with false alerts/brand/day <= 0.2" in run.out
    )
    assert "chosen: trial" in run.out
    trials = json.loads(results.read_text(encoding="utf-8"))
    assert len(trials) == 5 and trials[0]["params"] == {}
    assert any(t["error"] and "resolve_z" in t["error"] for t in trials), (
        "resolve_z >= surge_z is refused, not run"
    )
    check = run_cli("config", "check", str(chosen))
    assert check.status == 0, check.err
    written = yaml.safe_load(chosen.read_text(encoding="utf-8"))
    assert written["brands"] == document["brands"]
    assert written["detectors"]["negative_surge"] == {"min_posts": 20}, "the base config's detectors stay"
    assert chosen.read_text(encoding="utf-8").startswith("# Chosen by `crisiswatch tune`")


def test_tune_needs_streams(tmp_path: Path) -> None:
    run = run_cli("tune", "--budget", "2")
    assert run.status == 2 and "--stream" in run.err

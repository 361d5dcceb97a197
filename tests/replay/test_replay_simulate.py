"""`crisiswatch simulate`: deterministic labelled streams, every incident kind, flags validated."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

import pytest
from replay_helpers import run_cli

from crisiswatch.detectors.settings import ConfigError
from crisiswatch.streams.evaluation import read_labelled_incidents
from crisiswatch.streams.scenarios import generate, preset
from crisiswatch.streams.simulate import (
    CRISIS_KINDS,
    HARD_NEGATIVE_KINDS,
    MixedOptions,
    mixed_config,
    simulate,
)


def _simulate(tmp_path: Path, name: str, *flags: str) -> tuple[bytes, bytes, str]:
    posts, incidents, config = (
        tmp_path / f"{name}.jsonl",
        tmp_path / f"{name}.incidents.jsonl",
        tmp_path / f"{name}.yaml",
    )
    run = run_cli(
        "simulate",
        "--out",
        str(posts),
        "--incidents-out",
        str(incidents),
        "--config-out",
        str(config),
        *flags,
    )
    assert run.status == 0, run.err
    return posts.read_bytes(), incidents.read_bytes(), config.read_text(encoding="utf-8")


def test_same_seed_same_bytes_and_another_seed_differs(tmp_path: Path) -> None:
    flags = ("--preset", "mixed", "--days", "1.5", "--brands", "3", "--warmup-days", "0.5", "--volume", "0.3")
    first = _simulate(tmp_path, "a", "--seed", "5", *flags)
    second = _simulate(tmp_path, "b", "--seed", "5", *flags)
    other = _simulate(tmp_path, "c", "--seed", "6", *flags)
    assert first == second
    assert first[0] != other[0]


def test_the_config_it_writes_is_accepted_and_lists_the_brands(tmp_path: Path) -> None:
    _, incidents, config = _simulate(
        tmp_path,
        "s",
        "--preset",
        "mixed",
        "--days",
        "1",
        "--warmup-days",
        "0.25",
        "--volume",
        "0.2",
        "--seed",
        "3",
    )
    check = run_cli("config", "check", str(tmp_path / "s.yaml"))
    assert check.status == 0, check.err
    brands = {row["brand"] for row in map(json.loads, incidents.decode().splitlines())}
    for brand in brands:
        assert brand in config


def test_mixed_plants_every_kind_in_both_languages_after_the_warmup() -> None:
    config = mixed_config(MixedOptions(seed=11, days=6, brands=6))
    kinds = Counter(spec.kind for spec in config.incidents)
    assert set(kinds) == set(CRISIS_KINDS) | set(HARD_NEGATIVE_KINDS)
    assert {brand.lang for brand in config.brands} == {"en", "zh"}
    assert any(brand.base_posts_per_hour < 20 for brand in config.brands), "one small brand"
    assert min(spec.start_s for spec in config.incidents) >= 86_400.0
    for spec in config.incidents:
        assert spec.start_s + spec.effective_duration_s <= config.duration_s
    # Never two incidents on one brand at once.
    by_brand: dict[str, list[tuple[float, float]]] = {}
    for spec in config.incidents:
        for name in (spec.brand, spec.other_brand):
            if name:
                by_brand.setdefault(name, []).append((spec.start_s, spec.start_s + spec.effective_duration_s))
    for spans in by_brand.values():
        spans.sort()
        assert all(end <= next_start for (_, end), (next_start, _) in zip(spans, spans[1:], strict=False))


def test_labelled_incidents_are_what_replay_reads(tmp_path: Path) -> None:
    _simulate(tmp_path, "w", "--preset", "mixed", "--days", "2", "--volume", "0.2", "--seed", "2")
    incidents = read_labelled_incidents(tmp_path / "w.incidents.jsonl")
    assert any(incident.is_crisis for incident in incidents)
    assert any(not incident.is_crisis for incident in incidents)


def test_gzip_output_and_languages_flag(tmp_path: Path) -> None:
    target = tmp_path / "zh.jsonl.gz"
    run = run_cli(
        "simulate",
        "--out",
        str(target),
        "--preset",
        "mixed",
        "--days",
        "1",
        "--warmup-days",
        "0.5",
        "--langs",
        "zh",
        "--brands",
        "2",
        "--volume",
        "0.2",
    )
    assert run.status == 0, run.err
    posts = [json.loads(line) for line in gzip.decompress(target.read_bytes()).decode().splitlines()]
    assert posts and {post["platform"] for post in posts} == {"weibo"}


def test_demo_preset_is_the_demo_stream() -> None:
    assert simulate("demo", seed=7).posts == generate(preset("demo", seed=7)).posts


@pytest.mark.parametrize(
    ("flags", "key"),
    [
        (("--preset", "mixed", "--days", "0"), "--days"),
        (("--preset", "mixed", "--brands", "99"), "--brands"),
        (("--preset", "mixed", "--langs", "fr"), "--langs"),
        (("--preset", "mixed", "--days", "2", "--warmup-days", "2"), "--warmup-days"),
        (("--preset", "demo", "--brands", "2"), "--brands"),
    ],
)
def test_bad_flags_are_usage_errors(tmp_path: Path, flags: tuple[str, ...], key: str) -> None:
    run = run_cli("simulate", "--out", str(tmp_path / "x.jsonl"), *flags)
    assert run.status == 2 and key in run.err


def test_options_validate_in_python_too() -> None:
    with pytest.raises(ConfigError):
        MixedOptions(volume=0)

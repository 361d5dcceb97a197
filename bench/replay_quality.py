"""Detection quality on generated scenarios that were not used for tuning (held-out seeds).

    python bench/replay_quality.py [--scenarios 6] [--days 4] [--first-seed 1000] [--config FILE] [--jobs 2]

Simulates `--scenarios` `mixed` streams (seeds first-seed, first-seed+1, ...; `crisiswatch tune` uses
seeds from 100 by default), replays each through the full pipeline (decode, text, detect, incidents)
with the given config (default: the shipped defaults) plus the scenario's brands, scores them with
`streams/evaluation.py` (rules unchanged), pools the scores and prints the goal table, then recall and
false alerts per incident kind. `--json` prints the pooled score as JSON instead.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import statistics
import time
from collections import Counter, defaultdict
from typing import Any

from crisiswatch.streams.config import load_settings
from crisiswatch.streams.evaluation import LabelledIncident, Score, evaluate, format_score, pool
from crisiswatch.streams.pipeline import RawRecord
from crisiswatch.streams.replay import Observer, _ForwardTimes, dump_line, replay_source
from crisiswatch.streams.scenarios import generate
from crisiswatch.streams.simulate import MixedOptions, mixed_config


def score_seed(job: tuple[int, float, str | None]) -> tuple[int, Score, float, int]:
    seed, days, config_path = job
    scenario = generate(mixed_config(MixedOptions(seed=seed, days=days)))
    settings = load_settings(config_path, environ={})
    if not settings.brands:
        settings = dataclasses.replace(settings, brands=scenario.brand_profiles())
    incidents = [LabelledIncident.from_dict(incident.to_dict()) for incident in scenario.incidents]
    forwards = _ForwardTimes(incident.root_id for incident in incidents if incident.root_id)
    events: list[Any] = []
    records = (
        RawRecord(dump_line(post).encode("utf-8"), 0, i, f"seed{seed}:{i + 1}")
        for i, post in enumerate(scenario.posts)
    )
    started = time.perf_counter()
    observers: list[Observer] = [forwards]
    result = replay_source(records, settings, None, observers=observers, on_event=events.append)
    elapsed = time.perf_counter() - started
    duration = (result.last_event_s or 0.0) - (result.first_event_s or 0.0)
    score = evaluate(
        incidents, events, forward_times=forwards.times, brands=len(settings.brands), duration_s=duration
    )
    return seed, score, elapsed, len(scenario.posts)


def per_kind(score: Score) -> list[str]:
    found: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for outcome in score.outcomes:
        row = found[outcome.incident.kind or "crisis"]
        row[0] += outcome.detected_at_s is not None
        row[1] += 1
    lines = ["crises by kind (detected/total, median delay min, early):"]
    for kind, (detected, total) in sorted(found.items()):
        delays = [
            o.delay_s / 60
            for o in score.outcomes
            if (o.incident.kind or "crisis") == kind and o.delay_s is not None
        ]
        early = [
            o.early for o in score.outcomes if (o.incident.kind or "crisis") == kind and o.early is not None
        ]
        median = f"{statistics.median(delays):.1f}" if delays else "n/a"
        early_text = f"{sum(early)}/{len(early)}" if early else "n/a"
        lines.append(f"  {kind:<22} {detected}/{total}  delay {median:>5}  early {early_text}")
    causes = Counter(",".join(sorted(e.matched_kinds)) or "unlabelled" for e in score.false_alerts)
    detectors = Counter(e.detector for e in score.false_alerts)
    lines.append(
        "false alert episodes by what they matched: "
        + (", ".join(f"{k} {v}" for k, v in causes.most_common()) or "none")
    )
    lines.append(
        "false alert episodes by detector: "
        + (", ".join(f"{k} {v}" for k, v in detectors.most_common()) or "none")
    )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", type=int, default=6)
    parser.add_argument("--days", type=float, default=4.0)
    parser.add_argument("--first-seed", type=int, default=1000)
    parser.add_argument("--config", help="config file to evaluate (e.g. the one `crisiswatch tune` chose)")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    jobs = [(args.first_seed + i, args.days, args.config) for i in range(args.scenarios)]
    started = time.perf_counter()
    if args.jobs > 1:
        with multiprocessing.get_context("fork").Pool(args.jobs) as workers:
            results = sorted(workers.map(score_seed, jobs), key=lambda r: r[0])
    else:
        results = [score_seed(job) for job in jobs]
    total = pool([score for _, score, _, _ in results])
    if args.json:
        print(
            json.dumps(
                {"seeds": [r[0] for r in results], "config": args.config, **total.to_dict()}, sort_keys=True
            )
        )
        return
    posts = sum(r[3] for r in results)
    print(
        f"{len(results)} held-out scenarios (seeds {jobs[0][0]}..{jobs[-1][0]}, {args.days:g} days each, {posts:,} posts), config {args.config or '(defaults)'}"
    )
    for seed, score, elapsed, count in results:
        m = score.metrics()
        print(
            f"  seed {seed}: {count:,} posts in {elapsed:.1f} s; crises {score.detected}/{score.crises}, episodes {score.true_episodes}/{score.episodes} true, "
            f"false/brand/day {m['false_alerts_per_brand_day']:.3f}"
        )
    print(format_score(total))
    print("\n".join(per_kind(total)))
    print(f"wall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()

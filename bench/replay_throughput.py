"""Replay throughput end to end, one process: read file -> decode -> text -> detect -> incidents -> alert lines.

    python bench/replay_throughput.py [--rate-scale 1] [--repeats 3] [--gz] [--stage-clock wall|cpu]

Writes the `week` preset (6 brands, 7 days, every incident kind; `--rate-scale` multiplies the traffic)
to a temporary JSONL file once, then replays it `--repeats` times exactly as `crisiswatch replay FILE
--config BRANDS --alerts-out OUT` does (configured brands with aliases, so brand matching runs too) and
reports the median posts/s, by wall time and by the process's CPU time (on a shared machine the CPU
figure is the one that holds still). One more run with stage timing gives where the time goes (read,
decode, brands, text, detect, incidents, output; the timing adds a few µs per batch and two clock reads
per brand match); `--stage-clock cpu` times the stages in process CPU time instead of wall time.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import json
import os
import platform
import statistics
import tempfile
import time

from crisiswatch.streams.config import load_settings
from crisiswatch.streams.replay import open_output, replay_source
from crisiswatch.streams.scenarios import generate, iter_jsonl, preset
from crisiswatch.streams.sources import FileSource


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate-scale", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--gz", action="store_true", help="read a gzipped file")
    parser.add_argument("--stage-clock", choices=("wall", "cpu"), default="wall")
    args = parser.parse_args()

    scenario = generate(preset("week", rate_scale=args.rate_scale))
    settings = dataclasses.replace(load_settings(None, environ={}), brands=scenario.brand_profiles())
    posts = len(scenario.posts)
    with tempfile.TemporaryDirectory(prefix="crisiswatch-bench-") as directory:
        path = os.path.join(directory, "week.jsonl" + (".gz" if args.gz else ""))
        data = ("\n".join(iter_jsonl(scenario)) + "\n").encode("utf-8")
        del scenario
        with open(path, "wb") as handle:
            handle.write(gzip.compress(data, 6) if args.gz else data)
        size_mb = os.path.getsize(path) / 1e6
        seconds = []
        cpu_seconds = []
        events = 0
        for _ in range(args.repeats):
            started, cpu_started = time.perf_counter(), time.process_time()
            with open_output(os.path.join(directory, "alerts.jsonl")) as out:
                result = replay_source(FileSource([path]), settings, out)
            seconds.append(time.perf_counter() - started)
            cpu_seconds.append(time.process_time() - cpu_started)
            events = result.events
        stage_clock = time.process_time if args.stage_clock == "cpu" else time.perf_counter
        with open_output(os.path.join(directory, "alerts.jsonl")) as out:
            timed = replay_source(FileSource([path]), settings, out, timings=True, stage_clock=stage_clock)
    assert timed.timings is not None
    median = statistics.median(seconds)
    cpu_median = statistics.median(cpu_seconds)
    stages = timed.timings.to_dict()
    print(
        json.dumps(
            {
                "preset": "week",
                "rate_scale": args.rate_scale,
                "posts": posts,
                "file_mb": round(size_mb, 1),
                "gz": args.gz,
                "incident_events": events,
                "repeats": args.repeats,
                "seconds_median": round(median, 2),
                "seconds_all": [round(s, 2) for s in seconds],
                "posts_per_second": round(posts / median),
                "cpu_seconds_median": round(cpu_median, 2),
                "cpu_seconds_all": [round(s, 2) for s in cpu_seconds],
                "posts_per_cpu_second": round(posts / cpu_median),
                "stage_clock": args.stage_clock,
                "stages_seconds": stages,
                "stages_us_per_post": {name: round(value * 1e6 / posts, 1) for name, value in stages.items()},
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "load_average": [round(x, 2) for x in os.getloadavg()],
            }
        )
    )


if __name__ == "__main__":
    main()

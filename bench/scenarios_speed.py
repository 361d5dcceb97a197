"""Speed of the scenario generator (`crisiswatch.streams.scenarios`), one process, one core.

    python bench/scenarios_speed.py [--rate-scale 10] [--repeats 3] [--jsonl]

Generates the `week` preset (6 brands, 7 days, every incident kind) with background rates multiplied by
`--rate-scale` (10 gives about 1.1M posts) and reports, median of repeats: posts, seconds, posts/s, and
optionally the time to encode the posts as JSON lines. Peak memory is the process's max RSS.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import time

from crisiswatch.streams.scenarios import generate, iter_jsonl, preset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate-scale", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--jsonl", action="store_true", help="also time encoding to JSON lines")
    args = parser.parse_args()

    config = preset("week", rate_scale=args.rate_scale)
    seconds, encode_seconds, posts = [], [], 0
    for _ in range(args.repeats):
        started = time.perf_counter()
        scenario = generate(config)
        seconds.append(time.perf_counter() - started)
        posts = len(scenario.posts)
        if args.jsonl:
            started = time.perf_counter()
            for _line in iter_jsonl(scenario):
                pass
            encode_seconds.append(time.perf_counter() - started)
        del scenario
    median = statistics.median(seconds)
    result = {
        "preset": "week",
        "rate_scale": args.rate_scale,
        "posts": posts,
        "repeats": args.repeats,
        "seconds_median": round(median, 2),
        "seconds_all": [round(s, 2) for s in seconds],
        "posts_per_second": round(posts / median),
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "python": platform.python_version(),
    }
    if encode_seconds:
        result["jsonl_seconds_median"] = round(statistics.median(encode_seconds), 2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()

"""Speed and memory of the text models (issue 4 figures). Prints a markdown table.

    python bench/text_speed.py [--data-root ../shared/data] [--lines 100000] [--repeats 5] [--model MANIFEST]

`--model` measures another bundle (e.g. the previous version) the same way, for a before/after on one machine.

- classify throughput: `python -m crisiswatch.detectors.text.cli classify --proba` over N tweet-length
  mixed English/Chinese lines (half each, drawn from the shared sentiment files, or generated when they
  are absent), whole process including interpreter start and model load; wall and CPU time, median.
- model load: `TextAnalyzer.load_default()` in a fresh process (imports excluded / included), median.
- resident memory: RSS growth from loading the models, and peak RSS of the classify process.
- per-post CPU of English sentiment and of the full `analyze_many` path (cache off), median.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

_PROBE = r"""
import json, resource, sys, time
def rss_kb():
    for line in open('/proc/self/status'):
        if line.startswith('VmRSS:'):
            return int(line.split()[1])
t0 = time.perf_counter()
import numpy
from crisiswatch.detectors.text import TextAnalyzer
t1 = time.perf_counter()
before = rss_kb()
t2 = time.perf_counter()
analyzer = TextAnalyzer.load(sys.argv[1]) if len(sys.argv) > 1 else TextAnalyzer.load_default()
t3 = time.perf_counter()
after = rss_kb()
print(json.dumps({"import_s": t1 - t0, "load_s": t3 - t2, "rss_growth_kb": after - before, "rss_kb": after}))
"""


def _lines(data_root: Path, count: int) -> list[str]:
    rng = random.Random(7)
    pools: list[list[str]] = []
    for relative in ("sentiment/en/train.tsv", "sentiment/zh/weibo_nlpcc2013_train.tsv"):
        path = data_root / relative
        if path.is_file():
            with open(path, encoding="utf-8", newline="") as handle:
                pools.append([r[0].replace("\n", " ") for r in list(csv.reader(handle, delimiter="\t"))[1:]])
    if len(pools) != 2:
        words_en = [
            "my",
            "order",
            "never",
            "arrived",
            "the",
            "service",
            "was",
            "great",
            "terrible",
            "phone",
            "battery",
            "love",
            "hate",
            "refund",
            "why",
        ]
        chars_zh = list("快递太慢了客服不理人质量很好开心失望手机电池外卖凉了差评喜欢")
        pools = [
            [" ".join(rng.choice(words_en) for _ in range(rng.randint(5, 20))) for _ in range(5000)],
            ["".join(rng.choice(chars_zh) for _ in range(rng.randint(8, 60))) for _ in range(5000)],
        ]
    return [rng.choice(pools[i % 2]) for i in range(count)]


def _cpu_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-root", default=str(REPO.parent / "shared/data"))
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--model", help="manifest.json of the bundle to measure (default: the shipped one)")
    args = parser.parse_args(argv)
    model_args = ["--model", args.model] if args.model else []
    lines = _lines(Path(args.data_root), args.lines)
    rows: list[tuple[str, str, str]] = []
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}

    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "lines.txt"
        source.write_text("\n".join(lines) + "\n", encoding="utf-8")
        walls, cpus, peaks = [], [], []
        for _ in range(args.repeats):
            cpu_before = _cpu_children()
            started = time.perf_counter()
            done = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    "import resource, sys\nfrom crisiswatch.detectors.text.cli import classify_main\n"
                    "code = classify_main(sys.argv[1:])\n"
                    "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\nsys.exit(code)",
                    "--proba",
                    "--input",
                    str(source),
                    *model_args,
                ],
                capture_output=True,
                env=env,
                check=True,
            )
            walls.append(time.perf_counter() - started)
            cpus.append(_cpu_children() - cpu_before)
            peaks.append(int(done.stderr.decode().strip().splitlines()[-1]))
            assert done.stdout.count(b"\n") == len(lines)
        wall = statistics.median(walls)
        rows.append(
            (
                f"classify --proba, {len(lines):,} mixed en/zh lines, whole process",
                f"{wall:.2f} s wall, {statistics.median(cpus):.2f} s CPU",
                "",
            )
        )
        rows.append(("classify throughput (lines / wall second)", f"{len(lines) / wall:,.0f}", ">= 30,000"))
        rows.append(("classify peak RSS", f"{statistics.median(peaks) / 1024:.0f} MiB", ""))

    probes = [
        json.loads(
            subprocess.run(
                [sys.executable, "-c", _PROBE, *model_args[1:]], capture_output=True, env=env, check=True
            ).stdout
        )
        for _ in range(args.repeats)
    ]
    rows.append(
        (
            "model load (TextAnalyzer.load_default, imports excluded)",
            f"{statistics.median(p['load_s'] for p in probes) * 1000:.0f} ms",
            "< 1 s",
        )
    )
    rows.append(
        (
            "import of crisiswatch.detectors.text (numpy included)",
            f"{statistics.median(p['import_s'] for p in probes) * 1000:.0f} ms",
            "",
        )
    )
    rows.append(
        (
            "resident memory of the loaded models (RSS growth)",
            f"{statistics.median(p['rss_growth_kb'] for p in probes) / 1024:.1f} MiB",
            "",
        )
    )

    sys.path.insert(0, str(REPO))
    from crisiswatch.detectors.text import TextAnalyzer, TextConfig

    config = TextConfig(cache_size=0)
    analyzer = TextAnalyzer.load(args.model, config) if args.model else TextAnalyzer.load_default(config)
    english = [line for i, line in enumerate(lines) if i % 2 == 1][:20_000]
    mixed = lines[:20_000]
    analyzer.classify(english[:1000], "sentiment", "en")  # warm the token tables like a running worker
    timings: dict[str, list[float]] = {"en": [], "mixed": []}
    for _ in range(args.repeats):
        started = time.process_time()
        analyzer.classify(english, "sentiment", "en")
        timings["en"].append((time.process_time() - started) / len(english))
        fresh = TextAnalyzer(analyzer.bundle, TextConfig(cache_size=0))
        started = time.process_time()
        for chunk in range(0, len(mixed), 500):
            fresh.analyze_many(mixed[chunk : chunk + 500], [None] * len(mixed[chunk : chunk + 500]))
        timings["mixed"].append((time.process_time() - started) / len(mixed))
    rows.append(
        (
            "English sentiment, CPU per post (classify, batch of 20k)",
            f"{statistics.median(timings['en']) * 1e6:.1f} µs",
            "<= 100 µs",
        )
    )
    rows.append(
        (
            "analyze_many full path (own text, lang, sentiment, complaint, category), CPU per post, batches of 500, cache off",
            f"{statistics.median(timings['mixed']) * 1e6:.1f} µs",
            "",
        )
    )

    print(
        f"model bundle {analyzer.version}; python {sys.version.split()[0]}, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f}, median of {args.repeats}\n"
    )
    print("| measure | value | goal |\n|---|---|---|")
    for name, value, goal in rows:
        print(f"| {name} | {value} | {goal} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

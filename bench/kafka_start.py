"""Start/stop time of the local Kafka broker (deploy/kafka/kafka-local), as a user or CI sees it.

Each run times the CLI end to end (Python start-up included): warm `start` of a fresh broker until it
answers Metadata, `stop --keep`, a restart on the same dir/port (`start --dir`), and the final `stop`.
Jars must be cached (a warm start); `--cold-fetch` also times one `fetch` into an empty cache with an
empty Maven repository (downloads ~70 MB from Maven Central).

    python bench/kafka_start.py --runs 7
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "deploy" / "kafka" / "kafka-local"


def run(*args: str, env: dict[str, str] | None = None, echo: bool = False) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"kafka-local {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    if echo:
        print(proc.stderr, end="", flush=True)
    return elapsed, proc.stdout


def cold_fetch() -> float:
    with tempfile.TemporaryDirectory(prefix="kafka-bench-") as tmp:
        env = {**os.environ, "CRISISWATCH_CACHE": f"{tmp}/cache"}
        env["MAVEN_OPTS"] = f"{env.get('MAVEN_OPTS', '')} -Dmaven.repo.local={tmp}/m2".strip()
        elapsed, _ = run("fetch", env=env, echo=True)
        again, _ = run("fetch", env=env)
    print(f"cold fetch (jars + class-data archive) {elapsed:.1f} s, second fetch {again:.2f} s", flush=True)
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="start/stop cycles (0: only --cold-fetch)")
    parser.add_argument("--cold-fetch", action="store_true", help="also time a fetch from scratch")
    args = parser.parse_args()

    if args.cold_fetch:
        cold_fetch()
    run("fetch")  # make sure the jars are cached: the runs below are warm
    series: dict[str, list[float]] = {"start": [], "stop_keep": [], "restart": [], "stop": []}
    for i in range(args.runs):
        elapsed, out = run("start", "--json")
        state = json.loads(out)
        series["start"].append(elapsed)
        series["stop_keep"].append(run("stop", "--dir", state["dir"], "--keep")[0])
        series["restart"].append(run("start", "--dir", state["dir"], "--json")[0])
        series["stop"].append(run("stop", "--dir", state["dir"])[0])
        print(f"run {i + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in series.items()), flush=True)

    if not args.runs:
        return 0
    load = os.getloadavg()
    print(
        f"\n{platform.node()}: {os.cpu_count()} cores, load {load[0]:.1f}, Python {platform.python_version()}"
    )
    print(f"| step ({args.runs} runs) | median s | min s | max s |\n|---|---|---|---|")
    labels = {
        "start": "start, fresh dir (format + JVM + ready)",
        "stop_keep": "stop --keep (SIGTERM, graceful)",
        "restart": "start --dir (restart, same port/data)",
        "stop": "stop (and remove dir)",
    }
    for key, values in series.items():
        print(f"| {labels[key]} | {statistics.median(values):.2f} | {min(values):.2f} | {max(values):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

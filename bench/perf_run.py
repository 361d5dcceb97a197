"""How fast crisiswatch is, against the limits of its own stack, on a real broker (issue 8).

One run starts a real single-node Kafka (deploy/kafka/kafka-local, C2 JIT for throughput), loads a
4-partition topic with generated posts (`scenarios.preset("week")`: six English and Chinese brands,
cascades, every planted incident kind) and measures, on that same topic:

  throughput  posts/s of (1) an aiokafka consumer + json.loads, (2) a bare Faust agent iterating the
              topic, (2b) the same agent writing one table entry per event, (3) `crisiswatch worker`
              (decode, validate, dedup, sentiment, detectors, table state, incidents, webhook to a real
              HTTP receiver), with the ratios of 3 to 1, 2 and 2b; medians of --repeats runs, interleaved;
  latency     background load (--background-rate, default 1k posts/s); per trial a negative cascade is built just below the surge threshold,
              then the post that crosses it (a verified big account forwarding) is produced and the time
              until the critical page reaches the webhook receiver on 127.0.0.1 is taken; p50/p99;
  memory      RSS of one worker holding ~100k active cascades with its dedup stage at capacity, plus
              bytes per cascade and per remembered post id measured offline;
  soak        RSS every 5 s over --soak-s at a steady --background-rate (a week of event time compressed into the
              soak, so the 24 h dedup horizon and the 6 h cascade expiry are crossed); growth must be flat;
  scaleout    1 worker vs 2 workers (one consumer group, 4 partitions): incident sets compared on brand,
              detector, root_id, status, severity; posts per CPU-second of each worker;
  replay      `crisiswatch replay` on the same posts (start-up subtracted).

    CRISISWATCH_KAFKA_JVM_OPTS=-XX:TieredStopAtLevel=4 \\
    python bench/perf_run.py --phases throughput,latency,memory,soak,scaleout,replay --repeats 3 --soak-s 600

Results: a JSON document (--out; phases already in it are kept) and progress on stderr. Every process
started is stopped, also on SIGTERM. `--snapshot REV|WORKTREE|DIR [--patch FILE]` measures a frozen copy of
the code (the package is put first on PYTHONPATH for this process, the workers and the ceilings).
Figures and method: bench/results/perf.md.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import math
import os
import platform
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from kafka_broker import KafkaBroker, create_topic, unique_topic  # noqa: E402
from worker_process import WorkerConfig, WorkerProcess, free_port, read_topic  # noqa: E402

from crisiswatch.streams.config import KafkaConfig  # noqa: E402
from crisiswatch.streams.produce import message_key, send_messages  # noqa: E402
from crisiswatch.streams.replay import dump_line  # noqa: E402

PHASES = ("throughput", "latency", "memory", "soak", "scaleout", "replay")
CLK_TCK = os.sysconf("SC_CLK_TCK")
DAY_S = 86400.0
# Production defaults except the commit interval (1 s instead of 2 s: the brand side's completion is
# read from committed offsets, so this is the resolution of the end-to-end time).
BENCH_KAFKA = {
    "session_timeout_s": 30.0,
    "heartbeat_interval_s": 3.0,
    "commit_interval_s": 1.0,
    "batch_max_wait_s": 0.05,
}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- processes -----------------------------------------------------------------------------------------
def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def load_average() -> float:
    return os.getloadavg()[0]


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def code_version() -> dict[str, Any]:
    """The commit and a hash of the uncommitted diff: the tree changes while helpers work on it."""
    import hashlib

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True, cwd=REPO).stdout

    snapshot = os.environ.get("CRISISWATCH_PERF_SNAPSHOT")
    if snapshot:
        if snapshot.startswith("WORKTREE") or Path(snapshot.split()[0]).is_dir():
            return {
                "snapshot": snapshot,
                "commit": git("rev-parse", "HEAD").strip(),
                "diff_sha1": hashlib.sha1(git("diff", "HEAD").encode()).hexdigest()[:12],
            }
        return {"snapshot": snapshot, "commit": git("rev-parse", snapshot.split()[0]).strip()}
    return {
        "commit": git("rev-parse", "HEAD").strip(),
        "diff_sha1": hashlib.sha1(git("diff", "HEAD").encode()).hexdigest()[:12],
    }


def gc_pauses(metrics_text: str) -> dict[str, dict[str, float]]:
    """Per generation: passes, seconds in all, and the upper bound of the slowest pass's histogram bucket."""
    from prometheus_client.parser import text_string_to_metric_families

    pauses: dict[str, dict[str, float]] = {}
    buckets: dict[str, list[tuple[float, float]]] = {}
    for family in text_string_to_metric_families(metrics_text):
        if family.name != "crisiswatch_gc_pause_seconds":
            continue
        for sample in family.samples:
            generation = sample.labels["generation"]
            entry = pauses.setdefault(generation, {})
            if sample.name.endswith("_count"):
                entry["passes"] = sample.value
            elif sample.name.endswith("_sum"):
                entry["seconds"] = round(sample.value, 3)
            elif sample.name.endswith("_bucket"):
                buckets.setdefault(generation, []).append((float(sample.labels["le"]), sample.value))
    for generation, entry in pauses.items():  # buckets are cumulative: the first bound holding every pass
        entry["slowest_at_most_s"] = min(le for le, count in buckets[generation] if count >= entry["passes"])
    return pauses


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (p99 of 60 trials is the largest but one... the honest small-sample one)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[rank - 1]


# -- the webhook receiver --------------------------------------------------------------------------------
class Receiver:
    """A real aiohttp server on 127.0.0.1 in a thread: records (monotonic arrival time, JSON body)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.arrivals: list[tuple[float, dict[str, Any]]] = []
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, name="webhook-receiver", daemon=True)
        self._started = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        self._thread.start()
        self._started.wait(10)
        return self

    def _run(self) -> None:
        from aiohttp import web

        async def hook(request: web.Request) -> web.Response:
            arrived = time.monotonic()
            body = await request.json()
            with self.changed:
                self.arrivals.append((arrived, body))
                self.changed.notify_all()
            return web.Response(status=204)

        loop = self._loop = asyncio.new_event_loop()
        app = web.Application()
        app.router.add_post("/hook", hook)
        runner = web.AppRunner(app, access_log=None)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        self._started.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())

    def wait_for(self, predicate: Any, timeout_s: float) -> tuple[float, dict[str, Any]] | None:
        deadline = time.monotonic() + timeout_s
        with self.changed:
            while True:
                for arrival in self.arrivals:
                    if predicate(arrival[1]):
                        return arrival
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self.changed.wait(remaining)

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)


# -- data ----------------------------------------------------------------------------------------------
@dataclass
class Dataset:
    values: list[bytes]
    brands: list[dict[str, Any]]
    crises: list[dict[str, Any]] = field(default_factory=list)  # planted ground truth that should page

    @property
    def count(self) -> int:
        return len(self.values)


def brand_config(profiles: Sequence[Any]) -> list[dict[str, Any]]:
    return [
        {"name": p.name, "aliases": list(p.aliases), "role": p.role, "time_zone": p.time_zone, "lang": p.lang}
        for p in profiles
    ]


def week_dataset(rate_scale: float, end_s: float, **overrides: Any) -> Dataset:
    """The `week` preset (6 brands, en+zh, every incident kind) ending at `end_s` (so no post is 'future')."""
    from crisiswatch.streams.scenarios import generate, preset

    duration_s = overrides.pop("duration_s", 7 * DAY_S)
    scenario = generate(
        preset("week", start_s=end_s - duration_s, duration_s=duration_s, rate_scale=rate_scale, **overrides)
    )
    values = [dump_line(post).encode("utf-8") for post in scenario.posts]
    crises = [incident.to_dict() for incident in scenario.incidents if incident.is_crisis]
    return Dataset(values, brand_config(scenario.brand_profiles()), crises)


def warm_up_coordinator(bootstrap: str) -> None:
    """Create __consumer_offsets (one group commit) before any Faust app needs a group coordinator."""
    from kafka import KafkaConsumer, TopicPartition
    from kafka.structs import OffsetAndMetadata

    topic = create_topic(bootstrap, unique_topic("perf-warmup"), 1)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=f"{topic}-group", enable_auto_commit=False)
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.commit({tp: OffsetAndMetadata(0, "", -1)})
    finally:
        consumer.close()


def produce_values(bootstrap: str, topic: str, values: Sequence[bytes]) -> float:
    started = time.perf_counter()
    send_messages(bootstrap, topic, values)
    return time.perf_counter() - started


# -- the worker under test -----------------------------------------------------------------------------
class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.directory = Path(tempfile.mkdtemp(prefix="crisiswatch-perf-"))
        self.broker: KafkaBroker | None = None
        self.bootstrap: str = args.bootstrap or ""
        self.receiver = Receiver()
        self.workers: list[WorkerProcess] = []
        self.results: dict[str, Any] = {
            "machine": machine(),
            "code": code_version(),
            "command": " ".join([sys.executable, *sys.argv]),
            "date": time.strftime("%Y-%m-%d"),
            "phases": {},
        }

    # lifecycle
    def __enter__(self) -> Bench:
        if not self.bootstrap:
            os.environ.setdefault("CRISISWATCH_KAFKA_JVM_OPTS", "-XX:TieredStopAtLevel=4")
            self.broker = KafkaBroker()
            self.bootstrap = self.broker.start()
            log(f"broker {self.bootstrap} (JVM opts {os.environ['CRISISWATCH_KAFKA_JVM_OPTS']})")
        warm_up_coordinator(self.bootstrap)
        self.results["broker"] = {
            "bootstrap": self.bootstrap,
            "jvm_opts": os.environ.get("CRISISWATCH_KAFKA_JVM_OPTS", ""),
        }
        self.receiver.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        for worker in self.workers:
            with contextlib.suppress(Exception):
                if worker.process is not None and worker.process.poll() is None:
                    worker.kill()
        self.receiver.stop()
        if self.broker is not None:
            self.broker.close()

    def worker_config(
        self,
        topic: str,
        brands: list[dict[str, Any]],
        *,
        kafka: dict[str, Any] | None = None,
        pipeline: dict[str, Any] | None = None,
    ) -> WorkerConfig:
        config = WorkerConfig(bootstrap=self.bootstrap, directory=self.directory, partitions=4, brands=brands)
        sub = self.directory / config.suffix
        sub.mkdir(exist_ok=True)
        config.extra = {
            "kafka": {"posts_topic": topic, **BENCH_KAFKA, **(kafka or {})},
            "alerting": {
                "receivers": [{"name": "hook", "webhook": {"url": self.receiver.url}}],
                "route": {"receiver": "hook", "group_wait_s": 0, "group_wait_critical_s": 0},
                "delivery": {"dead_letter_path": str(sub / "dead-letters.jsonl")},
                "silences_path": str(sub / "silences.json"),
                "labelled_incidents_path": str(sub / "labelled.jsonl"),
            },
            "metrics": {"log_format": "text"},
        }
        if pipeline:
            config.extra["pipeline"] = pipeline
        return config

    def start_worker(self, config: WorkerConfig, name: str) -> WorkerProcess:
        worker = WorkerProcess(config, name).start()
        self.workers.append(worker)
        return worker

    def stop_worker(self, worker: WorkerProcess) -> None:
        worker.terminate()
        if worker in self.workers:
            self.workers.remove(worker)

    def stop_worker_with_gc_report(self, worker: WorkerProcess) -> dict[str, Any]:
        """Stop the worker; what its cycle collector did (streams/gc_policy.py): the pauses by generation from
        its metrics, and at shutdown how many objects were frozen and how many of them were cyclic garbage."""
        report: dict[str, Any] = {}
        with contextlib.suppress(OSError):
            report["pauses"] = gc_pauses(worker.get_text("/metrics", timeout_s=10.0)[1])
        self.stop_worker(worker)
        found = re.search(
            r"(\d+) objects were frozen, a full pass found (\d+) unreachable", worker.log_tail(200)
        )
        if found:
            report["frozen_at_shutdown"], report["unreachable_found_at_shutdown"] = map(int, found.groups())
        return report

    def group_lag(self, group: str, topic: str) -> int | None:
        """End offsets minus the group's committed offsets on `topic` (None before the first commit)."""
        from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, client_id="perf-lag")
        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, client_id="perf-lag")
        try:
            partitions = consumer.partitions_for_topic(topic) or set()
            tps = [TopicPartition(topic, p) for p in partitions]
            if not tps:
                return None
            ends = consumer.end_offsets(tps)
            committed = admin.list_group_offsets({group: tps}).get(group, {})
            lag = 0
            for tp in tps:
                mark = committed.get(tp)
                lag += ends[tp] - (mark.offset if mark is not None and mark.offset >= 0 else 0)
            return lag
        finally:
            consumer.close()
            admin.close()

    def wait_worker_done(
        self,
        workers: Sequence[WorkerProcess],
        config: WorkerConfig,
        count: int,
        timeout_s: float,
        sample_rss: bool = False,
    ) -> dict[str, Any]:
        """Poll /stats every 0.1 s: first consumed post -> all consumed -> brand side committed to the end."""
        first_t: float | None = None
        first_cpu: dict[int, float] = {}
        done_t: float | None = None
        done_cpu: dict[int, float] = {}
        deadline = time.monotonic() + timeout_s
        consumed: dict[int, int] = {}
        while time.monotonic() < deadline:
            for worker in workers:
                assert worker.process is not None
                if worker.process.poll() is not None:
                    raise RuntimeError(f"{worker.name} exited:\n{worker.log_tail()}")
                with contextlib.suppress(OSError, ValueError):
                    consumed[worker.process.pid] = int(worker.stats().get("consumed", 0))
            total = sum(consumed.values())
            now = time.monotonic()
            if first_t is None and total > 0:
                first_t = now
                first_cpu = {w.process.pid: proc_cpu_s(w.process.pid) for w in workers if w.process}
            if total >= count:
                done_t = now
                done_cpu = {w.process.pid: proc_cpu_s(w.process.pid) for w in workers if w.process}
                break
            time.sleep(0.1)
        if done_t is None or first_t is None:
            raise RuntimeError(f"timed out: consumed {consumed} of {count}\n{workers[0].log_tail()}")
        brand_topic = f"{config.app_id}-brand-observations"
        brand_t = None
        while time.monotonic() < deadline:
            lag = self.group_lag(config.app_id, brand_topic)
            if lag == 0:
                brand_t = time.monotonic()
                break
            time.sleep(0.2)
        end_cpu = {w.process.pid: proc_cpu_s(w.process.pid) for w in workers if w.process}
        per_worker = []
        for worker in workers:
            assert worker.process is not None
            pid = worker.process.pid
            per_worker.append(
                {
                    "name": worker.name,
                    "consumed": consumed.get(pid, 0),
                    "cpu_s_cascade_side": done_cpu[pid] - first_cpu.get(pid, done_cpu[pid]),
                    "cpu_s_end_to_end": end_cpu[pid] - first_cpu.get(pid, end_cpu[pid]),
                    "rss_mb": proc_rss_mb(pid),
                }
            )
        return {
            "count": count,
            "cascade_side_s": done_t - first_t,
            "end_to_end_s": (brand_t - first_t) if brand_t is not None else None,
            "workers": per_worker,
        }

    # -- phases ----------------------------------------------------------------------------------------
    def throughput_topic(self) -> tuple[str, Dataset]:
        if not hasattr(self, "_throughput"):
            end_s = time.time() - 3600.0
            log(f"generating week preset x{self.args.rate_scale} ...")
            data = week_dataset(self.args.rate_scale, end_s)
            topic = create_topic(self.bootstrap, unique_topic("perf-posts"), 4)
            seconds = produce_values(self.bootstrap, topic, data.values)
            log(f"produced {data.count} posts to {topic} in {seconds:.1f} s")
            self._throughput = (topic, data)
            self.results["dataset"] = {
                "preset": "week",
                "rate_scale": self.args.rate_scale,
                "posts": data.count,
                "bytes_mean": statistics.fmean(len(v) for v in data.values),
                "brands": [b["name"] for b in data.brands],
                "partitions": 4,
            }
        return self._throughput

    def run_ceiling(self, kind: str, topic: str, count: int) -> dict[str, Any]:
        command = [
            sys.executable,
            str(REPO / "bench" / "perf_ceilings.py"),
            kind,
            "--bootstrap",
            self.bootstrap,
            "--topic",
            topic,
            "--count",
            str(count),
        ]
        for attempt in range(3):
            output = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=self.directory)
            # Faust's spinner leaves terminal escapes in front of the JSON line.
            lines = [
                line[line.index('{"count"') :] for line in output.stdout.splitlines() if '{"count"' in line
            ]
            if lines:
                break
            # Faust gives up when the group coordinator is not available yet on a fresh broker: retry.
            log(
                f"{kind} attempt {attempt + 1} produced no result ({output.returncode}): {output.stderr.strip()[-300:]}"
            )
        else:
            raise RuntimeError(f"{kind} failed ({output.returncode}):\n{output.stderr[-3000:]}")
        result = json.loads(lines[-1])
        result["posts_per_s"] = result["count"] / result["elapsed_s"]
        result["posts_per_cpu_s"] = result["count"] / max(result["cpu_s"], 1e-9)
        return dict(result)

    def run_worker_throughput(self, topic: str, data: Dataset, *, profile_s: float = 0.0) -> dict[str, Any]:
        # The topic is finite: at its end the brand side's aligned merge releases the last observations
        # once every source partition has been silent for `source_idle_after_s` (10 s by default), which
        # end to end measured as 10 s of idle waiting (fourth session). 1 s keeps that wait small; on a
        # live stream partitions do not fall silent together.
        config = self.worker_config(topic, data.brands, pipeline={"source_idle_after_s": 1.0})
        worker = self.start_worker(config, f"throughput-{config.suffix}")
        profiler = None
        try:
            worker.wait_ready(180)
            if profile_s > 0:
                assert worker.process is not None
                out = self.directory / f"pyspy-{config.suffix}.txt"
                profiler = subprocess.Popen(
                    [
                        str(Path(sys.executable).parent / "py-spy"),
                        "record",
                        "--format",
                        "raw",
                        "-r",
                        "50",
                        "-d",
                        str(int(profile_s)),
                        "-p",
                        str(worker.process.pid),
                        "-o",
                        str(out),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            result = self.wait_worker_done([worker], config, data.count, timeout_s=1800)
            if profiler is not None:
                profiler.wait(120)
                result["profile"] = summarize_profile(out)
                result["profile_file"] = str(out)
        finally:
            if profiler is not None and profiler.poll() is None:
                profiler.terminate()
            self.stop_worker(worker)
        w = result["workers"][0]
        result["posts_per_s"] = data.count / result["cascade_side_s"]
        result["posts_per_s_end_to_end"] = (
            data.count / result["end_to_end_s"] if result["end_to_end_s"] else None
        )
        result["posts_per_cpu_s"] = data.count / max(w["cpu_s_end_to_end"], 1e-9)
        result["notifications"] = len(self.receiver.arrivals)
        return result

    def phase_throughput(self) -> None:
        topic, data = self.throughput_topic()
        runs: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
        loads = []
        for repeat in range(self.args.repeats):
            for kind in self.args.ceilings.split(",") if self.args.ceilings else []:
                loads.append(load_average())
                result = self.run_ceiling(kind, topic, data.count)
                runs[kind].append(result)
                log(
                    f"repeat {repeat + 1}: {kind:14s} {result['posts_per_s']:9.0f} posts/s  ({result['posts_per_cpu_s']:.0f} per CPU-s, load {loads[-1]:.1f})"
                )
            loads.append(load_average())
            profile_s = self.args.profile_s if repeat == 0 and self.args.profile_s > 0 else 0.0
            result = self.run_worker_throughput(topic, data, profile_s=profile_s)
            runs["worker"].append(result)
            log(
                f"repeat {repeat + 1}: worker         {result['posts_per_s']:9.0f} posts/s cascade side, "
                f"{result['posts_per_s_end_to_end'] or 0:.0f} end to end ({result['posts_per_cpu_s']:.0f} per CPU-s, load {loads[-1]:.1f})"
            )
        summary: dict[str, Any] = {kind: median([r["posts_per_s"] for r in rs]) for kind, rs in runs.items()}
        summary["worker_end_to_end"] = median(
            [r["posts_per_s_end_to_end"] for r in runs["worker"] if r["posts_per_s_end_to_end"]]
        )
        summary["per_cpu_s"] = {kind: median([r["posts_per_cpu_s"] for r in rs]) for kind, rs in runs.items()}
        worker_rate = summary["worker_end_to_end"]
        for kind in ("aiokafka", "faust-iterate", "faust-table"):
            if kind in summary:
                summary[f"ratio_worker_to_{kind.replace('-', '_')}"] = worker_rate / summary[kind]
        summary["load_average"] = {"min": min(loads), "median": median(loads), "max": max(loads)}
        self.results["phases"]["throughput"] = {"summary": summary, "runs": runs}
        log(
            f"throughput medians: {json.dumps({k: v for k, v in summary.items() if not isinstance(v, dict)}, default=str)}"
        )

    # latency -------------------------------------------------------------------------------------------
    def phase_latency(self) -> None:
        rate = self.args.background_rate
        trials = self.args.latency_trials
        background = week_dataset(1.0, time.time() - 60.0)
        # Trial brands are auto-monitored (named in the root's `brands`), one per trial: independent baselines.
        topic = create_topic(self.bootstrap, unique_topic("perf-latency"), 4)
        config = self.worker_config(topic, background.brands, kafka=self.args.latency_kafka)
        worker = self.start_worker(config, f"latency-{config.suffix}")
        try:
            worker.wait_ready(180)
            result = asyncio.run(self._latency_run(topic, background, rate, trials, worker))
        finally:
            gc_report = self.stop_worker_with_gc_report(worker)
        result["worker_gc"] = gc_report
        # A --snapshot before kafka.fetch_max_wait_s ran with Faust's hard-coded 1.5 s.
        default_wait_s = getattr(KafkaConfig, "fetch_max_wait_s", 1.5)
        fetch_max_wait_s = self.args.latency_kafka.get("fetch_max_wait_s", default_wait_s)
        result["fetch_settings"] = {
            "faust_consumer_fetch_max_wait_ms": round(fetch_max_wait_s * 1000),
            "fetch_min_bytes": 1,
            "note": "kafka.fetch_max_wait_s replaces the 1,500 ms faust-streaming 0.15 hard-codes; "
            "with fetch_min_bytes=1 a fetch returns as soon as any partition in it has data",
            "batch_max_wait_s": BENCH_KAFKA["batch_max_wait_s"],
            "producer": "faust defaults (linger_ms=0, acks=-1)",
        }
        self.results["phases"].setdefault("latency", {})[self.args.latency_label] = result
        log(
            f"latency [{self.args.latency_label}]: p50 {result['p50_s']:.3f} s, p99 {result['p99_s']:.3f} s over {result['trials_ok']} trials (load {result['load_average']:.1f})"
        )

    async def _latency_run(
        self, topic: str, background: Dataset, rate: float, trials: int, worker: WorkerProcess
    ) -> dict[str, Any]:
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", linger_ms=0)
        await producer.start()
        stop = asyncio.Event()
        sent = {"background": 0}
        posts = [json.loads(v) for v in background.values]

        async def background_load() -> None:
            index = 0
            started = time.monotonic()
            while not stop.is_set():
                due = int((time.monotonic() - started) * rate)
                batch = []
                while sent["background"] < due:
                    post = dict(posts[index % len(posts)])
                    if index >= len(posts):  # second lap: new ids, so dedup does not drop them
                        lap = index // len(posts)
                        post["id"] = f"{post['id']}-{lap}"
                        for key in ("parent_id", "root_id"):
                            if post.get(key):
                                post[key] = f"{post[key]}-{lap}"
                    post["created_at"] = round(time.time(), 3)
                    value = dump_line(post).encode()
                    batch.append(producer.send(topic, key=message_key(value), value=value))
                    index += 1
                    sent["background"] += 1
                if batch:
                    await asyncio.gather(*batch)
                await asyncio.sleep(0.01)

        load_task = asyncio.create_task(background_load())
        await asyncio.sleep(self.args.latency_warmup_s)
        latencies: list[float] = []
        failures: list[str] = []
        timeouts = 0
        jitter = random.Random(7)
        loads = []
        run_id = os.urandom(3).hex()
        for trial in range(trials):
            root = f"probe-{run_id}-{trial}"
            brand = f"Probe {run_id} {trial:03d}"
            prefix, trigger = trial_posts(root, brand)

            def for_brand(body: dict[str, Any], brand: str = brand) -> bool:
                return bool(body.get("incident", {}).get("brand") == brand)

            now = round(time.time(), 3)
            for post in prefix:
                post["created_at"] = now
                value = dump_line(post).encode()
                await producer.send(topic, key=root.encode(), value=value)
            await producer.flush()
            await asyncio.sleep(self.args.latency_gap_s)
            early = await asyncio.to_thread(self.receiver.wait_for, for_brand, 0.0)
            if early is not None:
                failures.append(
                    f"trial {trial}: a page arrived before the crossing post ({early[1]['incident']['detector']})"
                )
                continue
            trigger["created_at"] = round(time.time(), 3)
            value = dump_line(trigger).encode()
            loads.append(load_average())
            sent_t = time.monotonic()
            await producer.send(topic, key=root.encode(), value=value)
            arrival = await asyncio.to_thread(self.receiver.wait_for, for_brand, self.args.latency_timeout_s)
            if arrival is None:
                failures.append(f"trial {trial}: no page within {self.args.latency_timeout_s:g} s")
                timeouts += 1
                continue
            incident = arrival[1]["incident"]
            if incident.get("severity") != "critical" or incident.get("root_id") != root:
                failures.append(
                    f"trial {trial}: first page was {incident.get('detector')}/{incident.get('severity')} for {incident.get('root_id')}"
                )
            latencies.append(arrival[0] - sent_t)
            # Seeded jitter: a fixed period would lock the trials' phase to any periodic timer in the worker.
            await asyncio.sleep(self.args.latency_spacing_s + jitter.uniform(0.0, 1.0))
        stop.set()
        await load_task
        await producer.stop()
        stats = worker.stats()
        return {
            "trials": trials,
            "trials_ok": len(latencies),
            "failures": failures,
            "latencies_s": [round(x, 4) for x in latencies],
            # A trial without a page counts as infinitely late: p99 is only finite when (almost) all arrived.
            "p50_s": percentile(latencies + [math.inf] * timeouts, 50),
            "p90_s": percentile(latencies + [math.inf] * timeouts, 90),
            "p99_s": percentile(latencies + [math.inf] * timeouts, 99),
            "max_s": max(latencies) if latencies else float("nan"),
            "timeouts": timeouts,
            "background_posts_per_s": rate,
            "background_sent": sent["background"],
            "worker_stats": stats,
            "load_average": median(loads),
        }

    # memory --------------------------------------------------------------------------------------------
    def phase_memory(self) -> None:
        target = self.args.cascades
        log(f"memory: generating ~{target} cascades within the 6 h cascade expiry ...")
        # The week brands at a high rate for 2 hours of event time, no planted incidents: ~target roots.
        hours = 2.0
        end_s = time.time() - 300.0
        probe = week_dataset(10.0, end_s, duration_s=hours * 3600.0, incidents=())
        probe_roots = len({json.loads(v)["root_id"] for v in probe.values})
        data = week_dataset(
            10.0 * target / max(probe_roots, 1), end_s, duration_s=hours * 3600.0, incidents=()
        )
        roots = {json.loads(v)["root_id"] for v in data.values}
        per_partition = data.count // 4
        dedup_cap = int(per_partition * 0.8)  # every partition's dedup stage reaches its cap
        topic = create_topic(self.bootstrap, unique_topic("perf-memory"), 4)
        config = self.worker_config(topic, data.brands, pipeline={"dedup_max_ids": dedup_cap})
        worker = self.start_worker(config, f"memory-{config.suffix}")
        try:
            worker.wait_ready(180)
            assert worker.process is not None
            time.sleep(2)
            idle_rss = proc_rss_mb(worker.process.pid)
            produce_values(self.bootstrap, topic, data.values)
            done = self.wait_worker_done([worker], config, data.count, timeout_s=1800)
            time.sleep(3)
            loaded_rss = proc_rss_mb(worker.process.pid)
        finally:
            self.stop_worker(worker)
        unit = unit_memory()
        result = {
            "posts": data.count,
            "cascades": len(roots),
            "dedup_max_ids_per_partition": dedup_cap,
            "rss_idle_mb": idle_rss,
            "rss_loaded_mb": loaded_rss,
            "rss_per_cascade_kb": (loaded_rss - idle_rss) * 1024.0 / max(len(roots), 1),
            "processing": done,
            "unit": unit,
        }
        self.results["phases"]["memory"] = result
        log(
            f"memory: {len(roots)} cascades, {data.count} posts: RSS {idle_rss:.0f} MB idle -> {loaded_rss:.0f} MB loaded; unit costs {unit}"
        )

    # soak ----------------------------------------------------------------------------------------------
    def phase_soak(self) -> None:
        soak_s = self.args.soak_s
        rate = self.args.background_rate
        needed = int(soak_s * rate * 1.05)
        path = self.directory / "soak.jsonl"
        # A week of event time ending now, at whatever rate gives `needed` posts, written to disk by day.
        end_s = time.time() - 120.0
        count = 0
        scale = needed / 116_000.0
        from crisiswatch.streams.scenarios import generate, preset

        with open(path, "wb") as out:
            for day in range(7):
                start = end_s - (7 - day) * DAY_S
                scenario = generate(
                    preset(
                        "week",
                        seed=100 + day,
                        start_s=start,
                        duration_s=DAY_S,
                        rate_scale=scale,
                        incidents=(),
                    )
                )
                for post in scenario.posts:
                    # Ids restart in every generated day: make them unique, or dedup drops repeats as redeliveries.
                    for key in ("id", "parent_id", "root_id"):
                        if post.get(key):
                            post[key] = f"d{day}-{post[key]}"
                    out.write(dump_line(post).encode() + b"\n")
                    count += 1
                brands = brand_config(scenario.brand_profiles())
                del scenario
        log(f"soak: {count} posts over 7 days of event time at {rate:.0f} posts/s wall ({soak_s:.0f} s)")
        topic = create_topic(self.bootstrap, unique_topic("perf-soak"), 4)
        config = self.worker_config(topic, brands, kafka=self.args.soak_kafka)
        worker = self.start_worker(config, f"soak-{config.suffix}")
        try:
            worker.wait_ready(180)
            assert worker.process is not None
            samples = self._soak_run(topic, path, rate, soak_s, worker)
        finally:
            gc_report = self.stop_worker_with_gc_report(worker)
        result = soak_summary(samples, soak_s)
        result["worker_gc"] = gc_report
        result["posts_available"] = count
        self.results["phases"]["soak"] = result
        log(
            f"soak: RSS {result['rss_start_mb']:.0f} -> {result['rss_end_mb']:.0f} MB, slope over the steady part {result['slope_mb_per_min']:+.2f} MB/min"
        )

    def _soak_run(
        self, topic: str, path: Path, rate: float, soak_s: float, worker: WorkerProcess
    ) -> list[dict[str, Any]]:
        """Paced at `rate` posts/s with kafka-python's threaded producer; RSS, CPU and progress every 5 s."""
        from kafka import KafkaProducer

        assert worker.process is not None
        pid = worker.process.pid
        producer = KafkaProducer(bootstrap_servers=self.bootstrap, acks="all", linger_ms=5)
        samples: list[dict[str, Any]] = []
        started = time.monotonic()
        sent = 0
        next_sample = 0.0
        try:
            with open(path, "rb") as source:
                lines = iter(source)
                while True:
                    elapsed = time.monotonic() - started
                    if elapsed >= soak_s:
                        break
                    due = int(elapsed * rate)
                    while sent < due:
                        line = next(lines, None)
                        if line is None:
                            break
                        value = line.rstrip(b"\n")
                        producer.send(topic, key=message_key(value), value=value)
                        sent += 1
                    if elapsed >= next_sample:
                        stats: dict[str, Any] = {}
                        with contextlib.suppress(OSError, ValueError):
                            stats = worker.stats()
                        samples.append(
                            {
                                "t_s": round(elapsed, 1),
                                "rss_mb": proc_rss_mb(pid),
                                "cpu_s": proc_cpu_s(pid),
                                "sent": sent,
                                "consumed": stats.get("consumed"),
                                "load": load_average(),
                            }
                        )
                        next_sample += 5.0
                    time.sleep(0.01)
            producer.flush()
        finally:
            producer.close()
        return samples

    # scale-out -----------------------------------------------------------------------------------------
    def phase_scaleout(self) -> None:
        _, data = self.throughput_topic()
        results = {}
        for workers_count in (1, 2):
            topic = create_topic(self.bootstrap, unique_topic(f"perf-scale{workers_count}"), 4)
            config = self.worker_config(topic, data.brands)
            workers = [
                self.start_worker(config, f"scale{workers_count}-{i}-{config.suffix}")
                for i in range(workers_count)
            ]
            try:
                for worker in workers:
                    worker.wait_ready(180)
                self._wait_assignment(workers)
                produce_values(self.bootstrap, topic, data.values)
                done = self.wait_worker_done(workers, config, data.count, timeout_s=1800)
                # Let the notify agent drain the outbox, then read the incident set from it.
                time.sleep(3)
                events = [
                    json.loads(record.value)
                    for record in read_topic(self.bootstrap, config.alerts_topic, idle_timeout_s=5.0)
                ]
            finally:
                for worker in workers:
                    self.stop_worker(worker)
            incidents = sorted(
                {(e["brand"], e["detector"], e["root_id"] or "*", e["status"], e["severity"]) for e in events}
            )
            for w in done["workers"]:
                w["posts_per_cpu_s"] = w["consumed"] / max(w["cpu_s_end_to_end"], 1e-9)
            results[workers_count] = {
                "processing": done,
                "incident_events": len(events),
                "incident_set": incidents,
            }
            log(
                f"scale-out {workers_count} worker(s): {[(w['consumed'], round(w['posts_per_cpu_s'])) for w in done['workers']]} (consumed, posts per CPU-s); {len(incidents)} distinct incidents"
            )
        one, two = set(map(tuple, results[1]["incident_set"])), set(map(tuple, results[2]["incident_set"]))
        planted = [(c["brand"], c["root_id"]) for c in data.crises]
        found = {(b, r) for (b, _, r, s, _) in one if s == "firing"}
        planted_found = [
            p
            for p in planted
            if (p[0], p[1] or "*") in found or (p[1] is None and any(b == p[0] for b, _ in found))
        ]
        self.results["phases"]["scaleout"] = {
            "one_worker": results[1],
            "two_workers": results[2],
            "identical": one == two,
            "only_one_worker": sorted(one - two),
            "only_two_workers": sorted(two - one),
            "non_empty": bool(one),
            "planted_crises": planted,
            "planted_found": planted_found,
        }
        log(
            f"scale-out: identical={one == two} ({len(one)} vs {len(two)}), planted crises found {len(planted_found)}/{len(planted)}"
        )

    def _wait_assignment(self, workers: Sequence[WorkerProcess], timeout_s: float = 120.0) -> None:
        """Every worker ready and the posts partitions spread over all of them (no rebalance mid-run)."""
        deadline = time.monotonic() + timeout_s
        history: list[tuple[int, ...]] = []
        while time.monotonic() < deadline:
            try:
                states = [w.get_json("/ready")[1] for w in workers]
            except OSError:
                states = []
            if states and all(s.get("ready") for s in states):
                history.append(tuple(int(s.get("assigned_partitions", 0)) for s in states))
                if len(history) >= 6 and len(set(history[-6:])) == 1 and min(history[-1]) > 0:
                    return
            else:
                history.clear()
            time.sleep(0.5)
        raise RuntimeError(f"workers did not settle: {history[-3:]}")

    # replay --------------------------------------------------------------------------------------------
    def phase_replay(self) -> None:
        _, data = self.throughput_topic()
        path = self.directory / "replay.jsonl"
        path.write_bytes(b"\n".join(data.values) + b"\n")
        one = self.directory / "one.jsonl"
        one.write_bytes(data.values[0] + b"\n")
        config = self.worker_config("unused", data.brands).write(0, "replay.yaml")
        runs = []
        for _ in range(self.args.repeats):
            startup = self._time_replay(one, config)
            full = self._time_replay(path, config)
            runs.append({"wall_s": full, "startup_s": startup, "posts_per_s": data.count / (full - startup)})
            log(
                f"replay: {data.count} posts in {full:.1f} s (start-up {startup:.1f} s): {runs[-1]['posts_per_s']:.0f} posts/s"
            )
        self.results["phases"]["replay"] = {
            "runs": runs,
            "posts_per_s": median([r["posts_per_s"] for r in runs]),
        }

    def _time_replay(self, path: Path, config: Path) -> float:
        out = self.directory / "replay-alerts.jsonl"
        started = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "crisiswatch.streams.cli",
                "replay",
                str(path),
                "--alerts-out",
                str(out),
                "--config",
                str(config),
                "--quiet",
            ],
            check=True,
            capture_output=True,
            cwd=self.directory,
        )
        return time.perf_counter() - started


def trial_posts(
    root: str, brand: str, small_forwards: int = 18
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A furious complaint and 18 small forwards (just below forward_surge's rate threshold with the default
    config), and the crossing post: a verified 2.5M-follower account forwarding it (rate surge + big
    amplifier -> critical). Checked offline by `check_trial_design()` before the phase runs."""
    author = {"followers": 800, "verified": False}
    prefix = [
        {
            "id": root,
            "created_at": 0.0,
            "text": f"{brand} lost my parcel AGAIN and support hung up on me. Worst service ever, never again!",
            "kind": "post",
            "root_id": root,
            "author": {"id": f"{root}-author", **author},
            "platform": "twitter",
            "lang": "en",
            "brands": [brand],
            "sentiment": 0.97,
        }
    ]
    for index in range(small_forwards):
        prefix.append(
            {
                "id": f"{root}-f{index}",
                "created_at": 0.0,
                "text": "",
                "kind": "forward",
                "parent_id": root,
                "root_id": root,
                "author": {"id": f"{root}-u{index}", "followers": 50 + index, "verified": False},
                "platform": "twitter",
                "lang": "en",
            }
        )
    trigger = {
        "id": f"{root}-crossing",
        "created_at": 0.0,
        "text": "RT: this is outrageous",
        "kind": "forward",
        "parent_id": root,
        "root_id": root,
        "author": {"id": "big-news-account", "followers": 2_500_000, "verified": True},
        "platform": "twitter",
        "lang": "en",
        "sentiment": 0.9,
    }
    return prefix, trigger


def check_trial_design() -> None:
    """The prefix alone pages nothing; the crossing post makes a critical forward_surge (offline pipeline)."""
    from crisiswatch.streams.config import Settings
    from crisiswatch.streams.pipeline import Pipeline, RawRecord

    pipeline = Pipeline(Settings())
    prefix, trigger = trial_posts("design-root", "Design Brand")
    now = time.time()
    for post in [*prefix, trigger]:
        post["created_at"] = now
    _, events = pipeline.process(
        [RawRecord(dump_line(p).encode(), 0, i) for i, p in enumerate(prefix)], now_s=now
    )
    assert not events, f"the prefix already pages: {[e.to_dict() for e in events]}"
    _, events = pipeline.process([RawRecord(dump_line(trigger).encode(), 0, len(prefix))], now_s=now)
    assert any(e.severity == "critical" and e.status == "firing" for e in events), (
        f"no critical page: {[e.to_dict() for e in events]}"
    )


def unit_memory() -> dict[str, Any]:
    """Bytes per remembered post id (DedupStage) and per active cascade (engine state + table value), in a
    fresh process so the measurement sees nothing else."""
    output = subprocess.run(
        [sys.executable, __file__, "--unit-memory-child"],
        capture_output=True,
        text=True,
        check=True,
        timeout=900,
    )
    return dict(json.loads(output.stdout.strip().splitlines()[-1]))


def unit_memory_child() -> None:
    import gc
    import tracemalloc

    from crisiswatch.streams.pipeline import DedupStage

    tracemalloc.start()
    ids = 200_000
    base = tracemalloc.get_traced_memory()[0]
    dedup = DedupStage(86400.0, ids)
    for index in range(ids):
        dedup.is_duplicate(f"tw{index:010d}", 1_790_000_000.0 + index * 0.01, None)
    dedup_bytes = (tracemalloc.get_traced_memory()[0] - base) / ids
    del dedup
    gc.collect()
    # Cascades: the worker's real objects, from the memory phase's kind of stream.
    from crisiswatch.detectors.engine import DetectionEngine
    from crisiswatch.detectors.events import Author, EnrichedPost, Post
    from crisiswatch.streams.config import Settings

    try:
        from crisiswatch.streams.app import encode_table_value
    except ImportError:  # a --snapshot before table values were kept as bytes: its store held decoded values

        def encode_table_value(value: Any) -> Any:  # type: ignore[misc]
            return value

    settings = Settings()
    engine = DetectionEngine(settings.detectors)
    cascades = 20_000
    base = tracemalloc.get_traced_memory()[0]
    t0 = 1_790_000_000.0
    table: dict[bytes, Any] = {}
    for index in range(cascades):
        root = f"r{index}"
        for j in range(3):
            post = Post(
                id=f"{root}-{j}" if j else root,
                created_at_s=t0 + index * 0.1 + j,
                text="Northwind lost my bag" if j == 0 else "",
                kind="post" if j == 0 else "forward",
                parent_id=None if j == 0 else root,
                root_id=root,
                author=Author(f"u{index}-{j}", 100 + j, False),
                platform="twitter",
                lang="en",
                url=None,
                brands=("Northwind Air",),
            )
            engine.update_cascade(
                EnrichedPost(
                    post=post,
                    lang="en",
                    brands=("Northwind Air",),
                    own_text=post.text,
                    negative_probability=0.2,
                    complaint_probability=0.1,
                    category=None,
                )
            )
    roots, _ = engine.drain_dirty()
    engine_bytes = (tracemalloc.get_traced_memory()[0] - base) / cascades
    base = tracemalloc.get_traced_memory()[0]
    for root in roots:  # as the worker's memory store keeps it: the changelog record's bytes
        table[root.encode()] = encode_table_value(
            {"v": 1, "applied": 12345, "engine": engine.cascade_state(root), "incidents": {}}
        )
    table_bytes = (tracemalloc.get_traced_memory()[0] - base) / cascades
    sample = next(iter(table.values()))
    state_json = len(sample if isinstance(sample, bytes) else json.dumps(sample, separators=(",", ":")))
    del engine, table
    gc.collect()
    # Per remembered post in the whole ingest stage: dedup id + post -> root map (both bounded by dedup_max_ids).
    from crisiswatch.streams.pipeline import Pipeline, RawRecord

    pipeline = Pipeline(settings)
    posts = 50_000
    base = tracemalloc.get_traced_memory()[0]
    for start in range(0, posts, 2000):
        records = []
        for i in range(start, start + 2000):
            post_dict = {
                "id": f"tw{i:010d}",
                "created_at": t0 + i * 0.01,
                "text": "",
                "kind": "forward",
                "parent_id": f"root{i % 100}",
                "root_id": f"root{i % 100}",
                "author": {"id": f"u{i}", "followers": 10, "verified": False},
                "platform": "twitter",
                "lang": "en",
            }
            records.append(RawRecord(dump_line(post_dict).encode(), 0, i))
        pipeline.ingest(records)
    pipeline_bytes = (tracemalloc.get_traced_memory()[0] - base) / posts
    print(
        json.dumps(
            {
                "bytes_per_remembered_post_ingest": round(pipeline_bytes),
                "bytes_per_dedup_id": round(dedup_bytes),
                "bytes_per_cascade_engine": round(engine_bytes),
                "bytes_per_cascade_table_value": round(table_bytes),
                "cascade_state_json_bytes": state_json,
            }
        )
    )


def soak_summary(samples: list[dict[str, Any]], soak_s: float) -> dict[str, Any]:
    steady = [s for s in samples if s["t_s"] >= soak_s / 3]
    slope = float("nan")
    if len(steady) >= 3:
        xs = [s["t_s"] / 60.0 for s in steady]
        ys = [s["rss_mb"] for s in steady]
        mx, my = statistics.fmean(xs), statistics.fmean(ys)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)
    last = samples[-1]
    return {
        "soak_s": soak_s,
        "samples": samples,
        "rss_start_mb": samples[0]["rss_mb"],
        "rss_steady_start_mb": steady[0]["rss_mb"] if steady else None,
        "rss_end_mb": last["rss_mb"],
        "rss_max_mb": max(s["rss_mb"] for s in samples),
        "slope_mb_per_min": slope,
        "growth_steady_mb": (last["rss_mb"] - steady[0]["rss_mb"]) if steady else None,
        "sent": last["sent"],
        "consumed": last["consumed"],
        "worker_cpu_share": (last["cpu_s"] - samples[0]["cpu_s"])
        / max(last["t_s"] - samples[0]["t_s"], 1e-9),
    }


def summarize_profile(path: Path, top: int = 25) -> dict[str, Any]:
    """py-spy raw (collapsed) stacks -> the functions with the most self and inclusive samples."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    if not path.exists():
        return {"error": "no profile written"}
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [
            frame.split(" (")[0] + " (" + frame.split(" (")[-1].split(":")[0].rsplit("/", 1)[-1] + ")"
            if " (" in frame
            else frame
            for frame in stack.split(";")
        ]
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    return {
        "samples": total,
        "self": [(name, round(100.0 * n / total, 1)) for name, n in own.most_common(top)],
        "inclusive": [(name, round(100.0 * n / total, 1)) for name, n in inclusive.most_common(top * 2)],
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--phases",
        default="throughput,latency,memory,scaleout,replay",
        help=f"comma-separated, from {','.join(PHASES)}",
    )
    parser.add_argument("--bootstrap", help="use this broker instead of starting one")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--rate-scale",
        type=float,
        default=2.0,
        help="size of the throughput topic: week preset x this (~116k posts per unit)",
    )
    parser.add_argument(
        "--ceilings",
        default="aiokafka,faust-iterate,faust-table",
        help="ceiling processes to measure ('' for the worker only)",
    )
    parser.add_argument(
        "--profile-s",
        type=float,
        default=0.0,
        help="py-spy the worker for this long during the first throughput run",
    )
    parser.add_argument("--latency-trials", type=int, default=60)
    parser.add_argument(
        "--latency-label",
        default="current",
        help="name of this latency measurement in the results (before/after a change)",
    )
    parser.add_argument("--latency-warmup-s", type=float, default=10.0)
    parser.add_argument(
        "--latency-gap-s",
        type=float,
        default=1.5,
        help="wait between the below-threshold prefix and the crossing post",
    )
    parser.add_argument(
        "--latency-timeout-s",
        type=float,
        default=10.0,
        help="a trial without a page by then counts as infinitely late",
    )
    parser.add_argument("--latency-spacing-s", type=float, default=0.5)
    parser.add_argument(
        "--soak-kafka",
        type=json.loads,
        default={},
        help='extra kafka settings for the soak worker, JSON (e.g. {"gc_freeze_every_s": 0})',
    )
    parser.add_argument(
        "--latency-kafka",
        type=json.loads,
        default={},
        help='extra kafka settings for the latency worker, JSON (e.g. {"batch_max_wait_s": 0.01})',
    )
    parser.add_argument(
        "--background-rate", type=float, default=1000.0, help="posts/s of background load (latency, soak)"
    )
    parser.add_argument("--cascades", type=int, default=100_000)
    parser.add_argument("--soak-s", type=float, default=600.0)
    parser.add_argument(
        "--out", default="perf-results.json", help="results JSON (phases already in it are kept)"
    )
    parser.add_argument(
        "--snapshot",
        metavar="REV",
        help="run against `git archive REV` (or a copy of the working tree: WORKTREE) instead of the live tree",
    )
    parser.add_argument(
        "--patch",
        action="append",
        default=[],
        metavar="FILE",
        help="with --snapshot: apply this patch (-p1) to the snapshot",
    )
    parser.add_argument("--unit-memory-child", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def use_snapshot(revision: str, patches: Sequence[str]) -> None:
    """Re-run this script against `git archive REV` (+ patches) instead of the working tree.

    The working tree changes while several people edit it; a snapshot makes a run reproducible. The
    snapshot is a regular `crisiswatch` package put first on PYTHONPATH, so this process, the workers and
    the ceiling processes all import it (the editable install's finder comes after PYTHONPATH).
    """
    root = Path(tempfile.mkdtemp(prefix="crisiswatch-snapshot-"))
    source = root / "src"
    source.mkdir()
    if revision == "WORKTREE" or Path(revision).is_dir():  # the working tree now, or a frozen copy of one
        tree = REPO if revision == "WORKTREE" else Path(revision)
        for name in ("streams", "detectors", "alerts"):
            shutil.copytree(tree / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    else:
        archive = subprocess.run(
            ["git", "archive", revision], capture_output=True, check=True, cwd=REPO
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(source)], input=archive, check=True)
    for patch in patches:
        subprocess.run(
            ["patch", "-p1", "-d", str(source), "-i", str(Path(patch).resolve())],
            check=True,
            capture_output=True,
        )
    package = root / "pkg" / "crisiswatch"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    for name in ("streams", "detectors", "alerts"):
        (package / name).symlink_to(source / name)
    env = {
        **os.environ,
        "PYTHONPATH": f"{root / 'pkg'}:{os.environ.get('PYTHONPATH', '')}".rstrip(":"),
        "CRISISWATCH_PERF_SNAPSHOT": f"{revision} {' '.join(patches)}".strip(),
    }
    log(f"snapshot of {revision} (+{len(patches)} patches) in {root}")
    os.execve(sys.executable, [sys.executable, *sys.argv], env)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.unit_memory_child:
        unit_memory_child()
        return 0
    if args.snapshot and "CRISISWATCH_PERF_SNAPSHOT" not in os.environ:
        use_snapshot(args.snapshot, args.patch)
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    unknown = sorted(set(phases) - set(PHASES))
    if unknown:
        raise SystemExit(f"unknown phases {unknown}; choose from {PHASES}")
    if "latency" in phases:
        check_trial_design()
    out = Path(args.out)
    previous: dict[str, Any] = {}
    if out.exists():
        with contextlib.suppress(ValueError):
            previous = json.loads(out.read_text())
    with Bench(args) as bench:
        # SIGTERM (kill of the job): stop the workers and the broker started here, then exit at once.
        def terminate(signum: int, frame: Any) -> None:
            bench.__exit__(None, None, None)
            os._exit(143)

        signal.signal(signal.SIGTERM, terminate)
        bench.results["phases"] = dict(previous.get("phases", {}))
        try:
            for phase in PHASES:
                if phase in phases:
                    log(f"phase {phase} (load {load_average():.1f})")
                    getattr(bench, f"phase_{phase}")()
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_text(json.dumps(bench.results, indent=1, default=str))
        finally:
            out.write_text(json.dumps(bench.results, indent=1, default=str))
    log(f"results in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

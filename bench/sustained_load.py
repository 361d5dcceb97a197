"""Sustained load with a planted crisis in the middle, long variant (issue 9). Short variant:
tests/integration/test_sustained_load.py.

One `crisiswatch worker` (production Kafka settings of bench/perf_run.py) on a 4-partition topic takes posts
at `--rate` posts/s for `--duration-s` seconds, event time = wall time at sending. At `--surge-at` of the run
the planted surge (tests/planted.py: a furious complaint forwarded 300 times, amplified by a verified big
account) is sent, its event-time shape compressed into `--surge-span-s`. The worker pages a real webhook
receiver on 127.0.0.1. Measured:

  fire latency  wall time from the decisive surge post (the one whose event time is the firing event's
                detected_at) being acknowledged by Kafka to (a) the firing event on the outbox topic (its
                Kafka timestamp) and (b) the page arriving at the receiver;
  memory        worker RSS every --sample-s: start, middle, end of the load, slope (MB/min, least squares)
                over the second half of the load;
  lag           end offsets minus the group's committed offsets on posts, brand observations and the
                outbox, every --sample-s; after the load stops, the time until all three are 0;
  throughput    posts/s the producer achieved, posts/s the worker consumed while the load ran and until
                it caught up; the target rate over the worker's sustained rate when the target is above it.

State horizons are scaled by --state-horizon-s (default 120 s; 0 = production defaults): dedup ids and idle
cascades are forgotten after that much event time instead of 24 h / 6 h, so expiry (what keeps memory flat
in production after hours) happens inside a run of minutes. Background traffic: roots (a --branded-share
mentioning a configured brand) and forwards of recent roots (tests/worker_process.py `background_post`).

    python bench/sustained_load.py --bootstrap 127.0.0.1:9092 --rate 800 --duration-s 240
    python bench/sustained_load.py                      # 10k posts/s for 10 minutes, its own broker

Appends a markdown section to --out (bench/results/load.md) and writes the samples to --json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))

import planted  # noqa: E402
from kafka_broker import KafkaBroker, create_topic  # noqa: E402
from perf_run import BENCH_KAFKA, machine, proc_cpu_s, warm_up_coordinator  # noqa: E402
from worker_process import (  # noqa: E402
    LagProbe,
    PacedLoad,
    WebhookReceiver,
    WorkerConfig,
    WorkerProcess,
    proc_rss_mb,
    read_topic,
    scaled_horizons,
    surge_schedule,
    webhook_alerting,
    worker_topics,
)

from crisiswatch.alerts.clock import parse_time  # noqa: E402


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def slope_per_min(points: list[tuple[float, float]]) -> float:
    if len(points) < 2:
        return float("nan")
    xs = [x for x, _ in points]
    ys = [y for _, y in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return 60.0 * sum((x - mx) * (y - my) for x, y in points) / var if var else float("nan")


def run_once(args: argparse.Namespace, bootstrap: str, directory: Path, index: int) -> dict[str, Any]:
    receiver = WebhookReceiver().listen()
    sub = directory / f"run{index}"
    sub.mkdir()
    config = WorkerConfig(bootstrap=bootstrap, directory=sub, partitions=4, brands=planted.BRAND_CONFIG)
    config.extra = {
        **scaled_horizons(args.state_horizon_s),
        "kafka": dict(BENCH_KAFKA),
        "alerting": webhook_alerting(receiver.url, sub),
        "metrics": {"log_format": "text"},
    }
    create_topic(bootstrap, config.posts_topic, partitions=4)
    worker = WorkerProcess(config, f"load{index}").start()
    probe = LagProbe(bootstrap)
    surge_at_s = args.surge_at * args.duration_s
    load = PacedLoad(
        bootstrap,
        config.posts_topic,
        args.rate,
        args.duration_s,
        planted=[(surge_at_s + offset, post) for offset, post in surge_schedule(args.surge_span_s)],
        prefix=f"bg-{config.suffix}",
        branded_share=args.branded_share,
        seed=index + 1,
    )
    samples: list[dict[str, Any]] = []
    try:
        worker.wait_ready(180)
        assert worker.process is not None
        pid = worker.process.pid
        cpu0 = proc_cpu_s(pid)
        load.start()
        started = time.monotonic()
        stopped: float | None = None
        recovered: float | None = None
        next_sample = 0.0
        next_probe = args.memory_probe_s if args.memory_probe_s > 0 else float("inf")
        log(f"worker log: {worker.log_path}")
        while True:
            now = time.monotonic() - started
            if stopped is None and not load.running():
                load.join()
                stopped = time.monotonic() - started
                log(f"load stopped at {stopped:.0f} s: {load.sent} posts sent")
            if now >= next_probe:  # the worker logs what grew (streams/memory_probe.py)
                os.kill(pid, signal.SIGUSR2)
                next_probe += args.memory_probe_s
            if now >= next_sample or stopped is not None and recovered is None:
                stats: dict[str, Any] = {}
                with contextlib.suppress(OSError, ValueError):
                    stats = worker.stats()
                lags: dict[str, int] = {}
                with contextlib.suppress(Exception):
                    lags = probe.lag(config.app_id, worker_topics(config))
                sample = {
                    "t_s": round(now, 2),
                    "loading": stopped is None,
                    "rss_mb": round(proc_rss_mb(pid), 1),
                    "cpu_s": round(proc_cpu_s(pid) - cpu0, 2),
                    "sent": load.sent,
                    "consumed": stats.get("consumed"),
                    "lag": lags,
                    "load_average": os.getloadavg()[0],
                }
                samples.append(sample)
                if len(samples) % max(1, int(30 / args.sample_s)) == 1:
                    log(
                        f"t={now:5.0f}s sent {load.sent} consumed {sample['consumed']} lag {lags} RSS {sample['rss_mb']} MB"
                    )
                next_sample += args.sample_s
                if stopped is not None and lags and not any(lags.values()):
                    recovered = now
                    break
                if stopped is not None and now - stopped > args.recovery_timeout_s:
                    log(f"lag did not recover within {args.recovery_timeout_s:.0f} s")
                    break
            if not worker.alive():
                raise RuntimeError(f"worker exited:\n{worker.log_tail()}")
            time.sleep(0.2 if stopped is not None else 0.05)
        end_stats = worker.stats()
        time.sleep(2.0)  # the page of a late-caught-up surge reaches the receiver
    finally:
        load.close()
        probe.close()
        worker.terminate()
        receiver.close()

    assert stopped is not None
    events = read_topic(bootstrap, config.alerts_topic, idle_timeout_s=3.0)
    firing = [
        (m, json.loads(m.value))
        for m in events
        if (e := json.loads(m.value))["root_id"] == planted.SURGE_ROOT
        and e["detector"] == "forward_surge"
        and e["status"] == "firing"
    ]
    fire: dict[str, Any] = {"firing_events": len(firing)}
    if firing:
        record, event = firing[0]
        detected_ms = round(parse_time(event["detected_at"]) * 1000)
        times = load.planted_times
        decisive = max(
            (post_id for post_id, t in times.items() if round(t[0] * 1000) <= detected_ms),
            key=lambda post_id: times[post_id][0],
        )
        acked = times[decisive][1]
        pages = [r for r in receiver.answered() if r[3]["incident"]["id"] == event["id"]]
        fire.update(
            decisive_post=decisive,
            severity=event["severity"],
            outbox_latency_s=round(record.timestamp / 1000.0 - acked, 3),
            page_latency_s=round(pages[0][0] - acked, 3) if pages else None,
            pages=len(pages),
        )
    loading = [s for s in samples if s["loading"]]
    middle_t = stopped / 2
    second_half = [(s["t_s"], s["rss_mb"]) for s in loading if s["t_s"] >= middle_t]
    consumed_at_stop = loading[-1]["consumed"] or 0 if loading else 0
    other_pages = [
        r[3]["incident"]["incident_id"]
        for r in receiver.answered()
        if r[3]["incident"].get("root_id") != planted.SURGE_ROOT
    ]
    result = {
        "rate_target": args.rate,
        "duration_s": args.duration_s,
        "sent": load.sent,
        "producer_rate": load.sent / max(1e-9, (load.finished_wall or 0) - (load.started_wall or 0)),
        "worker_rate_during_load": consumed_at_stop / stopped,
        "worker_rate_until_caught_up": (end_stats.get("consumed", 0) / recovered) if recovered else None,
        "worker_cpu_s": samples[-1]["cpu_s"],
        "lag_at_stop": loading[-1]["lag"] if loading else None,
        "lag_max_posts": max(
            (s["lag"].get(config.posts_topic, 0) for s in samples if s["lag"]), default=None
        ),
        "lag_recovery_s": (recovered - stopped) if recovered is not None else None,
        "rss_start_mb": loading[0]["rss_mb"],
        "rss_middle_mb": min(loading, key=lambda s: abs(s["t_s"] - middle_t))["rss_mb"],
        "rss_end_mb": loading[-1]["rss_mb"],
        "rss_max_mb": max(s["rss_mb"] for s in samples),
        "rss_slope_second_half_mb_per_min": slope_per_min(second_half),
        "accounting": {
            k: end_stats.get(k) for k in ("consumed", "processed", "dead_lettered", "duplicate", "late")
        },
        "accounting_balances": end_stats.get("consumed")
        == sum(end_stats.get(k, 0) for k in ("processed", "dead_lettered", "duplicate", "late")),
        "fire": fire,
        "other_pages": len(other_pages),
        "load_average": {
            "min": min(s["load_average"] for s in samples),
            "median": statistics.median(s["load_average"] for s in samples),
            "max": max(s["load_average"] for s in samples),
        },
        "samples": samples,
    }
    return result


def fmt(value: Any, spec: str = ".1f") -> str:
    return "n/a" if value is None else format(value, spec)


def markdown(args: argparse.Namespace, runs: list[dict[str, Any]], command: str) -> str:
    def med(key: str, sub: str | None = None) -> Any:
        values = [(r[key] if sub is None else r[key].get(sub)) for r in runs]
        values = [v for v in values if v is not None]
        return statistics.median(values) if values else None

    first = runs[0]
    lines = [
        f"## Sustained load, {time.strftime('%Y-%m-%d %H:%M')} ({len(runs)} run{'s' if len(runs) > 1 else ''})",
        "",
        f"    {command}",
        "",
        f"Machine: {machine()['cpus']} cores ({machine()['cpu']}), load average during the run"
        f" {first['load_average']['min']:.1f}–{first['load_average']['max']:.1f}"
        f" (median {first['load_average']['median']:.1f}); Python {machine()['python']}."
        f" State horizons: {'production defaults' if args.state_horizon_s <= 0 else f'{args.state_horizon_s:g} s (scaled)'};"
        f" surge at {args.surge_at:.0%} of the run, compressed into {args.surge_span_s:g} s."
        + (" Figures are medians of the runs." if len(runs) > 1 else ""),
        "",
        "| measure | figure |",
        "|---|---|",
        f"| target rate | {args.rate:,.0f} posts/s for {args.duration_s:.0f} s |",
        f"| producer achieved | {med('producer_rate'):,.0f} posts/s ({med('sent'):,.0f} posts) |",
        f"| worker consumed while loading | {med('worker_rate_during_load'):,.0f} posts/s |",
        f"| worker consumed until caught up | {fmt(med('worker_rate_until_caught_up'), ',.0f')} posts/s |",
        f"| target / worker sustained | {args.rate / med('worker_rate_during_load'):.2f}x |",
        f"| lag when the load stopped (posts / brand obs. / outbox) | {' / '.join(str(v) for v in (first['lag_at_stop'] or {}).values())} |",
        f"| max posts lag | {fmt(med('lag_max_posts'), ',.0f')} |",
        f"| lag back to 0 after the load stopped | {fmt(med('lag_recovery_s'))} s |",
        f"| surge firing events (forward_surge) | {', '.join(str(r['fire']['firing_events']) for r in runs)} |",
        f"| decisive post acked -> firing event on the outbox | {fmt(statistics.median([r['fire']['outbox_latency_s'] for r in runs if r['fire'].get('outbox_latency_s') is not None] or [float('nan')]), '.2f')} s |",
        f"| decisive post acked -> page at the webhook receiver | {fmt(statistics.median([r['fire']['page_latency_s'] for r in runs if r['fire'].get('page_latency_s') is not None] or [float('nan')]), '.2f')} s |",
        f"| RSS start / middle / end of load (max) | {med('rss_start_mb'):.0f} / {med('rss_middle_mb'):.0f} / {med('rss_end_mb'):.0f} MB ({med('rss_max_mb'):.0f}) |",
        f"| RSS slope, second half of the load | {med('rss_slope_second_half_mb_per_min'):+.2f} MB/min |",
        f"| accounting consumed = processed + dead-lettered + duplicate + late | {all(r['accounting_balances'] for r in runs)} ({first['accounting']}) |",
        f"| pages for other (background) incidents | {', '.join(str(r['other_pages']) for r in runs)} |",
        "",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", ""))
    parser.add_argument("--rate", type=float, default=10_000.0, help="target posts/s (default 10k)")
    parser.add_argument("--duration-s", type=float, default=600.0)
    parser.add_argument("--surge-at", type=float, default=0.5, help="fraction of the run")
    parser.add_argument("--surge-span-s", type=float, default=60.0)
    parser.add_argument("--state-horizon-s", type=float, default=120.0)
    parser.add_argument("--branded-share", type=float, default=0.05)
    parser.add_argument("--sample-s", type=float, default=5.0)
    parser.add_argument("--recovery-timeout-s", type=float, default=900.0)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument(
        "--memory-probe-s",
        type=float,
        default=0.0,
        help="send the worker SIGUSR2 every this many seconds: its log gets what grew (0 = never); "
        "with CRISISWATCH_TRACEMALLOC_FRAMES=N in the environment also the allocation sites",
    )
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "load.md"))
    parser.add_argument("--json", default="")
    args = parser.parse_args(argv)
    command = "python bench/sustained_load.py " + " ".join(sys.argv[1:] if argv is None else argv)
    directory = Path(tempfile.mkdtemp(prefix="crisiswatch-load-"))
    broker = None
    bootstrap = args.bootstrap
    try:
        if not bootstrap:
            os.environ.setdefault("CRISISWATCH_KAFKA_JVM_OPTS", "-XX:TieredStopAtLevel=4")
            broker = KafkaBroker()
            bootstrap = broker.start()
        warm_up_coordinator(bootstrap)
        runs = []
        for index in range(args.repeats):
            result = run_once(args, bootstrap, directory, index)
            summary = {k: v for k, v in result.items() if k != "samples"}
            log(f"run {index + 1}: {json.dumps(summary, default=str)}")
            runs.append(result)
    finally:
        if broker is not None:
            broker.close()
    section = markdown(args, runs, command)
    out = Path(args.out)
    if not out.exists():
        out.write_text(
            "# Sustained load (issue 9)\n\nSections appended by `bench/sustained_load.py`; method in its docstring.\n\n"
        )
    with open(out, "a", encoding="utf-8") as handle:
        handle.write(section)
    if args.json:
        Path(args.json).write_text(
            json.dumps({"command": command, "machine": machine(), "runs": runs}, indent=1)
        )
    print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())

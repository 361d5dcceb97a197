"""The ceilings crisiswatch is compared with, each run as its own process on an existing topic.

    python bench/perf_ceilings.py aiokafka     --bootstrap HOST:PORT --topic T --count N
    python bench/perf_ceilings.py faust-iterate --bootstrap HOST:PORT --topic T --count N
    python bench/perf_ceilings.py faust-table   --bootstrap HOST:PORT --topic T --count N

- `aiokafka`: a plain consumer reading the topic from the beginning and `json.loads`-ing every value
  (the raw limit of the client library and the decoder);
- `faust-iterate`: a Faust agent that only iterates the topic (Faust's per-event loop);
- `faust-table`: the same agent writing one table entry per event (`table[key] = n`, changelog-backed).
The Faust apps use the worker's own broker settings (`streams.app.faust_settings`), so only the agent
body differs from `crisiswatch worker`. Each prints one JSON line: count, elapsed_s (first to last
event, start-up excluded) and cpu_s (this process's CPU over the same span), then exits.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from typing import Any


def cpu_s() -> float:
    times = os.times()
    return times.user + times.system


def report(count: int, first: tuple[float, float], last: tuple[float, float], **extra: Any) -> None:
    result = {"count": count, "elapsed_s": last[0] - first[0], "cpu_s": last[1] - first[1], **extra}
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


async def run_aiokafka(bootstrap: str, topic: str, count: int) -> None:
    from aiokafka import AIOKafkaConsumer

    # Default fetch settings of aiokafka 0.14 (fetch_max_wait_ms=500, max_partition_fetch_bytes=1 MiB).
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    seen = 0
    first: tuple[float, float] | None = None
    try:
        while seen < count:
            batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for records in batches.values():
                if first is None and records:
                    first = (time.perf_counter(), cpu_s())
                for record in records:
                    json.loads(record.value)
                seen += len(records)
        assert first is not None
        report(
            seen,
            first,
            (time.perf_counter(), cpu_s()),
            fetch="aiokafka defaults: fetch_max_wait_ms=500, max_partition_fetch_bytes=1048576",
        )
    finally:
        await consumer.stop()


def run_faust(bootstrap: str, topic: str, count: int, *, with_table: bool) -> None:
    import faust

    from crisiswatch.streams.app import faust_settings
    from crisiswatch.streams.config import KafkaConfig, MetricsConfig, Settings

    data_dir = tempfile.mkdtemp(prefix="perf-faust-")
    app_id = f"perf-{'table' if with_table else 'iterate'}-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        kafka=KafkaConfig(bootstrap_servers=bootstrap, app_id=app_id, data_dir=data_dir),
        metrics=MetricsConfig(enabled=False),
    )
    options = faust_settings(settings)
    app = faust.App(app_id, **options)
    source = app.topic(topic, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
    schema = faust.Schema(key_type=bytes, key_serializer="raw", value_serializer="json")
    table = app.Table("counts", default=int, schema=schema) if with_table else None
    state: dict[str, Any] = {"seen": 0, "first": None}

    def done() -> None:
        report(state["seen"], state["first"], (time.perf_counter(), cpu_s()))
        os._exit(0)  # a benchmark process: no graceful shutdown (unique group id, nothing to keep)

    if table is None:

        @app.agent(source, name="perf.iterate")
        async def iterate(stream: Any) -> None:
            async for _value in stream:
                if state["first"] is None:
                    state["first"] = (time.perf_counter(), cpu_s())
                state["seen"] += 1
                if state["seen"] >= count:
                    done()

    else:

        @app.agent(source, name="perf.table")
        async def write_table(stream: Any) -> None:
            async for event in stream.events():
                if state["first"] is None:
                    state["first"] = (time.perf_counter(), cpu_s())
                state["seen"] += 1
                table[event.key] = state["seen"]
                if state["seen"] >= count:
                    done()

    worker = faust.Worker(app, loglevel="warning", quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=["aiokafka", "faust-iterate", "faust-table"])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--count", type=int, required=True)
    args = parser.parse_args()
    if args.kind == "aiokafka":
        asyncio.run(run_aiokafka(args.bootstrap, args.topic, args.count))
    else:
        run_faust(args.bootstrap, args.topic, args.count, with_table=args.kind == "faust-table")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Faust glue: topics, changelog-backed tables and thin agents around the plain-Python pipeline.

Data flow (each arrow a Kafka topic):

    social.posts ──► cascade agent ──► <app>-brand-observations ──► brand agent ──┐
    (key root_id)    decode/validate/dedup/enrich,   (key brand)     volume and    │
                     forward_surge per root                          negative share│
          │                    │                                                  ▼
    social.posts.dlq     crisis.alerts ◄──────────────────────────────────── crisis.alerts
                               │ (durable outbox, key dedup_key)
                               ▼
                         notify agent ──► receivers (console, JSONL, Slack, email, PagerDuty, webhook)

At-least-once with idempotent state: each table value records the source offsets it has applied, a
redelivered post at or below them is skipped, and offsets are committed only after the batch's table
writes and sends were handed to the producer (Faust flushes the producer before each commit).
Batches come from `take_events()`; the tables are `SourcePartitionTable`s, written per batch for a named
source partition (faust #497: a table write outside one event's context cannot infer it).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import signal
import time
from collections import defaultdict
from collections.abc import Awaitable, Sequence
from typing import Any, cast

import faust
from faust.transport.drivers import aiokafka as aiokafka_driver
from prometheus_client import CollectorRegistry, generate_latest

from crisiswatch.alerts.callbacks import CallbackHandler, CallbackRequest
from crisiswatch.alerts.dispatch import outbox_key, partition_limits
from crisiswatch.alerts.incidents import AckEvent, IncidentEvent, append_labelled_incident
from crisiswatch.alerts.metrics import AlertMetrics
from crisiswatch.alerts.routing import build_runtime
from crisiswatch.alerts.service import AlertingService
from crisiswatch.detectors.events import EnrichedPost
from crisiswatch.detectors.text import TextAnalyzer
from crisiswatch.streams import state_shards
from crisiswatch.streams.alignment import AlignedMerge
from crisiswatch.streams.clock import WallClock
from crisiswatch.streams.config import Settings
from crisiswatch.streams.gc_policy import GC_PAUSES_RECORDED_EVERY_S, CycleCollectorPolicy
from crisiswatch.streams.memory_probe import MemoryProbe, container_sizes
from crisiswatch.streams.metrics import PipelineMetrics
from crisiswatch.streams.observability import METRICS_CONTENT_TYPE, WorkerObservability
from crisiswatch.streams.pipeline import (
    Accounting,
    BrandResolver,
    Pipeline,
    RawRecord,
    enriched_from_dict,
    enriched_to_dict,
)
from crisiswatch.streams.replay import WarmStart, dump_line
from crisiswatch.streams.silences import open_silence_store
from crisiswatch.streams.topics import client_security
from crisiswatch.streams.watchdog import CommitGapRepair, ProgressWatchdog, kafka_end_offsets, run_watchdog

log = logging.getLogger("crisiswatch.worker")

STATE_VERSION = 1
# Brand observations per message on the internal topic, and a bound on a message's size: an observation
# is 0.3-5 KiB (its texts are cut to 500 characters; Chinese forward chains reach the cut), and Kafka
# refuses messages over 1 MiB by default (the producer's send fails and crashes the worker).
OBSERVATIONS_PER_MESSAGE = 200
MAX_BRAND_MESSAGE_BYTES = 256 * 1024
COMMIT_GAP_CHECK_S = 5.0
# Exit status when a state write was refused: the supervisor restarts the worker (the watchdog's is 3).
EXIT_STATE_WRITE_FAILED = 4
# Dead-letter reason for an input an agent failed on: a bug, not bad input (streams/contract.py has those).
# The record is kept with the error, counted, and acknowledged: an unacknowledged input would stop its
# partition's commits for good.
PROCESSING_ERROR = "processing_error"


# The alerting table's entries for one outbox partition: "alerting-<partition>|<entry>", plus a layout entry.
ALERTING_LAYOUT_KEY = "~layout"
ALERTING_LAYOUT = {"v": 2, "sharded": True}


def _alerting_prefix(partition: int) -> bytes:
    return f"alerting-{partition}|".encode()


def brand_messages(brand: str, source_partition: int, observations: Sequence[Any]) -> list[bytes]:
    """One partition's observations of a brand as internal-topic messages, in order: at most
    `OBSERVATIONS_PER_MESSAGE` each and at most `MAX_BRAND_MESSAGE_BYTES` (a message holds at least one
    observation; one observation is bounded by the contract's text limits)."""
    head = dump_line({"brand": brand, "source_partition": source_partition})[:-1] + ',"observations":['
    messages: list[bytes] = []
    chunk: list[bytes] = []
    size = 0
    for observation in observations:
        item = dump_line(observation).encode("utf-8")
        if chunk and (len(chunk) >= OBSERVATIONS_PER_MESSAGE or size + len(item) > MAX_BRAND_MESSAGE_BYTES):
            messages.append(head.encode("utf-8") + b",".join(chunk) + b"]}")
            chunk, size = [], 0
        chunk.append(item)
        size += len(item) + 1
    if chunk:
        messages.append(head.encode("utf-8") + b",".join(chunk) + b"]}")
    return messages


def _fetch_state(consumer: Any) -> dict[str, Any]:
    """aiokafka's view of each assigned partition beside Faust's read offset, for the watchdog's exit line:
    it tells Faust not delivering what aiokafka fetched (records buffered, position ahead of the read
    offset) from aiokafka not fetching (paused, awaiting a reset, no position, position at the highwater).
    Read from the event loop while the consumer thread runs: best effort, an error is reported, not raised."""
    client = getattr(getattr(consumer, "_thread", None), "_consumer", None)
    subscription = getattr(getattr(client, "_subscription", None), "subscription", None)
    assignment = getattr(subscription, "assignment", None)
    if assignment is None:
        return {}
    try:
        buffered = getattr(getattr(client, "_fetcher", None), "_records", {})
        read_offsets = getattr(consumer, "_read_offset", {})
        out: dict[str, Any] = {}
        for tp in sorted(assignment.tps):
            state = assignment.state_value(tp)
            out[f"{tp.topic}/{tp.partition}"] = {
                "position": state._position,
                "highwater": state.highwater,
                "paused": state.paused,
                "awaiting_reset": state.awaiting_reset,
                "buffered": tp in buffered,
                "faust_read_offset": read_offsets.get(tp),
            }
        return out
    except Exception as exc:  # noqa: BLE001 - a diagnostic must not stop the exit it explains
        return {"error": repr(exc)}


def encode_table_value(value: Any) -> bytes:
    """A table value as its changelog record carries it, and as the in-memory store keeps it.

    JSON by the standard library, compact and ASCII with escapes: the bytes Faust's own `json` codec writes
    without orjson, so changelogs written before stay readable and keep their meaning. Not orjson (which
    Faust picks up silently when importable): it refuses lone surrogates, which post text may carry into
    cascade state (root texts, sample comments).
    """
    return json.dumps(value, separators=(",", ":")).encode("ascii")


def consumer_class(fetch_max_wait_s: float) -> type[aiokafka_driver.Consumer]:
    """Faust's aiokafka consumer with the broker's fetch wait set (`kafka.fetch_max_wait_s`).

    faust-streaming 0.15 passes `fetch_max_wait_ms=1500` to aiokafka and offers no setting for it. aiokafka
    reads the value when the consumer starts, so it is set on the consumer Faust has just built.
    tests/streams/test_worker_tables.py checks the consumer the worker's consumer thread builds, and that a
    started one hands the value to its fetcher.
    """

    class ConsumerThread(aiokafka_driver.AIOKafkaConsumerThread):  # type: ignore[misc]
        def _create_worker_consumer(self, transport: Any) -> Any:
            consumer = super()._create_worker_consumer(transport)
            consumer._fetch_max_wait_ms = round(fetch_max_wait_s * 1000)
            return consumer

    class Consumer(aiokafka_driver.Consumer):  # type: ignore[misc]
        def _new_consumer_thread(self) -> ConsumerThread:
            return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    return Consumer


def faust_settings(settings: Settings) -> dict[str, Any]:
    kafka = settings.kafka
    servers = [server.strip() for server in kafka.bootstrap_servers.split(",") if server.strip()]
    options: dict[str, Any] = {
        "broker": [f"kafka://{server}" for server in servers],
        "store": "memory://",
        "datadir": kafka.data_dir,
        "topic_partitions": kafka.partitions,
        "topic_replication_factor": kafka.replication_factor,
        "broker_session_timeout": kafka.session_timeout_s,
        "broker_heartbeat_interval": kafka.heartbeat_interval_s,
        "broker_commit_interval": kafka.commit_interval_s,
        "broker_rebalance_timeout": max(kafka.session_timeout_s, 10.0),
        "consumer_auto_offset_reset": "earliest",
        "producer_acks": -1,
        # Brand observations held back for event-time alignment stay unacked on purpose: shutdown must not
        # wait for them (they are redelivered to whoever owns the partition next; applied ones are skipped).
        "stream_wait_empty": False,
        "web_enabled": settings.metrics.enabled,
        "web_bind": settings.metrics.bind_host,
        "web_host": settings.metrics.bind_host,
        "web_port": settings.metrics.port,
        "table_standby_replicas": 0,
        "worker_redirect_stdouts": False,
    }
    if kafka.security_protocol != "PLAINTEXT":
        options["broker_credentials"] = _credentials(settings)
    return options


def _credentials(settings: Settings) -> Any:
    import ssl

    kafka = settings.kafka
    context = None
    if kafka.security_protocol in ("SSL", "SASL_SSL"):
        context = ssl.create_default_context(cafile=kafka.ssl_cafile)
        if kafka.ssl_certfile:
            context.load_cert_chain(kafka.ssl_certfile, kafka.ssl_keyfile)
    if kafka.security_protocol.startswith("SASL"):
        mechanism = kafka.sasl_mechanism or "PLAIN"
        return faust.SASLCredentials(
            username=kafka.sasl_username,
            password=kafka.sasl_password,
            mechanism=mechanism,
            ssl_context=context,
        )
    return faust.SSLCredentials(context)


class SourcePartitionTable(faust.Table):  # type: ignore[misc]
    """A table whose changelog partition is the source partition the agent is writing for.

    The worker writes it only through `Worker._stage_table_writes`, which names the partition (batches from
    `take_events()` have no current event, so Faust could not infer it: faust #497) and sends the changelog
    records itself. Keys thus live in the changelog partition that Faust restores to whichever worker owns
    the matching source partition. Faust's own write path is refused, so no write can land elsewhere.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Keys are the UTF-8 bytes of root_id / brand (key_type bytes: "raw"). Values are kept as the bytes
        # of their changelog record (`encode_table_value`), in the store as in Kafka, and decoded only when
        # a key is loaded (`stored`). Decoded, each cascade's value was ~20 lists and dicts (2.7 KB) beside
        # the engine's own state, and every full pass of the cycle collector walked them
        # (bench/results/perf.md). Faust takes serializers from the key and value types: set here.
        self.value_serializer = "raw"

    def stored(self, key: bytes) -> Any:
        """The decoded value stored under `key`, or None."""
        raw = self.data.get(key)
        return None if raw is None else json.loads(raw)

    def partition_for_key(self, key: Any) -> int | None:
        raise RuntimeError(f"table {self.name}: write through Worker._stage_table_writes")


class PartitionState:
    """What one partition's agent holds in memory: its pipeline and the offsets already applied per key."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.loaded_keys: set[str] = set()
        # Keys loaded without stored state since the last write: the write forgets those still holding nothing.
        self.loaded_since_write: set[str] = set()
        # Brand partitions only: inputs aligned across source partitions, and events awaiting their ack.
        config = pipeline.settings.pipeline
        self.merge: AlignedMerge[tuple[Any, dict[str, Any]]] = AlignedMerge(
            config.source_idle_after_s, config.max_aligned_buffer, config.aligned_hold_back_s
        )
        self.pending_acks: list[Any] = []
        self.held_offsets: set[int] = set()  # offsets of brand messages waiting in the merge
        self.next_offset: int | None = None  # cascade partitions: the offset the next batch should start at
        self.applied_since_flush = 0
        self.applied: dict[str, Any] = {}
        self.incident_owner: dict[str, str] = {}
        # One coroutine at a time changes this partition's state: the agent, the brand flush timer and the
        # acks agent all await Kafka mid-change, and interleaved they applied observations out of order
        # (the applied offset could go backwards) or acked an observation before its state was durable.
        self.lock = asyncio.Lock()

    def pending_observations(self) -> int:
        """Observations applied and messages skipped since the last state write: when to write again."""
        return self.applied_since_flush + len(self.pending_acks)


@dataclasses.dataclass(slots=True)
class HeldMessage:
    """A brand-observation message whose observations wait in the aligned merge: acked after the last."""

    event: Any
    source: int  # the source (posts) partition the observations came from
    remaining: int


class Worker:
    """Builds the Faust app for one settings object; every agent body is a few lines calling pure code."""

    def __init__(
        self,
        settings: Settings,
        *,
        registry: CollectorRegistry | None = None,
        analyzer: TextAnalyzer | None = None,
        config_path: str | None = None,
        initial_state: str | None = None,
    ) -> None:
        self.settings = settings
        self.config_path = config_path
        # `--initial-state`: baselines learnt by `replay --save-state`, used for keys the tables do not know yet.
        self.warm_start = WarmStart.from_file(initial_state) if initial_state else None
        self.registry = registry or CollectorRegistry()
        self.metrics = PipelineMetrics(self.registry)
        self.analyzer = analyzer or TextAnalyzer.load_default(settings.text)
        self.resolver = BrandResolver(settings.brands, settings.pipeline.max_auto_brands)
        self.app = faust.App(settings.kafka.app_id, **faust_settings(settings))
        # The transport builds the app's consumer on first use; this instance's class, not Faust's.
        self.app.transport.Consumer = consumer_class(settings.kafka.fetch_max_wait_s)  # type: ignore[misc]
        kafka = settings.kafka
        self.posts_topic = self.app.topic(
            kafka.posts_topic, key_type=bytes, value_type=bytes, value_serializer="raw", key_serializer="raw"
        )
        self.dead_letter_topic = self.app.topic(
            kafka.dead_letter_topic,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=kafka.partitions,
        )
        self.alerts_topic = self.app.topic(
            kafka.alerts_topic, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
        )
        self.brand_topic = self.app.topic(
            f"{kafka.app_id}-brand-observations",
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
        )
        # Keys are the UTF-8 bytes of the root_id / brand: the same bytes the input is partitioned by.
        self.acks_topic = self.app.topic(
            kafka.acks_topic, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
        )
        self.cascade_table = self._table("cascade-state")
        self.brand_table = self._table("brand-state")
        self.alerting_table = self._table("alerting-state")
        self.clock = WallClock()
        self.alert_metrics = AlertMetrics(self.registry)
        # Silences: a file, or the compacted topic every worker follows (read to its end before dispatch).
        self.silences = open_silence_store(settings)
        for limit in partition_limits(build_runtime(settings.alerting)):
            log.warning("alerting: %s", limit)
        self.alerting: dict[int, AlertingService] = {}
        # per alerting partition: what was last written (entry key -> JSON text), to write only changes
        self._alerting_saved: dict[int, dict[str, str]] = {}
        self.deliver_wakeup = asyncio.Event()
        self.callbacks = CallbackHandler(settings.alerting, clock=self.clock, submit_ack=self.submit_ack)
        self.watchdog: ProgressWatchdog | None = None
        if kafka.watchdog_stall_s > 0:
            self.watchdog = ProgressWatchdog(
                kafka.watchdog_stall_s, kafka_end_offsets(client_security(settings), kafka.posts_topic)
            )
        self.cascades: dict[int, PartitionState] = {}
        self.brands: dict[int, PartitionState] = {}
        self.gc_policy = CycleCollectorPolicy(kafka.gc_freeze_every_s, self.registry)
        self.commit_gaps = CommitGapRepair(after_s=max(15.0, 10 * kafka.commit_interval_s))
        self.totals = Accounting()
        self.delivered = 0
        self.deliver: Any = None  # set by the CLI: IncidentEvent -> None (console/JSONL/receivers)
        self.last_progress_monotonic = time.monotonic()
        # Table writes staged by `_stage_table_writes`, sent and awaited by `make_durable` (one at a time).
        self._unsent_changelog: list[tuple[str, bytes, bytes | None, int]] = []
        # Messages handed to the producer by `_send` (dead letters, brand observations, incident events),
        # whose delivery `make_durable` awaits: a failed one exits like a failed state write.
        self._sends_in_flight: list[Awaitable[Any]] = []
        self._durable_lock = asyncio.Lock()
        self._register()
        self.observability = WorkerObservability(self)  # Faust sensors, lag, versions, per-brand gauges

    def _table(self, name: str) -> SourcePartitionTable:
        table = SourcePartitionTable(
            self.app, name=name, default=None, key_type=bytes, beacon=self.app.tables.beacon
        )
        return cast(SourcePartitionTable, self.app.tables.add(table))

    # -- agents ----------------------------------------------------------------------------------------
    def _register(self) -> None:
        kafka = self.settings.kafka
        app = self.app

        @app.agent(self.posts_topic, name="crisiswatch.cascades")
        async def cascades(stream: Any) -> None:
            async for events in stream.take_events(kafka.batch_max_posts, within=kafka.batch_max_wait_s):
                await self.on_post_batch(events)

        @app.agent(self.brand_topic, name="crisiswatch.brands")
        async def brands(stream: Any) -> None:
            # Manual acks: an observation held back for event-time alignment must not be committed.
            async for event in stream.noack().events():
                try:
                    await self.on_brand_event(event)
                except Exception as error:
                    await self._dead_letter_failed("brands", event, error)
                    await self.make_durable()
                    self._ack(event)

        @app.timer(interval=0.2)
        async def flush_brands() -> None:
            await self.flush_brand_partitions()

        @app.agent(self.alerts_topic, name="crisiswatch.notify")
        async def notify(stream: Any) -> None:
            async for event in stream.events():
                try:
                    self.on_incident_event(
                        event.message.partition, IncidentEvent.from_dict(json.loads(event.value))
                    )
                except Exception as error:
                    await self._dead_letter_failed("notify", event, error)
                self.deliver_wakeup.set()  # a page due now (critical: group_wait 0) goes out at once
                await self.make_durable()

        @app.agent(self.acks_topic, name="crisiswatch.acks")
        async def acks(stream: Any) -> None:
            async for event in stream.events():
                try:
                    await self.on_ack(event.message.partition, AckEvent.from_dict(json.loads(event.value)))
                except Exception as error:
                    await self._dead_letter_failed("acks", event, error)
                await self.make_durable()

        @app.task
        async def deliver_loop() -> None:
            # One deliverer (no double sends): woken by the notify agent, else every second for group_wait,
            # retries and reminders. A 1 s timer alone added 0-1 s to every page (bench/results/perf.md).
            while True:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self.deliver_wakeup.wait(), timeout=1.0)
                self.deliver_wakeup.clear()
                try:
                    await self.deliver_due()
                except Exception:
                    log.exception("delivering due notifications failed; retrying on the next tick")

        @app.page(self.settings.alerting.callback.path_prefix + "/{tail:.*}")
        async def callback(web: Any, request: Any, tail: str) -> Any:
            response = await self.callbacks.handle(
                CallbackRequest(
                    method=request.method,
                    path=request.path,
                    query=dict(request.query),
                    headers={key.lower(): value for key, value in request.headers.items()},
                    body=await request.read(),
                )
            )
            headers = {key: value for key, value in response.headers.items() if key != "Content-Type"}
            return web.bytes(
                response.body.encode("utf-8"),
                status=response.status,
                content_type=response.content_type,
                headers=headers,
            )

        @app.task
        async def watchdog() -> None:
            if self.watchdog is not None:
                await run_watchdog(
                    self.watchdog,
                    self.assigned_post_partitions,
                    self.recovery_progress,
                    check_every_s=max(1.0, self.watchdog.stall_s / 4),
                    before_exit=self._log_where_it_hung,
                )

        @app.task
        async def collect_cycles() -> None:
            # This process's cycle collector (streams/gc_policy.py), started and stopped by `crisiswatch worker`.
            while True:
                await asyncio.sleep(self.gc_policy.freeze_every_s or GC_PAUSES_RECORDED_EVERY_S)
                self.gc_policy.tick()

        @app.timer(interval=COMMIT_GAP_CHECK_S)
        async def repair_commit_gaps() -> None:
            await self.repair_commit_gaps()

        @app.task
        async def install_signal_handlers() -> None:
            loop = asyncio.get_running_loop()
            if self.config_path is not None:
                loop.add_signal_handler(signal.SIGHUP, self.reload_from_file)
            loop.add_signal_handler(signal.SIGUSR1, dump_tasks)
            # SIGUSR2: what grew since the last SIGUSR2 (streams/memory_probe.py; tracemalloc opt-in by env).
            probe = MemoryProbe(self.container_sizes)
            loop.add_signal_handler(signal.SIGUSR2, probe.report)

        @app.page("/health")
        async def health(web: Any, request: Any) -> Any:
            return web.json({"status": "ok"})

        @app.page("/ready")
        async def ready(web: Any, request: Any) -> Any:
            status = self.readiness()
            return web.json(status, status=200 if status["ready"] else 503)

        @app.page("/metrics")
        async def metrics(web: Any, request: Any) -> Any:
            # aiohttp refuses a charset inside content_type: the exposition format's type goes in the header.
            return web.bytes(generate_latest(self.registry), headers={"Content-Type": METRICS_CONTENT_TYPE})

        @app.page("/stats")
        async def stats(web: Any, request: Any) -> Any:
            return web.json(self.accounting())

        @app.on_partitions_revoked.connect  # type: ignore[arg-type]
        async def on_partitions_revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:
            # A revoked partition's keys may move to another worker: drop the cache, the tables stay the truth.
            # First let work in flight on it finish and become durable: Faust does not wait for it (we set
            # stream_wait_empty off for the held brand observations), and the table recovery that follows
            # the rebalance would otherwise read the changelog without that work's writes, and the next
            # batch would build on the older state (posts counted by the accounting, missing in the state).
            for tp in revoked:
                states = None
                if tp.topic == self.posts_topic.get_topic_name():
                    states = self.cascades
                elif tp.topic == self.brand_topic.get_topic_name():
                    states = self.brands
                if states is not None:
                    state = states.get(tp.partition)
                    if state is not None:
                        async with state.lock:
                            states.pop(tp.partition, None)
                        log.info(
                            "%s revoked: dropped the in-memory state of its %d keys",
                            tp,
                            len(state.loaded_keys),
                        )
                elif tp.topic == self.alerts_topic.get_topic_name():
                    service = self.alerting.pop(tp.partition, None)
                    self._alerting_saved.pop(tp.partition, None)
                    if service is not None:
                        await service.notifier.aclose()
            # writes staged for the revoked partitions (deliveries, a waiting agent) reach Kafka before the
            # new owner reads the changelog
            await self.make_durable()

    def _log_where_it_hung(self) -> None:
        """Before the watchdog's exit: Faust's fetch flow control as it stood, and every task's stack."""
        log.warning("consumer flow at the exit: %s", json.dumps(self._consumer_flow(), default=str))
        dump_tasks()

    def assigned_post_partitions(self) -> set[int]:
        """Posts partitions this worker processes now; empty while rebalancing or recovering tables."""
        if not self.readiness()["ready"]:
            return set()
        topic = self.settings.kafka.posts_topic
        return {tp.partition for tp in self.app.consumer.assignment() if tp.topic == topic}

    def recovery_progress(self) -> tuple[Any, ...] | None:
        """While assigned partitions wait for a rebalance or table recovery to end: the consumer generation
        and the offset recovery has read up to in each changelog partition (None before it has built them);
        they change while it makes progress. None when ready, or when nothing is assigned (a worker the
        group gave nothing to is idle, not stuck)."""
        status = self.readiness()
        if status["ready"] or not status["assigned_partitions"]:
            return None
        recovery = cast(Any, self.app.tables).recovery
        offsets = [*recovery.active_offsets.items(), *recovery.standby_offsets.items()]
        return (self.app.consumer_generation_id, *sorted((str(tp), offset) for tp, offset in offsets))

    def readiness(self) -> dict[str, Any]:
        consumer = self.app.consumer if self.app.producer is not None else None
        assigned = len(consumer.assignment()) if consumer is not None else 0
        tables: Any = self.app.tables
        recovered = bool(tables.recovery.completed.is_set()) if tables else False
        return {
            "ready": assigned > 0 and recovered and not self.app.rebalancing,
            "assigned_partitions": assigned,
            "recovered": recovered,
        }

    def accounting(self) -> dict[str, Any]:
        held = {
            str(partition): {"aligned_buffered": len(state.merge), "pending_acks": len(state.pending_acks)}
            for partition, state in sorted(self.brands.items())
        }
        return {
            **self.totals.to_dict(),
            "delivered_incident_events": self.delivered,
            "brand_partitions": held,
            "consumer": self._consumer_flow(),
        }

    def _consumer_flow(self) -> dict[str, Any]:
        """Faust's fetch flow control as it stands (paused and buffer-full partitions, acked offsets)."""
        consumer: Any = self.app.consumer if self.app.producer is not None else None
        if consumer is None:
            return {}

        def names(tps: Any) -> list[str]:
            return sorted(f"{tp.topic}/{tp.partition}" for tp in tps or ())

        return {
            "active": names(getattr(consumer, "_active_partitions", None)),
            "paused": names(getattr(consumer, "_paused_partitions", None)),
            "buffer_full": names(getattr(consumer, "_buffered_partitions", None)),
            "flow_active": bool(getattr(consumer, "flow_active", True)),
            "acked_waiting": {
                f"{tp.topic}/{tp.partition}": [min(offsets), max(offsets), len(offsets)]
                for tp, offsets in getattr(consumer, "_acked", {}).items()
                if offsets
            },
            "committed": {
                f"{tp.topic}/{tp.partition}": offset
                for tp, offset in getattr(consumer, "_committed_offset", {}).items()
            },
            "fetch": _fetch_state(consumer),
        }

    def container_sizes(self) -> dict[str, int]:
        """`len()` of the long-lived containers of this worker and of Faust's consumer, monitor and tables:
        what to look at when memory grows (logged by SIGUSR2, streams/memory_probe.py)."""
        named: dict[str, Any] = {}
        for side, states in (("cascade", self.cascades), ("brand", self.brands)):
            for partition, state in states.items():
                pipeline = state.pipeline
                engine: Any = pipeline.engine
                prefix = f"{side}{partition}."
                named.update(
                    {
                        prefix + "loaded_keys": state.loaded_keys,
                        prefix + "applied": state.applied,
                        prefix + "incident_owner": state.incident_owner,
                        prefix + "held_offsets": state.held_offsets,
                        prefix + "pending_acks": state.pending_acks,
                        prefix + "merge": state.merge,
                        prefix + "dedup": pipeline.dedup,
                        prefix + "root_of": pipeline._root_of._data,
                        prefix + "cascade_context": pipeline._cascade_context._data,
                        prefix + "engine_cascades": getattr(engine, "_cascades", None),
                        prefix + "engine_brands": getattr(engine, "_brand_states", None),
                        prefix + "engine_open_cascades": getattr(engine, "_open_cascades", None),
                    }
                )
        for table in (self.cascade_table, self.brand_table, self.alerting_table):
            named[f"table.{table.name}"] = table.data.data if hasattr(table.data, "data") else table.data
            named[f"table.{table.name}.key_partition"] = getattr(table.data, "_key_partition", None)
        consumer: Any = self.app.consumer if self.app.producer is not None else None
        if consumer is not None:
            named["consumer.unacked_messages"] = getattr(consumer, "_unacked_messages", None)
            named["consumer.acked_tps"] = getattr(consumer, "_acked", None)
            for name in ("_acked", "_acked_index", "_gap"):
                per_tp = getattr(consumer, name, {})
                named[f"consumer.{name.lstrip('_')}_total"] = sum(len(v) for v in list(per_tp.values()))
        monitor: Any = self.app.monitor
        for name in ("stream_inbound_time", "tp_committed_offsets", "tp_read_offsets", "tp_end_offsets"):
            named[f"monitor.{name}"] = getattr(monitor, name, None)
        named["alerting_services"] = self.alerting
        named["asyncio_tasks"] = asyncio.all_tasks()
        return container_sizes(named)

    async def repair_commit_gaps(self) -> None:
        """Seek back a partition whose commits are stuck behind offsets Faust never delivered (watchdog.py)."""
        consumer: Any = self.app.consumer
        if self.app.rebalancing or not cast(Any, self.app.tables).recovery.completed.is_set():
            self.commit_gaps.reset()
            return
        brand_topic = self.brand_topic.get_topic_name()
        topics = {t.get_topic_name() for t in (self.posts_topic, self.alerts_topic, self.acks_topic)}
        now_s = time.monotonic()
        for tp in list(consumer.assignment()):
            if tp.topic not in topics and tp.topic != brand_topic:
                continue
            committed = consumer._committed_offset.get(tp)
            if tp.topic == brand_topic:
                # Brand messages wait unacknowledged in the aligned merge by design: a gap that starts
                # with one of them is not a gap (the copy read again after a seek is skipped).
                state = self.brands.get(tp.partition)
                if state is None or committed in state.held_offsets:
                    continue
            if self.commit_gaps.due(tp, committed, consumer._acked.get(tp), now_s):
                log.warning(
                    "commits of %s/%d are stuck at offset %d behind offsets never delivered; reading from it again",
                    tp.topic,
                    tp.partition,
                    committed,
                )
                self.metrics.commit_gap_repairs.labels(tp.topic).inc()
                await consumer.seek(tp, committed)

    async def _until_recovered(self) -> None:
        """Wait out a rebalance and its table recovery: state read before it ends could be stale."""
        recovery = cast(Any, self.app.tables).recovery
        while self.app.rebalancing or not recovery.completed.is_set():
            await asyncio.sleep(0.05)

    def _owns(self, topic: str, partition: int) -> bool:
        return any(tp.topic == topic and tp.partition == partition for tp in self.app.consumer.assignment())

    async def _acquire_partition(
        self, states: dict[int, PartitionState], topic: str, partition: int
    ) -> PartitionState | None:
        """The partition's state, locked, once the tables are recovered; None when the partition is not ours.

        Events fetched before a rebalance can reach an agent after it (a `take_events` buffer is not
        cleared): they are applied only if the partition is still ours, on the state recovered from the
        table (already-applied offsets are skipped); otherwise the new owner processes them.
        """
        while True:
            await self._until_recovered()
            if not self._owns(topic, partition):
                return None
            state = self._partition_state(states, partition)
            await state.lock.acquire()
            if states.get(partition) is state and not self.app.rebalancing:
                return state
            state.lock.release()  # revoked while we waited for the lock: look again

    def _partition_state(self, states: dict[int, PartitionState], partition: int) -> PartitionState:
        state = states.get(partition)
        if state is None:
            pipeline = Pipeline(self.settings, self.analyzer, resolver=self.resolver)
            self.observability.attach(pipeline)
            state = states[partition] = PartitionState(pipeline)
            self._load_recovered_keys(states, partition, state)
            side = "cascade" if states is self.cascades else "brand"
            log.info(
                "%s partition %d: state created, %d restored keys loaded",
                side,
                partition,
                len(state.loaded_keys),
            )
        return state

    def _load_recovered_keys(
        self, states: dict[int, PartitionState], partition: int, state: PartitionState
    ) -> None:
        """Load every key this partition's changelog restored, not only keys that see new posts.

        A cascade whose surge ended before a failover gets no more posts; loaded lazily, its open incident
        would never resolve and its state never expire. Faust's memory store records the changelog
        partition of each restored key (keys written here are already in memory).
        """
        table = self.cascade_table if states is self.cascades else self.brand_table
        recovered: dict[Any, int] = getattr(table.data, "_key_partition", {})
        for raw_key, key_partition in list(recovered.items()):
            if key_partition != partition:
                continue
            key = raw_key.decode("utf-8") if isinstance(raw_key, bytes) else str(raw_key)
            if states is self.cascades:
                self._load_cascade_key(state, key)
            else:
                self._load_brand_key(state, key)

    # -- cascade side ----------------------------------------------------------------------------------
    async def on_post_batch(self, events: Sequence[Any]) -> None:
        by_partition: dict[int, list[Any]] = defaultdict(list)
        for event in events:
            by_partition[event.message.partition].append(event)
        now_s = time.time()
        topic = self.posts_topic.get_topic_name()
        for partition, partition_events in sorted(by_partition.items()):
            state = await self._acquire_partition(self.cascades, topic, partition)
            if state is None:
                log.info("%d posts of %s/%d left to its new owner", len(partition_events), topic, partition)
                continue
            try:
                await self._apply_post_batch(partition, state, partition_events, now_s)
            except Exception as error:
                # The partition's memory may be half-updated: drop it, the table is the truth.
                self.cascades.pop(partition, None)
                for event in partition_events:
                    await self._dead_letter_failed("cascades", event, error)
                await self.make_durable()
            finally:
                state.lock.release()
        self.last_progress_monotonic = time.monotonic()

    async def _apply_post_batch(
        self, partition: int, state: PartitionState, partition_events: Sequence[Any], now_s: float
    ) -> None:
        records = [
            RawRecord(
                value=event.value if isinstance(event.value, bytes) else bytes(event.value or b""),
                partition=partition,
                offset=event.message.offset,
                source=f"{event.message.topic}/{partition}@{event.message.offset}",
            )
            for event in partition_events
        ]
        records = await self._with_undelivered(partition, state, records)
        ingested = state.pipeline.ingest(
            records,
            now_s=now_s,
            already_applied=lambda post, record, s=state: self._cascade_applied(s, post, record),
        )
        incident_events = state.pipeline.detect(ingested, brands=False)
        for post, record in zip(ingested.posts, ingested.records, strict=True):
            key = post.post.root_id
            state.applied[key] = max(state.applied.get(key, -1), record.offset)
        if self.watchdog is not None:
            self.watchdog.processed(partition, records[-1].offset)
        await self._send_dead_letters(ingested.dead_letters)
        await self._send_brand_observations(
            ingested.posts, ingested.records, partition, state.pipeline.watermark.value_s
        )
        await self._send_incident_events(incident_events)
        self._stage_table_writes(self.cascade_table, partition, self._cascade_state_writes(state))
        await self.make_durable()
        self.totals.add(ingested.accounting)
        if ingested.accounting.late:
            log.info(
                "partition %d: %d posts older than the watermark (%s) minus the allowed lateness, counted late",
                partition,
                ingested.accounting.late,
                state.pipeline.watermark.value_s,
            )
        self.metrics.record(self.settings.kafka.posts_topic, ingested.accounting)
        self.metrics.batch_size.observe(len(records))
        for post in ingested.posts:
            self.metrics.processing_latency.observe(max(0.0, now_s - post.created_at_s))
        if state.pipeline.watermark.value_s is not None:
            self.metrics.watermark.labels(self.settings.kafka.posts_topic, str(partition)).set(
                state.pipeline.watermark.value_s
            )

    async def _with_undelivered(
        self, partition: int, state: PartitionState, records: list[RawRecord]
    ) -> list[RawRecord]:
        """The batch with any records the consumer skipped put back in place, read from Kafka directly.

        Around a rebalance or recovery Faust can move past records it never delivers; it may even count
        them as done, so the commit moves on and the posts are lost (seen in the kill -9 test: 11 reactions
        of the planted surge). The input topic has no holes (not compacted, no transactions), so every
        offset between the committed one (or the end of the previous batch) and this batch must be here.
        """
        consumer: Any = self.app.consumer
        expected = state.next_offset
        if expected is None:
            topic = self.posts_topic.get_topic_name()
            tp = next(
                (tp for tp in consumer.assignment() if (tp.topic, tp.partition) == (topic, partition)), None
            )
            committed = consumer._committed_offset.get(tp) if tp is not None else None
            expected = committed if isinstance(committed, int) and committed >= 0 else records[0].offset
        result: list[RawRecord] = []
        for record in records:
            if record.offset > expected:
                result += await self._read_undelivered(partition, expected, record.offset)
            result.append(record)
            expected = max(expected, record.offset + 1)
        state.next_offset = expected
        return result

    async def _read_undelivered(self, partition: int, start: int, end: int) -> list[RawRecord]:
        topic = self.posts_topic.get_topic_name()
        log.warning(
            "%s/%d: offsets %d-%d were not delivered by the consumer; reading them directly",
            topic,
            partition,
            start,
            end - 1,
        )
        self.metrics.undelivered_reads.labels(topic).inc(end - start)
        options = client_security(self.settings)
        found: dict[int, bytes] = {}
        wait_s = 1.0
        while True:  # until every record is read: if the broker stays away, the progress watchdog exits
            missing_from = next((o for o in range(start, end) if o not in found), end)
            records, log_start = await asyncio.to_thread(
                read_offsets, options, topic, partition, missing_from, end
            )
            found.update(records)
            if log_start is not None and log_start > start:
                log.error("%s/%d: offsets %d-%d are gone (retention)", topic, partition, start, log_start - 1)
                start = log_start
            if log_start is not None and all(o in found for o in range(start, end)):
                break
            log.warning(
                "%s/%d: read %d of the %d undelivered records; trying again in %.0f s",
                topic,
                partition,
                len(found),
                end - start,
                wait_s,
            )
            await asyncio.sleep(wait_s)
            wait_s = min(wait_s * 2, 30.0)
        return [
            RawRecord(value=found[o], partition=partition, offset=o, source=f"{topic}/{partition}@{o}")
            for o in range(start, end)
        ]

    def _cascade_applied(self, state: PartitionState, post: Any, record: RawRecord) -> bool:
        self._load_cascade_key(state, post.root_id)
        return record.offset <= state.applied.get(post.root_id, -1)

    def _load_cascade_key(self, state: PartitionState, root_id: str) -> None:
        """Bring a cascade's durable state (table, else warm start) into the partition's pipeline, once."""
        if root_id in state.loaded_keys:
            return
        state.loaded_keys.add(root_id)
        stored = self.cascade_table.stored(root_id.encode())
        if stored:
            self._restore(state, stored, cascade_key=root_id)
            return  # a stored key leaves through `_cascade_state_writes` when its state expires
        state.loaded_since_write.add(root_id)
        if self.warm_start is not None:
            self.warm_start.load_cascade(state.pipeline.engine, root_id)

    def _restore(
        self,
        state: PartitionState,
        stored: dict[str, Any],
        *,
        cascade_key: str | None = None,
        brand_key: str | None = None,
    ) -> None:
        if stored.get("v") != STATE_VERSION:
            log.warning("ignoring stored state with version %r", stored.get("v"))
            return
        engine = state.pipeline.engine
        if cascade_key is not None:
            state.applied[cascade_key] = stored.get("applied", -1)
            if stored.get("brands") is not None:
                state.pipeline.remember_cascade_brands(cascade_key, stored["brands"])
            if stored.get("engine") is not None:
                engine.load_cascade_state(cascade_key, stored["engine"])
        if brand_key is not None:
            state.applied[brand_key] = dict(stored.get("applied", {}))
            if stored.get("engine") is not None:
                engine.load_brand_state(brand_key, stored["engine"])
        owner = cascade_key if cascade_key is not None else brand_key
        assert owner is not None
        for dedup_key, incident_state in stored.get("incidents", {}).items():
            state.pipeline.tracker.load_key_state(dedup_key, incident_state)
            state.incident_owner[dedup_key] = owner

    def _owned_incidents(self, state: PartitionState, owner: str) -> dict[str, Any]:
        tracker = state.pipeline.tracker
        return {
            key: tracker.key_state(key)
            for key, value in state.incident_owner.items()
            if value == owner and tracker.key_state(key) is not None
        }

    def _mark_incident_owners(self, state: PartitionState, *, brand_side: bool) -> set[str]:
        owners: set[str] = set()
        tracker = state.pipeline.tracker
        for dedup_key in tracker.drain_dirty():
            key_state = tracker.key_state(dedup_key)
            if key_state is not None:
                owner = key_state["brand"] if brand_side else key_state["root_id"]
                state.incident_owner[dedup_key] = owner
            else:
                owner = state.incident_owner.pop(dedup_key, None)
            if owner is not None:
                owners.add(owner)
        return owners

    def _cascade_state_writes(self, state: PartitionState) -> list[tuple[bytes, dict[str, Any] | None]]:
        """What the batch changed in the cascade table: (key, value) pairs, None deleting the key."""
        writes: list[tuple[bytes, dict[str, Any] | None]] = []
        roots, _ = state.pipeline.engine.drain_dirty()
        roots |= self._mark_incident_owners(state, brand_side=False)
        self._forget_empty_cascade_keys(state, state.loaded_since_write - roots)
        state.loaded_since_write = set()
        for root_id in roots:
            engine_state = state.pipeline.engine.cascade_state(root_id)
            incidents = self._owned_incidents(state, root_id)
            if engine_state is None and not incidents:
                state.applied.pop(root_id, None)
                state.loaded_keys.discard(root_id)
                if self.cascade_table.get(root_id.encode()) is not None:
                    writes.append((root_id.encode(), None))
                continue
            brands = state.pipeline.cascade_brands(root_id)
            value = {
                "v": STATE_VERSION,
                "applied": state.applied.get(root_id, -1),
                "brands": list(brands) if brands is not None else None,
                "engine": engine_state,
                "incidents": incidents,
            }
            writes.append((root_id.encode(), value))
        return writes

    def _stage_table_writes(
        self, table: SourcePartitionTable, partition: int, writes: Sequence[tuple[bytes, Any]]
    ) -> None:
        """Apply values (None deletes) of one changelog partition to the table's in-memory store, and stage
        their changelog records; `make_durable` hands them to the producer and waits for Kafka.

        This is the one way the worker writes table state. Faust's own path (`table[key] = value`) costs
        ~180 µs a write in its send buffer and futures, and the cascade side writes about one per post
        (bench/results/perf.md). The records are the ones Faust would write (same topic, partition, key and
        value serialisation), so its recovery reads them as its own.
        """
        topic = table.changelog_topic
        name = topic.get_topic_name()
        store = table.data
        # the memory store's record of each key's changelog partition: with it, Faust drops the keys of a
        # partition that moved away once its recovery completes, as it does for keys it restored
        key_partition = getattr(store, "_key_partition", {})
        for key, value in writes:
            key_bytes, _ = topic.prepare_key(key, table.key_serializer)
            value_bytes = None if value is None else encode_table_value(value)
            if value_bytes is None:
                store.pop(key, None)
                key_partition.pop(key, None)
            else:
                store[key] = value_bytes
                key_partition[key] = partition
            self._unsent_changelog.append((name, key_bytes, value_bytes, partition))

    def _forget_empty_cascade_keys(self, state: PartitionState, root_ids: set[str]) -> None:
        """Drop the applied offset and loaded mark of roots that hold no state: no engine state (the engine
        keeps none for a cascade without a brand: most posts) and no incident.

        They are never dirty, so the expiry in `_cascade_state_writes` never saw them, and `loaded_keys` and
        `applied` grew by one entry per root ever seen (+4.4 MB/min at 600 posts/s, bench/results/load.md).
        Forgetting them loses nothing: the table has no entry for them either, so a restarted worker knows
        exactly as much, and a redelivered post is still a duplicate for the dedup stage.
        """
        if not root_ids:
            return
        engine = state.pipeline.engine
        owners = set(state.incident_owner.values())
        for root_id in root_ids:
            if root_id not in owners and engine.cascade_state(root_id) is None:
                state.applied.pop(root_id, None)
                state.loaded_keys.discard(root_id)

    # -- brand side ------------------------------------------------------------------------------------
    async def _send_brand_observations(
        self,
        posts: Sequence[EnrichedPost],
        records: Sequence[RawRecord],
        partition: int,
        watermark_s: float | None,
    ) -> None:
        """One message per brand and batch (chunked), not one per post: Faust's per-message cost dominated."""
        by_brand: dict[str, list[list[Any]]] = defaultdict(list)
        for post, record in zip(posts, records, strict=True):
            observed: dict[str, Any] | None = None
            for brand in post.brands:
                if brand == "other":
                    continue
                observed = observed or enriched_to_dict(post)
                by_brand[brand].append([record.offset, observed])
        for brand, observations in by_brand.items():
            for value in brand_messages(brand, partition, observations):
                await self._send(self.brand_topic, key=brand.encode("utf-8"), value=value)
        if watermark_s is not None:
            # Every brand partition learns how far this source partition has got (see streams/alignment.py).
            heartbeat = dump_line(
                {"heartbeat": True, "source_partition": partition, "watermark_s": watermark_s}
            ).encode("utf-8")
            for brand_partition in range(self.settings.kafka.partitions):
                await self._send(self.brand_topic, value=heartbeat, partition=brand_partition)

    async def on_brand_event(self, event: Any) -> None:
        """Observations and heartbeats in; observations applied in aligned event-time order; acks deferred."""
        partition = event.message.partition
        message = json.loads(event.value)
        source = int(message["source_partition"])
        state = await self._acquire_partition(self.brands, self.brand_topic.get_topic_name(), partition)
        if state is None:
            return  # not acked: the partition's new owner gets it
        try:
            now_s = time.monotonic()
            if message.get("heartbeat"):
                state.merge.advance(source, float(message["watermark_s"]), now_s)
                state.pending_acks.append(event)
            else:
                brand = message["brand"]
                observations = message.get("observations")
                if observations is None:  # written by a version that sent one observation per message
                    observations = [[message["source_offset"], message["post"]]]
                # Applied before a crash or rebalance: skipped. The message is acked once all the rest are.
                fresh = [o for o in observations if not self._brand_applied(state, brand, source, o[0])]
                if not fresh:
                    state.pending_acks.append(event)
                elif event.message.offset in state.held_offsets:
                    pass  # read again after a commit-gap seek while its first copy waits in the merge
                else:
                    state.held_offsets.add(event.message.offset)
                    held = HeldMessage(event, source, len(fresh))
                    for offset, post in fresh:
                        state.merge.add(source, float(post["t"]), (held, brand, offset, post), now_s)
            await self._release_brand_observations(partition, state)
        finally:
            state.lock.release()

    async def _release_brand_observations(self, partition: int, state: PartitionState) -> None:
        released = state.merge.release(time.monotonic())
        for held, brand, offset, post in released:
            try:
                await self._apply_brand_observation(state, brand, held.source, offset, post)
            except Exception as error:
                await self._dead_letter_failed("brands", held.event, error)
            held.remaining -= 1
            if held.remaining == 0:
                state.held_offsets.discard(held.event.message.offset)
                state.pending_acks.append(held.event)
        if state.pending_observations() >= self.settings.kafka.batch_max_posts:
            await self._flush_brand_partition(partition, state)

    async def _apply_brand_observation(
        self, state: PartitionState, brand: str, source: int, offset: int, observed: dict[str, Any]
    ) -> None:
        post = enriched_from_dict(observed)
        state.pipeline.watermark.observe(post.created_at_s)
        events = state.pipeline.tick(state.pipeline.watermark.value_s)
        events += state.pipeline.detect_brands_for(brand, post)
        applied = state.applied[brand]
        applied[str(source)] = max(applied.get(str(source), -1), offset)
        state.applied_since_flush += 1
        await self._send_incident_events(events)

    async def flush_brand_partitions(self) -> None:
        for partition, state in list(self.brands.items()):
            async with state.lock:
                if self.brands.get(partition) is not state or self.app.rebalancing:
                    continue  # revoked meanwhile (its held messages go to the new owner unacked)
                await self._release_brand_observations(partition, state)  # sources may have gone idle
                if state.pending_observations():
                    await self._flush_brand_partition(partition, state)

    async def _flush_brand_partition(self, partition: int, state: PartitionState) -> None:
        """State first (its changelog is flushed before any commit), then the acks that allow the commit.

        Only the acks of observations whose effect this write holds: taken before the write, under the lock.
        """
        acks, state.pending_acks = state.pending_acks, []
        state.applied_since_flush = 0
        self._stage_table_writes(self.brand_table, partition, self._brand_state_writes(state))
        await self.make_durable()
        for event in acks:
            self._ack(event)

    def _ack(self, event: Any) -> None:
        """Ack an event of a stream with manual acks (the brand agent's). Faust's own ack path also tells
        its sensors when the last holder let go (the active-messages gauge); a manual ack must do that
        itself, or the gauge grows by one per message."""
        if event.ack():
            message = event.message
            self.app.sensors.on_message_out(message.tp, message.offset, message)

    def _brand_applied(
        self, state: PartitionState, brand: str, source_partition: int, source_offset: int
    ) -> bool:
        self._load_brand_key(state, brand)
        return bool(source_offset <= state.applied[brand].get(str(source_partition), -1))

    def _load_brand_key(self, state: PartitionState, brand: str) -> None:
        """Bring a brand's durable state (table, else warm start) into the partition's pipeline, once."""
        if brand in state.loaded_keys:
            return
        state.loaded_keys.add(brand)
        state.applied[brand] = {}
        stored = self.brand_table.stored(brand.encode())
        if stored:
            self._restore(state, stored, brand_key=brand)
        elif self.warm_start is not None:
            self.warm_start.load_brand(state.pipeline.engine, brand)

    def _brand_state_writes(self, state: PartitionState) -> list[tuple[bytes, dict[str, Any]]]:
        """What the flush changed in the brand table: (key, value) pairs."""
        _, brands = state.pipeline.engine.drain_dirty()
        brands |= self._mark_incident_owners(state, brand_side=True)
        return [
            (
                brand.encode(),
                {
                    "v": STATE_VERSION,
                    "applied": dict(state.applied.get(brand, {})),
                    "engine": state.pipeline.engine.brand_state(brand),
                    "incidents": self._owned_incidents(state, brand),
                },
            )
            for brand in brands
        ]

    # -- outputs ---------------------------------------------------------------------------------------
    async def _dead_letter_failed(self, agent: str, event: Any, error: Exception) -> None:
        """An input an agent failed on: logged with the traceback, counted, kept in the dead-letter topic."""
        message = event.message
        source = f"{message.topic}/{message.partition}@{message.offset}"
        log.error(
            "%s agent failed on %s; dead-lettered as %s", agent, source, PROCESSING_ERROR, exc_info=error
        )
        self.metrics.processing_errors.labels(agent).inc()
        value = event.value if isinstance(event.value, bytes) else bytes(event.value or b"")
        headers = [
            ("reason", PROCESSING_ERROR.encode()),
            ("detail", f"{agent}: {type(error).__name__}: {error}"[:1000].encode("utf-8", "replace")),
            ("source", source.encode()),
        ]
        await self._send(self.dead_letter_topic, value=value, headers=headers)

    async def _send_dead_letters(self, dead_letters: Sequence[Any]) -> None:
        for dead in dead_letters:
            headers = [
                ("reason", dead.reason.encode()),
                ("detail", dead.detail.encode("utf-8", "replace")),
                ("source", dead.record.source.encode()),
            ]
            await self._send(self.dead_letter_topic, value=dead.record.value, headers=headers)

    async def _send_incident_events(self, events: Sequence[IncidentEvent]) -> None:
        for event in events:
            self.observability.on_incident_event(event)
            # Keyed by brand: a brand's incidents share one outbox partition, so its groups and
            # inhibitions are decided in one place (alerts/dispatch.py).
            await self._send(
                self.alerts_topic,
                key=outbox_key(event).encode("utf-8"),
                value=dump_line(event.to_dict()).encode("utf-8"),
            )

    async def _send(self, topic: Any, **message: Any) -> None:
        """Hand a message to the producer; the next `make_durable` waits until Kafka has it."""
        self._sends_in_flight.append(await topic.send(**message))

    async def make_durable(self) -> None:
        """Wait until every state write and send of this batch is acknowledged by Kafka.

        Called before a batch's events are acked (and so may be committed). Faust's own pre-commit flush
        is not enough: its send buffer gives up waiting after 0.1 s and returns with writes still queued,
        and a crash then loses state updates whose offsets were committed (seen in the kill -9 test).
        """
        producer = self.app.producer
        # One caller at a time: another agent's call may take this caller's staged records, and must have
        # them acknowledged before this one can return.
        async with self._durable_lock:
            unsent, self._unsent_changelog = self._unsent_changelog, []
            in_flight, self._sends_in_flight = self._sends_in_flight, []
            try:
                sends = in_flight + [await producer.send(*record, None, None) for record in unsent]
                while producer.buffer.size:
                    await producer.buffer.flush()
                await producer.flush()
                for send in sends:
                    await send
            except asyncio.CancelledError:
                # sent again by the next call (same keys and values, same order): a repeat is harmless;
                # messages already handed over are awaited by the next call
                self._unsent_changelog[:0] = unsent
                self._sends_in_flight[:0] = in_flight
                raise
            except Exception as error:  # noqa: BLE001 - refused or failed: the state is not durable
                # Nothing that depends on these writes is acknowledged yet: exit, and the restarted worker
                # redoes it from the committed offsets (Faust's own changelog path stops the worker too).
                log.critical("a state write or send failed (%r): exiting for a restart", error)
                logging.shutdown()
                os._exit(EXIT_STATE_WRITE_FAILED)

    # -- alerting ------------------------------------------------------------------------------------
    def _alerting_for(self, partition: int) -> AlertingService:
        service = self.alerting.get(partition)
        if service is None:
            service = AlertingService(
                self.settings.alerting,
                clock=self.clock,
                brands=self.settings.brands_by_name,
                metrics=self.alert_metrics,
                seed=partition,
                silences=self.silences,
            )
            prefix = _alerting_prefix(partition)
            entries = {
                key[len(prefix) :].decode("utf-8"): json.loads(value)
                for key, value in list(self.alerting_table.items())
                if isinstance(key, bytes) and key.startswith(prefix)
            }
            legacy = self.alerting_table.stored(f"partition-{partition}".encode())
            if entries.pop(ALERTING_LAYOUT_KEY, None) == ALERTING_LAYOUT:
                service.load_state(state_shards.unshard(entries))
            elif legacy and legacy.get("v") == STATE_VERSION:  # one value per partition (before 0.3)
                service.load_state(legacy["service"])
            self.alerting[partition] = service
        return service

    def _save_alerting(self, partition: int, service: AlertingService) -> None:
        """Write what changed of the partition's alerting state, one table entry per group, incident and
        job (`streams/state_shards.py`): written whole it outgrew Kafka's message limit under load."""
        previous = self._alerting_saved.get(partition)
        entries = state_shards.shards(service.state())
        entries[ALERTING_LAYOUT_KEY] = ALERTING_LAYOUT
        written, write, delete = state_shards.changes(previous or {}, entries)
        if not write and not delete:
            return
        prefix = _alerting_prefix(partition)
        writes: list[tuple[bytes, Any]] = [(prefix + key.encode("utf-8"), None) for key in delete]
        writes += [(prefix + key.encode("utf-8"), value) for key, value in write.items()]
        legacy = f"partition-{partition}".encode()
        if previous is None and self.alerting_table.get(legacy) is not None:
            writes.append((legacy, None))
        self._stage_table_writes(self.alerting_table, partition, writes)
        self._alerting_saved[partition] = written

    def on_incident_event(self, partition: int, event: IncidentEvent) -> None:
        """An incident event from the outbox: route, group and queue its notifications (sent by the timer)."""
        self.delivered += 1
        if self.deliver is not None:
            self.deliver(event)
        service = self._alerting_for(partition)
        service.on_event(event)
        if event.status == "resolved" and event.to_dict().get("resolution") == "false_alarm":
            append_labelled_incident(self.settings.alerting.labelled_incidents_path, event)
        self._save_alerting(partition, service)

    async def deliver_due(self) -> None:
        try:
            for partition, service in list(self.alerting.items()):
                await service.tick()
                if self.alerting.get(partition) is service:  # not revoked while it delivered
                    self._save_alerting(partition, service)
        finally:
            await self.make_durable()

    async def submit_ack(self, ack: AckEvent) -> None:
        """A person acted (Slack button, email link, PagerDuty, CLI): route it to the incident's owner."""
        # Awaited until Kafka has it: a failure reaches the caller (the callback answers with an error and
        # the person's action can be retried) instead of being lost.
        delivered = await self.acks_topic.send(
            key=ack_owner_key(ack).encode("utf-8"), value=dump_line(ack.to_dict()).encode("utf-8")
        )
        await delivered

    async def on_ack(self, partition: int, ack: AckEvent) -> None:
        """Acks are keyed like the incident's state (root_id or brand), so this partition owns it."""
        _, _, root = ack.dedup_key.split("/", 2)
        brand_wide = root == "*"
        topic = (self.brand_topic if brand_wide else self.posts_topic).get_topic_name()
        state = await self._acquire_partition(self.brands if brand_wide else self.cascades, topic, partition)
        if state is None:
            log.warning("ack for %s arrived on partition %d, which is not ours now", ack.dedup_key, partition)
            return
        try:
            if brand_wide:
                self._load_brand_key(state, ack.dedup_key.split("/", 1)[0])
            else:
                self._load_cascade_key(state, root)
            events = state.pipeline.tracker.apply_ack(ack)
            await self._send_incident_events(events)
            if brand_wide:
                self._stage_table_writes(self.brand_table, partition, self._brand_state_writes(state))
            else:
                self._stage_table_writes(self.cascade_table, partition, self._cascade_state_writes(state))
            await self.make_durable()
        finally:
            state.lock.release()

    def reload_from_file(self) -> None:
        """SIGHUP: a bad file is refused with the error logged, and the running config stays."""
        from crisiswatch.detectors.settings import ConfigError
        from crisiswatch.streams.config import load_settings

        try:
            settings = load_settings(self.config_path)
        except ConfigError as error:
            log.error("config reload refused, keeping the running config: %s", error)
            return
        self.reload(settings)
        self.observability.config_reloaded()
        log.info("config reloaded from %s", self.config_path)

    def reload(self, settings: Settings) -> None:
        """SIGHUP with a valid file: new routing, receivers and playbooks for every partition's service."""
        for service in self.alerting.values():
            service.reload(settings.alerting)
        self.settings = dataclasses.replace(self.settings, alerting=settings.alerting)


def read_offsets(
    client_options: dict[str, Any], topic: str, partition: int, start: int, end: int, timeout_s: float = 10.0
) -> tuple[list[tuple[int, bytes]], int | None]:
    """Records [start, end) of one partition, with a short-lived kafka-python consumer (no group, no commits),
    and the partition's first offset still in the log; ([], None) when the broker cannot be reached."""
    from kafka import KafkaConsumer, TopicPartition
    from kafka.errors import KafkaError

    found: list[tuple[int, bytes]] = []
    try:
        consumer = KafkaConsumer(enable_auto_commit=False, group_id=None, **client_options)
    except (KafkaError, OSError):
        return found, None
    try:
        tp = TopicPartition(topic, partition)
        log_start = int(consumer.beginning_offsets([tp])[tp])
        consumer.assign([tp])
        consumer.seek(tp, max(start, log_start))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and (not found or found[-1][0] < end - 1):
            for records in consumer.poll(timeout_ms=500).values():
                found += [(r.offset, r.value or b"") for r in records if start <= r.offset < end]
        return found, log_start
    except (KafkaError, OSError):
        return found, None
    finally:
        consumer.close()


def dump_tasks() -> None:
    """SIGUSR1: log where every asyncio task of the worker is waiting (for diagnosing a stuck worker)."""
    import io

    for task in asyncio.all_tasks():
        stack = io.StringIO()
        task.print_stack(limit=12, file=stack)
        log.warning("task %s:\n%s", task.get_name(), stack.getvalue())


def ack_owner_key(ack: AckEvent) -> str:
    """The key an ack travels under: the cascade's root_id, or the brand for a brand-wide incident."""
    brand, _, root = ack.dedup_key.split("/", 2)
    return brand if root == "*" else root

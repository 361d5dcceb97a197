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
import signal
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast

import faust
from prometheus_client import CollectorRegistry, generate_latest

from crisiswatch.alerts.callbacks import CallbackHandler, CallbackRequest
from crisiswatch.alerts.incidents import AckEvent, IncidentEvent, append_labelled_incident
from crisiswatch.alerts.metrics import AlertMetrics
from crisiswatch.alerts.service import AlertingService
from crisiswatch.detectors.events import EnrichedPost
from crisiswatch.detectors.text import TextAnalyzer
from crisiswatch.streams.alignment import AlignedMerge
from crisiswatch.streams.clock import WallClock
from crisiswatch.streams.config import Settings
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
from crisiswatch.streams.topics import client_security
from crisiswatch.streams.watchdog import ProgressWatchdog, kafka_end_offsets, run_watchdog

log = logging.getLogger("crisiswatch.worker")

STATE_VERSION = 1


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
        # Table keys are the UTF-8 bytes of root_id / brand, stored as they are; values are JSON.
        "table_key_serializer": "raw",
        "table_value_serializer": "json",
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

    Batches from `take_events()` have no current event, so Faust cannot infer the partition (faust #497);
    the agent names it explicitly with `writing_for(partition)`. Keys thus live in the changelog partition
    that Faust restores to whichever worker owns the matching source partition.
    """

    source_partition: int | None = None

    def partition_for_key(self, key: Any) -> int | None:
        if self.source_partition is None:
            raise RuntimeError(f"table {self.name}: writes must happen inside writing_for(partition)")
        return self.source_partition

    @contextmanager
    def writing_for(self, partition: int) -> Iterator[None]:
        self.source_partition = partition
        try:
            yield
        finally:
            self.source_partition = None


class PartitionState:
    """What one partition's agent holds in memory: its pipeline and the offsets already applied per key."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.loaded_keys: set[str] = set()
        # Brand partitions only: inputs aligned across source partitions, and events awaiting their ack.
        config = pipeline.settings.pipeline
        self.merge: AlignedMerge[tuple[Any, dict[str, Any]]] = AlignedMerge(
            config.source_idle_after_s, config.max_aligned_buffer
        )
        self.pending_acks: list[Any] = []
        self.applied: dict[str, Any] = {}
        self.incident_owner: dict[str, str] = {}


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
        self.alerting: dict[int, AlertingService] = {}
        self._alerting_saved: dict[int, str] = {}
        self.deliver_wakeup = asyncio.Event()
        self.callbacks = CallbackHandler(settings.alerting, clock=self.clock, submit_ack=self.submit_ack)
        self.watchdog: ProgressWatchdog | None = None
        if kafka.watchdog_stall_s > 0:
            self.watchdog = ProgressWatchdog(
                kafka.watchdog_stall_s, kafka_end_offsets(client_security(settings), kafka.posts_topic)
            )
        self.cascades: dict[int, PartitionState] = {}
        self.brands: dict[int, PartitionState] = {}
        self.totals = Accounting()
        self.delivered = 0
        self.deliver: Any = None  # set by the CLI: IncidentEvent -> None (console/JSONL/receivers)
        self.last_progress_monotonic = time.monotonic()
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
                await self.on_brand_event(event)

        @app.timer(interval=0.2)
        async def flush_brands() -> None:
            await self.flush_brand_partitions()

        @app.agent(self.alerts_topic, name="crisiswatch.notify")
        async def notify(stream: Any) -> None:
            async for event in stream.events():
                self.on_incident_event(
                    event.message.partition, IncidentEvent.from_dict(json.loads(event.value))
                )
                self.deliver_wakeup.set()  # a page due now (critical: group_wait 0) goes out at once
                await self.make_durable()

        @app.agent(self.acks_topic, name="crisiswatch.acks")
        async def acks(stream: Any) -> None:
            async for event in stream.events():
                await self.on_ack(event.message.partition, AckEvent.from_dict(json.loads(event.value)))
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
                    check_every_s=max(1.0, self.watchdog.stall_s / 4),
                )

        @app.task
        async def install_reload_handler() -> None:
            if self.config_path is not None:
                asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self.reload_from_file)

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
            for tp in revoked:
                if tp.topic == self.posts_topic.get_topic_name():
                    self.cascades.pop(tp.partition, None)
                elif tp.topic == self.brand_topic.get_topic_name():
                    self.brands.pop(tp.partition, None)
                elif tp.topic == self.alerts_topic.get_topic_name():
                    service = self.alerting.pop(tp.partition, None)
                    self._alerting_saved.pop(tp.partition, None)
                    if service is not None:
                        await service.notifier.aclose()

    def assigned_post_partitions(self) -> set[int]:
        """Posts partitions this worker processes now; empty while rebalancing or recovering tables."""
        if not self.readiness()["ready"]:
            return set()
        topic = self.settings.kafka.posts_topic
        return {tp.partition for tp in self.app.consumer.assignment() if tp.topic == topic}

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
        return {**self.totals.to_dict(), "delivered_incident_events": self.delivered}

    def _partition_state(self, states: dict[int, PartitionState], partition: int) -> PartitionState:
        state = states.get(partition)
        if state is None:
            pipeline = Pipeline(self.settings, self.analyzer, resolver=self.resolver)
            self.observability.attach(pipeline)
            state = states[partition] = PartitionState(pipeline)
            self._load_recovered_keys(states, partition, state)
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
        for partition, partition_events in sorted(by_partition.items()):
            state = self._partition_state(self.cascades, partition)
            records = [
                RawRecord(
                    value=event.value if isinstance(event.value, bytes) else bytes(event.value or b""),
                    partition=partition,
                    offset=event.message.offset,
                    source=f"{event.message.topic}/{partition}@{event.message.offset}",
                )
                for event in partition_events
            ]
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
            with self.cascade_table.writing_for(partition):
                self._write_cascade_states(state)
            await self.make_durable()
            self.totals.add(ingested.accounting)
            self.metrics.record(self.settings.kafka.posts_topic, ingested.accounting)
            self.metrics.batch_size.observe(len(records))
            for post in ingested.posts:
                self.metrics.processing_latency.observe(max(0.0, now_s - post.created_at_s))
            if state.pipeline.watermark.value_s is not None:
                self.metrics.watermark.labels(self.settings.kafka.posts_topic, str(partition)).set(
                    state.pipeline.watermark.value_s
                )
        self.last_progress_monotonic = time.monotonic()

    def _cascade_applied(self, state: PartitionState, post: Any, record: RawRecord) -> bool:
        self._load_cascade_key(state, post.root_id)
        return record.offset <= state.applied.get(post.root_id, -1)

    def _load_cascade_key(self, state: PartitionState, root_id: str) -> None:
        """Bring a cascade's durable state (table, else warm start) into the partition's pipeline, once."""
        if root_id in state.loaded_keys:
            return
        state.loaded_keys.add(root_id)
        stored = self.cascade_table.get(root_id.encode())
        if stored:
            self._restore(state, stored, cascade_key=root_id)
        elif self.warm_start is not None:
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

    def _write_cascade_states(self, state: PartitionState) -> None:
        roots, _ = state.pipeline.engine.drain_dirty()
        roots |= self._mark_incident_owners(state, brand_side=False)
        for root_id in roots:
            engine_state = state.pipeline.engine.cascade_state(root_id)
            incidents = self._owned_incidents(state, root_id)
            if engine_state is None and not incidents:
                state.applied.pop(root_id, None)
                state.loaded_keys.discard(root_id)
                if self.cascade_table.get(root_id.encode()) is not None:
                    del self.cascade_table[root_id.encode()]
                continue
            brands = state.pipeline.cascade_brands(root_id)
            self.cascade_table[root_id.encode()] = {
                "v": STATE_VERSION,
                "applied": state.applied.get(root_id, -1),
                "brands": list(brands) if brands is not None else None,
                "engine": engine_state,
                "incidents": incidents,
            }

    # -- brand side ------------------------------------------------------------------------------------
    async def _send_brand_observations(
        self,
        posts: Sequence[EnrichedPost],
        records: Sequence[RawRecord],
        partition: int,
        watermark_s: float | None,
    ) -> None:
        for post, record in zip(posts, records, strict=True):
            for brand in post.brands:
                if brand == "other":
                    continue
                payload = {
                    "brand": brand,
                    "source_partition": record.partition,
                    "source_offset": record.offset,
                    "post": enriched_to_dict(post),
                }
                await self.brand_topic.send(
                    key=brand.encode("utf-8"), value=dump_line(payload).encode("utf-8")
                )
        if watermark_s is not None:
            # Every brand partition learns how far this source partition has got (see streams/alignment.py).
            heartbeat = dump_line(
                {"heartbeat": True, "source_partition": partition, "watermark_s": watermark_s}
            ).encode("utf-8")
            for brand_partition in range(self.settings.kafka.partitions):
                await self.brand_topic.send(value=heartbeat, partition=brand_partition)

    async def on_brand_event(self, event: Any) -> None:
        """Observations and heartbeats in; observations applied in aligned event-time order; acks deferred."""
        partition = event.message.partition
        state = self._partition_state(self.brands, partition)
        message = json.loads(event.value)
        source = int(message["source_partition"])
        if message.get("heartbeat"):
            state.merge.advance(source, float(message["watermark_s"]), time.monotonic())
            state.pending_acks.append(event)
        elif self._brand_applied(state, message["brand"], source, message["source_offset"]):
            state.pending_acks.append(event)  # applied before a crash or rebalance: skip, but ack
        else:
            state.merge.add(source, float(message["post"]["t"]), (event, message), time.monotonic())
        await self._release_brand_observations(partition, state)

    async def _release_brand_observations(self, partition: int, state: PartitionState) -> None:
        for released_event, observation in state.merge.release(time.monotonic()):
            await self._apply_brand_observation(state, observation)
            state.pending_acks.append(released_event)
        if len(state.pending_acks) >= self.settings.kafka.batch_max_posts:
            await self._flush_brand_partition(partition, state)

    async def _apply_brand_observation(self, state: PartitionState, observation: dict[str, Any]) -> None:
        brand = observation["brand"]
        post = enriched_from_dict(observation["post"])
        state.pipeline.watermark.observe(post.created_at_s)
        events = state.pipeline.tick(state.pipeline.watermark.value_s)
        events += state.pipeline.detect_brands_for(brand, post)
        state.applied[brand][str(observation["source_partition"])] = observation["source_offset"]
        await self._send_incident_events(events)

    async def flush_brand_partitions(self) -> None:
        for partition, state in list(self.brands.items()):
            await self._release_brand_observations(partition, state)  # sources may have gone idle
            if state.pending_acks:
                await self._flush_brand_partition(partition, state)

    async def _flush_brand_partition(self, partition: int, state: PartitionState) -> None:
        """State first (its changelog is flushed before any commit), then the acks that allow the commit."""
        with self.brand_table.writing_for(partition):
            self._write_brand_states(state)
        await self.make_durable()
        acks, state.pending_acks = state.pending_acks, []
        for event in acks:
            event.ack()

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
        stored = self.brand_table.get(brand.encode())
        if stored:
            self._restore(state, stored, brand_key=brand)
        elif self.warm_start is not None:
            self.warm_start.load_brand(state.pipeline.engine, brand)

    def _write_brand_states(self, state: PartitionState) -> None:
        _, brands = state.pipeline.engine.drain_dirty()
        brands |= self._mark_incident_owners(state, brand_side=True)
        for brand in brands:
            self.brand_table[brand.encode()] = {
                "v": STATE_VERSION,
                "applied": state.applied.get(brand, {}),
                "engine": state.pipeline.engine.brand_state(brand),
                "incidents": self._owned_incidents(state, brand),
            }

    # -- outputs ---------------------------------------------------------------------------------------
    async def _send_dead_letters(self, dead_letters: Sequence[Any]) -> None:
        for dead in dead_letters:
            headers = [
                ("reason", dead.reason.encode()),
                ("detail", dead.detail.encode("utf-8", "replace")),
                ("source", dead.record.source.encode()),
            ]
            await self.dead_letter_topic.send(value=dead.record.value, headers=headers)

    async def _send_incident_events(self, events: Sequence[IncidentEvent]) -> None:
        for event in events:
            self.observability.on_incident_event(event)
            await self.alerts_topic.send(
                key=event.dedup_key.encode("utf-8"), value=dump_line(event.to_dict()).encode("utf-8")
            )

    async def make_durable(self) -> None:
        """Wait until every state write and send of this batch is acknowledged by Kafka.

        Called before a batch's events are acked (and so may be committed). Faust's own pre-commit flush
        is not enough: its send buffer gives up waiting after 0.1 s and returns with writes still queued,
        and a crash then loses state updates whose offsets were committed (seen in the kill -9 test).
        """
        producer = self.app.producer
        while producer.buffer.size:
            await producer.buffer.flush()
        await producer.flush()

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
            )
            stored = self.alerting_table.get(f"partition-{partition}".encode())
            if stored and stored.get("v") == STATE_VERSION:
                service.load_state(stored["service"])
            self.alerting[partition] = service
        return service

    def _save_alerting(self, partition: int, service: AlertingService) -> None:
        state = service.state()
        encoded = dump_line(state)
        if self._alerting_saved.get(partition) != encoded:
            with self.alerting_table.writing_for(partition):
                self.alerting_table[f"partition-{partition}".encode()] = {
                    "v": STATE_VERSION,
                    "service": state,
                }
            self._alerting_saved[partition] = encoded

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
        for partition, service in list(self.alerting.items()):
            await service.tick()
            self._save_alerting(partition, service)

    async def submit_ack(self, ack: AckEvent) -> None:
        """A person acted (Slack button, email link, PagerDuty, CLI): route it to the incident's owner."""
        await self.acks_topic.send(
            key=ack_owner_key(ack).encode("utf-8"), value=dump_line(ack.to_dict()).encode("utf-8")
        )

    async def on_ack(self, partition: int, ack: AckEvent) -> None:
        """Acks are keyed like the incident's state (root_id or brand), so this partition owns it."""
        _, _, root = ack.dedup_key.split("/", 2)
        if root == "*":
            state = self._partition_state(self.brands, partition)
            table = self.brand_table
            self._load_brand_key(state, ack.dedup_key.split("/", 1)[0])
        else:
            state = self._partition_state(self.cascades, partition)
            table = self.cascade_table
            self._load_cascade_key(state, root)
        events = state.pipeline.tracker.apply_ack(ack)
        await self._send_incident_events(events)
        with table.writing_for(partition):
            if root == "*":
                self._write_brand_states(state)
            else:
                self._write_cascade_states(state)

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


def ack_owner_key(ack: AckEvent) -> str:
    """The key an ack travels under: the cascade's root_id, or the brand for a brand-wide incident."""
    brand, _, root = ack.dedup_key.split("/", 2)
    return brand if root == "*" else root

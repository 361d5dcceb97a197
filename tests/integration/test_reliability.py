"""Crashes, failover, broker restarts and bad reloads, against the real broker and a real HTTP receiver.

Each test runs `crisiswatch worker` processes with the short Faust test profile and asserts behaviour:
nothing lost (every planted reaction applied to the cascade state exactly once), nothing paged twice
(one firing event id per incident; the webhook receiver never sees an event id twice).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import planted
import pytest
from kafka_broker import create_topic
from worker_process import WorkerConfig, WorkerProcess, free_port, produce, read_topic

pytestmark = pytest.mark.integration

REACTIONS = len(planted.planted_surge(0)) - 1


class Receiver:
    """A webhook receiver on 127.0.0.1 that records every request's event-id header and body."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with owner.lock:
                    owner.requests.append((self.headers.get("X-Crisiswatch-Event-Id", ""), json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def event_ids(self) -> list[str]:
        with self.lock:
            return [event_id for event_id, _ in self.requests]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    hook.thread.start()
    try:
        yield hook
    finally:
        hook.server.shutdown()
        hook.server.server_close()


def alerting_to(receiver: Receiver) -> dict[str, Any]:
    return {
        "alerting": {
            "receivers": [{"name": "hook", "webhook": {"url": receiver.url}}],
            "route": {
                "receiver": "hook",
                "group_wait_s": 0,
                "group_wait_critical_s": 0,
                "group_by": ["incident_id"],
            },
        }
    }


def committed_everything(bootstrap: str, config: WorkerConfig) -> bool:
    """The group has committed the end of every partition of every topic it consumes (posts, brands, outbox)."""
    return not uncommitted(bootstrap, config)


def uncommitted(bootstrap: str, config: WorkerConfig) -> list[tuple[str, int, int | None, int]]:
    """(topic, partition, committed, end) for every partition the group has not committed to its end."""
    from kafka import KafkaConsumer, TopicPartition
    from kafka.admin import KafkaAdminClient

    topics = [config.posts_topic, f"{config.app_id}-brand-observations", config.alerts_topic]
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        partitions = [TopicPartition(topic, p) for topic in topics for p in range(config.partitions)]
        committed = admin.list_group_offsets({config.app_id: partitions}).get(config.app_id, {})
        ends = consumer.end_offsets(partitions)
        lagging = []
        for tp in partitions:
            done = committed.get(tp)
            if ends[tp] != 0 and (done is None or done.offset < ends[tp]):
                lagging.append((tp.topic, tp.partition, None if done is None else done.offset, ends[tp]))
        return lagging
    finally:
        consumer.close()
        admin.close()


def wait_until(predicate: Any, timeout_s: float, what: str, workers: list[WorkerProcess] = ()) -> None:  # type: ignore[assignment]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    logs = "\n\n".join(f"--- {w.name}\n{w.log_tail(30)}" for w in workers)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}\n{logs}")


def latest_cascade_state(bootstrap: str, config: WorkerConfig, root_id: str) -> dict[str, Any]:
    """The cascade's state as the changelog holds it: what a recovering worker restores."""
    messages = read_topic(bootstrap, f"{config.app_id}-cascade-state-changelog")
    values = [m.value for m in messages if m.key == root_id.encode()]
    assert values, f"no changelog entry for {root_id}"
    return json.loads(values[-1])


def surge_events(bootstrap: str, config: WorkerConfig) -> list[dict[str, Any]]:
    events = [json.loads(m.value) for m in read_topic(bootstrap, config.alerts_topic)]
    return [e for e in events if e["root_id"] == planted.SURGE_ROOT and e["detector"] == "forward_surge"]


def reaction_counts(engine: dict[str, Any]) -> dict[str, int]:
    """Forwards, comments, late and duplicate reactions as the stored cascade state (version 3, the only one
    written) records them; zero duplicates are left out of it."""
    forwards, comments, _, late = engine["forward"]["counts"]
    duplicates = engine.get("duplicates", 0)
    return {"forwards": forwards, "comments": comments, "late": late, "duplicates": duplicates}


LOG_KEYS = (
    "generation id",
    "Seek stream",
    "new owner",
    "commits of",
    "Discarded commit",
    "Crashed",
    "ERROR",
    "revoked",
    "state created",
    "Executing _on_partitions",
    "counted late",
    "not delivered",
)


def key_log_lines(workers: list[WorkerProcess]) -> list[str]:
    """Rebalances, recoveries, skipped records and errors from the workers' logs, for failure reports."""
    return [
        f"{worker.name}: {line[:200]}"
        for worker in workers
        for line in worker.log_tail(20000).splitlines()
        if any(key in line for key in LOG_KEYS)
    ][-80:]


def check_applied_once(bootstrap: str, config: WorkerConfig, workers: Sequence[WorkerProcess] = ()) -> None:
    """Every planted reaction applied to the cascade state exactly once, read back from the changelog.

    A shortfall was an intermittent bug: around a recovery Faust moved past records it never delivered
    (the worker now reads such records directly, streams/app.py `_with_undelivered`). On failure the
    report has the changelog history (applied offset and counts per write) and the workers' log lines.
    """
    engine = latest_cascade_state(bootstrap, config, planted.SURGE_ROOT)["engine"]
    counts = reaction_counts(engine)
    applied = counts["forwards"] + counts["comments"]
    history = [
        (m.partition, m.offset, v["applied"], reaction_counts(v["engine"]) if v.get("engine") else None)
        for m in read_topic(bootstrap, f"{config.app_id}-cascade-state-changelog")
        if m.key == planted.SURGE_ROOT.encode() and (v := json.loads(m.value))
    ]
    assert applied <= REACTIONS, ("a redelivered post was applied twice", history)
    assert applied == REACTIONS, (
        f"{applied} of {REACTIONS} applied; history={history} log={key_log_lines(list(workers))}"
    )


class Supervised:
    """The supervisor's part (systemd, Kubernetes, the compose restart policy): a worker that exits with
    the watchdog's status 3 (no progress with input waiting, or a recovery without progress) is started
    again under the same config.
    Any other exit fails the test. `restarts` tells how often that was needed."""

    def __init__(self, config: WorkerConfig, name: str) -> None:
        self.config = config
        self.name = name
        self.restarts = 0
        self.reasons: list[str] = []  # the watchdog's log line of each exit: which stall it saw
        self.worker = WorkerProcess(config, name).start()

    def poll(self) -> WorkerProcess:
        process = self.worker.process
        if process is not None and process.poll() is not None:
            assert process.returncode == 3, self.worker.log_tail()
            log = self.worker.log_path.read_text(errors="replace").splitlines()
            self.reasons += [line for line in log if "exiting for a restart" in line][-1:]
            self.restarts += 1
            self.worker = WorkerProcess(self.config, f"{self.name}{self.restarts}").start()
        return self.worker


def wait_committed(
    bootstrap: str,
    config: WorkerConfig,
    what: str,
    workers: list[WorkerProcess],
    supervised: Supervised | None = None,
) -> None:
    """Wait until the group committed all its input (restarting `supervised` when its watchdog exits it).

    Stalls seen before: an agent that raised left its record unacknowledged (now dead-lettered as
    processing_error), and records Faust never delivered after a rebalance held commits back (now sought
    back to by the commit-gap repair). On failure the report has the uncommitted partitions, the workers'
    /stats (flow state), their rebalance log lines and a dump of every asyncio task (SIGUSR1).
    """

    def done() -> bool:
        if supervised is not None:
            workers[:] = [supervised.poll()]
        return committed_everything(bootstrap, config)

    try:
        wait_until(done, float(os.environ.get("CW_COMMIT_WAIT_S", 240)), what, workers)
    except AssertionError as error:
        stats = [worker.stats() for worker in workers if worker.alive()]
        for worker in workers:
            if worker.alive() and worker.process is not None:
                worker.process.send_signal(signal.SIGUSR1)  # the worker logs every task's stack
        time.sleep(1.0)
        dumps = [
            line
            for worker in workers
            for line in worker.log_tail(400).splitlines()
            if "task " in line or line.startswith("  File") or line.startswith("    ")
        ]
        lagging = uncommitted(bootstrap, config)
        raise AssertionError(
            f"commits stalled: uncommitted={lagging} stats={stats} log={key_log_lines(workers)} "
            f"tasks={dumps[-150:]} {str(error)[:2000]}"
        ) from None


def split_stream() -> tuple[list[bytes], list[bytes]]:
    """The stream cut in the middle of the planted surge."""
    encoded = planted.encode(planted.stream())
    surge_positions = [i for i, raw in enumerate(encoded) if planted.SURGE_ROOT.encode() in raw]
    cut = surge_positions[len(surge_positions) // 2]
    return encoded[:cut], encoded[cut:]


def test_kill_9_mid_surge_recovers_state_exactly_once(
    kafka_bootstrap: str, tmp_path: Path, receiver: Receiver
) -> None:
    config = WorkerConfig(
        bootstrap=kafka_bootstrap,
        directory=tmp_path,
        brands=planted.BRAND_CONFIG,
        extra={**alerting_to(receiver), "kafka": {"watchdog_stall_s": 30}},
    )
    create_topic(kafka_bootstrap, config.posts_topic, partitions=config.partitions)
    first, second = split_stream()
    worker = WorkerProcess(config, "first").start()
    try:
        worker.wait_ready()
        produce(kafka_bootstrap, config.posts_topic, first)
        worker.wait_for(lambda s: s.get("consumed", 0) >= len(first), what="first half consumed")
        time.sleep(0.3)  # let a state write be in flight: the kill may land anywhere
    finally:
        worker.kill()
    produce(kafka_bootstrap, config.posts_topic, second)
    # The restarted worker runs under a supervisor, as deployed: once (2026-11-25, in a fresh-clone test run)
    # Faust delivered nothing after its recovery, every input partition active and unpaused, and the
    # watchdog exited it after 120 s with input waiting. That is the failover test's known stall; the
    # watchdog's exit and a restart are the remedy, and the state must still be applied exactly once.
    restarted = Supervised(config, "second")
    try:
        restarted.worker.wait_ready()
        wait_committed(kafka_bootstrap, config, "all input committed", [restarted.worker], restarted)
        events = surge_events(kafka_bootstrap, config)
        firing_ids = {e["id"] for e in events if e["status"] == "firing"}
        assert len(firing_ids) == 1, events
        check_applied_once(kafka_bootstrap, config, [worker, restarted.worker])
        wait_until(
            lambda: len(receiver.event_ids()) > 0, 30, "a notification at the receiver", [restarted.worker]
        )
        print(f"kill -9: {restarted.restarts} watchdog restart(s) after the kill: {restarted.reasons}")
    finally:
        assert restarted.worker.terminate() == 0, restarted.worker.log_tail()
    # The receiver's idempotency key is the notification id: none arrived twice.
    duplicates = [event_id for event_id, count in Counter(receiver.event_ids()).items() if count > 1]
    assert not duplicates, duplicates


def incident_set(events: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
    return {(e["brand"], e["detector"], e["root_id"], e["status"], e["severity"]) for e in events}


def test_failover_between_two_workers_gives_the_healthy_incidents(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    # Long enough after the surge for every incident to have settled (resolved) in both runs: the order in
    # which brand observations from different partitions interleave is not fixed, the end state is.
    encoded = planted.encode(planted.stream(duration_s=4 * 3600.0))

    healthy_config = WorkerConfig(
        bootstrap=kafka_bootstrap, directory=tmp_path / "healthy", brands=planted.BRAND_CONFIG
    )
    healthy_config.directory.mkdir()
    create_topic(kafka_bootstrap, healthy_config.posts_topic, partitions=4)
    healthy = WorkerProcess(healthy_config, "healthy").start()
    try:
        healthy.wait_ready()
        produce(kafka_bootstrap, healthy_config.posts_topic, encoded)
        wait_until(
            lambda: committed_everything(kafka_bootstrap, healthy_config),
            240,
            "healthy run committed",
            [healthy],
        )
        time.sleep(2)
    finally:
        healthy.terminate()
    expected = incident_set(
        [json.loads(m.value) for m in read_topic(kafka_bootstrap, healthy_config.alerts_topic)]
    )
    assert any(key[2] == planted.SURGE_ROOT for key in expected)

    # The survivor runs under a supervisor: about one run in ten, Faust fetches nothing from the partitions
    # it takes over (not root-caused; bench/results/load.md); the watchdog exits it and it is restarted. A
    # table recovery after the rebalance that reads nothing (seen while trying deferred acks,
    # bench/results/perf.md) is caught the same way.
    config = WorkerConfig(
        bootstrap=kafka_bootstrap,
        directory=tmp_path / "pair",
        brands=planted.BRAND_CONFIG,
        extra={"kafka": {"watchdog_stall_s": 30}},
    )
    config.directory.mkdir()
    create_topic(kafka_bootstrap, config.posts_topic, partitions=4)
    survivor = Supervised(config, "one")
    one = survivor.worker
    two = WorkerProcess(config, "two").start()
    try:
        one.wait_ready()
        two.wait_ready()
        wait_until(
            lambda: (
                one.get_json("/ready")[1]["assigned_partitions"] > 0
                and two.get_json("/ready")[1]["assigned_partitions"] > 0
            ),
            60,
            "both workers assigned",
            [one, two],
        )
        half = len(encoded) // 2
        produce(kafka_bootstrap, config.posts_topic, encoded[:half])
        wait_until(
            lambda: one.stats().get("consumed", 0) + two.stats().get("consumed", 0) >= half,
            60,
            "first half consumed",
            [one, two],
        )
        two.kill()
        produce(kafka_bootstrap, config.posts_topic, encoded[half:])
        wait_committed(kafka_bootstrap, config, "survivor committed everything", [one], survivor)
        time.sleep(2)
        check_applied_once(kafka_bootstrap, config, [survivor.worker, two])
        print(f"failover: {survivor.restarts} watchdog restart(s) of the survivor: {survivor.reasons}")
    finally:
        survivor.worker.terminate()
        two.kill()
    got_events = [json.loads(m.value) for m in read_topic(kafka_bootstrap, config.alerts_topic)]
    got = incident_set(got_events)
    assert {k for k in got if k[3] == "firing"} == {k for k in expected if k[3] == "firing"}
    assert got == expected
    firing_ids = Counter(e["incident_id"] for e in got_events if e["status"] == "firing")
    assert all(count == 1 for count in firing_ids.values()), firing_ids


def test_broker_restart_resumes_without_loss(own_kafka_broker: Any, tmp_path: Path) -> None:
    bootstrap = own_kafka_broker.bootstrap
    config = WorkerConfig(
        bootstrap=bootstrap,
        directory=tmp_path,
        brands=planted.BRAND_CONFIG,
        extra={"kafka": {"watchdog_stall_s": 15}},
    )
    create_topic(bootstrap, config.posts_topic, partitions=config.partitions)
    first, second = split_stream()
    supervised = Supervised(config, "w")
    try:
        supervised.worker.wait_ready()
        produce(bootstrap, config.posts_topic, first)
        supervised.worker.wait_for(lambda s: s.get("consumed", 0) >= len(first), what="first half")
        own_kafka_broker.stop()
        time.sleep(3)
        own_kafka_broker.start()
        restarted_at = time.monotonic()
        produce(bootstrap, config.posts_topic, second)

        def resumed() -> bool:
            supervised.poll()
            try:
                return committed_everything(bootstrap, config)
            except Exception:  # noqa: BLE001 - the broker may still be electing leaders
                return False

        wait_until(resumed, 240, "all input committed after the broker restart", [supervised.worker])
        recovery_s = time.monotonic() - restarted_at
        assert surge_events(bootstrap, config), "the surge still fires"
        check_applied_once(bootstrap, config, [supervised.worker])
        print(
            f"resumed {recovery_s:.1f} s after the broker came back, {supervised.restarts} watchdog restart(s)"
        )
    finally:
        supervised.worker.terminate()


def test_bad_config_on_reload_is_refused_and_the_old_one_keeps_running(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    config = WorkerConfig(bootstrap=kafka_bootstrap, directory=tmp_path, brands=planted.BRAND_CONFIG)
    create_topic(kafka_bootstrap, config.posts_topic, partitions=config.partitions)
    worker = WorkerProcess(config).start()
    try:
        worker.wait_ready()
        good = worker.config_path.read_text()
        worker.config_path.write_text(good + "\nalerting:\n  route: {receiver: nobody}\n")
        assert worker.process is not None
        worker.process.send_signal(signal.SIGHUP)
        wait_until(
            lambda: "config reload refused" in worker.log_path.read_text(errors="replace"),
            30,
            "the refusal in the log",
            [worker],
        )
        log = worker.log_path.read_text(errors="replace")
        assert str(worker.config_path) in log and "alerting.route" in log
        posts = planted.encode(planted.normal_traffic(5, planted.START_S, 600, 6))
        produce(kafka_bootstrap, config.posts_topic, posts)
        worker.wait_for(
            lambda s: s.get("consumed", 0) >= len(posts), what="processing after the refused reload"
        )
        assert worker.get_json("/ready")[0] == 200
        worker.config_path.write_text(good)
        worker.process.send_signal(signal.SIGHUP)
        wait_until(
            lambda: "config reloaded" in worker.log_path.read_text(errors="replace"),
            30,
            "the reload",
            [worker],
        )
    finally:
        assert worker.terminate() == 0


def test_unusable_state_directory_fails_at_start_with_a_clear_error(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    config = WorkerConfig(
        bootstrap=kafka_bootstrap, directory=tmp_path, extra={"kafka": {"data_dir": str(blocker / "data")}}
    )
    worker = WorkerProcess(config).start()
    assert worker.process is not None
    assert worker.process.wait(60) == 2
    log = worker.log_path.read_text(errors="replace")
    assert "kafka.data_dir" in log and str(blocker / "data") in log and "writable directory" in log


def test_http_endpoints_listen_on_loopback_only(kafka_bootstrap: str, tmp_path: Path) -> None:
    config = WorkerConfig(bootstrap=kafka_bootstrap, directory=tmp_path)
    worker = WorkerProcess(config).start()
    try:
        worker.wait_ready()
        listening = [line.split() for line in Path("/proc/net/tcp").read_text().splitlines()[1:]]
        ours = [
            fields[1]
            for fields in listening
            if fields[3] == "0A" and int(fields[1].split(":")[1], 16) == worker.port
        ]
        assert ours == [f"0100007F:{worker.port:04X}"], ours  # 127.0.0.1 only
    finally:
        worker.terminate()


def test_watchdog_reads_end_offsets_from_the_real_broker(kafka_bootstrap: str) -> None:
    from kafka_broker import unique_topic

    from crisiswatch.streams.watchdog import ProgressWatchdog, kafka_end_offsets

    topic = create_topic(kafka_bootstrap, unique_topic("watchdog"), partitions=2)
    produce(kafka_bootstrap, topic, [b'{"id": "a"}', b'{"id": "b"}', b'{"id": "c"}'])
    ends = kafka_end_offsets({"bootstrap_servers": [kafka_bootstrap]}, topic)()
    assert ends is not None and sum(ends.values()) == 3
    clock = [0.0]
    watchdog = ProgressWatchdog(
        10.0, kafka_end_offsets({"bootstrap_servers": [kafka_bootstrap]}, topic), monotonic=lambda: clock[0]
    )
    assert watchdog.stalled_partitions({0, 1}) == []
    clock[0] = 11.0
    assert watchdog.stalled_partitions({0, 1}) == sorted(p for p, end in ends.items() if end > 0)
    assert kafka_end_offsets({"bootstrap_servers": ["127.0.0.1:1"]}, topic)() is None


def test_records_an_agent_fails_on_are_dead_lettered_and_commits_go_on(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """A record no agent can process (here: foreign bytes on the internal brand topic and on the outbox) is
    kept on the dead-letter topic with reason processing_error and counted; its partition keeps committing."""
    config = WorkerConfig(bootstrap=kafka_bootstrap, directory=tmp_path, brands=planted.BRAND_CONFIG)
    create_topic(kafka_bootstrap, config.posts_topic, partitions=config.partitions)
    worker = WorkerProcess(config).start()
    try:
        worker.wait_ready()
        foreign_brand = b'{"brand": "Acme Parcel", "source_partition": 0, "observations": "not a list"}'
        foreign_alert = b"not an incident event"
        produce(kafka_bootstrap, f"{config.app_id}-brand-observations", [foreign_brand])
        produce(kafka_bootstrap, config.alerts_topic, [foreign_alert])
        posts = planted.encode(planted.stream(duration_s=1800.0))
        produce(kafka_bootstrap, config.posts_topic, posts)
        worker.wait_for(lambda s: s.get("consumed", 0) >= len(posts), what="posts consumed")
        wait_until(
            lambda: committed_everything(kafka_bootstrap, config), 120, "all input committed", [worker]
        )
        dead = {m.value: dict(m.headers) for m in read_topic(kafka_bootstrap, config.dead_letter_topic)}
        for value, agent, topic in [
            (foreign_brand, "brands", f"{config.app_id}-brand-observations"),
            (foreign_alert, "notify", config.alerts_topic),
        ]:
            assert value in dead, f"{agent}: not on the dead-letter topic"
            assert dead[value]["reason"] == b"processing_error"
            assert dead[value]["detail"].decode().startswith(f"{agent}: ")
            assert dead[value]["source"].decode().startswith(topic + "/")
        _, metrics = worker.get_text("/metrics")
        for agent in ("brands", "notify"):
            assert f'crisiswatch_processing_errors_total{{agent="{agent}"}} 1.0' in metrics
        stats = worker.stats()
        assert stats["processed"] == len(posts)
    finally:
        assert worker.terminate() == 0, worker.log_tail()

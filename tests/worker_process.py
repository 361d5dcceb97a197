"""Run `crisiswatch worker` as a real process for integration tests, and read what it wrote to Kafka.

Every process started here is stopped at teardown (and by atexit as a backstop).
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# The short test profile: failover and recovery take seconds, not the production defaults' minutes.
FAST_KAFKA = {
    "session_timeout_s": 6.0,
    "heartbeat_interval_s": 1.0,
    "commit_interval_s": 0.5,
    "batch_max_wait_s": 0.02,
}

_live: set[subprocess.Popen[bytes]] = set()


@atexit.register
def _kill_leftovers() -> None:
    for process in list(_live):
        if process.poll() is None:
            process.kill()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class WorkerConfig:
    bootstrap: str
    directory: Path
    partitions: int = 4
    brands: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:10])

    @property
    def app_id(self) -> str:
        return f"cw-test-{self.suffix}"

    @property
    def posts_topic(self) -> str:
        return f"posts-{self.suffix}"

    @property
    def alerts_topic(self) -> str:
        return f"alerts-{self.suffix}"

    @property
    def dead_letter_topic(self) -> str:
        return f"dlq-{self.suffix}"

    def write(self, port: int, name: str = "config.yaml") -> Path:
        document: dict[str, Any] = {
            "kafka": {
                "bootstrap_servers": self.bootstrap,
                "app_id": self.app_id,
                "posts_topic": self.posts_topic,
                "alerts_topic": self.alerts_topic,
                "dead_letter_topic": self.dead_letter_topic,
                "partitions": self.partitions,
                "data_dir": str(self.directory / f"data-{port}"),
                **FAST_KAFKA,
            },
            "metrics": {"port": port},
            "brands": self.brands,
        }
        for section, values in self.extra.items():
            document.setdefault(section, {}).update(values)
        path = self.directory / name
        path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
        return path


class WorkerProcess:
    def __init__(self, config: WorkerConfig, name: str = "worker") -> None:
        self.config = config
        self.name = name
        self.port = free_port()
        self.config_path = config.write(self.port, f"{name}.yaml")
        self.alerts_jsonl = config.directory / f"{name}-alerts.jsonl"
        self.log_path = config.directory / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115
        command = [
            sys.executable,
            "-m",
            "crisiswatch.streams.cli",
            "worker",
            "--config",
            str(self.config_path),
            "--alerts-jsonl",
            str(self.alerts_jsonl),
        ]
        self.process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,
        )
        _live.add(self.process)
        return self

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def get_json(self, path: str, timeout_s: float = 2.0) -> tuple[int, Any]:
        try:
            with urllib.request.urlopen(self.url(path), timeout=timeout_s) as response:  # noqa: S310
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def get_text(self, path: str, timeout_s: float = 2.0) -> tuple[int, str]:
        with urllib.request.urlopen(self.url(path), timeout=timeout_s) as response:  # noqa: S310
            return response.status, response.read().decode("utf-8")

    def wait_ready(self, timeout_s: float = 90.0) -> None:
        self._wait(lambda: self._ready(), timeout_s, "ready")

    def _ready(self) -> bool:
        try:
            status, body = self.get_json("/ready")
        except OSError:
            return False
        return status == 200 and bool(body.get("ready"))

    def stats(self) -> dict[str, Any]:
        return dict(self.get_json("/stats")[1])

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], timeout_s: float = 120.0, what: str = "condition"
    ) -> dict[str, Any]:
        result: dict[str, Any] = {}

        def check() -> bool:
            nonlocal result
            try:
                result = self.stats()
            except OSError:
                return False
            return predicate(result)

        self._wait(check, timeout_s, what)
        return result

    def _wait(self, check: Callable[[], bool], timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(
                    f"{self.name} exited with {self.process.returncode} while waiting for {what}:\n{self.log_tail()}"
                )
            if check():
                return
            time.sleep(0.25)
        raise AssertionError(
            f"{self.name}: timed out after {timeout_s} s waiting for {what}:\n{self.log_tail()}"
        )

    def terminate(self, timeout_s: float = 30.0) -> int:
        """SIGTERM: the worker drains, commits and exits."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        _live.discard(self.process)
        return int(self.process.returncode)

    def kill(self) -> None:
        assert self.process is not None
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        _live.discard(self.process)

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def delivered_events(self) -> list[dict[str, Any]]:
        if not self.alerts_jsonl.exists():
            return []
        return [
            json.loads(line)
            for line in self.alerts_jsonl.read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]


def read_topic(bootstrap: str, topic: str, *, idle_timeout_s: float = 5.0) -> list[Any]:
    """Every message currently in `topic` (kafka-python ConsumerRecords), read from the beginning."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        consumer_timeout_ms=int(idle_timeout_s * 1000),
    )
    try:
        return list(consumer)
    finally:
        consumer.close()


def produce(bootstrap: str, topic: str, values: Iterable[bytes]) -> int:
    from crisiswatch.streams.produce import send_messages

    return send_messages(bootstrap, topic, values)


# -- sustained load and receiver outages (issue 9) ------------------------------------------------------
def proc_rss_mb(pid: int) -> float:
    """Resident memory of a process (VmRSS in /proc/<pid>/status), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise ValueError(f"no VmRSS for {pid}")


class LagProbe:
    """Consumer lag of a group: end offset minus committed offset, summed per topic (one client pair, reused)."""

    def __init__(self, bootstrap: str) -> None:
        from kafka import KafkaConsumer
        from kafka.admin import KafkaAdminClient

        self.admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="cw-lag-probe")
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap, client_id="cw-lag-probe")

    def lag(self, group: str, topics: Iterable[str]) -> dict[str, int]:
        """{topic: lag}; a partition the group never committed counts whole (its end offset)."""
        from kafka import TopicPartition

        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(self.consumer.partitions_for_topic(topic) or ())
        ]
        ends = self.consumer.end_offsets(partitions)
        committed = self.admin.list_group_offsets({group: partitions}).get(group, {})
        result: dict[str, int] = {}
        for tp in partitions:
            mark = committed.get(tp)
            done = mark.offset if mark is not None and mark.offset >= 0 else 0
            result[tp.topic] = result.get(tp.topic, 0) + max(0, ends[tp] - done)
        return result

    def close(self) -> None:
        self.consumer.close()
        self.admin.close()


def worker_topics(config: WorkerConfig) -> list[str]:
    """Every topic the worker's consumer group reads: posts, brand observations, the outbox."""
    return [config.posts_topic, f"{config.app_id}-brand-observations", config.alerts_topic]


class WebhookReceiver:
    """A real HTTP webhook receiver on 127.0.0.1 whose answer is scripted: `status` (200, 500, 429, ...) and
    `retry_after` (the Retry-After header). Until `listen()` nothing listens on `port` (connection refused).

    Every request is recorded as (wall time, status answered, X-Crisiswatch-Event-Id, JSON body).
    """

    def __init__(self, port: int | None = None) -> None:
        import threading

        self.port = port or free_port()
        self.status = 200
        self.retry_after: str | None = None
        self.requests: list[tuple[float, int, str, dict[str, Any]]] = []
        self.lock = threading.Lock()
        self._server: Any = None
        self._thread: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def listen(self) -> WebhookReceiver:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with owner.lock:
                    status, retry_after = owner.status, owner.retry_after
                    owner.requests.append(
                        (
                            time.time(),
                            status,
                            self.headers.get("X-Crisiswatch-Event-Id", ""),
                            json.loads(body),
                        )
                    )
                self.send_response(status)
                if status == 429 and retry_after is not None:
                    self.send_header("Retry-After", retry_after)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def answer(self, status: int, retry_after: str | None = None) -> None:
        with self.lock:
            self.status, self.retry_after = status, retry_after

    def answered(self, status: int | None = None) -> list[tuple[float, int, str, dict[str, Any]]]:
        """Requests answered with `status` (2xx when None)."""
        with self.lock:
            return [r for r in self.requests if (200 <= r[1] < 300 if status is None else r[1] == status)]

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def metric_values(text: str, name: str) -> dict[str, float]:
    """Samples of one metric in a Prometheus exposition: {label string: value} ('' without labels)."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            head, _, value = line.rpartition(" ")
            labels = head[len(name) :].strip()
            values[labels.strip("{}")] = float(value)
    return values


def surge_schedule(span_s: float, root: str = "surge-root") -> list[tuple[float, dict[str, Any]]]:
    """The planted surge (tests/planted.py) as (offset_s, post), its event-time shape compressed into span_s.

    The caller sets each post's created_at to the wall time it is sent, so event time = wall time.
    """
    from datetime import datetime

    import planted

    posts = planted.planted_surge(0.0, root=root)
    times = [datetime.fromisoformat(p["created_at"].replace("Z", "+00:00")).timestamp() for p in posts]
    return [(t / times[-1] * span_s, p) for t, p in zip(times, posts, strict=True)]


def background_post(index: int, prefix: str, branded_share: float, rng: Any) -> dict[str, Any]:
    """Ordinary traffic: roots (a share mentioning a configured brand) and a few reactions to recent roots."""
    texts = ["Ordered from Acme, arrived on time", "Calm Tea is my favourite afternoon break"]
    plain = ["lovely weather today", "watching the match tonight", "new phone who dis", "coffee first"]
    post_id = f"{prefix}-{index}"
    data: dict[str, Any] = {
        "id": post_id,
        "author": {
            "id": f"u{rng.randrange(100_000)}",
            "followers": rng.randrange(10, 5000),
            "verified": False,
        },
        "platform": "twitter",
        "lang": "en",
    }
    if index > 100 and rng.random() < 0.3:  # a reaction to one of the last ~2000 posts' roots
        root = f"{prefix}-{index - rng.randrange(1, min(index, 2000))}"
        data.update(kind="forward", text="", parent_id=root, root_id=root)
    else:
        branded = rng.random() < branded_share
        data.update(kind="post", text=rng.choice(texts if branded else plain), root_id=post_id)
    return data


class PacedLoad:
    """Produce posts at `rate_per_s` for `duration_s` in a thread, event time = wall time at sending, with
    `planted` (offset_s, post) sent at their offsets among them. Records each planted post's event time
    (its wall time of sending) and the wall time Kafka acknowledged it: `planted_times[id] = [created_at, acked]`."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        rate_per_s: float,
        duration_s: float,
        *,
        planted: list[tuple[float, dict[str, Any]]] = (),  # type: ignore[assignment]
        prefix: str = "bg",
        branded_share: float = 0.05,
        seed: int = 1,
    ) -> None:
        import random
        import threading

        from kafka import KafkaProducer

        self.topic = topic
        self.rate_per_s = rate_per_s
        self.duration_s = duration_s
        self.planted = sorted(planted, key=lambda item: item[0])
        self.prefix = prefix
        self.branded_share = branded_share
        self.rng = random.Random(seed)
        self.producer = KafkaProducer(
            bootstrap_servers=bootstrap, acks="all", linger_ms=5, batch_size=256 * 1024
        )
        self.sent = 0
        self.planted_times: dict[str, list[float]] = {}
        self.started_wall: float | None = None
        self.finished_wall: float | None = None
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="paced-load", daemon=True)

    def start(self) -> PacedLoad:
        self._thread.start()
        return self

    def _send(self, post: dict[str, Any]) -> Any:
        post["created_at"] = round(time.time(), 3)  # event time = wall time, in milliseconds
        value = json.dumps(post, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        key = str(post.get("root_id") or post["id"]).encode("utf-8")
        return self.producer.send(self.topic, key=key, value=value)

    def _run(self) -> None:
        try:
            started = time.monotonic()
            self.started_wall = time.time()
            background = 0
            planted_next = 0
            while not self._stop.is_set():
                elapsed = time.monotonic() - started
                if elapsed >= self.duration_s:
                    break
                # At most 1000 per round, so planted posts go out close to their offsets when behind.
                due = min(int(elapsed * self.rate_per_s), background + 1000)
                while background < due:
                    self._send(background_post(background, self.prefix, self.branded_share, self.rng))
                    background += 1
                    self.sent += 1
                while planted_next < len(self.planted) and self.planted[planted_next][0] <= elapsed:
                    post = dict(self.planted[planted_next][1])
                    future = self._send(post)
                    times = self.planted_times[post["id"]] = [post["created_at"], float("nan")]
                    future.add_callback(lambda _meta, t=times: t.__setitem__(1, time.time()))
                    planted_next += 1
                    self.sent += 1
                time.sleep(0.005)
            self.producer.flush()
            self.finished_wall = time.time()
        except BaseException as error:  # noqa: BLE001 - reported by join()
            self.error = error

    def running(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout_s: float | None = None) -> None:
        self._thread.join(timeout_s)
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        self._stop.set()
        self._thread.join(30)
        self.producer.close()


def webhook_alerting(url: str, directory: Path, **route: Any) -> dict[str, Any]:
    """An `alerting` section paging one webhook at once (group_wait 0), one group per incident, with its
    files (dead letters, silences, labelled incidents) in `directory`; `route` overrides route keys and
    `delivery=` adds delivery settings."""
    delivery = route.pop("delivery", {})
    return {
        "receivers": [{"name": "hook", "webhook": {"url": url}}],
        "route": {
            "receiver": "hook",
            "group_wait_s": 0,
            "group_wait_critical_s": 0,
            "group_by": ["incident_id"],
            **route,
        },
        "delivery": {"dead_letter_path": str(directory / "dead-letters.jsonl"), **delivery},
        "silences_path": str(directory / "silences.json"),
        "labelled_incidents_path": str(directory / "labelled.jsonl"),
    }


def scaled_horizons(horizon_s: float) -> dict[str, Any]:
    """Config sections forgetting dedup ids and idle cascades after `horizon_s` of event time (not 24 h / 6 h),
    so that expiry happens within a run of minutes; the surge window shrinks with them (it must fit in the
    idle horizon). 0: the production defaults."""
    if horizon_s <= 0:
        return {}
    return {
        "pipeline": {"dedup_horizon_s": horizon_s, "advance_every_s": min(60.0, horizon_s / 6)},
        "detectors": {
            "cascade_idle_s": horizon_s,
            "forward_surge": {"window_s": horizon_s, "bucket_s": horizon_s / 10},
        },
    }

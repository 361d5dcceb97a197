"""A real Prometheus scraping a real `crisiswatch worker` that processes a planted stream on a real broker.

- every PromQL expression of the dashboard (variables substituted) and of the rules parses through the
  Prometheus HTTP API, and every metric it names is on the worker's /metrics page;
- the throughput, lag and per-brand panels return data;
- induced faults fire the matching rules: the input stops -> CrisiswatchInputSilent, the worker is
  killed -> CrisiswatchWorkerDown. Prometheus evaluates the real rules with every range and `for:`
  shortened 60x (a generated file; the real one is what promtool checks and unit-tests);
- consumer lag is what Kafka's tooling reports (end offset minus the group's committed offset);
- the worker logs incident events as JSON lines carrying the incident ids.

Prometheus is Debian's package: missing, the module skips (fails with CI=true). One worker and one
Prometheus serve the whole module; the tests run in file order and the last one kills the worker.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import obs_promql as pq
import planted
import pytest
from kafka_broker import create_topic, unique_topic
from worker_process import WorkerConfig, WorkerProcess, free_port, produce

pytestmark = pytest.mark.integration

SCRAPE = {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"}


@dataclass
class Live:
    worker: WorkerProcess
    prometheus: pq.PrometheusProcess
    config: WorkerConfig
    produced: int
    input_done_s: float  # wall clock when the worker had consumed everything


@pytest.fixture(scope="module")
def live(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    pq.require_binary("prometheus")
    directory = tmp_path_factory.mktemp("obs-live")
    config = WorkerConfig(
        bootstrap=kafka_bootstrap,
        directory=directory,
        brands=planted.BRAND_CONFIG,
        extra={"metrics": {"log_format": "json"}},
    )
    create_topic(kafka_bootstrap, config.posts_topic, partitions=4)
    worker = WorkerProcess(config).start()
    prometheus: pq.PrometheusProcess | None = None
    try:
        worker.wait_ready()
        scrape_config = {
            "global": SCRAPE,
            "scrape_configs": [
                {"job_name": "crisiswatch", "static_configs": [{"targets": [f"127.0.0.1:{worker.port}"]}]}
            ],
        }
        prometheus = pq.PrometheusProcess(
            directory / "prometheus", free_port(), scrape_config, pq.shortened_rules()
        ).start()
        # A few scrapes of the idle worker first, so that the counters' first increase is visible.
        prometheus.wait_for(lambda: scrapes(prometheus) >= 3, 20, "three scrapes")
        messages = planted.encode(planted.stream()) + [raw for raw, _ in planted.MALFORMED]
        produced = produce(kafka_bootstrap, config.posts_topic, messages)
        worker.wait_for(
            lambda s: s.get("consumed", 0) >= produced, timeout_s=120, what=f"{produced} posts consumed"
        )
        yield Live(worker, prometheus, config, produced, time.time())
    finally:
        if worker.process is not None and worker.process.poll() is None:
            worker.kill()
        if prometheus is not None:
            prometheus.stop()


def scrapes(prometheus: pq.PrometheusProcess) -> int:
    series = prometheus.query('count_over_time(up{job="crisiswatch"}[1m])')
    return int(float(series[0]["value"][1])) if series else 0


def worker_metrics(worker: WorkerProcess) -> str:
    import urllib.request

    with urllib.request.urlopen(worker.url("/metrics"), timeout=5) as response:  # noqa: S310
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return str(response.read().decode())


# ------------------------------------------------------------------------------------------ consumer lag


def test_consumer_lag_is_end_offset_minus_committed_offset(kafka_bootstrap: str):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.structs import OffsetAndMetadata

    from crisiswatch.streams.observability import ConsumerLag

    topic = create_topic(kafka_bootstrap, unique_topic("obs-lag"), partitions=3)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    for partition, count in ((0, 10), (1, 4)):
        for index in range(count):
            producer.send(topic, value=b"%d" % index, partition=partition)
    producer.flush()
    producer.close()
    group = unique_topic("obs-lag-group")
    committer = KafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=group, enable_auto_commit=False)
    try:
        committer.commit({TopicPartition(topic, 0): OffsetAndMetadata(3, "", -1)})
    finally:
        committer.close()
    lag = ConsumerLag({"bootstrap_servers": kafka_bootstrap}, group, topic)
    try:
        # p0: 10 written, 3 committed; p1: nothing committed -> from the beginning; p2: empty.
        assert lag.measure({0, 1, 2}) == {0: 7, 1: 4, 2: 0}
        assert lag.measure({1}) == {1: 4}
    finally:
        lag.close()
    unreachable = ConsumerLag({"bootstrap_servers": f"127.0.0.1:{free_port()}"}, group, topic, timeout_s=2.0)
    assert unreachable.measure({0}) is None


# ------------------------------------------------------------------------------------------ expressions


def test_every_expression_parses_and_names_only_exposed_metrics(live: Live):
    exposed = pq.exposed_names(worker_metrics(live.worker))
    expressions = pq.dashboard_expressions() + pq.rule_expressions()
    assert len(expressions) > 30
    for where, expr in expressions:
        body = live.prometheus.api("query", query=expr)
        assert body["status"] == "success", f"{where}: Prometheus rejects {expr!r}: {body.get('error')}"
        names = pq.metric_names(expr)
        assert names, f"{where}: no metric named in {expr!r}"
        missing = names - exposed - pq.PROMETHEUS_OWN
        assert not missing, f"{where}: the worker does not expose {sorted(missing)}"


def test_prometheus_evaluates_every_rule_without_error(live: Live):
    def loaded() -> list[dict[str, Any]]:
        groups = live.prometheus.api("rules")["data"]["groups"]
        found = [rule for group in groups for rule in group["rules"]]
        return (
            found if found and all(rule.get("lastEvaluation", "").startswith("20") for rule in found) else []
        )

    evaluated = live.prometheus.wait_for(loaded, 20, "rules evaluated")
    assert {rule["name"] for rule in evaluated} == {rule["alert"] for rule in pq.rules()}
    for rule in evaluated:
        assert rule["health"] == "ok", f"{rule['name']}: {rule.get('lastError')}"


# ------------------------------------------------------------------------------------------ panels


def panel_targets(title: str) -> list[str]:
    for panel in pq.dashboard()["panels"]:
        if panel["title"] == title:
            return [pq.substitute(target["expr"]) for target in panel["targets"]]
    raise AssertionError(f"no panel {title!r}")


RATE_PANELS = ("Throughput", "Posts per minute", "Mentions per minute", "Negative share")


@pytest.mark.parametrize(
    ("title", "label", "expected"),
    [
        ("Throughput", None, None),
        ("Posts per minute", None, None),
        ("Consumer lag", "partition", {"0", "1", "2", "3"}),
        ("Mentions per minute", "brand", {planted.BRAND, "Calm Tea"}),
        ("Negative share", "brand", {planted.BRAND}),
        ("Detector scores", "detector", {"forward_surge", "negative_surge"}),
        ("Rejected and dropped posts", "reason", {reason for _, reason in planted.MALFORMED}),
        ("Incident events", "status", {"firing"}),
    ],
)
def test_panels_return_data(live: Live, title: str, label: str | None, expected: set[str] | None):
    expr = panel_targets(title)[0]
    if title in RATE_PANELS:
        # Rate panels look at the last few scrapes: keep input flowing while they are checked, as it does
        # in production (the planted stream was consumed long before this test runs in a full suite).
        seed = sum(map(ord, title))
        trickle = planted.normal_traffic(seed, planted.START_S + 86_400 + seed, 300, posts_per_minute=30)
        produce(live.config.bootstrap, live.config.posts_topic, planted.encode(trickle))

    def result() -> list[dict[str, Any]]:
        series = live.prometheus.query(expr)
        if expected is not None and not expected <= {s["metric"].get(label) for s in series}:
            return []
        values = [float(s["value"][1]) for s in series]
        if title in RATE_PANELS and not (values and all(v == v for v in values)):
            return []  # no data or 0/0 yet: the trickle has not been scraped
        if title in ("Throughput", "Posts per minute", "Mentions per minute") and max(values) <= 0:
            return []
        return series

    series = live.prometheus.wait_for(result, 20, f"data for {title!r}: {expr}")
    values = [float(s["value"][1]) for s in series]
    assert values and all(value == value for value in values), f"{title}: {series}"  # no NaN
    if title in ("Throughput", "Posts per minute", "Mentions per minute"):
        assert max(values) > 0


def test_lag_returns_to_zero_once_everything_is_processed(live: Live):
    def caught_up() -> list[dict[str, Any]]:
        series = live.prometheus.query('crisiswatch_consumer_lag_messages{job="crisiswatch"}')
        return series if len(series) == 4 and all(float(s["value"][1]) == 0 for s in series) else []

    live.prometheus.wait_for(caught_up, 30, "lag 0 on the 4 partitions")


def test_open_incidents_and_versions_are_exposed(live: Live):
    text = worker_metrics(live.worker)
    assert "crisiswatch_build_info{" in text and "crisiswatch_text_model_info{" in text
    assert f'crisiswatch_config_info{{file="{live.worker.config_path}"' in text
    assert (
        "crisiswatch_faust_messages_received_total" in text
        and "crisiswatch_faust_events_runtime_ms_bucket" in text
    )
    assert f'crisiswatch_incidents_open{{brand="{planted.BRAND}"' in text


# ------------------------------------------------------------------------------------------ logs


def test_worker_logs_incident_events_as_json(live: Live):
    lines = [
        line for line in live.worker.log_path.read_text(encoding="utf-8").splitlines() if line.startswith("{")
    ]
    entries = [json.loads(line) for line in lines]
    incidents = [entry for entry in entries if entry.get("logger") == "crisiswatch.incidents"]
    assert any(
        entry["incident_id"] == f"{planted.BRAND}/forward_surge/{planted.SURGE_ROOT}:1"
        and entry["status"] == "firing"
        for entry in incidents
    )
    assert all(
        {"ts", "level", "message", "incident_id", "severity", "brand"} <= entry.keys() for entry in incidents
    )
    # Faust's own records go through the same JSON handler.
    assert any(entry["logger"].startswith(("faust", "mode")) for entry in entries)


# ------------------------------------------------------------------------------------------ induced faults


def alert_active_since(prometheus: pq.PrometheusProcess, name: str) -> float | None:
    from datetime import datetime

    for alert in prometheus.api("alerts")["data"]["alerts"]:
        if alert["labels"]["alertname"] == name and alert["state"] == "firing":
            return datetime.fromisoformat(alert["activeAt"].replace("Z", "+00:00")).timestamp()
    return None


def test_stopped_input_fires_input_silent(live: Live):
    assert "CrisiswatchWorkerDown" not in live.prometheus.firing()
    active_s = live.prometheus.wait_for(
        lambda: alert_active_since(live.prometheus, "CrisiswatchInputSilent"),
        60,
        "CrisiswatchInputSilent firing",
    )
    # It went pending only after the last post was consumed (a scrape interval of slack).
    assert active_s >= live.input_done_s - 2.0


def test_stopped_worker_fires_worker_down(live: Live):
    assert live.worker.process is not None and live.worker.process.poll() is None
    killed_s = time.time()
    live.worker.kill()
    active_s = live.prometheus.wait_for(
        lambda: alert_active_since(live.prometheus, "CrisiswatchWorkerDown"),
        30,
        "CrisiswatchWorkerDown firing",
    )
    assert active_s >= killed_s - 1.0
    assert live.prometheus.query('up{job="crisiswatch"}')[0]["value"][1] == "0"


def test_rules_file_is_the_real_one_shortened(live: Live):
    deployed = (live.prometheus.directory / "rules.yml").read_text(encoding="utf-8")
    import yaml

    assert yaml.safe_load(deployed) == pq.shortened_rules()
    assert Path(pq.RULES_FILE).read_text(encoding="utf-8") != deployed

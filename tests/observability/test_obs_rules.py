"""deploy/prometheus and deploy/grafana, offline: promtool checks and unit tests, the dashboard's structure.

The live side (every expression parses in a real Prometheus, names only exposed metrics, panels return
data, induced faults fire the rules) is tests/observability/test_obs_prometheus.py.
"""

from __future__ import annotations

import re
import subprocess
from collections import Counter

import obs_promql as pq
import pytest
import yaml


@pytest.fixture(scope="module")
def promtool() -> str:
    return pq.require_binary("promtool")


def run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=pq.PROMETHEUS_DIR)


# ------------------------------------------------------------------------------------------ promtool


def test_promtool_checks_the_config_and_its_rule_files(promtool):
    result = run([promtool, "check", "config", str(pq.PROMETHEUS_CONFIG)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout + result.stderr


def test_promtool_checks_the_rules(promtool):
    result = run([promtool, "check", "rules", str(pq.RULES_FILE)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(pq.rules())} rules found" in result.stdout + result.stderr


def test_promtool_unit_tests_pass(promtool):
    result = run([promtool, "test", "rules", str(pq.RULES_TEST_FILE)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_have_teeth(promtool, tmp_path):
    """A wrong expectation fails: the unit tests compare labels and annotations, not just names."""
    (tmp_path / pq.RULES_FILE.name).write_text(pq.RULES_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    broken = pq.RULES_TEST_FILE.read_text(encoding="utf-8").replace("is down", "is very down")
    (tmp_path / "broken.test.yml").write_text(broken, encoding="utf-8")
    result = subprocess.run(
        [promtool, "test", "rules", "broken.test.yml"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode != 0


def test_every_rule_has_a_firing_and_a_quiet_unit_test():
    document = yaml.safe_load(pq.RULES_TEST_FILE.read_text(encoding="utf-8"))
    assert document["rule_files"] == [pq.RULES_FILE.name]
    fires: Counter[str] = Counter()
    quiet: Counter[str] = Counter()
    for test in document["tests"]:
        for case in test.get("alert_rule_test", []):
            (fires if case.get("exp_alerts") else quiet)[case["alertname"]] += 1
    names = [rule["alert"] for rule in pq.rules()]
    assert len(names) == len(set(names)), "alert names are unique"
    for name in names:
        assert fires[name], f"{name} has no unit test where it fires"
        assert quiet[name], f"{name} has no unit test where it stays quiet"
    assert set(fires) | set(quiet) <= set(names), "unit tests for rules that do not exist"


def test_the_pipeline_faults_of_the_issue_have_rules():
    by_name = {rule["alert"]: rule for rule in pq.rules()}
    expectations = {
        "CrisiswatchWorkerDown": "up",
        "CrisiswatchInputSilent": "crisiswatch_posts_consumed_total",
        "CrisiswatchConsumerLagGrowing": "crisiswatch_consumer_lag_messages",
        "CrisiswatchDeadLetterRateHigh": "crisiswatch_posts_dead_lettered_total",
        "CrisiswatchNotificationsFailing": "crisiswatch_notifications_failed_total",
        "CrisiswatchAlertLatencyHigh": "crisiswatch_alert_latency_seconds_bucket",
    }
    for alert, metric in expectations.items():
        assert alert in by_name, alert
        assert metric in pq.metric_names(by_name[alert]["expr"]), (alert, by_name[alert]["expr"])
    for rule in by_name.values():
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_shortened_rules_keep_expressions_and_scale_durations():
    original = {rule["alert"]: rule for rule in pq.rules()}
    document = pq.shortened_rules()
    shortened = {rule["alert"]: rule for group in document["groups"] for rule in group["rules"]}
    assert shortened.keys() == original.keys()
    assert "crisiswatch_posts_consumed_total[10s]" in shortened["CrisiswatchInputSilent"]["expr"]
    assert shortened["CrisiswatchInputSilent"]["for"] == "5s"
    assert shortened["CrisiswatchWorkerDown"]["for"] == "2s"
    for name, rule in shortened.items():
        assert not re.search(r"\[\d+[mhd]\]", rule["expr"]), name


# ------------------------------------------------------------------------------------------ metric names in PromQL


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        (
            'sum by (brand) (rate(crisiswatch_brand_posts_total{job=~"x", brand=~".*"}[1m])) * 60',
            {"crisiswatch_brand_posts_total"},
        ),
        ("histogram_quantile(0.9, sum by (le) (rate(a_bucket[5m]))) > 300", {"a_bucket"}),
        ("a > 1000 and sum by (job, topic) (deriv(b[10m])) > 0", {"a", "b"}),
        ("x unless on (job, receiver) y", {"x", "y"}),
        (
            'max by (job, text_model) (label_replace(m{job="a"}, "text_model", "$1", "version", "(.*)"))',
            {"m"},
        ),
        ("time() - max by (partition) (w)", {"w"}),
        ('sum(up{job=~"a"}) or vector(0)', {"up"}),
    ],
)
def test_metric_names_of_an_expression(expr, names):
    assert pq.metric_names(expr) == names


# ------------------------------------------------------------------------------------------ the dashboard


@pytest.fixture(scope="module")
def board():
    return pq.dashboard()


def test_dashboard_basics(board):
    datasource = yaml.safe_load(pq.DATASOURCE_FILE.read_text(encoding="utf-8"))["datasources"][0]
    uid = datasource["uid"]
    assert board["uid"] and board["title"]
    assert board["schemaVersion"] >= 36, "a recent Grafana schema"
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    assert all(isinstance(i, int) and i > 0 for i in ids)
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": uid}, panel["title"]
        assert panel["targets"], f"{panel['title']}: no query"
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip(), f"{panel['title']} {target['refId']}: empty expression"
            assert target["datasource"]["uid"] == uid
        assert panel.get("description"), f"{panel['title']}: say what the panel means"


def test_dashboard_variables_and_annotations(board):
    variables = {variable["name"]: variable for variable in board["templating"]["list"]}
    brand = variables["brand"]
    assert brand["type"] == "query" and brand["includeAll"] and brand["multi"] and brand["allValue"] == ".*"
    assert brand["query"]["query"].startswith("label_values(") and brand["query"]["query"].endswith(
        ", brand)"
    )
    incidents = [a for a in board["annotations"]["list"] if a.get("expr")]
    assert incidents and any(a["enable"] for a in incidents)
    for annotation in incidents:
        assert "crisiswatch_incidents_open" in pq.metric_names(annotation["expr"])
        assert "$brand" in annotation["expr"]
        assert annotation["datasource"]["uid"] == "crisiswatch-prometheus"


def test_dashboard_covers_what_pr_ops_and_ops_look_at(board):
    names: set[str] = set()
    for _, expr in pq.dashboard_expressions(board):
        names |= pq.metric_names(expr)
    needed = {
        "crisiswatch_brand_posts_total",  # volume per brand
        "crisiswatch_brand_negative_posts_total",  # negative share
        "crisiswatch_detection_score",
        "crisiswatch_incidents_open",
        "crisiswatch_posts_consumed_total",  # throughput
        "crisiswatch_consumer_lag_messages",
        "crisiswatch_processing_latency_seconds_bucket",
        "crisiswatch_posts_dead_lettered_total",
        "crisiswatch_notifications_sent_total",
        "crisiswatch_notifications_failed_total",
        "crisiswatch_alert_latency_seconds_bucket",
    }
    assert needed <= names, needed - names
    # Brand-level panels follow the brand picker.
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            if re.search(r"crisiswatch_(brand_|detection_|incident)", target["expr"]):
                assert 'brand=~"$brand"' in target["expr"], (panel["title"], target["expr"])

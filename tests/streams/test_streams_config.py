"""Config loading: errors name file, key, value (masked) and expectation; env overrides; secret files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from crisiswatch.detectors.settings import ConfigError
from crisiswatch.streams.config import known_env_keys, load_settings, settings_from_mapping

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_no_file_gives_defaults() -> None:
    settings = load_settings(None, environ={})
    assert settings.kafka.posts_topic == "social.posts"
    assert settings.metrics.bind_host == "127.0.0.1"
    assert settings.brands == ()


def test_example_config_is_valid() -> None:
    settings = load_settings(
        REPO / "examples" / "config.yaml",
        environ={"SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/x"},
    )
    assert settings.brands


@pytest.mark.parametrize(
    ("text", "key", "expected_words"),
    [
        ("kafka:\n  partitions: zero\n", "kafka.partitions", "type"),
        ("kafka:\n  partitons: 3\n", "kafka.partitons", "known keys"),
        ("metrics:\n  port: 70000\n", "metrics.port", "maximum"),
        ("brands:\n  - name: Acme\n    role: friend\n", "brands[0].role", "one of"),
        ("brands:\n  - name: Acme\n    time_zone: Mars/Olympus\n", "brands[0].time_zone", "IANA"),
        ("brands:\n  - name: Acme\n  - name: Acme\n", "brands", "unique"),
        ("surprise: 1\n", "surprise", "known keys"),
        ("kafka:\n  gc_freeze_every_s: 0.2\n", "kafka.gc_freeze_every_s", "at least 1 second"),
        ("kafka:\n  fetch_max_wait_s: 0\n", "kafka.fetch_max_wait_s", "minimum"),
    ],
)
def test_errors_name_file_key_value_and_expectation(
    tmp_path: Path, text: str, key: str, expected_words: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    error = caught.value
    assert error.file == str(path)
    assert error.key == key
    assert expected_words in error.expected
    assert str(path) in str(error) and key in str(error)


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "kafka:\n  partitions: [1,\n")
    with pytest.raises(ConfigError, match="line"):
        load_settings(path, environ={})


def test_secret_values_are_masked_in_errors(tmp_path: Path) -> None:
    path = write(tmp_path, "kafka:\n  sasl_password: 12345\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    assert "12345" not in str(caught.value)
    assert "***" in str(caught.value)


def test_environment_overrides(tmp_path: Path) -> None:
    path = write(tmp_path, "kafka:\n  bootstrap_servers: a:1\n")
    settings = load_settings(
        path, environ={"CRISISWATCH_KAFKA__BOOTSTRAP_SERVERS": "b:2", "CRISISWATCH_METRICS__PORT": "7000"}
    )
    assert settings.kafka.bootstrap_servers == "b:2"
    assert settings.metrics.port == 7000


def test_environment_override_errors_are_reported_like_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(None, environ={"CRISISWATCH_METRICS__PORT": "many"})
    assert caught.value.key == "metrics.port"


def test_secret_file_and_env_references(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("s3cret\n")
    path = write(tmp_path, f"kafka:\n  sasl_password_file: {secret}\n  sasl_username_env: KAFKA_USER\n")
    settings = load_settings(path, environ={"KAFKA_USER": "svc"})
    assert settings.kafka.sasl_password == "s3cret"
    assert settings.kafka.sasl_username == "svc"


def test_missing_secret_file_is_a_clear_error(tmp_path: Path) -> None:
    path = write(tmp_path, f"kafka:\n  sasl_password_file: {tmp_path / 'nope'}\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    assert caught.value.key == "kafka.sasl_password_file"
    assert "readable file" in caught.value.expected


def test_missing_env_reference(tmp_path: Path) -> None:
    path = write(tmp_path, "kafka:\n  sasl_password_env: NOT_SET_ANYWHERE\n")
    with pytest.raises(ConfigError, match="environment variable"):
        load_settings(path, environ={})


def test_brand_overrides_are_validated_at_start() -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from_mapping(
            {"brands": [{"name": "Acme", "detectors": {"no_such_detector": {}}}]}, environ={}
        )
    assert caught.value.key.startswith("brands[0].detectors")


def test_known_env_keys_cover_kafka_and_metrics() -> None:
    keys = known_env_keys()
    assert "CRISISWATCH_KAFKA__BOOTSTRAP_SERVERS" in keys
    assert "CRISISWATCH_METRICS__PORT" in keys


def test_config_check_command(tmp_path: Path) -> None:
    good = subprocess.run(
        [
            sys.executable,
            "-m",
            "crisiswatch.streams.cli",
            "config",
            "check",
            str(REPO / "examples" / "config.yaml"),
        ],
        capture_output=True,
        text=True,
        env={"SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/x", "PATH": "/usr/bin:/bin"},
    )
    assert good.returncode == 0, good.stderr
    bad = write(tmp_path, "metrics:\n  port: -1\n")
    result = subprocess.run(
        [sys.executable, "-m", "crisiswatch.streams.cli", "config", "check", str(bad)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert str(bad) in result.stderr and "metrics.port" in result.stderr and "-1" in result.stderr

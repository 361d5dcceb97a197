"""The one config loader: a YAML file, validated against a JSON Schema at start, into typed settings.

- Each section's typed config lives with its package (`detectors/config.py`, `detectors/text/config.py`,
  `alerts/config.py`); this module owns `kafka`, `brands`, `pipeline` and `metrics` and composes the schema.
- Environment overrides: `CRISISWATCH_<SECTION>__<KEY>[__<KEY>...]=value` (value parsed as a YAML scalar),
  e.g. `CRISISWATCH_KAFKA__BOOTSTRAP_SERVERS=broker:9092`.
- Secrets never sit in the file: any key `X_file: PATH` is replaced by `X` = the file's content, and
  `X_env: NAME` by `X` = the environment variable NAME.
- Every error names the file, the key, the value (secrets masked) and what was expected.
"""

from __future__ import annotations

import os
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from crisiswatch.alerts.config import CONFIG_SCHEMA as ALERTING_SCHEMA
from crisiswatch.alerts.config import AlertingConfig
from crisiswatch.detectors.config import CONFIG_SCHEMA as DETECTORS_SCHEMA
from crisiswatch.detectors.config import DetectorsConfig
from crisiswatch.detectors.events import BrandProfile
from crisiswatch.detectors.settings import ConfigError, masked
from crisiswatch.detectors.text.config import CONFIG_SCHEMA as TEXT_SCHEMA
from crisiswatch.detectors.text.config import TextConfig

ENV_PREFIX = "CRISISWATCH_"
ENV_SEPARATOR = "__"
DEFAULT_METRICS_PORT = 6066


@dataclass(frozen=True)
class KafkaConfig:
    bootstrap_servers: str = "127.0.0.1:9092"
    app_id: str = "crisiswatch"
    posts_topic: str = "social.posts"
    alerts_topic: str = "crisis.alerts"
    dead_letter_topic: str = "social.posts.dlq"
    acks_topic: str = "crisis.acks"
    # Compacted, one partition: the silences every worker follows (alerting.silences_store: kafka).
    silences_topic: str = "crisis.silences"
    partitions: int = 4
    replication_factor: int = 1
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    # Where Faust keeps its table files; the changelog topics are the durable copy.
    data_dir: str = "./crisiswatch-data"
    session_timeout_s: float = 30.0
    heartbeat_interval_s: float = 3.0
    commit_interval_s: float = 2.0
    # The agent takes up to this many posts per batch (batches amortise enrichment and state writes).
    batch_max_posts: int = 2000
    batch_max_wait_s: float = 0.05
    # How long the broker may hold the worker's fetch for data. Faust hard-codes 1.5 s; aiokafka leaves out
    # of a fetch the partitions whose records are still buffered, so a fetch of only quiet partitions held
    # the busy ones back that long: pages took 2-2.5 s under load (bench/results/perf.md). Each worker
    # sends up to 1/this fetches a second when idle.
    fetch_max_wait_s: float = 0.1
    # Exit (status 3) for a supervisor restart when input waits this long with no progress; 0 disables.
    watchdog_stall_s: float = 120.0
    # Every this many seconds, one full cycle-collector pass over what is new, then the survivors are frozen
    # out of later passes (streams/gc_policy.py): a pass no longer walks all the state held. 0 disables.
    gc_freeze_every_s: float = 10.0


@dataclass(frozen=True)
class PipelineConfig:
    # Posts older than the watermark minus this are counted as late and not applied.
    allowed_lateness_s: float = 600.0
    # A post id seen within this much event time is a redelivery and is dropped.
    dedup_horizon_s: float = 86_400.0
    # Bound on remembered ids; the oldest go first when it is reached.
    dedup_max_ids: int = 1_000_000
    # The watermark is the k-th largest of the recent event times, so one outlier cannot drag it forward.
    watermark_quorum: int = 3
    # Event time advances (quiet incidents resolve, idle state expires) in ticks of this many seconds.
    advance_every_s: float = 60.0
    # Brand detectors see their inputs aligned in event time across source partitions; a source partition
    # not heard from for this many (wall-clock) seconds is idle and no longer holds the others back.
    source_idle_after_s: float = 10.0
    # ... and an observation is released only once every active source has moved this much event time past
    # it: posts that arrive up to this far out of event-time order are then applied in the same order
    # whatever the batching, so one worker and several give the same brand incidents. Brand-wide pages
    # come this much later (cascade pages do not wait).
    aligned_hold_back_s: float = 30.0
    # At most this many observations held for alignment per brand partition (the oldest go first).
    max_aligned_buffer: int = 200_000
    # With no configured brands, brands named in posts are monitored up to this many; the rest count as `other`.
    max_auto_brands: int = 100


@dataclass(frozen=True)
class MetricsConfig:
    enabled: bool = True
    bind_host: str = "127.0.0.1"
    port: int = DEFAULT_METRICS_PORT
    log_format: str = "text"  # "text" | "json"
    redact_authors: bool = False


@dataclass(frozen=True)
class Settings:
    kafka: KafkaConfig = field(default_factory=KafkaConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    brands: tuple[BrandProfile, ...] = ()
    detectors: DetectorsConfig = field(default_factory=lambda: DetectorsConfig.from_mapping({}))
    text: TextConfig = field(default_factory=lambda: TextConfig.from_mapping({}))
    alerting: AlertingConfig = field(default_factory=lambda: AlertingConfig.from_mapping({}))
    source: str = "(defaults)"

    @property
    def brands_by_name(self) -> dict[str, BrandProfile]:
        return {brand.name: brand for brand in self.brands}


def _nullable(kind: str) -> dict[str, Any]:
    return {"type": [kind, "null"]}


KAFKA_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "bootstrap_servers": {
            "anyOf": [
                {"type": "string", "minLength": 1},
                {"type": "array", "items": {"type": "string"}, "minItems": 1},
            ]
        },
        "app_id": {"type": "string", "pattern": "^[A-Za-z0-9._-]+$"},
        "posts_topic": {"type": "string", "minLength": 1},
        "alerts_topic": {"type": "string", "minLength": 1},
        "dead_letter_topic": {"type": "string", "minLength": 1},
        "acks_topic": {"type": "string", "minLength": 1},
        "silences_topic": {"type": "string", "minLength": 1},
        "partitions": {"type": "integer", "minimum": 1, "maximum": 10000},
        "replication_factor": {"type": "integer", "minimum": 1},
        "security_protocol": {"enum": ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]},
        "sasl_mechanism": {"enum": ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", None]},
        "sasl_username": _nullable("string"),
        "sasl_password": _nullable("string"),
        "ssl_cafile": _nullable("string"),
        "ssl_certfile": _nullable("string"),
        "ssl_keyfile": _nullable("string"),
        "data_dir": {"type": "string"},
        "session_timeout_s": {"type": "number", "exclusiveMinimum": 0},
        "heartbeat_interval_s": {"type": "number", "exclusiveMinimum": 0},
        "commit_interval_s": {"type": "number", "exclusiveMinimum": 0},
        "batch_max_posts": {"type": "integer", "minimum": 1, "maximum": 100000},
        "batch_max_wait_s": {"type": "number", "minimum": 0},
        "watchdog_stall_s": {"type": "number", "minimum": 0},
        "fetch_max_wait_s": {"type": "number", "minimum": 0.001, "maximum": 30},
        "gc_freeze_every_s": {"type": "number", "minimum": 0},
    },
}

PIPELINE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "allowed_lateness_s": {"type": "number", "minimum": 0},
        "dedup_horizon_s": {"type": "number", "minimum": 0},
        "dedup_max_ids": {"type": "integer", "minimum": 0},
        "watermark_quorum": {"type": "integer", "minimum": 1, "maximum": 64},
        "advance_every_s": {"type": "number", "exclusiveMinimum": 0},
        "source_idle_after_s": {"type": "number", "minimum": 0},
        "aligned_hold_back_s": {"type": "number", "minimum": 0},
        "max_aligned_buffer": {"type": "integer", "minimum": 1},
        "max_auto_brands": {"type": "integer", "minimum": 0},
    },
}

METRICS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "enabled": {"type": "boolean"},
        "bind_host": {"type": "string", "minLength": 1},
        "port": {"type": "integer", "minimum": 0, "maximum": 65535},
        "log_format": {"enum": ["text", "json"]},
        "redact_authors": {"type": "boolean"},
    },
}

BRANDS_SCHEMA: dict[str, Any] = {
    "type": "array",
    "items": {
        "type": "object",
        "additionalProperties": False,
        "required": ["name"],
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 256},
            "aliases": {"type": "array", "items": {"type": "string", "minLength": 1}},
            "exclude": {"type": "array", "items": {"type": "string", "minLength": 1}},
            "role": {"enum": ["own", "competitor"]},
            "time_zone": {"type": "string"},
            "lang": {"enum": ["en", "zh"]},
            "detectors": {"type": "object"},
        },
    },
}


def config_schema() -> dict[str, Any]:
    """The JSON Schema of the whole file (`crisiswatch config schema` prints it)."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "crisiswatch configuration",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "kafka": KAFKA_SCHEMA,
            "pipeline": PIPELINE_SCHEMA,
            "metrics": METRICS_SCHEMA,
            "brands": BRANDS_SCHEMA,
            "detectors": DETECTORS_SCHEMA,
            "text": TEXT_SCHEMA,
            "alerting": ALERTING_SCHEMA,
        },
    }


def known_env_keys() -> list[str]:
    """Every scalar key reachable by an environment override (used by the compose test and the README)."""
    keys = []
    for section, schema in (
        ("kafka", KAFKA_SCHEMA),
        ("pipeline", PIPELINE_SCHEMA),
        ("metrics", METRICS_SCHEMA),
    ):
        keys += [f"{ENV_PREFIX}{section.upper()}{ENV_SEPARATOR}{key.upper()}" for key in schema["properties"]]
    return keys


def _dotted(path: list[Any] | Any) -> str:
    parts: list[str] = []
    for part in path:
        parts.append(f"[{part}]" if isinstance(part, int) else f".{part}" if parts else str(part))
    return "".join(parts)


def _resolve_secret_references(node: Any, path: list[Any], environ: Mapping[str, str]) -> Any:
    if isinstance(node, list):
        return [_resolve_secret_references(item, [*path, index], environ) for index, item in enumerate(node)]
    if not isinstance(node, dict):
        return node
    resolved: dict[str, Any] = {}
    for key, value in node.items():
        key_path = _dotted([*path, key])
        if (
            isinstance(key, str)
            and key.endswith("_file")
            and not key.startswith("state")
            and isinstance(value, str)
        ):
            target = key[: -len("_file")]
            try:
                resolved[target] = Path(value).read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as error:
                raise ConfigError(key_path, value, f"a readable file ({error.strerror})") from None
        elif isinstance(key, str) and key.endswith("_env") and isinstance(value, str):
            target = key[: -len("_env")]
            if value not in environ:
                raise ConfigError(key_path, value, "the name of a set environment variable")
            resolved[target] = environ[value]
        else:
            resolved[key] = _resolve_secret_references(value, [*path, key], environ)
    return resolved


def _apply_env_overrides(data: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    for name, raw in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or ENV_SEPARATOR not in name:
            continue
        parts = [part.lower() for part in name[len(ENV_PREFIX) :].split(ENV_SEPARATOR)]
        node = data
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(
                    ".".join(parts), masked(name, raw), f"a path into a mapping (set by {name})"
                )
            node = child
        try:
            node[parts[-1]] = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError:
            node[parts[-1]] = raw
    return data


def _expected(error: jsonschema.ValidationError) -> str:
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        return f"one of the known keys {allowed}"
    if error.validator == "required":
        return f"the required key(s) {error.validator_value}"
    if error.validator == "enum":
        return f"one of {error.validator_value}"
    return f"{error.validator} {error.validator_value!r}"


def _schema_error(error: jsonschema.ValidationError) -> ConfigError:
    path = list(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = set(error.schema.get("properties", {}))
        unknown = sorted(str(key) for key in error.instance if key not in known)
        return ConfigError(
            _dotted([*path, unknown[0]]) if unknown else _dotted(path), "(unknown key)", _expected(error)
        )
    key = _dotted(path)
    value = (
        error.instance
        if not isinstance(error.instance, dict | list)
        else f"({type(error.instance).__name__})"
    )
    return ConfigError(key, value, _expected(error))


def _brand(entry: Mapping[str, Any], index: int) -> BrandProfile:
    time_zone = entry.get("time_zone", "UTC")
    try:
        zoneinfo.ZoneInfo(time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"brands[{index}].time_zone", time_zone, "an IANA time zone such as Asia/Shanghai"
        ) from None
    return BrandProfile(
        name=entry["name"],
        aliases=tuple(entry.get("aliases", ())),
        exclude=tuple(entry.get("exclude", ())),
        role=entry.get("role", "own"),
        time_zone=time_zone,
        lang=entry.get("lang", "en"),
        detector_overrides=dict(entry.get("detectors", {})),
    )


def _section(data: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = data.get(name)
    return dict(value) if isinstance(value, dict) else {}


def settings_from_mapping(
    data: Mapping[str, Any] | None, *, source: str = "(inline)", environ: Mapping[str, str] | None = None
) -> Settings:
    """Validate and type a parsed config document; every error is raised as `ConfigError` naming `source`."""
    environ = os.environ if environ is None else environ
    try:
        document = _apply_env_overrides(dict(data or {}), environ)
        document = _resolve_secret_references(document, [], environ)
        validator = jsonschema.Draft202012Validator(config_schema())
        errors = sorted(
            validator.iter_errors(document),
            key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))),
        )
        if errors:
            raise _schema_error(errors[0])
        brands = tuple(_brand(entry, index) for index, entry in enumerate(document.get("brands") or []))
        names = [brand.name for brand in brands]
        if len(set(names)) != len(names):
            duplicate = next(name for name in names if names.count(name) > 1)
            raise ConfigError("brands", duplicate, "unique brand names")
        detectors = _built("detectors", DetectorsConfig.from_mapping, _section(document, "detectors"))
        for index, brand in enumerate(brands):
            if brand.detector_overrides:
                _built(f"brands[{index}].detectors", detectors.with_overrides, brand.detector_overrides)
        kafka = dict(_section(document, "kafka"))
        freeze_every_s = kafka.get("gc_freeze_every_s", 0)
        if 0 < freeze_every_s < 1:  # a full pass of the cycle collector many times a second
            raise ConfigError("kafka.gc_freeze_every_s", freeze_every_s, "0 (off) or at least 1 second")
        if isinstance(kafka.get("bootstrap_servers"), list):
            kafka["bootstrap_servers"] = ",".join(kafka["bootstrap_servers"])
        return Settings(
            kafka=KafkaConfig(**kafka),
            pipeline=PipelineConfig(**_section(document, "pipeline")),
            metrics=MetricsConfig(**_section(document, "metrics")),
            brands=brands,
            detectors=detectors,
            text=_built("text", TextConfig.from_mapping, _section(document, "text")),
            alerting=_built("alerting", AlertingConfig.from_mapping, _section(document, "alerting")),
            source=source,
        )
    except ConfigError as error:
        raise error.in_file(source) from None


def _built(section: str, build: Any, data: Mapping[str, Any]) -> Any:
    try:
        return build(data)
    except ConfigError as error:
        raise error.under(section) from None


def load_settings(path: str | os.PathLike[str] | None, environ: Mapping[str, str] | None = None) -> Settings:
    """Load the config file (or only defaults and environment when `path` is None)."""
    if path is None:
        return settings_from_mapping({}, source="(defaults)", environ=environ)
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError("", source, f"a readable config file ({error.strerror})", file=source) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
        raise ConfigError("", f"(YAML syntax error at {where})", "valid YAML", file=source) from None
    if data is not None and not isinstance(data, dict):
        raise ConfigError(
            "", f"({type(data).__name__})", "a mapping of sections at the top level", file=source
        )
    return settings_from_mapping(data, source=source, environ=environ)

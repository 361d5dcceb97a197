"""The `alerting` config section: raw typed config (this module) vs the runtime tree (`routing.build_runtime`).

An empty section is valid: every incident goes to a `console` receiver. Keys carry units (`_s`);
durations also accept Prometheus-style strings ("30s", "5m", "4h"). Secrets (`webhook_url`,
`bot_token`, `password`, `routing_key`, `signing_key`, `signing_secret`, webhook `url`) arrive resolved
by the loader from `X_env` / `X_file` keys and are wrapped in `Secret` here. File paths use `_path`
(the loader reads every `*_file` key as a secret file).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from crisiswatch.alerts.clock import parse_duration_s, parse_time
from crisiswatch.alerts.incidents import IncidentConfig
from crisiswatch.alerts.secrets import Secret
from crisiswatch.detectors.settings import ConfigError, require

RECEIVER_KINDS: tuple[str, ...] = ("console", "jsonl", "slack", "email", "pagerduty", "webhook")
ESCALATION_OWNERS: tuple[str, ...] = ("crisiswatch", "pagerduty", "none")
SILENCE_STORES: tuple[str, ...] = ("file", "kafka")
MATCHER_LABELS_HINT = "brand, role, detector, severity, lang, platform, category, status, root_id"
DEFAULT_INHIBIT_RULES: tuple[dict[str, Any], ...] = (
    {
        "source_matchers": ['detector="negative_surge"', 'severity="critical"'],
        "target_matchers": ['detector="volume_surge"'],
        "equal": ["brand"],
    },
)


def _duration(data: Mapping[str, Any], key: str, default: float | None, path: str) -> float | None:
    if key not in data or data[key] is None:
        return default
    try:
        return parse_duration_s(data[key])
    except ValueError:
        raise ConfigError(_join(path, key), data[key], "a duration: seconds or '30s' / '5m' / '4h'") from None


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _only(data: Mapping[str, Any], allowed: Sequence[str], path: str) -> None:
    require(isinstance(data, Mapping), path, data, "a mapping")
    for key in data:
        require(
            key in allowed, _join(path, str(key)), "(unknown key)", f"one of the known keys {sorted(allowed)}"
        )


def _str(data: Mapping[str, Any], key: str, default: str | None, path: str) -> str | None:
    value = data.get(key, default)
    if value is None:
        return None
    require(isinstance(value, str) and value != "", _join(path, key), value, "a non-empty string")
    return str(value)


def _str_list(data: Mapping[str, Any], key: str, path: str) -> tuple[str, ...]:
    value = data.get(key, ())
    if isinstance(value, str):
        value = [value]
    require(
        isinstance(value, Sequence) and all(isinstance(v, str) for v in value),
        _join(path, key),
        value,
        "a list of strings",
    )
    return tuple(value)


def _secret(data: Mapping[str, Any], key: str, path: str) -> Secret | None:
    value = data.get(key)
    if value is None or value == "":
        return None
    require(isinstance(value, str), _join(path, key), value, f"a string (set {key}_env or {key}_file)")
    return Secret(value)


def _bool(data: Mapping[str, Any], key: str, default: bool, path: str) -> bool:
    value = data.get(key, default)
    require(isinstance(value, bool), _join(path, key), value, "true or false")
    return bool(value)


def _int(data: Mapping[str, Any], key: str, default: int, path: str, minimum: int = 0) -> int:
    value = data.get(key, default)
    require(
        isinstance(value, int) and not isinstance(value, bool) and value >= minimum,
        _join(path, key),
        value,
        f"an integer >= {minimum}",
    )
    return int(value)


def _http_url(value: str | None, key: str) -> None:
    if value is not None:
        require(value.startswith(("http://", "https://")), key, value, "an http(s):// URL")


# ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SlackConfig:
    webhook_url: Secret | None = None
    bot_token: Secret | None = None
    channel: str | None = None
    api_base_url: str = "https://slack.com/api"
    # Verifies button callbacks (Slack app "Signing Secret").
    signing_secret: Secret | None = None
    # Mention the person on call (their slack_user_id) in firing pages.
    mention_on_call: bool = True
    timeout_s: float = 10.0

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], path: str) -> SlackConfig:
        _only(
            data,
            [
                "webhook_url",
                "bot_token",
                "channel",
                "api_base_url",
                "signing_secret",
                "mention_on_call",
                "timeout_s",
            ],
            path,
        )
        config = cls(
            webhook_url=_secret(data, "webhook_url", path),
            bot_token=_secret(data, "bot_token", path),
            channel=_str(data, "channel", None, path),
            api_base_url=str(_str(data, "api_base_url", "https://slack.com/api", path)).rstrip("/"),
            signing_secret=_secret(data, "signing_secret", path),
            mention_on_call=_bool(data, "mention_on_call", True, path),
            timeout_s=float(_duration(data, "timeout_s", 10.0, path) or 10.0),
        )
        require(
            (config.webhook_url is not None) != (config.bot_token is not None),
            path,
            "(slack)",
            "exactly one of webhook_url(_env/_file) or bot_token(_env/_file)",
        )
        if config.bot_token is not None:
            require(
                config.channel is not None, _join(path, "channel"), None, "a channel id when bot_token is set"
            )
        if config.webhook_url is not None:
            require(
                config.webhook_url.reveal().startswith(("http://", "https://")),
                _join(path, "webhook_url"),
                "***",
                "an http(s):// URL",
            )
        _http_url(config.api_base_url, _join(path, "api_base_url"))
        return config


@dataclass(frozen=True, slots=True)
class EmailConfig:
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 587
    starttls: bool = True
    # Implicit TLS (port 465); exclusive with starttls.
    ssl: bool = False
    username: str | None = None
    password: Secret | None = None
    from_address: str = "crisiswatch@localhost"
    to: tuple[str, ...] = ()
    # Also mail the people on call (their `email`).
    to_on_call: bool = True
    timeout_s: float = 15.0
    # Extra CA bundle to trust (a private relay, or the tests' self-signed server).
    ca_path: str | None = None

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], path: str) -> EmailConfig:
        _only(
            data,
            [
                "smtp_host",
                "smtp_port",
                "starttls",
                "ssl",
                "username",
                "password",
                "from",
                "to",
                "to_on_call",
                "timeout_s",
                "ca_path",
            ],
            path,
        )
        config = cls(
            smtp_host=str(_str(data, "smtp_host", "127.0.0.1", path)),
            smtp_port=_int(data, "smtp_port", 587, path, minimum=1),
            starttls=_bool(data, "starttls", True, path),
            ssl=_bool(data, "ssl", False, path),
            username=_str(data, "username", None, path),
            password=_secret(data, "password", path),
            from_address=str(_str(data, "from", "crisiswatch@localhost", path)),
            to=_str_list(data, "to", path),
            to_on_call=_bool(data, "to_on_call", True, path),
            timeout_s=float(_duration(data, "timeout_s", 15.0, path) or 15.0),
            ca_path=_str(data, "ca_path", None, path),
        )
        require(not (config.ssl and config.starttls), _join(path, "ssl"), True, "false when starttls is true")
        for address in (config.from_address, *config.to):
            require(
                "@" in address and not any(c in address for c in "\r\n<>,;"),
                path,
                address,
                "an email address",
            )
        require(
            bool(config.to) or config.to_on_call, _join(path, "to"), [], "at least one address or to_on_call"
        )
        return config


@dataclass(frozen=True, slots=True)
class PagerDutyConfig:
    routing_key: Secret | None = None
    api_base_url: str = "https://events.pagerduty.com"
    # Verifies PagerDuty v3 webhooks (X-PagerDuty-Signature) that carry acknowledgements back.
    webhook_signing_secret: Secret | None = None
    timeout_s: float = 10.0

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], path: str) -> PagerDutyConfig:
        _only(data, ["routing_key", "api_base_url", "webhook_signing_secret", "timeout_s"], path)
        config = cls(
            routing_key=_secret(data, "routing_key", path),
            api_base_url=str(_str(data, "api_base_url", "https://events.pagerduty.com", path)).rstrip("/"),
            webhook_signing_secret=_secret(data, "webhook_signing_secret", path),
            timeout_s=float(_duration(data, "timeout_s", 10.0, path) or 10.0),
        )
        require(
            config.routing_key is not None,
            _join(path, "routing_key"),
            None,
            "routing_key_env or routing_key_file",
        )
        _http_url(config.api_base_url, _join(path, "api_base_url"))
        return config


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    url: Secret | None = None
    signing_key: Secret | None = None
    timeout_s: float = 10.0

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], path: str) -> WebhookConfig:
        _only(data, ["url", "signing_key", "timeout_s"], path)
        config = cls(
            url=_secret(data, "url", path),
            signing_key=_secret(data, "signing_key", path),
            timeout_s=float(_duration(data, "timeout_s", 10.0, path) or 10.0),
        )
        require(
            config.url is not None and config.url.reveal().startswith(("http://", "https://")),
            _join(path, "url"),
            "***" if config.url else None,
            "an http(s):// URL (url, url_env or url_file)",
        )
        return config


@dataclass(frozen=True, slots=True)
class ConsoleConfig:
    stream: str = "stdout"

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], path: str) -> ConsoleConfig:
        _only(data, ["stream"], path)
        stream = str(_str(data, "stream", "stdout", path))
        require(stream in ("stdout", "stderr"), _join(path, "stream"), stream, "stdout or stderr")
        return cls(stream=stream)


@dataclass(frozen=True, slots=True)
class JsonlConfig:
    path: str = "alerts.jsonl"

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], path: str) -> JsonlConfig:
        _only(data, ["path"], path)
        return cls(path=str(_str(data, "path", "alerts.jsonl", path)))


_KIND_BUILDERS: dict[str, Any] = {
    "console": ConsoleConfig,
    "jsonl": JsonlConfig,
    "slack": SlackConfig,
    "email": EmailConfig,
    "pagerduty": PagerDutyConfig,
    "webhook": WebhookConfig,
}


@dataclass(frozen=True, slots=True)
class ReceiverConfig:
    name: str
    console: ConsoleConfig | None = None
    jsonl: JsonlConfig | None = None
    slack: SlackConfig | None = None
    email: EmailConfig | None = None
    pagerduty: PagerDutyConfig | None = None
    webhook: WebhookConfig | None = None
    # Who runs escalation for pages through this receiver: crisiswatch (escalation_policy), PagerDuty
    # (its own policies; crisiswatch then never escalates), or none.
    escalation_owner: str = "crisiswatch"
    escalation_policy: str | None = None
    send_resolved: bool = True
    # Page language override; default: the brand's language.
    lang: str | None = None

    @property
    def integrations(self) -> tuple[str, ...]:
        return tuple(kind for kind in RECEIVER_KINDS if getattr(self, kind) is not None)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], path: str) -> ReceiverConfig:
        _only(
            data,
            ["name", *RECEIVER_KINDS, "escalation_owner", "escalation_policy", "send_resolved", "lang"],
            path,
        )
        name = _str(data, "name", None, path)
        require(name is not None, _join(path, "name"), None, "a receiver name")
        kinds: dict[str, Any] = {}
        for kind in RECEIVER_KINDS:
            if kind in data:
                raw = data[kind] if data[kind] is not None else {}
                kinds[kind] = _KIND_BUILDERS[kind].from_mapping(raw, _join(path, kind))
        owner = str(
            _str(data, "escalation_owner", None, path)
            or ("pagerduty" if "pagerduty" in kinds else "crisiswatch")
        )
        require(
            owner in ESCALATION_OWNERS, _join(path, "escalation_owner"), owner, f"one of {ESCALATION_OWNERS}"
        )
        lang = _str(data, "lang", None, path)
        require(lang in (None, "en", "zh"), _join(path, "lang"), lang, "en or zh")
        config = cls(
            name=str(name),
            escalation_owner=owner,
            escalation_policy=_str(data, "escalation_policy", None, path),
            send_resolved=_bool(data, "send_resolved", True, path),
            lang=lang,
            **kinds,
        )
        require(bool(config.integrations), path, name, f"at least one of {RECEIVER_KINDS}")
        if owner == "pagerduty":
            require(
                config.pagerduty is not None,
                _join(path, "escalation_owner"),
                owner,
                "a pagerduty integration",
            )
        return config


# ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RouteConfig:
    """One node of the raw route tree; `None` fields inherit from the parent."""

    receiver: str | None = None
    matchers: tuple[str, ...] = ()
    continue_: bool = False
    group_by: tuple[str, ...] | None = None
    group_wait_s: float | None = None
    group_wait_critical_s: float | None = None
    group_interval_s: float | None = None
    repeat_interval_s: float | None = None
    mute_time_intervals: tuple[str, ...] = ()
    active_time_intervals: tuple[str, ...] = ()
    routes: tuple[RouteConfig, ...] = ()

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], path: str = "route") -> RouteConfig:
        _only(
            data,
            [
                "receiver",
                "matchers",
                "match",
                "match_re",
                "continue",
                "group_by",
                "group_wait_s",
                "group_wait_critical_s",
                "group_interval_s",
                "repeat_interval_s",
                "mute_time_intervals",
                "active_time_intervals",
                "routes",
            ],
            path,
        )
        matchers = list(_str_list(data, "matchers", path))
        for key, op in (("match", "="), ("match_re", "=~")):
            raw = data.get(key, {})
            require(isinstance(raw, Mapping), _join(path, key), raw, "a mapping of label: value")
            for label, value in raw.items():
                matchers.append(f'{label}{op}"{value}"')
        routes_raw = data.get("routes", [])
        require(
            isinstance(routes_raw, Sequence) and not isinstance(routes_raw, str),
            _join(path, "routes"),
            routes_raw,
            "a list of routes",
        )
        group_by = None if "group_by" not in data else _str_list(data, "group_by", path)
        return cls(
            receiver=_str(data, "receiver", None, path),
            matchers=tuple(matchers),
            continue_=_bool(data, "continue", False, path),
            group_by=group_by,
            group_wait_s=_duration(data, "group_wait_s", None, path),
            group_wait_critical_s=_duration(data, "group_wait_critical_s", None, path),
            group_interval_s=_duration(data, "group_interval_s", None, path),
            repeat_interval_s=_duration(data, "repeat_interval_s", None, path),
            mute_time_intervals=_str_list(data, "mute_time_intervals", path),
            active_time_intervals=_str_list(data, "active_time_intervals", path),
            routes=tuple(
                cls.from_mapping(child, _join(_join(path, "routes"), i)) for i, child in enumerate(routes_raw)
            ),
        )


@dataclass(frozen=True, slots=True)
class InhibitRuleConfig:
    source_matchers: tuple[str, ...]
    target_matchers: tuple[str, ...]
    equal: tuple[str, ...] = ()

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], path: str) -> InhibitRuleConfig:
        _only(data, ["source_matchers", "target_matchers", "equal"], path)
        rule = cls(
            source_matchers=_str_list(data, "source_matchers", path),
            target_matchers=_str_list(data, "target_matchers", path),
            equal=_str_list(data, "equal", path),
        )
        require(bool(rule.source_matchers), _join(path, "source_matchers"), [], "at least one matcher")
        require(bool(rule.target_matchers), _join(path, "target_matchers"), [], "at least one matcher")
        return rule


@dataclass(frozen=True, slots=True)
class TimeIntervalConfig:
    """A named set of periods (Alertmanager `time_intervals`), plus absolute `ranges` for campaigns."""

    name: str
    # Each: {times: [{start_time: "22:00", end_time: "07:00"}], weekdays: ["monday:friday"],
    #        days_of_month: ["1:7"], months: ["december"], location: "Asia/Shanghai"}
    periods: tuple[Mapping[str, Any], ...] = ()
    # Absolute windows: [{start: ISO, end: ISO}] (a campaign launch).
    ranges: tuple[tuple[float, float], ...] = ()

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], path: str) -> TimeIntervalConfig:
        _only(data, ["name", "time_intervals", "ranges"], path)
        name = _str(data, "name", None, path)
        require(name is not None, _join(path, "name"), None, "a name")
        periods = data.get("time_intervals", [])
        require(
            isinstance(periods, Sequence) and not isinstance(periods, str),
            _join(path, "time_intervals"),
            periods,
            "a list",
        )
        ranges: list[tuple[float, float]] = []
        for i, item in enumerate(data.get("ranges", []) or []):
            where = _join(_join(path, "ranges"), i)
            _only(item, ["start", "end"], where)
            try:
                start, end = parse_time(item["start"]), parse_time(item["end"])
            except (KeyError, ValueError):
                raise ConfigError(where, item, "{start: ISO-8601, end: ISO-8601}") from None
            require(end > start, where, item, "end after start")
            ranges.append((start, end))
        config = cls(name=str(name), periods=tuple(dict(p) for p in periods), ranges=tuple(ranges))
        from crisiswatch.alerts.timeintervals import compile_interval

        compile_interval(config, path)  # validates periods now, not at the first alert
        return config


@dataclass(frozen=True, slots=True)
class PersonConfig:
    id: str
    name: str = ""
    email: str | None = None
    slack_user_id: str | None = None
    phone: str | None = None
    pagerduty_user_id: str | None = None
    lang: str | None = None

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], path: str) -> PersonConfig:
        _only(data, ["id", "name", "email", "slack_user_id", "phone", "pagerduty_user_id", "lang"], path)
        person_id = _str(data, "id", None, path)
        require(person_id is not None, _join(path, "id"), None, "a person id")
        person = cls(
            id=str(person_id),
            name=str(_str(data, "name", person_id, path)),
            email=_str(data, "email", None, path),
            slack_user_id=_str(data, "slack_user_id", None, path),
            phone=_str(data, "phone", None, path),
            pagerduty_user_id=_str(data, "pagerduty_user_id", None, path),
            lang=_str(data, "lang", None, path),
        )
        if person.email is not None:
            require(
                "@" in person.email and not any(c in person.email for c in "\r\n<>,;"),
                _join(path, "email"),
                person.email,
                "an email address",
            )
        if person.slack_user_id is not None:
            require(
                person.slack_user_id.isalnum(),
                _join(path, "slack_user_id"),
                person.slack_user_id,
                "a Slack user id like U012ABC",
            )
        return person


@dataclass(frozen=True, slots=True)
class ScheduleOverride:
    person: str
    start_s: float
    end_s: float


@dataclass(frozen=True, slots=True)
class ScheduleConfig:
    """A rotation: participants take turns of `shift_s` from `start`, handing off at local time."""

    name: str
    participants: tuple[str, ...]
    time_zone: str = "UTC"
    rotation: str = "weekly"
    # First handoff (local date and time in `time_zone`), e.g. "2026-11-02T09:00".
    start: str = "2026-01-05T09:00"
    overrides: tuple[ScheduleOverride, ...] = ()

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], path: str) -> ScheduleConfig:
        _only(data, ["name", "participants", "time_zone", "rotation", "start", "overrides"], path)
        name = _str(data, "name", None, path)
        require(name is not None, _join(path, "name"), None, "a schedule name")
        participants = _str_list(data, "participants", path)
        require(bool(participants), _join(path, "participants"), [], "at least one person id")
        rotation = str(_str(data, "rotation", "weekly", path))
        require(rotation in ("daily", "weekly"), _join(path, "rotation"), rotation, "daily or weekly")
        overrides = []
        for i, item in enumerate(data.get("overrides", []) or []):
            where = _join(_join(path, "overrides"), i)
            _only(item, ["person", "start", "end"], where)
            try:
                override = ScheduleOverride(
                    str(item["person"]), parse_time(item["start"]), parse_time(item["end"])
                )
            except (KeyError, ValueError):
                raise ConfigError(where, item, "{person, start: ISO-8601, end: ISO-8601}") from None
            require(override.end_s > override.start_s, where, item, "end after start")
            overrides.append(override)
        config = cls(
            name=str(name),
            participants=participants,
            time_zone=str(_str(data, "time_zone", "UTC", path)),
            rotation=rotation,
            start=str(data.get("start", "2026-01-05T09:00")),
            overrides=tuple(overrides),
        )
        from crisiswatch.alerts.oncall import validate_schedule

        validate_schedule(config, path)
        return config


@dataclass(frozen=True, slots=True)
class EscalationStep:
    # "person:<id>" | "schedule:<name>" | a bare person id
    targets: tuple[str, ...]
    # How long to wait for an acknowledgement before the next step.
    wait_s: float = 600.0


@dataclass(frozen=True, slots=True)
class EscalationPolicyConfig:
    name: str
    steps: tuple[EscalationStep, ...]
    # How many times to run the whole policy again when nobody acknowledges (0 = once).
    repeat: int = 0

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], path: str) -> EscalationPolicyConfig:
        _only(data, ["name", "steps", "repeat"], path)
        name = _str(data, "name", None, path)
        require(name is not None, _join(path, "name"), None, "a policy name")
        raw_steps = data.get("steps", [])
        require(
            isinstance(raw_steps, Sequence) and bool(raw_steps),
            _join(path, "steps"),
            raw_steps,
            "a non-empty list",
        )
        steps = []
        for i, item in enumerate(raw_steps):
            where = _join(_join(path, "steps"), i)
            _only(item, ["targets", "wait_s"], where)
            targets = _str_list(item, "targets", where)
            require(bool(targets), _join(where, "targets"), [], "at least one target")
            wait = _duration(item, "wait_s", 600.0, where)
            require(wait is not None and wait > 0, _join(where, "wait_s"), wait, "a duration > 0")
            steps.append(EscalationStep(targets=targets, wait_s=float(wait or 600.0)))
        return cls(name=str(name), steps=tuple(steps), repeat=_int(data, "repeat", 0, path))


@dataclass(frozen=True, slots=True)
class DeliveryConfig:
    """One retry policy for every receiver: exponential backoff with jitter inside a time budget."""

    initial_backoff_s: float = 1.0
    max_backoff_s: float = 300.0
    multiplier: float = 2.0
    # +/- fraction of each backoff, drawn from a seeded RNG.
    jitter: float = 0.2
    # Give up (dead-letter) when the first attempt is older than this.
    budget_s: float = 6 * 3600.0
    timeout_s: float = 10.0
    # A 429's Retry-After longer than this is capped (a misbehaving server cannot park us for days).
    max_retry_after_s: float = 3600.0
    dead_letter_path: str = "crisiswatch-dead-letters.jsonl"

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], path: str = "delivery") -> DeliveryConfig:
        allowed = list(cls.__dataclass_fields__)
        _only(data, allowed, path)
        values: dict[str, Any] = {}
        for key in allowed:
            if key == "dead_letter_path":
                values[key] = _str(data, key, "crisiswatch-dead-letters.jsonl", path)
            elif key in ("multiplier", "jitter"):
                value = data.get(key, cls.__dataclass_fields__[key].default)
                require(
                    isinstance(value, int | float) and not isinstance(value, bool),
                    _join(path, key),
                    value,
                    "a number",
                )
                values[key] = float(value)
            else:
                default: Any = cls.__dataclass_fields__[key].default
                values[key] = _duration(data, key, default, path)
        config = cls(**values)
        require(config.multiplier >= 1.0, _join(path, "multiplier"), config.multiplier, "a number >= 1")
        require(0.0 <= config.jitter < 1.0, _join(path, "jitter"), config.jitter, "a number in [0, 1)")
        require(
            config.initial_backoff_s > 0, _join(path, "initial_backoff_s"), config.initial_backoff_s, "> 0"
        )
        require(
            config.max_backoff_s >= config.initial_backoff_s,
            _join(path, "max_backoff_s"),
            config.max_backoff_s,
            ">= initial_backoff_s",
        )
        require(config.timeout_s > 0, _join(path, "timeout_s"), config.timeout_s, "> 0")
        return config


@dataclass(frozen=True, slots=True)
class CallbackConfig:
    """The worker's HTTP endpoint for Slack buttons, signed email links and PagerDuty webhooks."""

    # Where Slack and mail clients reach the endpoint (the endpoint itself binds 127.0.0.1 by default).
    public_base_url: str | None = None
    path_prefix: str = "/alerts"
    # Signs acknowledge links in emails; required for links to be generated.
    signing_key: Secret | None = None
    link_ttl_s: float = 86400.0
    # Slack request timestamps older than this are refused (replay protection).
    timestamp_tolerance_s: float = 300.0

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], path: str = "callback") -> CallbackConfig:
        _only(
            data,
            ["public_base_url", "path_prefix", "signing_key", "link_ttl_s", "timestamp_tolerance_s"],
            path,
        )
        base = _str(data, "public_base_url", None, path)
        _http_url(base, _join(path, "public_base_url"))
        prefix = str(_str(data, "path_prefix", "/alerts", path))
        require(
            prefix.startswith("/") and not prefix.endswith("/"),
            _join(path, "path_prefix"),
            prefix,
            "'/x' without a trailing slash",
        )
        return cls(
            public_base_url=None if base is None else base.rstrip("/"),
            path_prefix=prefix,
            signing_key=_secret(data, "signing_key", path),
            link_ttl_s=float(_duration(data, "link_ttl_s", 86400.0, path) or 86400.0),
            timestamp_tolerance_s=float(_duration(data, "timestamp_tolerance_s", 300.0, path) or 300.0),
        )


DEFAULT_RECEIVERS: tuple[ReceiverConfig, ...] = (ReceiverConfig(name="console", console=ConsoleConfig()),)


@dataclass(frozen=True, slots=True)
class AlertingConfig:
    receivers: tuple[ReceiverConfig, ...] = DEFAULT_RECEIVERS
    route: RouteConfig = field(default_factory=lambda: RouteConfig(receiver="console"))
    inhibit_rules: tuple[InhibitRuleConfig, ...] = ()
    time_intervals: tuple[TimeIntervalConfig, ...] = ()
    people: tuple[PersonConfig, ...] = ()
    schedules: tuple[ScheduleConfig, ...] = ()
    escalation_policies: tuple[EscalationPolicyConfig, ...] = ()
    incidents: IncidentConfig = field(default_factory=IncidentConfig)
    delivery: DeliveryConfig = field(default_factory=DeliveryConfig)
    callback: CallbackConfig = field(default_factory=CallbackConfig)
    # category -> text or {en: text, zh: text}; "default" for categories without one.
    playbooks: Mapping[str, Any] = field(default_factory=dict)
    # "file": one JSON file at silences_path (one host or a shared volume); "kafka": the compacted topic
    # kafka.silences_topic, followed by every worker (crisiswatch.streams.silences).
    silences_store: str = "file"
    silences_path: str = "crisiswatch-silences.json"
    labelled_incidents_path: str = "labelled_incidents.jsonl"

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> AlertingConfig:
        data = data or {}
        _only(
            data,
            [
                "receivers",
                "route",
                "inhibit_rules",
                "time_intervals",
                "people",
                "schedules",
                "escalation_policies",
                "incidents",
                "delivery",
                "callback",
                "playbooks",
                "silences_store",
                "silences_path",
                "labelled_incidents_path",
            ],
            "",
        )
        silences_store = data.get("silences_store", "file")
        require(
            silences_store in SILENCE_STORES,
            "silences_store",
            silences_store,
            f"one of {list(SILENCE_STORES)}",
        )
        receivers_raw = data.get("receivers")
        if receivers_raw is None:
            receivers: tuple[ReceiverConfig, ...] = DEFAULT_RECEIVERS
        else:
            require(
                isinstance(receivers_raw, Sequence) and not isinstance(receivers_raw, str),
                "receivers",
                receivers_raw,
                "a list",
            )
            receivers = tuple(
                ReceiverConfig.from_mapping(r, f"receivers[{i}]") for i, r in enumerate(receivers_raw)
            )
        route = (
            RouteConfig.from_mapping(data["route"], "route")
            if data.get("route") is not None
            else RouteConfig(receiver=receivers[0].name if receivers else "console")
        )
        inhibit_raw = data.get("inhibit_rules")
        inhibit_source = DEFAULT_INHIBIT_RULES if inhibit_raw is None else inhibit_raw
        try:
            incidents = IncidentConfig.from_mapping(data.get("incidents") or {})
        except ConfigError as error:
            raise error.under("incidents") from None
        playbooks = data.get("playbooks") or {}
        require(
            isinstance(playbooks, Mapping), "playbooks", playbooks, "a mapping category -> text or {en, zh}"
        )
        for category, entry in playbooks.items():
            ok = isinstance(entry, str) or (
                isinstance(entry, Mapping) and all(isinstance(v, str) for v in entry.values())
            )
            require(ok, f"playbooks.{category}", entry, "a string or {en: text, zh: text}")
        config = cls(
            receivers=receivers,
            route=route,
            inhibit_rules=tuple(
                InhibitRuleConfig.from_mapping(r, f"inhibit_rules[{i}]") for i, r in enumerate(inhibit_source)
            ),
            time_intervals=tuple(
                TimeIntervalConfig.from_mapping(t, f"time_intervals[{i}]")
                for i, t in enumerate(data.get("time_intervals") or [])
            ),
            people=tuple(
                PersonConfig.from_mapping(p, f"people[{i}]") for i, p in enumerate(data.get("people") or [])
            ),
            schedules=tuple(
                ScheduleConfig.from_mapping(s, f"schedules[{i}]")
                for i, s in enumerate(data.get("schedules") or [])
            ),
            escalation_policies=tuple(
                EscalationPolicyConfig.from_mapping(p, f"escalation_policies[{i}]")
                for i, p in enumerate(data.get("escalation_policies") or [])
            ),
            incidents=incidents,
            delivery=DeliveryConfig.from_mapping(data.get("delivery") or {}, "delivery"),
            callback=CallbackConfig.from_mapping(data.get("callback") or {}, "callback"),
            playbooks=dict(playbooks),
            silences_store=str(silences_store),
            silences_path=str(_str(data, "silences_path", "crisiswatch-silences.json", "")),
            labelled_incidents_path=str(
                _str(data, "labelled_incidents_path", "labelled_incidents.jsonl", "")
            ),
        )
        config.validate_references()
        return config

    def validate_references(self) -> None:
        """Names used across the section exist (receivers, intervals, people, schedules, policies)."""
        names = [r.name for r in self.receivers]
        require(len(set(names)) == len(names), "receivers", names, "unique receiver names")
        intervals = {t.name for t in self.time_intervals}
        people = {p.id for p in self.people}
        require(len(people) == len(self.people), "people", [p.id for p in self.people], "unique person ids")
        schedules = {s.name for s in self.schedules}
        policies = {p.name for p in self.escalation_policies}
        for i, receiver in enumerate(self.receivers):
            if receiver.escalation_policy is not None:
                require(
                    receiver.escalation_policy in policies,
                    f"receivers[{i}].escalation_policy",
                    receiver.escalation_policy,
                    f"one of the escalation_policies {sorted(policies)}",
                )
        for i, schedule in enumerate(self.schedules):
            for person in schedule.participants + tuple(o.person for o in schedule.overrides):
                require(
                    person in people,
                    f"schedules[{i}].participants",
                    person,
                    f"a person id from people {sorted(people)}",
                )
        for i, policy in enumerate(self.escalation_policies):
            for j, step in enumerate(policy.steps):
                for target in step.targets:
                    kind, _, name = target.rpartition(":")
                    where = f"escalation_policies[{i}].steps[{j}].targets"
                    if kind == "schedule":
                        require(name in schedules, where, target, f"a schedule from {sorted(schedules)}")
                    else:
                        require(
                            kind in ("", "person") and name in people,
                            where,
                            target,
                            f"'person:<id>' or 'schedule:<name>' ({sorted(people)})",
                        )

        def walk(route: RouteConfig, path: str, is_root: bool) -> None:
            if is_root:
                require(route.receiver is not None, f"{path}.receiver", None, "a receiver on the root route")
                require(
                    not route.matchers,
                    f"{path}.matchers",
                    list(route.matchers),
                    "no matchers on the root route",
                )
            if route.receiver is not None:
                require(
                    route.receiver in names,
                    f"{path}.receiver",
                    route.receiver,
                    f"one of the receivers {names}",
                )
            for name in route.mute_time_intervals + route.active_time_intervals:
                require(
                    name in intervals,
                    f"{path}.mute_time_intervals",
                    name,
                    f"one of the time_intervals {sorted(intervals)}",
                )
            for k, child in enumerate(route.routes):
                walk(child, f"{path}.routes[{k}]", False)

        walk(self.route, "route", True)
        from crisiswatch.alerts.routing import parse_matchers

        parse_matchers(self.route, "route")
        for i, rule in enumerate(self.inhibit_rules):
            from crisiswatch.alerts.routing import Matcher

            for j, text in enumerate(rule.source_matchers):
                Matcher.parse(text, f"inhibit_rules[{i}].source_matchers[{j}]")
            for j, text in enumerate(rule.target_matchers):
                Matcher.parse(text, f"inhibit_rules[{i}].target_matchers[{j}]")

    def receiver(self, name: str) -> ReceiverConfig:
        for receiver in self.receivers:
            if receiver.name == name:
                return receiver
        raise KeyError(name)


# ---------------------------------------------------------------------------------------------------
_DURATION_SCHEMA: dict[str, Any] = {"type": ["number", "string"]}
_STRINGS: dict[str, Any] = {"type": "array", "items": {"type": "string"}}
_STRING_OR_STRINGS: dict[str, Any] = {"anyOf": [{"type": "string"}, _STRINGS]}
_SECRET: dict[str, Any] = {"type": "string"}


def _obj(properties: dict[str, Any], required: Sequence[str] = ()) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "additionalProperties": False, "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


_ROUTE_SCHEMA: dict[str, Any] = {
    "$id": "crisiswatch-alerting-route",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "receiver": {"type": "string"},
        "matchers": _STRING_OR_STRINGS,
        "match": {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}},
        "match_re": {"type": "object", "additionalProperties": {"type": "string"}},
        "continue": {"type": "boolean"},
        "group_by": _STRING_OR_STRINGS,
        "group_wait_s": _DURATION_SCHEMA,
        "group_wait_critical_s": _DURATION_SCHEMA,
        "group_interval_s": _DURATION_SCHEMA,
        "repeat_interval_s": _DURATION_SCHEMA,
        "mute_time_intervals": _STRING_OR_STRINGS,
        "active_time_intervals": _STRING_OR_STRINGS,
        "routes": {"type": "array", "items": {"$ref": "#"}},
    },
}

CONFIG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "description": "Alerting: receivers, route tree, inhibition, time intervals, on-call, delivery.",
    "properties": {
        "receivers": {
            "type": "array",
            "items": _obj(
                {
                    "name": {"type": "string"},
                    "console": {"type": ["object", "null"]},
                    "jsonl": {"type": ["object", "null"]},
                    "slack": {"type": "object"},
                    "email": {"type": "object"},
                    "pagerduty": {"type": "object"},
                    "webhook": {"type": "object"},
                    "escalation_owner": {"enum": list(ESCALATION_OWNERS)},
                    "escalation_policy": {"type": "string"},
                    "send_resolved": {"type": "boolean"},
                    "lang": {"enum": ["en", "zh"]},
                },
                required=["name"],
            ),
        },
        # Recursive routes are checked by `RouteConfig.from_mapping` (a composed schema cannot `$ref` "#").
        "route": {"type": "object"},
        "inhibit_rules": {
            "type": "array",
            "items": _obj(
                {
                    "source_matchers": _STRING_OR_STRINGS,
                    "target_matchers": _STRING_OR_STRINGS,
                    "equal": _STRING_OR_STRINGS,
                }
            ),
        },
        "time_intervals": {
            "type": "array",
            "items": _obj(
                {
                    "name": {"type": "string"},
                    "time_intervals": {"type": "array"},
                    "ranges": {"type": "array"},
                },
                ["name"],
            ),
        },
        "people": {"type": "array", "items": {"type": "object", "required": ["id"]}},
        "schedules": {"type": "array", "items": {"type": "object", "required": ["name", "participants"]}},
        "escalation_policies": {"type": "array", "items": {"type": "object", "required": ["name", "steps"]}},
        "incidents": _obj(
            {name: {"type": ["number", "string"]} for name in IncidentConfig.__dataclass_fields__}
        ),
        "delivery": {"type": "object"},
        "callback": {"type": "object"},
        "playbooks": {"type": "object"},
        "silences_store": {"enum": list(SILENCE_STORES)},
        "silences_path": {"type": "string"},
        "labelled_incidents_path": {"type": "string"},
    },
}
ROUTE_SCHEMA = _ROUTE_SCHEMA

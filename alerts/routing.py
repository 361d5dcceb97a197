"""The runtime routing tree (Alertmanager's model), built from the raw config or refused with ConfigError.

`build_runtime(config)` is the pure "config -> runtime" step the worker runs at start and on SIGHUP:
a bad file raises `ConfigError` and the caller keeps the old runtime. Matching is depth-first: a node
matches when its matchers do; its first matching child (and the following ones while `continue` is
true) take the alert; a node with no matching child takes it itself.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from crisiswatch.alerts.config import AlertingConfig, EscalationPolicyConfig, ReceiverConfig, RouteConfig
from crisiswatch.alerts.oncall import Directory
from crisiswatch.alerts.timeintervals import CompiledInterval, compile_interval
from crisiswatch.detectors.settings import ConfigError

DEFAULT_GROUP_BY: tuple[str, ...] = ("incident_id",)
DEFAULT_GROUP_WAIT_S = 30.0
# Pages: a critical incident goes out at once.
DEFAULT_GROUP_WAIT_CRITICAL_S = 0.0
DEFAULT_GROUP_INTERVAL_S = 300.0
DEFAULT_REPEAT_INTERVAL_S = 4 * 3600.0

_MATCHER_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$")


@dataclass(frozen=True, slots=True)
class Matcher:
    name: str
    op: str  # "=", "!=", "=~", "!~"
    value: str
    _regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def parse(cls, text: str, where: str = "matchers") -> Matcher:
        match = _MATCHER_RE.match(text)
        if match is None:
            raise ConfigError(
                where, text, 'a matcher like brand="acme", severity=~"warning|critical", lang!="zh"'
            )
        name, op, value = match.groups()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        return cls.make(name, op, value, where)

    @classmethod
    def make(cls, name: str, op: str, value: str, where: str = "matchers") -> Matcher:
        regex = None
        if op in ("=~", "!~"):
            try:
                regex = re.compile(f"(?:{value})")
            except re.error as error:
                raise ConfigError(where, value, f"a valid regular expression ({error})") from None
        elif op not in ("=", "!="):
            raise ConfigError(where, op, "one of = != =~ !~")
        return cls(name, op, value, regex)

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        assert self._regex is not None
        hit = self._regex.fullmatch(actual) is not None
        return hit if self.op == "=~" else not hit

    def matches_empty(self) -> bool:
        return self.matches({})

    def __str__(self) -> str:
        return f'{self.name}{self.op}"{self.value}"'

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "op": self.op, "value": self.value}


def matches_all(matchers: Sequence[Matcher], labels: Mapping[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)


def parse_matcher_list(texts: Sequence[str], where: str) -> tuple[Matcher, ...]:
    out: list[Matcher] = []
    for i, text in enumerate(texts):
        # A single string may hold several comma-separated matchers: 'brand="a",severity="critical"'.
        for part in _split_matchers(text):
            out.append(Matcher.parse(part, f"{where}[{i}]"))
    return tuple(out)


def _split_matchers(text: str) -> list[str]:
    parts: list[str] = []
    current = ""
    quote = ""
    for char in text.strip().strip("{}"):
        if quote:
            current += char
            if char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
            current += char
        elif char == ",":
            parts.append(current)
            current = ""
        else:
            current += char
    if current.strip():
        parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def parse_matchers(route: RouteConfig, where: str) -> None:
    """Validate the matchers of a whole raw route tree."""
    parse_matcher_list(route.matchers, f"{where}.matchers")
    for i, child in enumerate(route.routes):
        parse_matchers(child, f"{where}.routes[{i}]")


@dataclass(frozen=True, slots=True)
class RuntimeRoute:
    """A resolved route: inherited timings filled in; `path` names it ("route.routes[1]")."""

    path: str
    receiver: str
    matchers: tuple[Matcher, ...]
    continue_: bool
    group_by: tuple[str, ...]
    group_wait_s: float
    group_wait_critical_s: float
    group_interval_s: float
    repeat_interval_s: float
    mute_time_intervals: tuple[str, ...]
    active_time_intervals: tuple[str, ...]
    routes: tuple[RuntimeRoute, ...] = ()

    def match(self, labels: Mapping[str, str]) -> list[RuntimeRoute]:
        if not matches_all(self.matchers, labels):
            return []
        found: list[RuntimeRoute] = []
        for child in self.routes:
            hits = child.match(labels)
            if hits:
                found.extend(hits)
                if not child.continue_:
                    break
        return found or [self]

    def group_key(self, labels: Mapping[str, str]) -> str:
        if "..." in self.group_by:
            picked = sorted(labels.items())
        else:
            picked = [(name, labels.get(name, "")) for name in self.group_by]
        return self.path + "{" + ",".join(f"{k}={v!r}" for k, v in picked) + "}"

    def group_wait_for(self, severity: str) -> float:
        return self.group_wait_critical_s if severity == "critical" else self.group_wait_s

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "receiver": self.receiver,
            "matchers": [str(m) for m in self.matchers],
            "continue": self.continue_,
            "group_by": list(self.group_by),
            "group_wait_s": self.group_wait_s,
            "group_wait_critical_s": self.group_wait_critical_s,
            "group_interval_s": self.group_interval_s,
            "repeat_interval_s": self.repeat_interval_s,
            "mute_time_intervals": list(self.mute_time_intervals),
            "active_time_intervals": list(self.active_time_intervals),
        }


def _build_route(raw: RouteConfig, parent: RuntimeRoute | None, path: str) -> RuntimeRoute:
    def pick(value: Any, inherited: Any) -> Any:
        return inherited if value is None else value

    base = parent
    node = RuntimeRoute(
        path=path,
        receiver=pick(raw.receiver, base.receiver if base else None),
        matchers=parse_matcher_list(raw.matchers, f"{path}.matchers"),
        continue_=raw.continue_,
        group_by=tuple(pick(raw.group_by, base.group_by if base else DEFAULT_GROUP_BY)),
        group_wait_s=float(pick(raw.group_wait_s, base.group_wait_s if base else DEFAULT_GROUP_WAIT_S)),
        group_wait_critical_s=float(
            pick(
                raw.group_wait_critical_s,
                base.group_wait_critical_s if base else DEFAULT_GROUP_WAIT_CRITICAL_S,
            )
        ),
        group_interval_s=float(
            pick(raw.group_interval_s, base.group_interval_s if base else DEFAULT_GROUP_INTERVAL_S)
        ),
        repeat_interval_s=float(
            pick(raw.repeat_interval_s, base.repeat_interval_s if base else DEFAULT_REPEAT_INTERVAL_S)
        ),
        # Like Alertmanager, time intervals are not inherited: each route says its own.
        mute_time_intervals=tuple(raw.mute_time_intervals),
        active_time_intervals=tuple(raw.active_time_intervals),
    )
    if node.receiver is None:
        raise ConfigError(f"{path}.receiver", None, "a receiver (here or on a parent route)")
    if node.group_interval_s <= 0:
        raise ConfigError(f"{path}.group_interval_s", node.group_interval_s, "a duration > 0")
    if node.repeat_interval_s <= 0:
        raise ConfigError(f"{path}.repeat_interval_s", node.repeat_interval_s, "a duration > 0")
    children = tuple(_build_route(child, node, f"{path}.routes[{i}]") for i, child in enumerate(raw.routes))
    return RuntimeRoute(**{**{f: getattr(node, f) for f in node.__dataclass_fields__}, "routes": children})


@dataclass(frozen=True, slots=True)
class InhibitRule:
    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...]

    def inhibits(self, source_labels: Mapping[str, str], target_labels: Mapping[str, str]) -> bool:
        if not (matches_all(self.source, source_labels) and matches_all(self.target, target_labels)):
            return False
        if matches_all(self.source, target_labels) and matches_all(self.target, source_labels):
            return False  # Alertmanager: an alert matching both sides cannot inhibit itself
        return all(source_labels.get(k, "") == target_labels.get(k, "") for k in self.equal)


@dataclass(frozen=True, slots=True)
class Runtime:
    """Everything resolved that routing, muting and escalation need; immutable, swapped on reload."""

    config: AlertingConfig
    root: RuntimeRoute
    receivers: Mapping[str, ReceiverConfig]
    intervals: Mapping[str, CompiledInterval]
    inhibit_rules: tuple[InhibitRule, ...]
    directory: Directory
    policies: Mapping[str, EscalationPolicyConfig]

    def routes_for(self, labels: Mapping[str, str]) -> list[RuntimeRoute]:
        return self.root.match(labels)

    def muted_by(self, route: RuntimeRoute, at_s: float) -> str | None:
        """The name of the time interval muting `route` at `at_s`, or None."""
        for name in route.mute_time_intervals:
            if self.intervals[name].contains(at_s):
                return name
        if route.active_time_intervals and not any(
            self.intervals[n].contains(at_s) for n in route.active_time_intervals
        ):
            return "(outside active_time_intervals)"
        return None

    def inhibited(self, target_labels: Mapping[str, str], active: Sequence[Mapping[str, str]]) -> bool:
        for rule in self.inhibit_rules:
            for source in active:
                if source is not target_labels and rule.inhibits(source, target_labels):
                    return True
        return False

    def on_call_for(self, receiver: ReceiverConfig, at_s: float) -> list[dict[str, Any]]:
        """Who is paged first for `receiver` at `at_s`, and by whom escalation is owned."""
        if receiver.escalation_owner != "crisiswatch" or receiver.escalation_policy is None:
            return []
        policy = self.policies[receiver.escalation_policy]
        out = []
        at = at_s
        for index, step in enumerate(policy.steps):
            for person_id in self.directory.resolve(step.targets, at):
                person = self.directory.person(person_id)
                out.append(
                    {
                        "step": index,
                        "after_s": at - at_s,
                        "person": person_id,
                        "name": person.name if person else person_id,
                    }
                )
            at += step.wait_s
        return out


def build_runtime(config: AlertingConfig | Mapping[str, Any]) -> Runtime:
    """Config (typed or raw mapping) -> runtime tree; raises ConfigError and never half-builds."""
    if not isinstance(config, AlertingConfig):
        config = AlertingConfig.from_mapping(config)
    root = _build_route(config.route, None, "route")
    intervals = {
        t.name: compile_interval(t, f"time_intervals[{i}]") for i, t in enumerate(config.time_intervals)
    }
    rules = tuple(
        InhibitRule(
            parse_matcher_list(r.source_matchers, f"inhibit_rules[{i}].source_matchers"),
            parse_matcher_list(r.target_matchers, f"inhibit_rules[{i}].target_matchers"),
            tuple(r.equal),
        )
        for i, r in enumerate(config.inhibit_rules)
    )
    return Runtime(
        config=config,
        root=root,
        receivers={r.name: r for r in config.receivers},
        intervals=intervals,
        inhibit_rules=rules,
        directory=Directory(config.people, config.schedules),
        policies={p.name: p for p in config.escalation_policies},
    )

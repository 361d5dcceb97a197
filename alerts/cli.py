"""Command-line verbs of alerting; `streams/cli.py` wires them as `crisiswatch routes test`,
`crisiswatch silence add|list|expire` and `crisiswatch notifications list|resend`.

Each `*_main(argv, config, clock=..., out=...)` parses its own arguments (argparse), prints to `out`
and returns the exit status. "Now" comes from the injected clock (the lead passes the real one).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from crisiswatch.alerts.clock import Clock, iso_z, parse_duration_s, parse_time
from crisiswatch.alerts.config import AlertingConfig
from crisiswatch.alerts.delivery import DeadLetterLog, DeliveryReport
from crisiswatch.alerts.dispatch import BRAND_PINNING_LABELS
from crisiswatch.alerts.routing import Runtime, build_runtime
from crisiswatch.alerts.silences import FileSilenceStore, SilenceStore, new_silence, silenced_by
from crisiswatch.detectors.settings import ConfigError


def _alerting(config: Any) -> AlertingConfig:
    """Accept the whole `Settings` (from `streams.config.load_settings`) or the `alerting` section."""
    return config if isinstance(config, AlertingConfig) else config.alerting


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise ConfigError("arguments", message, self.format_usage().strip())


def _now(args: argparse.Namespace, clock: Clock | None) -> float:
    if getattr(args, "at", None):
        try:
            return parse_time(args.at)
        except ValueError:
            raise ConfigError("--at", args.at, "an ISO-8601 time or epoch seconds") from None
    if clock is None:
        raise ConfigError("--at", None, "a time (no clock available)")
    return clock.now()


def parse_labels(text: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    for part in [p for p in text.split(",") if p.strip()]:
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise ConfigError("--labels", text, "comma-separated key=value pairs")
        labels[key.strip()] = value.strip().strip("\"'")
    return labels


def explain_route(
    runtime: Runtime, labels: dict[str, str], at_s: float, silences: SilenceStore | None = None
) -> dict[str, Any]:
    """Where an alert with `labels` would go at `at_s`: receivers, timings, mutes, silences, on-call."""
    routes = runtime.routes_for(labels)
    silence = silenced_by(silences, labels, at_s) if silences is not None else None
    results = []
    for route in routes:
        receiver = runtime.receivers[route.receiver]
        results.append(
            {
                "receiver": route.receiver,
                "route": route.to_dict(),
                "integrations": list(receiver.integrations),
                "group_key": route.group_key(labels),
                # False: the group spans brands, so each crisis.alerts partition keeps its own (dispatch.py).
                "group_within_partition": bool(BRAND_PINNING_LABELS.intersection(route.group_by)),
                "group_wait_s": route.group_wait_for(labels.get("severity", "")),
                "muted_by": runtime.muted_by(route, at_s),
                "escalation_owner": receiver.escalation_owner,
                "escalation_policy": receiver.escalation_policy,
                "on_call": runtime.on_call_for(receiver, at_s),
            }
        )
    default_only = len(routes) == 1 and routes[0] is runtime.root and bool(runtime.root.routes)
    return {
        "labels": labels,
        "at": iso_z(at_s),
        "matched": not default_only,
        "silenced_by": silence.to_dict() if silence else None,
        "routes": results,
    }


def _file_store(config: AlertingConfig) -> SilenceStore | None:
    """The silence store when it is the file; None for a Kafka store (the caller passes it in)."""
    return FileSilenceStore(config.silences_path) if config.silences_store == "file" else None


def routes_test_main(
    argv: Sequence[str],
    config: AlertingConfig,
    *,
    clock: Clock | None = None,
    out: TextIO | None = None,
    silences: SilenceStore | None = None,
) -> int:
    """`crisiswatch routes test --labels k=v,... [--at TIME] [--json] [--verify-receivers a,b]`.

    Exit 0 when a route matches (and, with --verify-receivers, the receivers are exactly those);
    1 when only the root's default catches it or the receivers differ; 2 on bad input.
    """
    out = out or sys.stdout
    config = _alerting(config)
    parser = _Parser(prog="crisiswatch routes test", description="Show where an alert would be routed.")
    parser.add_argument("--labels", required=True, help="e.g. brand=acme,role=own,severity=critical")
    parser.add_argument("--at", help="ISO-8601 time or epoch seconds (default: now)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--verify-receivers", help="comma-separated receivers expected (exit 1 otherwise)")
    try:
        args = parser.parse_args(list(argv))
        labels = parse_labels(args.labels)
        at_s = _now(args, clock)
        runtime = build_runtime(config)
        result = explain_route(
            runtime, labels, at_s, silences if silences is not None else _file_store(config)
        )
    except ConfigError as error:
        print(f"error: {error}", file=out)
        return 2
    receivers = [r["receiver"] for r in result["routes"]]
    ok = result["matched"]
    if args.verify_receivers is not None:
        ok = receivers == [r.strip() for r in args.verify_receivers.split(",") if r.strip()]
    if args.json:
        print(json.dumps({**result, "ok": ok}, ensure_ascii=False, indent=2), file=out)
    else:
        print(",".join(receivers), file=out)
        for item in result["routes"]:
            line = f"  {item['receiver']}: {item['route']['path']} group_wait={item['group_wait_s']:g}s"
            if item["muted_by"]:
                line += f" MUTED by {item['muted_by']}"
            print(line, file=out)
            if not item["group_within_partition"]:
                print(
                    f"    note: group_by {item['route']['group_by']} spans brands: grouped per "
                    "crisis.alerts partition (add 'brand' to group_by for one group)",
                    file=out,
                )
            for person in item["on_call"]:
                print(
                    f"    step {person['step']} (+{person['after_s']:g}s): {person['name']} ({person['person']})",
                    file=out,
                )
            if item["escalation_owner"] != "crisiswatch":
                print(f"    escalation owned by {item['escalation_owner']}", file=out)
        if result["silenced_by"]:
            print(
                f"  SILENCED by {result['silenced_by']['id']} until {result['silenced_by']['ends_at']}",
                file=out,
            )
        if not result["matched"]:
            print("  (no route matched: only the root's default receiver)", file=out)
    return 0 if ok else 1


def routes_main(
    argv: Sequence[str],
    config: Any,
    *,
    clock: Clock | None = None,
    out: TextIO | None = None,
    silences: SilenceStore | None = None,
) -> int:
    """`crisiswatch routes test ...` (the verb `routes` with its only sub-command, `test`)."""
    out = out or sys.stdout
    args = list(argv)
    if not args or args[0] != "test":
        print(
            "usage: crisiswatch routes test --labels k=v,... [--at TIME] [--json] [--verify-receivers a,b]",
            file=out,
        )
        return 2
    return routes_test_main(args[1:], config, clock=clock, out=out, silences=silences)


def silence_main(
    argv: Sequence[str],
    config: Any,
    *,
    clock: Clock | None = None,
    out: TextIO | None = None,
    store: SilenceStore | None = None,
) -> int:
    """`crisiswatch silence add|list|expire`."""
    out = out or sys.stdout
    config = _alerting(config)
    parser = _Parser(prog="crisiswatch silence", description="Manage silences (shared by all workers).")
    sub = parser.add_subparsers(dest="command", required=True)
    add = sub.add_parser("add", help="silence alerts matching all matchers")
    add.add_argument("matchers", nargs="+", help='e.g. brand="acme" detector="volume_surge"')
    add.add_argument("--duration", help="e.g. 2h (default 1h) ", default=None)
    add.add_argument("--ends", help="ISO-8601 end time (instead of --duration)")
    add.add_argument("--starts", help="ISO-8601 start time (default: now)")
    add.add_argument("--author", required=True)
    add.add_argument("--comment", default="")
    add.add_argument("--at", help=argparse.SUPPRESS)
    listing = sub.add_parser("list", help="list silences")
    listing.add_argument("--all", action="store_true", help="include expired ones")
    listing.add_argument("--json", action="store_true")
    listing.add_argument("--at", help=argparse.SUPPRESS)
    expire = sub.add_parser("expire", help="end a silence now")
    expire.add_argument("silence_id")
    expire.add_argument("--at", help=argparse.SUPPRESS)
    try:
        args = parser.parse_args(list(argv))
        now_s = _now(args, clock)
        store = store if store is not None else _file_store(config)
        if store is None:
            raise ConfigError(
                "silences_store", config.silences_store, "the store opened by `crisiswatch silence`"
            )
        if args.command == "add":
            starts = parse_time(args.starts) if args.starts else now_s
            if args.ends and args.duration:
                raise ConfigError("--ends", args.ends, "either --ends or --duration, not both")
            if args.ends:
                ends = parse_time(args.ends)
            else:
                try:
                    ends = starts + parse_duration_s(args.duration or "1h")
                except ValueError:
                    raise ConfigError("--duration", args.duration, "a duration like 30m or 2h") from None
            silence = store.add(new_silence(args.matchers, starts, ends, args.author, args.comment))
            _prune(store, now_s)
            print(silence.id, file=out)
            return 0
        if args.command == "list":
            silences = [s for s in store.all() if args.all or s.ends_at_s > now_s]
            if args.json:
                print(json.dumps([s.to_dict() for s in silences], ensure_ascii=False, indent=2), file=out)
            else:
                for s in silences:
                    state = (
                        "active" if s.active(now_s) else ("pending" if s.starts_at_s > now_s else "expired")
                    )
                    matchers = " ".join(str(m) for m in s.matchers)
                    print(
                        f"{s.id} {state:8} until {iso_z(s.ends_at_s)} by {s.created_by}: {matchers} {s.comment}".rstrip(),
                        file=out,
                    )
            return 0
        silence = store.expire(args.silence_id, now_s)
        _prune(store, now_s)
        print(f"{silence.id} expired at {iso_z(silence.ends_at_s)}", file=out)
        return 0
    except (ConfigError, ValueError) as error:
        print(f"error: {error}", file=out)
        return 2


def _prune(store: SilenceStore, now_s: float) -> None:
    """Writers tidy up: silences that ended more than the store's retention ago are dropped."""
    prune = getattr(store, "prune", None)
    if prune is not None:
        prune(now_s)


def notifications_main(
    argv: Sequence[str],
    config: Any,
    *,
    clock: Clock | None = None,
    out: TextIO | None = None,
    registry: Any = None,
) -> int:
    """`crisiswatch notifications list|resend`: inspect and re-deliver the dead-letter log.

    `resend` delivers the selected notifications now, from this process, with the configured
    receivers and the normal retry policy limited to `--budget` (default 60s); what still fails goes
    back to the dead-letter log. Exit 1 when something is still undelivered.
    """
    out = out or sys.stdout
    config = _alerting(config)
    parser = _Parser(prog="crisiswatch notifications", description="Dead-lettered notifications.")
    sub = parser.add_subparsers(dest="command", required=True)
    listing = sub.add_parser("list")
    listing.add_argument("--json", action="store_true")
    resend = sub.add_parser("resend")
    who = resend.add_mutually_exclusive_group(required=True)
    who.add_argument("--id", action="append", help="notification id (prefix ok); repeatable")
    who.add_argument("--receiver")
    who.add_argument("--all", action="store_true")
    resend.add_argument("--budget", default="60s")
    try:
        args = parser.parse_args(list(argv))
    except ConfigError as error:
        print(f"error: {error}", file=out)
        return 2
    log = DeadLetterLog(config.delivery.dead_letter_path)
    if args.command == "list":
        records = log.read()
        if args.json:
            print(json.dumps(records, ensure_ascii=False, indent=2), file=out)
        else:
            for r in records:
                n = r["notification"]
                print(
                    f"{n['id']} {r['receiver']}/{r['integration']} {n['kind']} {n['event']['incident_id']} reason={r['reason']} attempts={r['attempts']} at={r['at']}",
                    file=out,
                )
        return 0
    if clock is None:
        print("error: no clock available", file=out)
        return 2
    from dataclasses import replace

    from crisiswatch.alerts.delivery import Notifier
    from crisiswatch.alerts.metrics import AlertMetrics
    from crisiswatch.alerts.service import build_integrations, render_options_factory

    def select(record: Any) -> bool:
        if args.all:
            return True
        if args.receiver:
            return bool(record["receiver"] == args.receiver)
        return any(str(record["notification"]["id"]).startswith(prefix) for prefix in args.id)

    try:
        budget = parse_duration_s(args.budget)
    except ValueError:
        print(f"error: --budget: got {args.budget!r}, expected a duration", file=out)
        return 2
    notifier = Notifier(
        build_integrations(config, clock),
        clock=clock,
        config=replace(config.delivery, budget_s=budget),
        metrics=AlertMetrics(registry),
        options_for=render_options_factory(config, clock),
        dead_letters=log,
    )
    ids = notifier.resend_dead_letters(select)
    report = DeliveryReport()

    async def drain() -> None:
        while notifier.pending():
            report.add(await notifier.deliver_due())
            due = notifier.next_due_s()
            if due is None:
                break
            await asyncio.sleep(max(0.0, min(5.0, due - clock.now())))

    async def drain_and_close() -> None:
        try:
            await drain()
        finally:
            await notifier.aclose()

    asyncio.run(drain_and_close())
    print(f"resent {len(ids)}: delivered {report.sent}, dead again {report.dead}", file=out)
    return 0 if report.dead == 0 else 1

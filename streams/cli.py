"""The `crisiswatch` command line. Each verb is a thin shell over plain-Python code.

Exit status: 0 success, 1 a check failed (e.g. `routes test` matched nothing, `replay --strict` saw
rejects), 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from crisiswatch.detectors.settings import ConfigError

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2


def _load(path: str | None) -> Any:
    from crisiswatch.streams.config import load_settings

    return load_settings(path)


# -- worker -------------------------------------------------------------------------------------------
def cmd_worker(args: argparse.Namespace) -> int:
    from crisiswatch.streams.logs import configure_logging
    from crisiswatch.streams.sinks import jsonl_mirror

    settings = _load(args.config)
    configure_logging(
        settings.metrics.log_format, args.loglevel, redact_authors=settings.metrics.redact_authors
    )
    from crisiswatch.streams.app import Worker
    from crisiswatch.streams.topics import ensure_topics

    _require_writable_dir("kafka.data_dir", settings.kafka.data_dir, settings.source)
    ensure_topics(settings)
    worker = Worker(settings, config_path=args.config, initial_state=args.initial_state)
    if args.alerts_jsonl:
        worker.deliver = jsonl_mirror(args.alerts_jsonl)
    import faust

    from crisiswatch.streams.logs import keep_logging_in_faust

    keep_logging_in_faust(
        worker.app.conf
    )  # Faust resets logging at start: keep the JSON format and redaction
    from crisiswatch.streams.replay import fewer_gc_passes

    faust_worker = faust.Worker(worker.app, loglevel=args.loglevel, quiet=True, redirect_stdouts=False)
    with fewer_gc_passes():  # as in replay: fewer, larger passes of the cycle collector
        worker.gc_policy.start()
        try:
            faust_worker.execute_from_commandline()
        finally:
            worker.gc_policy.stop()
    return EXIT_OK


def _require_writable_dir(key: str, path: str, source: str) -> None:
    """Fail at start, naming the key, when a state directory cannot be created or written."""
    import tempfile

    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-check-"):
            pass
    except OSError as error:
        raise ConfigError(key, path, f"a writable directory ({error.strerror})", file=source) from None


# -- replay -------------------------------------------------------------------------------------------
def cmd_replay(args: argparse.Namespace) -> int:
    from crisiswatch.streams.observability import replay_metrics
    from crisiswatch.streams.replay import run_replay  # sources, state, route, scoring, report: replay.py

    settings = _load(args.config)
    with replay_metrics(settings, args.metrics_port):  # --metrics-port: serve event-time metrics, then wait
        return run_replay(args, settings)


# -- simulate / tune ----------------------------------------------------------------------------------
def cmd_simulate(args: argparse.Namespace) -> int:
    from crisiswatch.streams.simulate import run_simulate

    return run_simulate(args)


def cmd_tune(args: argparse.Namespace) -> int:
    from crisiswatch.streams.tune import run_tune

    return run_tune(args)


# -- demo ---------------------------------------------------------------------------------------------
def cmd_demo(args: argparse.Namespace) -> int:
    from crisiswatch.streams.demo import run_demo

    return run_demo(sys.stdout, seed=args.seed)


# -- config -------------------------------------------------------------------------------------------
def cmd_config_check(args: argparse.Namespace) -> int:
    settings = _load(args.file)
    brands = (
        ", ".join(brand.name for brand in settings.brands) or "(none: brands named in posts are monitored)"
    )
    print(f"{args.file}: ok; brands: {brands}")
    from crisiswatch.alerts.dispatch import partition_limits
    from crisiswatch.alerts.routing import build_runtime

    for limit in partition_limits(build_runtime(settings.alerting)):  # valid, but worth knowing
        print(f"note: alerting.{limit}", file=sys.stderr)
    return EXIT_OK


def cmd_config_schema(args: argparse.Namespace) -> int:
    from crisiswatch.streams.config import config_schema

    print(json.dumps(config_schema(), indent=2, sort_keys=True))
    return EXIT_OK


# -- produce ------------------------------------------------------------------------------------------
def cmd_produce(args: argparse.Namespace) -> int:
    from crisiswatch.streams.produce import produce_posts

    count = produce_posts(
        bootstrap=args.bootstrap,
        topic=args.topic,
        files=args.files,
        preset=args.preset,
        seed=args.seed,
    )
    print(f"produced {count} messages to {args.topic}", file=sys.stderr)
    return EXIT_OK


# -- ack ----------------------------------------------------------------------------------------------
def cmd_ack(args: argparse.Namespace) -> int:
    """Acknowledge, resolve or mark as false alarm from the command line: an event on the acks topic."""
    from kafka import KafkaProducer

    from crisiswatch.alerts.incidents import AckEvent
    from crisiswatch.streams.app import ack_owner_key
    from crisiswatch.streams.clock import WallClock
    from crisiswatch.streams.replay import dump_line
    from crisiswatch.streams.topics import client_security

    settings = _load(args.config)
    try:
        ack = AckEvent(
            incident_id=args.incident_id, action=args.action, by=args.by, at_s=WallClock().now(), via="cli"
        )
    except ValueError as error:
        print(f"crisiswatch: {error}", file=sys.stderr)
        return EXIT_USAGE
    producer = KafkaProducer(acks="all", **client_security(settings))
    try:
        producer.send(
            settings.kafka.acks_topic,
            key=ack_owner_key(ack).encode(),
            value=dump_line(ack.to_dict()).encode(),
        ).get(timeout=30)
    finally:
        producer.close()
    print(f"{args.action} sent for {args.incident_id}", file=sys.stderr)
    return EXIT_OK


# -- delegated verbs (text models, alerting) ------------------------------------------------------------
def _delegate(module: str, function: str, argv: Sequence[str], *, with_config: bool = False) -> int:
    import importlib

    target = getattr(importlib.import_module(module), function)
    if not with_config:
        return int(target(list(argv)))
    config_path = None
    rest = list(argv)
    if "--config" in rest:
        index = rest.index("--config")
        if index + 1 >= len(rest):
            raise SystemExit("--config needs a file")
        config_path = rest[index + 1]
        del rest[index : index + 2]
    from crisiswatch.streams.clock import WallClock

    return int(target(rest, _load(config_path), clock=WallClock()))


DELEGATED: dict[str, tuple[str, str, bool]] = {
    "classify": ("crisiswatch.detectors.text.cli", "classify_main", False),
    "train-text": ("crisiswatch.detectors.text.cli", "train_main", False),
    # These two open the configured silence store (a file, or the Kafka topic) first.
    "routes": ("crisiswatch.streams.silences", "routes_main", True),
    "silence": ("crisiswatch.streams.silences", "silence_main", True),
    "notifications": ("crisiswatch.alerts.cli", "notifications_main", True),
}


def build_parser() -> argparse.ArgumentParser:
    from crisiswatch.streams.replay import add_replay_options
    from crisiswatch.streams.simulate import add_simulate_arguments
    from crisiswatch.streams.tune import add_tune_arguments

    parser = argparse.ArgumentParser(
        prog="crisiswatch", description="Pages PR on-call when a customer complaint starts to spread."
    )
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    worker = verbs.add_parser("worker", help="run the Faust worker (social.posts in, crisis.alerts out)")
    worker.add_argument(
        "--config", help="YAML config file (default: built-in defaults + CRISISWATCH_* environment)"
    )
    worker.add_argument(
        "--alerts-jsonl", help="also append every incident event of the outbox to this JSONL file"
    )
    worker.add_argument(
        "--initial-state",
        metavar="FILE",
        help="warm start: detector state written by `replay --save-state` (keys the tables do not know yet)",
    )
    worker.add_argument("--loglevel", default="info", choices=["debug", "info", "warning", "error"])
    worker.set_defaults(run=cmd_worker)

    replay = verbs.add_parser(
        "replay", help="run recorded streams through the detectors offline, in event time"
    )
    replay.add_argument(
        "files",
        nargs="*",
        metavar="FILE",
        help=".jsonl, .jsonl.gz, .csv[.gz], or - for stdin; read in the order given",
    )
    replay.add_argument(
        "--alerts-out",
        metavar="OUT.jsonl",
        help="incident events, one JSON line each (- for stdout); required unless --to-kafka",
    )
    replay.add_argument("--config", help="the same YAML config file the worker uses")
    replay.add_argument(
        "--rejects-out",
        metavar="FILE",
        help="rejected lines as JSON lines (source file:line, reason, detail)",
    )
    replay.add_argument("--strict", action="store_true", help="exit 1 when any line was rejected")
    replay.add_argument("--quiet", action="store_true", help="no progress bar")
    replay.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="serve the run's metrics on metrics.bind_host:PORT/metrics, also after the stream ends (until Ctrl-C)",
    )
    add_replay_options(replay)
    replay.set_defaults(run=cmd_replay)

    simulate = verbs.add_parser(
        "simulate", help="generate labelled streams (posts, incidents, brands config) for replay and tune"
    )
    add_simulate_arguments(simulate)
    simulate.set_defaults(run=cmd_simulate)

    tune = verbs.add_parser(
        "tune", help="sweep detector parameters against labelled streams; write the chosen config"
    )
    add_tune_arguments(tune)
    tune.set_defaults(run=cmd_tune)

    demo = verbs.add_parser(
        "demo", help="a planted complaint goes viral in generated traffic; prints the pages"
    )
    demo.add_argument("--seed", type=int, default=7)
    demo.set_defaults(run=cmd_demo)

    config = verbs.add_parser("config", help="check a config file or print its JSON Schema")
    config_verbs = config.add_subparsers(dest="config_verb", required=True, metavar="ACTION")
    check = config_verbs.add_parser("check", help="validate FILE without starting anything")
    check.add_argument("file", metavar="FILE")
    check.set_defaults(run=cmd_config_check)
    schema = config_verbs.add_parser("schema", help="print the config file's JSON Schema")
    schema.set_defaults(run=cmd_config_schema)

    produce = verbs.add_parser(
        "produce", help="send recorded or generated posts to a Kafka topic (key: root_id)"
    )
    produce.add_argument(
        "files", nargs="*", metavar="FILE", help="JSONL files to send as they are (malformed lines included)"
    )
    produce.add_argument("--bootstrap", default="127.0.0.1:9092")
    produce.add_argument("--topic", default="social.posts")
    produce.add_argument(
        "--preset", help="generate a scenario preset instead of reading files (demo, smoke, ...)"
    )
    produce.add_argument("--seed", type=int, default=7)
    produce.set_defaults(run=cmd_produce)

    ack = verbs.add_parser("ack", help="acknowledge / resolve / mark an incident as a false alarm")
    ack.add_argument("incident_id", metavar="INCIDENT_ID")
    ack.add_argument("--action", default="acknowledge", choices=["acknowledge", "resolve", "false_alarm"])
    ack.add_argument("--by", required=True, help="who acts (a person id from alerting.people, or a name)")
    ack.add_argument("--config", help="the worker's config file (for the Kafka settings)")
    ack.set_defaults(run=cmd_ack)

    for name, (_, _, _) in DELEGATED.items():
        verbs.add_parser(name, help=f"see `crisiswatch {name} --help`", add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in DELEGATED:
        module, function, with_config = DELEGATED[argv[0]]
        try:
            return _delegate(module, function, argv[1:], with_config=with_config)
        except ConfigError as error:
            print(f"crisiswatch: config error: {error}", file=sys.stderr)
            return EXIT_USAGE
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except ConfigError as error:
        print(f"crisiswatch: config error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        return EXIT_OK
    except FileNotFoundError as error:
        print(f"crisiswatch: {error.strerror}: {error.filename}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    raise SystemExit(main())

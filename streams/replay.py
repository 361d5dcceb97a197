"""Offline replay: recorded streams through the same pipeline as the worker, in event time, no broker.

Deterministic: the same input in the same order gives byte-identical alert lines (ids included). Around
that core (`replay_source`) sit the options of `crisiswatch replay` (`run_replay`): sources (JSONL, gz, CSV,
a Kafka topic range: `streams/sources.py`), paced re-sending into Kafka, warm-start state files, route
simulation, scoring against labelled incidents (`streams/evaluation.py`) and the HTML report
(`streams/report.py`).
"""

from __future__ import annotations

import argparse
import gc
import gzip
import io
import json
import math
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import IO, Any, TextIO

from crisiswatch.alerts.incidents import IncidentEvent
from crisiswatch.detectors.events import EnrichedPost
from crisiswatch.streams.config import Settings
from crisiswatch.streams.pipeline import Accounting, DeadLetter, Pipeline, RawRecord
from crisiswatch.streams.sources import FileSource, Source

BATCH_POSTS = 2000
# Allocations between two young-generation garbage collections while a replay runs (Python's default:
# 700). At the default the collector ran every ~50 posts and promoted each live batch into the old
# generations, whose full passes walk all detector state: 20-30% of a replay's CPU, <1% at 50,000
# (bench/results/replay.md). Reference counting still frees nearly everything at once.
REPLAY_GC_YOUNG_THRESHOLD = 50_000
STATE_FORMAT = "crisiswatch-state"
STATE_FILE_VERSION = 1


def dump_line(obj: Any) -> str:
    """The one JSON line encoder for what crisiswatch writes (alert lines, reports, dead letters)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def open_output(path: str | Path) -> TextIO:
    # Lone surrogates from hostile input stay representable: they are written as JSON escapes.
    return open(path, "w", encoding="utf-8", errors="backslashreplace", newline="\n")


def read_records(paths: Sequence[str], stdin: IO[bytes] | None = None) -> Iterator[RawRecord]:
    """Records of the given files (JSONL, gz, CSV by extension, `-` for stdin), in the order given,
    named `file:line`."""
    return iter(FileSource(paths, stdin))


@dataclass
class StageTimings:
    """Wall seconds per pipeline stage (only measured with `--timings`; the bench reports them).

    read: input bytes to records; decode: JSON, contract validation, dedup, watermark, root resolution,
    building enriched posts; brands: alias matching of posts without `brands`; text: language, own text,
    sentiment, complaint; detect: the detectors; incidents: the incident tracker; output: alert lines.
    """

    read: float = 0.0
    decode: float = 0.0
    brands: float = 0.0
    text: float = 0.0
    detect: float = 0.0
    incidents: float = 0.0
    output: float = 0.0

    def to_dict(self) -> dict[str, float]:
        return {name: round(value, 4) for name, value in vars(self).items()}

    def line(self, posts: int) -> str:
        total = sum(vars(self).values()) or 1e-9
        parts = [
            f"{name} {value:.2f} s ({100 * value / total:.0f}%, {value * 1e6 / max(posts, 1):.1f} µs/post)"
            for name, value in vars(self).items()
        ]
        return "stages: " + "; ".join(parts)


@dataclass
class ReplayResult:
    accounting: Accounting
    events: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    rejects: list[DeadLetter] = field(default_factory=list)
    elapsed_s: float = 0.0
    timings: StageTimings | None = None
    first_event_s: float | None = None
    last_event_s: float | None = None


class Progress:
    """A progress bar on stderr with posts/s and ETA; quiet when stderr is not a terminal."""

    def __init__(self, stream: TextIO, monotonic: Any, enabled: bool | None = None) -> None:
        self.stream = stream
        self.monotonic = monotonic
        self.enabled = stream.isatty() if enabled is None else enabled
        self.started = monotonic()
        self._last_draw = -math.inf

    def update(
        self, consumed: int, events: int, fraction: float | None = None, *, force: bool = False
    ) -> None:
        now = self.monotonic()
        if not self.enabled or (now - self._last_draw < 0.2 and not force):
            return
        self._last_draw = now
        elapsed = max(now - self.started, 1e-9)
        rate = consumed / elapsed
        if fraction is not None and fraction > 0:
            width = 24
            filled = min(width, int(fraction * width))
            remaining = elapsed * (1 - fraction) / fraction
            head = f"[{'#' * filled}{'.' * (width - filled)}] {100 * fraction:5.1f}% "
            tail = f"  ETA {_clock(remaining)}"
        else:
            head, tail = "", ""
        self.stream.write(
            f"\r  {head}{consumed:>11,} posts  {rate:>9,.0f} posts/s  {events:>6,} incident events{tail} "
        )
        self.stream.flush()

    def elapsed(self) -> float:
        return self.monotonic() - self.started


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class Observer:
    """Sees every accepted post and every incident event of a replay (scoring, report); no-ops here."""

    def posts(self, posts: Sequence[EnrichedPost]) -> None:
        return None

    def events(self, events: Sequence[IncidentEvent]) -> None:
        return None


class _TimedAnalyzer:
    """Wraps the text analyzer to measure the text stage inside `Pipeline.ingest`."""

    def __init__(self, analyzer: Any, timings: StageTimings, clock: Callable[[], float]) -> None:
        self._analyzer = analyzer
        self._timings = timings
        self._clock = clock

    def analyze_many(self, texts: Any, langs: Any) -> Any:
        started = self._clock()
        try:
            return self._analyzer.analyze_many(texts, langs)
        finally:
            self._timings.text += self._clock() - started

    def __getattr__(self, name: str) -> Any:
        return getattr(self._analyzer, name)


def _instrument(pipeline: Pipeline, timings: StageTimings, clock: Callable[[], float]) -> None:
    pipeline.analyzer = _TimedAnalyzer(pipeline.analyzer, timings, clock)  # type: ignore[assignment]
    match_text = pipeline.resolver.match_text

    def timed_match(text: str) -> tuple[str, ...]:
        started = clock()
        try:
            return match_text(text)
        finally:
            timings.brands += clock() - started

    pipeline.resolver.match_text = timed_match  # type: ignore[method-assign]
    tracker = pipeline.tracker
    for name in ("observe", "advance"):
        method = getattr(tracker, name)

        def timed(*args: Any, _method: Any = method) -> Any:
            started = clock()
            try:
                return _method(*args)
            finally:
                timings.incidents += clock() - started

        setattr(tracker, name, timed)


def replay_source(
    source: Iterable[RawRecord],
    settings: Settings,
    alerts_out: TextIO | None,
    *,
    pipeline: Pipeline | None = None,
    on_event: Any = None,
    observers: Sequence[Observer] = (),
    progress: Progress | None = None,
    keep_rejects: bool = True,
    timings: bool = False,
    batch_posts: int = BATCH_POSTS,
    stage_clock: Callable[[], float] = time.perf_counter,
) -> ReplayResult:
    """Run recorded posts through the pipeline; write each incident event as one JSON line.

    With `timings`, the stages are timed with `stage_clock`: wall time by default; the bench can pass
    `time.process_time` for figures that hold on a shared, noisy machine."""
    pipeline = pipeline or Pipeline(settings)
    result = ReplayResult(accounting=pipeline.totals)
    stage = StageTimings() if timings else None
    if stage is not None:
        _instrument(pipeline, stage, stage_clock)
    fraction = getattr(source, "fraction_done", None)
    clock = stage_clock
    records = iter(source)
    first_s: float | None = None
    with fewer_gc_passes():  # restored when the replay ends or fails
        while True:
            t0 = clock()
            batch = _take(records, batch_posts)
            if not batch:
                break
            t1 = clock()
            if stage is None:
                ingested, events = pipeline.process(batch)
            else:
                stage.read += t1 - t0
                text_before, brands_before, incidents_before = stage.text, stage.brands, stage.incidents
                ingested = pipeline.ingest(batch)
                t2 = clock()
                events = pipeline.detect(ingested)  # exactly Pipeline.process, split to time it
                t3 = clock()
                stage.decode += (t2 - t1) - (stage.text - text_before) - (stage.brands - brands_before)
                stage.detect += (t3 - t2) - (stage.incidents - incidents_before)
            t3 = clock()
            if ingested.posts:
                if first_s is None:
                    first_s = ingested.posts[0].created_at_s
                for observer in observers:
                    observer.posts(ingested.posts)
            if events:
                for observer in observers:
                    observer.events(events)
            if keep_rejects:
                result.rejects.extend(ingested.dead_letters)
            _emit(events, alerts_out, on_event, result)
            if progress is not None:
                progress.update(result.accounting.consumed, result.events, fraction() if fraction else None)
            if stage is not None:
                stage.output += clock() - t3
    result.first_event_s = first_s
    result.last_event_s = pipeline.watermark.value_s
    result.timings = stage
    if progress is not None:
        result.elapsed_s = progress.elapsed()
    return result


def _take(records: Iterator[RawRecord], size: int) -> list[RawRecord]:
    return list(islice(records, size))


@contextmanager
def fewer_gc_passes(young_threshold: int = REPLAY_GC_YOUNG_THRESHOLD) -> Iterator[None]:
    """Raise the young-generation GC threshold for bulk processing; the previous thresholds come back after.

    Nothing is left uncollected: reference counting frees acyclic garbage at once, and cycles are still
    collected, only in fewer, larger passes."""
    thresholds = gc.get_threshold()
    gc.set_threshold(max(thresholds[0], young_threshold), *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)


def replay(
    paths: Sequence[str],
    settings: Settings,
    alerts_out: TextIO | None,
    *,
    pipeline: Pipeline | None = None,
    on_event: Any = None,
    progress: Progress | None = None,
    stdin: IO[bytes] | None = None,
    keep_rejects: bool = True,
) -> ReplayResult:
    """Run recorded files (JSONL, gz, CSV by extension, `-` for stdin) through the pipeline."""
    return replay_source(
        FileSource(paths, stdin),
        settings,
        alerts_out,
        pipeline=pipeline,
        on_event=on_event,
        progress=progress,
        keep_rejects=keep_rejects,
    )


def _emit(
    events: Sequence[IncidentEvent], alerts_out: TextIO | None, on_event: Any, result: ReplayResult
) -> None:
    for event in events:
        result.events += 1
        result.by_status[event.status] = result.by_status.get(event.status, 0) + 1
        if alerts_out is not None:
            alerts_out.write(dump_line(event.to_dict()) + "\n")
        if on_event is not None:
            on_event(event)


def summary_line(result: ReplayResult) -> str:
    counts = result.accounting.to_dict()
    rate = counts["consumed"] / result.elapsed_s if result.elapsed_s > 0 else 0.0
    statuses = ", ".join(f"{status} {count}" for status, count in sorted(result.by_status.items())) or "none"
    return (
        f"replayed {counts['consumed']:,} posts: {counts['processed']:,} processed, "
        f"{counts['dead_lettered']:,} rejected, {counts['duplicate']:,} duplicate, {counts['late']:,} late; "
        f"{result.events:,} incident events ({statuses}); {rate:,.0f} posts/s"
    )


def write_rejects(rejects: Sequence[DeadLetter], out: io.TextIOBase | TextIO) -> None:
    for reject in rejects:
        out.write(dump_line(reject.to_report()) + "\n")


# -- warm start: detector state learnt from history ---------------------------------------------------------
def pipeline_state(
    pipeline: Pipeline, extra_cascades: Iterable[str] = (), extra_brands: Iterable[str] = ()
) -> dict[str, Any]:
    """What a replay learnt, as one JSON-able document: brand baselines, live cascades, incident keys,
    the watermark. The engine's dirty sets name every key touched since it started (replay never drains
    them); `extra_*` add keys loaded from an earlier state file."""
    engine = pipeline.engine
    roots, brands = engine.drain_dirty()
    cascades: dict[str, Any] = {}
    for root_id in set(roots) | set(extra_cascades):
        state = engine.cascade_state(root_id)
        if state is not None:
            cascades[root_id] = state
    brand_states: dict[str, Any] = {}
    for brand in set(brands) | set(extra_brands):
        state = engine.brand_state(brand)
        if state is not None:
            brand_states[brand] = state

    def by_recency(item: tuple[str, Any]) -> tuple[float, str]:
        last = item[1].get("last")
        return (float(last) if isinstance(last, int | float) else -math.inf, item[0])

    return {
        "format": STATE_FORMAT,
        "v": STATE_FILE_VERSION,
        "watermark_s": pipeline.watermark.value_s,
        "auto_brands": list(pipeline.resolver.auto),
        # Least recently active first: the engine expires idle keys from the front of its LRU order.
        "brands": dict(sorted(brand_states.items(), key=by_recency)),
        "cascades": dict(sorted(cascades.items(), key=by_recency)),
        "incidents": pipeline.tracker.state(),
    }


def load_pipeline_state(pipeline: Pipeline, state: Mapping[str, Any]) -> tuple[set[str], set[str]]:
    """Continue a replay from `pipeline_state` output; returns the (cascade, brand) keys loaded."""
    check_state(state)
    engine = pipeline.engine
    if state.get("auto_brands"):
        pipeline.resolver.monitored(list(state["auto_brands"]))
    for brand, brand_state in state.get("brands", {}).items():
        engine.load_brand_state(brand, brand_state)
    for root_id, cascade_state in state.get("cascades", {}).items():
        engine.load_cascade_state(root_id, cascade_state)
        root = cascade_state.get("root") or [False]
        if root[0] and cascade_state.get("brands"):
            # Reactions without `brands` inherit their root's brands (the pipeline's cascade context).
            pipeline.remember_cascade_brands(root_id, cascade_state["brands"])
    if state.get("incidents"):
        pipeline.tracker.load_state(state["incidents"])
    watermark = state.get("watermark_s")
    if isinstance(watermark, int | float):
        pipeline.watermark.value_s = float(watermark)
    return set(state.get("cascades", {})), set(state.get("brands", {}))


def check_state(state: Mapping[str, Any]) -> None:
    from crisiswatch.detectors.settings import ConfigError

    if not isinstance(state, Mapping) or state.get("format") != STATE_FORMAT:
        raise ConfigError(
            "state",
            "(not a crisiswatch state file)",
            f"a file written by `replay --save-state` ({STATE_FORMAT})",
        )
    if state.get("v") != STATE_FILE_VERSION:
        raise ConfigError("state.v", state.get("v"), f"state file version {STATE_FILE_VERSION}")


def write_state_file(path: str, state: Mapping[str, Any]) -> None:
    """JSON (gzip when the name ends in .gz), keys in a fixed order: same replay, same bytes."""
    data = (json.dumps(state, ensure_ascii=False, separators=(",", ":"), allow_nan=False) + "\n").encode(
        "utf-8"
    )
    if path.endswith(".gz"):
        with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as handle:
            handle.write(data)
    else:
        Path(path).write_bytes(data)


def read_state_file(path: str) -> dict[str, Any]:
    from crisiswatch.detectors.settings import ConfigError

    try:
        raw = gzip.decompress(Path(path).read_bytes()) if path.endswith(".gz") else Path(path).read_bytes()
        state = json.loads(raw)
    except OSError as error:
        raise ConfigError("state", path, f"a readable state file ({error.strerror})") from None
    except ValueError:
        raise ConfigError("state", path, "a JSON state file written by `replay --save-state`") from None
    check_state(state)
    return dict(state)


class WarmStart:
    """The worker's `--initial-state`: a key's saved state is loaded the first time the key is seen and
    the changelog table has nothing for it (the table, once written, is the truth)."""

    def __init__(self, state: Mapping[str, Any]) -> None:
        check_state(state)
        self.brands: dict[str, Any] = dict(state.get("brands", {}))
        self.cascades: dict[str, Any] = dict(state.get("cascades", {}))

    @classmethod
    def from_file(cls, path: str) -> WarmStart:
        return cls(read_state_file(path))

    def load_brand(self, engine: Any, brand: str) -> bool:
        state = self.brands.get(brand)
        if state is None:
            return False
        engine.load_brand_state(brand, state)
        return True

    def load_cascade(self, engine: Any, root_id: str) -> bool:
        state = self.cascades.get(root_id)
        if state is None:
            return False
        engine.load_cascade_state(root_id, state)
        return True


# -- route simulation -----------------------------------------------------------------------------------
class RouteObserver(Observer):
    """`--route`: every incident event through routing, grouping, silences and escalation in event time;
    the notifications that would have gone out are written as JSON lines."""

    def __init__(self, settings: Settings, out: TextIO, silences_path: str | None = None) -> None:
        from crisiswatch.alerts.dispatch import RouteSimulator
        from crisiswatch.alerts.routing import build_runtime

        store = None
        if silences_path:
            from crisiswatch.alerts.silences import FileSilenceStore

            store = FileSilenceStore(silences_path)
        self.simulator = RouteSimulator(build_runtime(settings.alerting), silences=store)
        self.out = out
        self.count = 0
        self.last_s: float | None = None

    def events(self, events: Sequence[IncidentEvent]) -> None:
        for event in events:
            self._write(self.simulator.feed(event))

    def posts(self, posts: Sequence[EnrichedPost]) -> None:
        if posts:
            newest = max(post.created_at_s for post in posts)
            self.last_s = newest if self.last_s is None else max(self.last_s, newest)

    def advance(self, now_s: float | None) -> None:
        if now_s is not None:
            self._write(self.simulator.advance(now_s))

    def _write(self, notifications: Sequence[Any]) -> None:
        for notification in notifications:
            self.count += 1
            self.out.write(dump_line(notification.to_dict()) + "\n")


class _ForwardTimes(Observer):
    """Forward times of the cascades named in labelled incidents (for the "caught early" share)."""

    def __init__(self, roots: Iterable[str]) -> None:
        self.times: dict[str, list[float]] = {root: [] for root in roots}

    def posts(self, posts: Sequence[EnrichedPost]) -> None:
        times = self.times
        for post in posts:
            raw = post.post
            if raw.kind == "forward":
                found = times.get(raw.root_id)
                if found is not None:
                    found.append(raw.created_at_s)


class _Brands(Observer):
    """Monitored brands that had posts (the denominator of false alerts per brand per day)."""

    def __init__(self) -> None:
        self.names: set[str] = set()

    def posts(self, posts: Sequence[EnrichedPost]) -> None:
        for post in posts:
            self.names.update(post.brands)


# -- the `crisiswatch replay` verb ---------------------------------------------------------------------------
def add_replay_options(parser: argparse.ArgumentParser) -> None:
    """Options beyond the basic ones, added by `cli.py` to the replay verb."""
    source = parser.add_argument_group("input")
    source.add_argument(
        "--format",
        dest="input_format",
        default="auto",
        choices=["auto", "jsonl", "csv"],
        help="input format (auto: by extension; .csv/.tsv[.gz] are CSV)",
    )
    source.add_argument(
        "--csv-map",
        metavar="FIELD=COLUMN,...",
        help="CSV columns of contract fields, e.g. created_at=ts,text=body,author.id=user,author.followers=fans",
    )
    source.add_argument(
        "--kafka-topic",
        metavar="TOPIC",
        help="read a topic range instead of files (kafka section of --config for the connection)",
    )
    source.add_argument(
        "--bootstrap",
        metavar="HOST:PORT",
        help="Kafka bootstrap servers (default: kafka.bootstrap_servers of --config)",
    )
    source.add_argument("--from-offset", type=int, metavar="N", help="first offset of every partition")
    source.add_argument(
        "--to-offset", type=int, metavar="N", help="stop before this offset in every partition"
    )
    source.add_argument(
        "--from-time", metavar="TIME", help="first record at/after this Kafka timestamp (ISO-8601 or epoch s)"
    )
    source.add_argument("--to-time", metavar="TIME", help="stop at records at/after this Kafka timestamp")
    out = parser.add_argument_group("outputs")
    out.add_argument(
        "--to-kafka",
        metavar="TOPIC",
        help="re-send the input to this topic instead of detecting (staging tests)",
    )
    out.add_argument(
        "--speed",
        type=float,
        default=1.0,
        metavar="X",
        help="with --to-kafka: event-time spacing divided by X (0: as fast as possible)",
    )
    out.add_argument(
        "--save-state",
        metavar="FILE",
        help="write the learnt detector state (warm start for `worker --initial-state`); .gz compresses",
    )
    out.add_argument(
        "--initial-state", metavar="FILE", help="start from a state file written by --save-state"
    )
    out.add_argument(
        "--route",
        action="store_true",
        help="simulate routing, grouping, silences and escalation in event time",
    )
    out.add_argument(
        "--notifications-out",
        metavar="FILE",
        help="with --route: the notifications that would have gone out (default stdout)",
    )
    out.add_argument(
        "--silences",
        metavar="FILE",
        help="with --route: a silences file (as written by `crisiswatch silence`)",
    )
    out.add_argument(
        "--incidents",
        metavar="FILE",
        help="labelled incidents (JSONL: brand, root_id, start, end, is_crisis): score the replay",
    )
    out.add_argument("--score-out", metavar="FILE", help="with --incidents: the score as JSON")
    out.add_argument("--report", metavar="REPORT.html", help="a self-contained HTML report (matplotlib)")
    out.add_argument(
        "--timings",
        action="store_true",
        help="print the time per stage (read, decode, brands, text, detect, incidents, output)",
    )


def build_source(args: argparse.Namespace, settings: Settings) -> Source:
    from crisiswatch.detectors.settings import ConfigError
    from crisiswatch.streams.sources import KafkaRange, KafkaRangeSource, parse_csv_mapping, parse_time_arg

    if getattr(args, "kafka_topic", None):
        if args.files:
            raise ConfigError("FILE", args.files[0], "no files with --kafka-topic")
        selection = KafkaRange(
            topic=args.kafka_topic,
            from_offset=args.from_offset,
            to_offset=args.to_offset,
            from_time_s=parse_time_arg(args.from_time, "--from-time") if args.from_time else None,
            to_time_s=parse_time_arg(args.to_time, "--to-time") if args.to_time else None,
        )
        return KafkaRangeSource(kafka_options(args, settings), selection)
    if not args.files:
        raise ConfigError("FILE", "(none)", "at least one input file, - for stdin, or --kafka-topic")
    for flag in ("from_offset", "to_offset", "from_time", "to_time"):
        if getattr(args, flag, None) is not None:
            raise ConfigError("--" + flag.replace("_", "-"), getattr(args, flag), "only with --kafka-topic")
    return FileSource(
        args.files,
        input_format=getattr(args, "input_format", "auto"),
        csv_mapping=parse_csv_mapping(getattr(args, "csv_map", None)),
    )


def kafka_options(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    from crisiswatch.streams.topics import client_security

    options = client_security(settings)
    if getattr(args, "bootstrap", None):
        options["bootstrap_servers"] = args.bootstrap.split(",")
    return options


def _send_to_kafka(args: argparse.Namespace, settings: Settings, source: Source, err: TextIO) -> int:
    from crisiswatch.streams.sources import kafka_sender, send_paced

    progress = Progress(err, time.monotonic, enabled=None if not args.quiet else False)
    send, close = kafka_sender(kafka_options(args, settings), args.to_kafka)
    fraction = getattr(source, "fraction_done", None)
    try:
        result = send_paced(
            source,
            send,
            speed=args.speed,
            monotonic=time.monotonic,
            sleep=time.sleep,
            on_sent=lambda count, _t: progress.update(count, 0, fraction() if fraction else None),
        )
    finally:
        close()
    if progress.enabled:
        err.write("\n")
    span = (result.last_event_s or 0.0) - (result.first_event_s or 0.0)
    err.write(
        f"sent {result.sent:,} messages to {args.to_kafka}: {span / 3600:.2f} h of event time in {result.wall_s:.1f} s (speed {args.speed:g})\n"
    )
    return 0


def run_replay(
    args: argparse.Namespace, settings: Settings, *, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """`crisiswatch replay`: everything after argument parsing. Returns the exit status."""
    from crisiswatch.detectors.settings import ConfigError

    out = out or sys.stdout
    err = err or sys.stderr
    source = build_source(args, settings)
    if getattr(args, "to_kafka", None):
        return _send_to_kafka(args, settings, source, err)
    if not args.alerts_out:
        raise ConfigError("--alerts-out", "(missing)", "OUT.jsonl or - for stdout (or --to-kafka TOPIC)")
    if (args.notifications_out or args.silences) and not args.route:
        raise ConfigError("--notifications-out", args.notifications_out or args.silences, "only with --route")
    if args.alerts_out == "-" and args.route and not args.notifications_out:
        raise ConfigError("--notifications-out", "(stdout)", "a file when --alerts-out is stdout")
    pipeline = Pipeline(settings)
    loaded: tuple[set[str], set[str]] = (set(), set())
    if args.initial_state:
        loaded = load_pipeline_state(pipeline, read_state_file(args.initial_state))
    observers: list[Observer] = []
    labelled = None
    forward_times = None
    brands_seen = _Brands()
    if args.incidents:
        from crisiswatch.streams.evaluation import read_labelled_incidents

        labelled = read_labelled_incidents(args.incidents)
        forward_times = _ForwardTimes(incident.root_id for incident in labelled if incident.root_id)
        observers.append(forward_times)
        if not settings.brands:
            observers.append(brands_seen)  # the false-alert denominator: brands that had posts
    report = None
    if args.report:
        from crisiswatch.streams.report import ReportCollector

        report = ReportCollector(settings)
        observers.append(report)
    closing: list[TextIO] = []
    route = None
    if args.route:
        notifications = (
            open_output(args.notifications_out)
            if args.notifications_out and args.notifications_out != "-"
            else out
        )
        if notifications is not out:
            closing.append(notifications)
        route = RouteObserver(settings, notifications, args.silences)
        observers.append(route)
    progress = Progress(err, time.monotonic, enabled=None if not args.quiet else False)
    alerts_out = open_output(args.alerts_out) if args.alerts_out != "-" else out
    if alerts_out is not out:
        closing.append(alerts_out)
    events: list[IncidentEvent] = []
    try:
        result = replay_source(
            source,
            settings,
            alerts_out,
            pipeline=pipeline,
            observers=observers,
            progress=progress,
            on_event=events.append if (labelled is not None or report is not None) else None,
            timings=args.timings,
        )
        if progress.enabled:
            progress.update(result.accounting.consumed, result.events, 1.0, force=True)
        if route is not None:
            route.advance(route.last_s)
    finally:
        for handle in closing:
            handle.close()
    if progress.enabled:
        err.write("\n")
    if args.rejects_out:
        with open_output(args.rejects_out) as rejects_out:
            write_rejects(result.rejects, rejects_out)
    for reject in result.rejects[:20]:
        err.write(f"rejected {reject.record.source}: {reject.reason} ({reject.detail})\n")
    if len(result.rejects) > 20:
        err.write(f"... and {len(result.rejects) - 20} more rejected lines (see --rejects-out)\n")
    err.write(summary_line(result) + "\n")
    if result.timings is not None:
        err.write(result.timings.line(result.accounting.consumed) + "\n")
    if route is not None:
        err.write(f"route simulation: {route.count:,} notifications\n")
    if args.save_state:
        write_state_file(args.save_state, pipeline_state(pipeline, *loaded))
        err.write(f"state saved to {args.save_state}\n")
    score = None
    if labelled is not None:
        from crisiswatch.streams.evaluation import evaluate, format_score

        assert forward_times is not None
        score = evaluate(
            labelled,
            events,
            forward_times=forward_times.times,
            brands=len(settings.brands) or len(brands_seen.names - {"other"}) or 1,
            duration_s=_duration(result),
        )
        err.write(format_score(score) + "\n")
        if args.score_out:
            Path(args.score_out).write_text(
                json.dumps(score.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8"
            )
    if report is not None:
        from crisiswatch.streams.report import write_report

        write_report(
            args.report,
            report,
            events,
            labelled=labelled,
            score=score,
            title=f"crisiswatch replay of {_describe(args)}",
        )
        err.write(f"report written to {args.report}\n")
    if args.strict and result.rejects:
        return 1
    return 0


def _duration(result: ReplayResult) -> float:
    if result.first_event_s is None or result.last_event_s is None:
        return 0.0
    return max(0.0, result.last_event_s - result.first_event_s)


def _describe(args: argparse.Namespace) -> str:
    if getattr(args, "kafka_topic", None):
        return f"topic {args.kafka_topic}"
    return ", ".join(args.files)

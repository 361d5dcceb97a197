"""Where `crisiswatch replay` reads recorded posts from, and where it can re-send them.

Sources yield `RawRecord`s in a deterministic order and say how far they are (`fraction_done`) for the
progress bar:

- `FileSource`: JSONL, JSONL.gz, CSV (optionally gzipped) or stdin, files in the order given. CSV rows
  become contract JSON through a column mapping (`parse_csv_mapping`), so they are validated like any post.
- `KafkaRangeSource`: a topic range by offsets or timestamps, read with kafka-python; partitions are merged
  by (Kafka timestamp, partition, offset) so the replay sees event time roughly in order.

`send_paced` re-sends records to a Kafka topic keeping their original event-time spacing divided by a
speed multiplier (`--to-kafka TOPIC --speed 60`): staging tests of the live worker.
"""

from __future__ import annotations

import collections
import csv
import gzip
import io
import json
import math
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Protocol, cast

from crisiswatch.detectors.settings import ConfigError
from crisiswatch.streams.contract import parse_created_at, slot_builder
from crisiswatch.streams.pipeline import RawRecord

_build_record = slot_builder(RawRecord)

FORMATS: tuple[str, ...] = ("auto", "jsonl", "csv")
# Contract fields a CSV column can fill; dotted names go into the `author` object.
CSV_FIELDS: tuple[str, ...] = (
    "id",
    "created_at",
    "text",
    "kind",
    "parent_id",
    "root_id",
    "author.id",
    "author.followers",
    "author.verified",
    "platform",
    "lang",
    "url",
    "sentiment",
    "brands",
)
_TRUE = frozenset({"true", "1", "yes", "y", "t"})
_FALSE = frozenset({"false", "0", "no", "n", "f", ""})


class Source(Protocol):
    def __iter__(self) -> Iterator[RawRecord]: ...

    def fraction_done(self) -> float | None: ...


# -- files ---------------------------------------------------------------------------------------------
def parse_csv_mapping(text: str | None) -> dict[str, str]:
    """`created_at=timestamp,text=body,author.id=user` -> {contract field: CSV column}.

    Fields not named take the column of the same name when there is one (`author.id` also `author_id`).
    """
    mapping: dict[str, str] = {}
    if not text:
        return mapping
    for part in text.split(","):
        if not part.strip():
            continue
        field_name, sep, column = part.partition("=")
        field_name, column = field_name.strip(), column.strip()
        if not sep or not column:
            raise ConfigError("--csv-map", part, "FIELD=COLUMN pairs separated by commas")
        if field_name not in CSV_FIELDS:
            raise ConfigError("--csv-map", field_name, f"one of {list(CSV_FIELDS)}")
        mapping[field_name] = column
    return mapping


def _number_or_text(cell: str) -> Any:
    try:
        value = float(cell)
    except ValueError:
        return cell
    if not math.isfinite(value):
        return cell
    return int(value) if value.is_integer() and "." not in cell and "e" not in cell.lower() else value


def _boolean(cell: str) -> Any:
    lowered = cell.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    return cell  # left for the contract to reject with its reason


def _brands(cell: str) -> Any:
    stripped = cell.strip()
    if stripped.startswith("["):
        try:
            return json.loads(stripped)
        except ValueError:
            return cell
    separator = "|" if "|" in stripped else ";"
    return [name.strip() for name in stripped.split(separator) if name.strip()]


class CsvRowEncoder:
    """CSV header + mapping -> a function from a row to contract JSON bytes (empty cells are absent)."""

    def __init__(self, header: Sequence[str], mapping: Mapping[str, str]) -> None:
        columns = {name: index for index, name in enumerate(header)}
        self.slots: list[tuple[str, int]] = []
        for name in CSV_FIELDS:
            column = mapping.get(name)
            if column is None:
                column = next((c for c in (name, name.replace(".", "_")) if c in columns), None)
                if column is None:
                    continue
            elif column not in columns:
                raise ConfigError(
                    "--csv-map", f"{name}={column}", f"a column of the CSV header {list(header)}"
                )
            self.slots.append((name, columns[column]))

    def encode(self, row: Sequence[str]) -> bytes:
        post: dict[str, Any] = {}
        author: dict[str, Any] = {}
        for name, index in self.slots:
            if index >= len(row):
                continue
            cell = row[index]
            if cell == "":
                continue
            value: Any = cell
            if name in ("created_at", "sentiment", "author.followers"):
                value = _number_or_text(cell)
            elif name == "author.verified":
                value = _boolean(cell)
            elif name == "brands":
                value = _brands(cell)
            if name.startswith("author."):
                author[name[len("author.") :]] = value
            else:
                post[name] = value
        if author:
            post["author"] = author
        return json.dumps(post, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _format_of(path: str, declared: str) -> str:
    if declared != "auto":
        return declared
    name = path[:-3] if path.endswith(".gz") else path
    return "csv" if name.lower().endswith((".csv", ".tsv")) else "jsonl"


class _CountingReader(io.RawIOBase):
    """Counts the bytes read from the underlying (compressed) file: progress for .gz inputs too."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.raw.read(len(buffer))
        size = len(data)
        buffer[:size] = data
        self.count += size
        return size

    def close(self) -> None:
        self.raw.close()
        super().close()


@dataclass
class FileSource:
    """Files (or `-` for stdin) in the order given; `.gz` is decompressed; CSV goes through the mapping."""

    paths: Sequence[str]
    stdin: IO[bytes] | None = None
    input_format: str = "auto"
    csv_mapping: Mapping[str, str] = field(default_factory=dict)
    _total_bytes: int = 0
    _done_bytes: int = 0
    _current: _CountingReader | None = None

    def __post_init__(self) -> None:
        if self.input_format not in FORMATS:
            raise ConfigError("--format", self.input_format, f"one of {list(FORMATS)}")
        sizes = [os.path.getsize(path) if path != "-" and os.path.exists(path) else 0 for path in self.paths]
        self._total_bytes = sum(sizes) if all(path != "-" for path in self.paths) else 0

    def fraction_done(self) -> float | None:
        if self._total_bytes <= 0:
            return None
        current = self._current.count if self._current is not None else 0
        return min(1.0, (self._done_bytes + current) / self._total_bytes)

    def __iter__(self) -> Iterator[RawRecord]:
        for path in self.paths:
            if path == "-":
                handle: IO[bytes] = self.stdin if self.stdin is not None else sys.stdin.buffer
                yield from self._records(path, handle, _format_of(path, self.input_format))
                continue
            counting = _CountingReader(open(path, "rb"))  # noqa: SIM115 - closed below
            self._current = counting
            buffered = io.BufferedReader(counting, buffer_size=1 << 20)
            handle = cast(
                IO[bytes], gzip.GzipFile(fileobj=buffered, mode="rb") if path.endswith(".gz") else buffered
            )
            try:
                yield from self._records(path, handle, _format_of(path, self.input_format))
            finally:
                handle.close()
                buffered.close()
                self._done_bytes += counting.count
                self._current = None

    def _records(self, path: str, handle: IO[bytes], kind: str) -> Iterator[RawRecord]:
        if kind == "csv":
            yield from self._csv_records(path, handle)
            return
        # hot loop: one RawRecord per line, positional (value, partition, offset, source)
        record = _build_record
        for line_number, line in enumerate(handle, start=1):
            stripped = line.rstrip(b"\r\n")
            if not stripped or stripped.isspace():
                continue
            yield record(stripped, 0, line_number, f"{path}:{line_number}")

    def _csv_records(self, path: str, handle: IO[bytes]) -> Iterator[RawRecord]:
        text = io.TextIOWrapper(handle, encoding="utf-8-sig", errors="surrogateescape", newline="")
        dialect = "excel-tab" if path.removesuffix(".gz").lower().endswith(".tsv") else "excel"
        reader = csv.reader(text, dialect=dialect)
        header = next(reader, None)
        if header is None:
            return
        encoder = CsvRowEncoder([name.strip() for name in header], self.csv_mapping)
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            # reader.line_num counts physical lines: quoted newlines inside a row still give a usable locator.
            line_number = reader.line_num
            try:
                value = encoder.encode(row)
            except UnicodeEncodeError:
                value = b"\xff"  # undecodable cell: the contract rejects it as invalid_utf8
            yield RawRecord(value=value, partition=0, offset=line_number, source=f"{path}:{line_number}")


# -- Kafka topic range -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class KafkaRange:
    """Which part of a topic: start by offset or timestamp (default: the beginning), end likewise (default:
    the end offsets when the replay starts, so it terminates). Offsets apply to every partition."""

    topic: str
    from_offset: int | None = None
    to_offset: int | None = None
    from_time_s: float | None = None
    to_time_s: float | None = None
    partitions: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.from_offset is not None and self.from_time_s is not None:
            raise ConfigError(
                "--from-offset", self.from_offset, "either --from-offset or --from-time, not both"
            )
        if self.to_offset is not None and self.to_time_s is not None:
            raise ConfigError("--to-offset", self.to_offset, "either --to-offset or --to-time, not both")
        for key, value in (("--from-offset", self.from_offset), ("--to-offset", self.to_offset)):
            if value is not None and value < 0:
                raise ConfigError(key, value, "an offset >= 0")


def parse_time_arg(value: str, key: str) -> float:
    """ISO-8601 with offset, or epoch seconds / milliseconds (as in the input contract)."""
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    try:
        return parse_created_at(number if math.isfinite(number) else value)
    except Exception:  # noqa: BLE001 - the contract raises its private rejection type
        raise ConfigError(
            key, value, "ISO-8601 with an offset (2026-11-24T08:00:00Z) or epoch seconds"
        ) from None


class KafkaRangeSource:
    """Reads a topic range once, merging partitions by (timestamp, partition, offset)."""

    BUFFER_PER_PARTITION = 5000

    def __init__(self, client_options: Mapping[str, Any], selection: KafkaRange) -> None:
        """`client_options`: kafka-python connection settings, `bootstrap_servers` included
        (`topics.client_security(settings)`)."""
        self.selection = selection
        self.client_options = dict(client_options)
        self._total = 0
        self._consumed = 0

    def fraction_done(self) -> float | None:
        return None if self._total <= 0 else min(1.0, self._consumed / self._total)

    def _consumer(self) -> Any:
        from kafka import KafkaConsumer

        return KafkaConsumer(
            enable_auto_commit=False,
            group_id=None,
            auto_offset_reset="earliest",
            max_poll_records=2000,
            **self.client_options,
        )

    def _bounds(self, consumer: Any, partitions: list[Any]) -> dict[Any, tuple[int, int]]:
        selection = self.selection
        beginning = consumer.beginning_offsets(partitions)
        end = consumer.end_offsets(partitions)

        def by_time(time_s: float | None, fallback: dict[Any, int]) -> dict[Any, int]:
            if time_s is None:
                return dict(fallback)
            found = consumer.offsets_for_times({tp: int(time_s * 1000) for tp in partitions})
            return {tp: (found[tp].offset if found.get(tp) is not None else end[tp]) for tp in partitions}

        starts = by_time(selection.from_time_s, beginning)
        stops = by_time(selection.to_time_s, end)
        bounds = {}
        for tp in partitions:
            start = starts[tp] if selection.from_offset is None else selection.from_offset
            stop = stops[tp] if selection.to_offset is None else selection.to_offset
            start = max(start, beginning[tp])
            stop = min(stop, end[tp])
            bounds[tp] = (start, max(start, stop))
        return bounds

    def __iter__(self) -> Iterator[RawRecord]:
        from kafka import TopicPartition

        consumer = self._consumer()
        try:
            topic = self.selection.topic
            known = consumer.partitions_for_topic(topic)
            if not known:
                raise ConfigError("--kafka-topic", topic, "an existing topic on the broker")
            numbers = sorted(known) if self.selection.partitions is None else list(self.selection.partitions)
            partitions = [TopicPartition(topic, number) for number in numbers]
            consumer.assign(partitions)
            bounds = self._bounds(consumer, partitions)
            self._total = sum(stop - start for start, stop in bounds.values())
            pending = {tp for tp in partitions if bounds[tp][1] > bounds[tp][0]}
            for tp in partitions:
                consumer.seek(tp, bounds[tp][0])
            buffers: dict[Any, collections.deque[Any]] = {tp: collections.deque() for tp in partitions}
            paused: set[Any] = set()
            while pending or any(buffers[tp] for tp in partitions):
                # Merge: emit while every partition still to read has a buffered head.
                while True:
                    heads = [tp for tp in partitions if buffers[tp]]
                    if not heads or any(not buffers[tp] for tp in pending):
                        break
                    tp = min(
                        heads, key=lambda p: (buffers[p][0].timestamp, p.partition, buffers[p][0].offset)
                    )
                    message = buffers[tp].popleft()
                    self._consumed += 1
                    yield RawRecord(
                        value=message.value if message.value is not None else b"",
                        partition=message.partition,
                        offset=message.offset,
                        source=f"{topic}/{message.partition}@{message.offset}",
                    )
                    if tp in paused and len(buffers[tp]) < self.BUFFER_PER_PARTITION // 2:
                        consumer.resume(tp)
                        paused.discard(tp)
                if not pending:
                    continue
                for tp, messages in consumer.poll(timeout_ms=1000).items():
                    stop = bounds[tp][1]
                    for message in messages:
                        if message.offset < stop:
                            buffers[tp].append(message)
                    if messages and messages[-1].offset + 1 >= stop:
                        pending.discard(tp)
                        consumer.pause(tp)
                    elif len(buffers[tp]) >= self.BUFFER_PER_PARTITION:
                        consumer.pause(tp)
                        paused.add(tp)
                for tp in list(pending):
                    if consumer.position(tp) >= bounds[tp][1]:
                        pending.discard(tp)
        finally:
            consumer.close()


# -- paced re-send into Kafka ------------------------------------------------------------------------------
def event_time_of(value: bytes) -> float | None:
    """created_at of a raw message in epoch seconds, or None when it has none that parses."""
    try:
        data = json.loads(value)
        return float(parse_created_at(data["created_at"])) if isinstance(data, dict) else None
    except Exception:  # noqa: BLE001 - any unreadable message is sent at once, the worker dead-letters it
        return None


@dataclass
class PacingResult:
    sent: int = 0
    first_event_s: float | None = None
    last_event_s: float | None = None
    wall_s: float = 0.0


def send_paced(
    records: Iterable[RawRecord],
    send: Callable[[bytes], None],
    *,
    speed: float,
    monotonic: Callable[[], float],
    sleep: Callable[[float], None],
    on_sent: Callable[[int, float | None], None] | None = None,
) -> PacingResult:
    """Send each record when `(event_time - first_event_time) / speed` of wall time has passed.

    Records whose event time is unreadable or earlier than one already sent go out at once (never wait
    backwards); `speed <= 0` or infinite sends as fast as possible. `on_sent(count, event_time)` drives
    the progress bar.
    """
    result = PacingResult()
    started = monotonic()
    unpaced = not (speed > 0 and math.isfinite(speed))
    for record in records:
        event_s = None if unpaced else event_time_of(record.value)
        if event_s is not None:
            if result.first_event_s is None:
                result.first_event_s = event_s
            due = started + (event_s - result.first_event_s) / speed
            wait = due - monotonic()
            if wait > 0:
                sleep(wait)
            if result.last_event_s is None or event_s > result.last_event_s:
                result.last_event_s = event_s
        send(record.value)
        result.sent += 1
        if on_sent is not None:
            on_sent(result.sent, event_s)
    result.wall_s = monotonic() - started
    return result


def kafka_sender(
    client_options: Mapping[str, Any], topic: str
) -> tuple[Callable[[bytes], None], Callable[[], None]]:
    """(send, close) for `send_paced`: kafka-python, keyed like `crisiswatch produce` (root_id)."""
    from kafka import KafkaProducer

    from crisiswatch.streams.produce import message_key

    producer = KafkaProducer(acks="all", linger_ms=5, **client_options)
    producer.partitions_for(topic)  # fetch metadata now, so the first paced send does not block on it

    def send(value: bytes) -> None:
        producer.send(topic, key=message_key(value), value=value)

    def close() -> None:
        producer.flush()
        producer.close()

    return send, close

"""Offline replay: recorded streams through the same pipeline as the worker, in event time, no broker.

Deterministic: the same files in the same order give byte-identical alert lines (ids included).
"""

from __future__ import annotations

import gzip
import io
import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TextIO

from crisiswatch.alerts.incidents import IncidentEvent
from crisiswatch.streams.config import Settings
from crisiswatch.streams.pipeline import Accounting, DeadLetter, Pipeline, RawRecord

BATCH_POSTS = 2000


def dump_line(obj: Any) -> str:
    """The one JSON line encoder for what crisiswatch writes (alert lines, reports, dead letters)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def open_output(path: str | Path) -> TextIO:
    # Lone surrogates from hostile input stay representable: they are written as JSON escapes.
    return open(path, "w", encoding="utf-8", errors="backslashreplace", newline="\n")


def _open_input(path: str, stdin: IO[bytes] | None) -> IO[bytes]:
    if path == "-":
        return stdin if stdin is not None else sys.stdin.buffer
    if path.endswith(".gz"):
        return gzip.open(path, "rb")
    return open(path, "rb")


def read_records(paths: Sequence[str], stdin: IO[bytes] | None = None) -> Iterator[RawRecord]:
    """Lines of the given files, in the order given, as records named `file:line`."""
    for path in paths:
        handle = _open_input(path, stdin)
        try:
            for line_number, line in enumerate(handle, start=1):
                stripped = line.rstrip(b"\r\n")
                if not stripped.strip():
                    continue
                yield RawRecord(value=stripped, partition=0, offset=line_number, source=f"{path}:{line_number}")
        finally:
            if handle is not stdin and path != "-":
                handle.close()


def _batches(records: Iterator[RawRecord], size: int) -> Iterator[list[RawRecord]]:
    batch: list[RawRecord] = []
    for record in records:
        batch.append(record)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


@dataclass
class ReplayResult:
    accounting: Accounting
    events: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    rejects: list[DeadLetter] = field(default_factory=list)
    elapsed_s: float = 0.0


class Progress:
    """A progress line on stderr with posts/s; quiet when stderr is not a terminal, except the summary."""

    def __init__(self, stream: TextIO, monotonic: Any, enabled: bool | None = None) -> None:
        self.stream = stream
        self.monotonic = monotonic
        self.enabled = stream.isatty() if enabled is None else enabled
        self.started = monotonic()
        self._last_draw = 0.0

    def update(self, consumed: int, events: int) -> None:
        now = self.monotonic()
        if not self.enabled or now - self._last_draw < 0.2:
            return
        self._last_draw = now
        rate = consumed / max(now - self.started, 1e-9)
        self.stream.write(f"\r  {consumed:>10,} posts  {rate:>10,.0f} posts/s  {events:>6,} incident events")
        self.stream.flush()

    def elapsed(self) -> float:
        return self.monotonic() - self.started


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
    """Run recorded posts through the pipeline; write each incident event as one JSON line."""
    pipeline = pipeline or Pipeline(settings)
    result = ReplayResult(accounting=pipeline.totals)
    for batch in _batches(read_records(paths, stdin), BATCH_POSTS):
        ingested, events = pipeline.process(batch)
        if keep_rejects:
            result.rejects.extend(ingested.dead_letters)
        _emit(events, alerts_out, on_event, result)
        if progress is not None:
            progress.update(result.accounting.consumed, result.events)
    if progress is not None:
        result.elapsed_s = progress.elapsed()
    return result


def _emit(events: Sequence[IncidentEvent], alerts_out: TextIO | None, on_event: Any, result: ReplayResult) -> None:
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

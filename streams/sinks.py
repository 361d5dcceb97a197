"""A JSONL mirror of the worker's outbox (`--alerts-jsonl`): every incident event, before routing."""

from __future__ import annotations

from collections.abc import Callable

from crisiswatch.alerts.incidents import IncidentEvent
from crisiswatch.streams.replay import dump_line


def jsonl_mirror(path: str) -> Callable[[IncidentEvent], None]:
    handle = open(path, "a", encoding="utf-8", errors="backslashreplace", buffering=1)  # noqa: SIM115

    def write(event: IncidentEvent) -> None:
        handle.write(dump_line(event.to_dict()) + "\n")

    return write

"""Where the worker's notify agent sends incident events: console pages and a JSONL file.

The routed receivers (Slack, email, PagerDuty, webhook) come from `alerts/`; these two local sinks are the
demo's and a single-machine deployment's.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TextIO

from crisiswatch.alerts.incidents import IncidentEvent
from crisiswatch.alerts.render import RenderOptions, render_text
from crisiswatch.streams.config import Settings
from crisiswatch.streams.replay import dump_line


def build_delivery(settings: Settings, *, jsonl_path: str | None, console: bool, stream: TextIO | None = None) -> Callable[[IncidentEvent], None]:
    profiles = settings.brands_by_name
    jsonl = open(jsonl_path, "a", encoding="utf-8", errors="backslashreplace", buffering=1) if jsonl_path else None  # noqa: SIM115

    def deliver(event: IncidentEvent) -> None:
        if jsonl is not None:
            jsonl.write(dump_line(event.to_dict()) + "\n")
        if console and event.severity in ("warning", "critical"):
            profile = profiles.get(event.brand)
            options = RenderOptions(
                playbooks=settings.alerting.playbooks,
                lang=profile.lang if profile else None,
                time_zone=profile.time_zone if profile else "UTC",
            )
            target = stream or sys.stdout
            target.write(render_text(event, options).rstrip("\n") + "\n\n")
            target.flush()

    return deliver

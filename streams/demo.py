"""`crisiswatch demo`: generated traffic around a planted complaint that goes viral, through the real code.

No broker and no configuration: the scenario generator's `demo` preset (three brands, six hours, one
viral complaint amplified by a big account, one positive viral campaign that must not page) runs through
the same pipeline as the worker and replay, and the pages a PR person would get are printed.
Deterministic for a given seed.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import TextIO

from crisiswatch.alerts.incidents import IncidentEvent
from crisiswatch.alerts.render import RenderOptions, render_text
from crisiswatch.streams.config import Settings, load_settings
from crisiswatch.streams.evaluation import LabelledIncident, first_detection
from crisiswatch.streams.pipeline import Pipeline, RawRecord
from crisiswatch.streams.replay import dump_line
from crisiswatch.streams.scenarios import GroundTruthIncident, Scenario
from crisiswatch.streams.simulate import simulate

PAGE_SEVERITIES = ("warning", "critical")


def demo_settings(scenario: Scenario) -> Settings:
    """The embedded default: the scenario's brands with their aliases, everything else at its default."""
    return dataclasses.replace(
        load_settings(None, environ={}), brands=scenario.brand_profiles(), source="(demo)"
    )


def is_page(event: IncidentEvent, paged: set[str]) -> bool:
    """A page goes out when an incident first reaches warning, when it escalates, and when it resolves."""
    if event.severity in PAGE_SEVERITIES and event.status in ("firing", "updated"):
        return True
    return event.status == "resolved" and event.incident_id in paged


def run_scenario(scenario: Scenario, settings: Settings) -> list[IncidentEvent]:
    pipeline = Pipeline(settings)
    records = [
        RawRecord(dump_line(post).encode("utf-8"), 0, index, f"demo:{index + 1}")
        for index, post in enumerate(scenario.posts)
    ]
    events: list[IncidentEvent] = []
    for start in range(0, len(records), 2000):
        _, batch_events = pipeline.process(records[start : start + 2000])
        events += batch_events
    assert pipeline.totals.balanced()
    return events


def _caught(incident: GroundTruthIncident, events: Sequence[IncidentEvent]) -> float | None:
    """When the incident was first paged, by the scoring rules of `replay --incidents`."""
    found = first_detection(LabelledIncident.from_dict(incident.to_dict()), events)
    return None if found is None else found.detected_at_s


def run_demo(out: TextIO, seed: int = 7) -> int:
    started = time.monotonic()
    scenario = simulate("demo", seed=seed)  # `crisiswatch simulate --preset demo` writes the same stream
    settings = demo_settings(scenario)
    events = run_scenario(scenario, settings)
    profiles = settings.brands_by_name
    paged: set[str] = set()
    pages = 0
    out.write(
        f"crisiswatch demo: {len(scenario.posts):,} generated posts about {len(profiles)} brands, replayed in event time\n\n"
    )
    last_severity: dict[str, str] = {}
    for event in events:
        if not is_page(event, paged):
            continue
        if event.status == "updated" and last_severity.get(event.incident_id) == event.severity:
            continue  # growth updates go to the incident's thread; the demo prints escalations only
        last_severity[event.incident_id] = event.severity
        paged.add(event.incident_id)
        pages += 1
        profile = profiles.get(event.brand)
        options = RenderOptions(
            playbooks=settings.alerting.playbooks,
            lang=profile.lang if profile else None,
            time_zone=profile.time_zone if profile else "UTC",
        )
        out.write(f"=== page {pages}: {event.status.upper()} · {event.severity} · {event.brand} ===\n")
        out.write(render_text(event, options).rstrip("\n") + "\n\n")
    verdicts = []
    for incident in scenario.incidents:
        caught = _caught(incident, events)
        if incident.is_crisis:
            verdicts.append(
                f"{incident.kind} on {incident.brand}: "
                + (
                    f"paged {(caught - incident.start_s) / 60:.0f} min after it began"
                    if caught is not None
                    else "MISSED"
                )
            )
        else:
            verdicts.append(
                f"{incident.kind} on {incident.brand} (not a crisis): "
                + ("wrongly paged" if caught is not None else "not paged")
            )
    info_count = sum(1 for event in events if event.severity == "info" and event.status == "firing")
    out.write(
        f"summary: {pages} pages from {len(events)} incident events ({info_count} info-only incidents not paged); "
        + "; ".join(verdicts)
        + f"; {time.monotonic() - started:.1f} s\n"
    )
    return 0

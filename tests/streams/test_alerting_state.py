"""The worker's alerting state per outbox partition, as small changelog entries (streams/state_shards.py).

Written as one value it passed Kafka's 1 MiB message limit once about 200 incidents were open (a worker
crashed with MessageSizeTooLargeError in the 1k posts/s latency benchmark). No broker needed: Faust tables
take writes before the app runs (the worker stages the changelog records until `make_durable`).
"""

from __future__ import annotations

import dataclasses
import functools
import json

from crisiswatch.streams.app import Worker, encode_table_value
from crisiswatch.streams.config import settings_from_mapping
from crisiswatch.streams.pipeline import RawRecord
from crisiswatch.streams.replay import dump_line, replay_source
from crisiswatch.streams.scenarios import generate
from crisiswatch.streams.simulate import MixedOptions, mixed_config

CONFIG = {
    "alerting": {
        # nothing is delivered in this test (no tick): every notification stays a pending job
        "receivers": [{"name": "hook", "webhook": {"url": "http://127.0.0.1:9/hook"}}],
        "route": {"receiver": "hook", "group_by": ["incident_id"], "group_wait_s": 0},
    }
}


@functools.cache
def week_events() -> tuple:
    scenario = generate(mixed_config(MixedOptions(seed=5, days=2)))
    settings = settings_from_mapping(CONFIG, environ={})
    settings = dataclasses.replace(settings, brands=scenario.brand_profiles())
    events: list = []
    records = (RawRecord(dump_line(p).encode(), 0, i) for i, p in enumerate(scenario.posts))
    replay_source(records, settings, None, on_event=events.append)
    return tuple(events)


def incident_events(count: int):
    events = week_events()
    assert len(events) >= 30
    # the stream's events, then copies under new ids: many open incidents at once, as under load
    out = list(events)
    lap = 0
    while len(out) < count:
        lap += 1
        out += [dataclasses.replace(e, incident_id=f"{e.incident_id}~{lap}") for e in events]
    return out[:count]


def test_many_open_incidents_are_saved_in_small_entries_and_restored():
    worker = Worker(settings_from_mapping(CONFIG, environ={}))
    events = incident_events(600)
    for event in events:
        worker.on_incident_event(3, event)
    service = worker.alerting[3]
    state = service.state()
    assert len(dump_line(state).encode()) > 1_000_000  # one value would pass Kafka's limit
    entries = {k: v for k, v in worker.alerting_table.items() if k.startswith(b"alerting-3|")}
    assert len(entries) > 300
    assert max(len(v) for v in entries.values()) < 100_000  # the stored bytes are the changelog record
    # a new owner of the partition (fresh worker, the table as recovered) gets the same state back
    fresh = Worker(settings_from_mapping(CONFIG, environ={}))
    for key, value in worker.alerting_table.items():  # as Faust's recovery fills the store: the raw bytes
        fresh.alerting_table.data[key] = bytes(value)
    assert fresh._alerting_for(3).state() == json.loads(json.dumps(state))


def test_a_save_writes_only_what_changed():
    worker = Worker(settings_from_mapping(CONFIG, environ={}))
    events = incident_events(150)
    for event in events[:-1]:
        worker.on_incident_event(0, event)
    before = dict(worker.alerting_table.items())
    worker.on_incident_event(0, events[-1])
    after = dict(worker.alerting_table.items())
    changed = {k for k in after if before.get(k) != after[k]} | (before.keys() - after.keys())
    assert 0 < len(changed) <= 10, sorted(changed)


def test_state_written_as_one_value_by_an_older_worker_still_loads_and_is_replaced():
    worker = Worker(settings_from_mapping(CONFIG, environ={}))
    for event in incident_events(120):
        worker.on_incident_event(1, event)
    state = worker.alerting[1].state()
    old = Worker(settings_from_mapping(CONFIG, environ={}))
    old.alerting_table.data[b"partition-1"] = encode_table_value({"v": 1, "service": state})
    service = old._alerting_for(1)
    assert service.state() == json.loads(json.dumps(state))
    old._save_alerting(1, service)
    assert b"partition-1" not in dict(old.alerting_table.items())
    assert any(k.startswith(b"alerting-1|") for k in dict(old.alerting_table.items()))

"""The alerting state written as small entries (streams/state_shards.py): round trip, size, and diffs."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from crisiswatch.streams.state_shards import changes, shards, unshard


def alerting_like(incidents: int, jobs: int) -> dict:
    event = {
        "incident_id": "",
        "metrics": {"root_text": "快达快递又把我的快件弄丢了" * 20, "trend": [[0, 1]] * 50},
    }
    return {
        "dispatcher": {
            "v": 1,
            "groups": {
                f"Brand {i}/forward_surge/wb{i}:1": {"events": {"a": event}} for i in range(incidents)
            },
            "active": {f"Brand {i}/d/x/{i}": event for i in range(incidents)},  # keys may hold "/" and "/d/"
            "escalations": {},
        },
        "notifier": {
            "v": 1,
            "seq": jobs,
            "jobs": [{"seq": s, "receiver": "pr", "notification": event} for s in range(jobs)],
            "sent": {f"n{i}": 1.0 * i for i in range(incidents)},
            "threads": {},
        },
    }


def test_round_trip_and_every_entry_is_small():
    state = alerting_like(incidents=400, jobs=300)
    entries = shards(state)
    assert unshard(json.loads(json.dumps(entries))) == state
    whole = len(json.dumps(state, ensure_ascii=False).encode())
    biggest = max(len(json.dumps(v, ensure_ascii=False).encode()) for v in entries.values())
    assert whole > 1_000_000 > 20 * biggest  # the single value would pass Kafka's limit; no entry comes near


def test_a_save_writes_what_changed_and_deletes_what_went_away():
    state = alerting_like(incidents=50, jobs=10)
    written, write, delete = changes({}, shards(state))
    assert len(write) == len(written) and delete == []
    del state["dispatcher"]["active"]["Brand 3/d/x/3"]
    state["notifier"]["jobs"] = state["notifier"]["jobs"][1:]  # the oldest job was delivered
    state["notifier"]["sent"]["n999"] = 5.0
    after, write, delete = changes(written, shards(state))
    assert set(write) == {"notifier/sent/d/n999"}
    assert set(delete) == {"dispatcher/active/d/Brand 3/d/x/3", "notifier/jobs/l/000000000000"}
    assert unshard({k: json.loads(v) for k, v in after.items()}) == state


def test_lists_without_ids_and_empty_fields_are_kept_whole():
    state = {
        "s": {"plain": [1, 2, 3], "empty_map": {}, "empty_list": [], "dupes": [{"key": "a"}, {"key": "a"}]}
    }
    assert unshard(shards(state)) == state


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.text(alphabet="abc", min_size=1, max_size=3),
        st.dictionaries(st.text(alphabet="xyz", min_size=1, max_size=3), json_values, max_size=4),
        max_size=3,
    )
)
def test_any_sectioned_state_round_trips(state):
    back = unshard(shards(state))
    # lists of keyed items come back ordered by id; compare with that order
    for section, fields in state.items():
        for name, value in fields.items():
            if isinstance(value, list) and back[section][name] != value:
                assert sorted(map(json.dumps, back[section][name])) == sorted(map(json.dumps, value))
                back[section][name] = value
    assert back == state

"""Brand observations travel in internal-topic messages that stay under Kafka's size limit.

A worker under load once sent 200 Chinese observations (about 5 KiB each: texts cut at 500 characters)
in one 1,004,026-byte message; the producer refused it and the worker crashed.
"""

from __future__ import annotations

import json

from crisiswatch.streams.app import MAX_BRAND_MESSAGE_BYTES, OBSERVATIONS_PER_MESSAGE, brand_messages


def observation(i: int, chars: int) -> list:
    return [
        i,
        {"id": f"wb{i}", "text": "转发微博//@用户:" * (chars // 10), "own_text": "投诉" * (chars // 2)},
    ]


def test_big_observations_are_split_under_the_byte_bound_in_order():
    observations = [observation(i, 500) for i in range(1000)]
    messages = brand_messages("快达快递", 3, observations)
    assert len(messages) > 1000 // OBSERVATIONS_PER_MESSAGE  # the byte bound, not the count, split them
    decoded = [json.loads(m) for m in messages]
    assert all(len(m) <= MAX_BRAND_MESSAGE_BYTES + 200 for m in messages)
    assert all(d["brand"] == "快达快递" and d["source_partition"] == 3 for d in decoded)
    assert [o for d in decoded for o in d["observations"]] == observations


def test_small_observations_are_split_by_count():
    observations = [observation(i, 10) for i in range(450)]
    decoded = [json.loads(m) for m in brand_messages("Acme", 0, observations)]
    assert [len(d["observations"]) for d in decoded] == [200, 200, 50]
    assert [o for d in decoded for o in d["observations"]] == observations


def test_one_observation_bigger_than_the_bound_still_travels_alone():
    huge = [0, {"text": "x" * (MAX_BRAND_MESSAGE_BYTES + 10)}]
    messages = brand_messages("Acme", 0, [observation(1, 10), huge, observation(2, 10)])
    assert [len(json.loads(m)["observations"]) for m in messages] == [1, 1, 1]
    assert brand_messages("Acme", 0, []) == []

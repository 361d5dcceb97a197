"""Small hand-made streams for integration tests: a planted complaint surge inside normal traffic.

Independent of the scenario generator on purpose: the expected incident is obvious by construction
(a negative complaint root, hundreds of forwards in minutes, a verified big account amplifying it).
"""

from __future__ import annotations

import json
import random
from typing import Any

BRAND = "Acme Parcel"
BRAND_CONFIG = [
    {"name": BRAND, "aliases": ["Acme", "@AcmeParcel"]},
    {"name": "Calm Tea", "aliases": ["CalmTea"]},
]
START_S = 1_790_000_000.0  # 2026-09-21T14:13:20Z
SURGE_ROOT = "surge-root"


def iso(t_s: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(t_s, UTC).isoformat().replace("+00:00", "Z")


def post(
    post_id: str,
    t_s: float,
    text: str,
    *,
    kind: str = "post",
    parent: str | None = None,
    followers: int = 50,
    verified: bool = False,
    sentiment: float | None = None,
    author: str | None = None,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": post_id,
        "created_at": iso(t_s),
        "text": text,
        "kind": kind,
        "author": {"id": author or f"user-{post_id}", "followers": followers, "verified": verified},
        "platform": "twitter",
        "lang": "en",
    }
    if parent is not None:
        data["parent_id"] = parent
        data["root_id"] = parent
    if sentiment is not None:
        data["sentiment"] = sentiment
    return data


def normal_traffic(
    seed: int, start_s: float, duration_s: float, posts_per_minute: float
) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    texts = [
        "Calm Tea is my favourite afternoon break",
        "Ordered from Acme, arrived on time",
        "Anyone tried the new CalmTea flavour?",
        "Acme delivery came early today, nice",
    ]
    result = []
    t = start_s
    index = 0
    while t < start_s + duration_s:
        t += rng.expovariate(posts_per_minute / 60.0)
        result.append(
            post(f"bg-{seed}-{index}", t, rng.choice(texts), followers=rng.randint(5, 5000), sentiment=0.1)
        )
        index += 1
    return result


def planted_surge(
    start_s: float, forwards: int = 300, over_s: float = 900.0, root: str = SURGE_ROOT
) -> list[dict[str, Any]]:
    """A furious complaint forwarded `forwards` times within `over_s`, amplified by a verified big account."""
    rng = random.Random(11)
    result = [
        post(
            root,
            start_s,
            "Acme lost my parcel AGAIN and support hung up on me. Worst delivery service ever, never again! @AcmeParcel",
            followers=800,
            sentiment=0.97,
        )
    ]
    for index in range(forwards):
        t = start_s + 30 + over_s * ((index + 1) / forwards) ** 0.7
        if index == forwards // 4:
            result.append(
                post(
                    f"{root}-amp",
                    t,
                    "RT: this is outrageous, Acme needs to answer",
                    kind="forward",
                    parent=root,
                    followers=2_500_000,
                    verified=True,
                    sentiment=0.9,
                    author="big-news-account",
                )
            )
            continue
        if index % 4 == 0:
            result.append(
                post(
                    f"{root}-c{index}",
                    t,
                    "Same happened to me, Acme is a disgrace",
                    kind="comment",
                    parent=root,
                    followers=rng.randint(10, 3000),
                    sentiment=0.93,
                )
            )
        else:
            result.append(
                post(f"{root}-f{index}", t, "", kind="forward", parent=root, followers=rng.randint(10, 20000))
            )
    return result


def stream(seed: int = 3, duration_s: float = 7200.0) -> list[dict[str, Any]]:
    """Normal traffic (two hours by default) with the surge planted after the first hour, in event-time order."""
    posts = normal_traffic(seed, START_S, duration_s, posts_per_minute=6) + planted_surge(START_S + 3600.0)
    posts.sort(key=lambda p: p["created_at"])
    return posts


def encode(posts: list[dict[str, Any]]) -> list[bytes]:
    return [json.dumps(p, ensure_ascii=False).encode("utf-8") for p in posts]


# Malformed messages and the reason code each must be dead-lettered with.
MALFORMED: list[tuple[bytes, str]] = [
    (b"{not json", "invalid_json"),
    (b"\xff\xfe garbage", "invalid_utf8"),
    (b'{"id": "a", "id": "b", "created_at": 1790000000, "author": {"id": "u"}}', "duplicate_key"),
    (b'{"id": "nan", "created_at": NaN, "author": {"id": "u"}}', "non_finite_number"),
    (
        json.dumps({"id": "naive", "created_at": "2026-09-21T10:00:00", "author": {"id": "u"}}).encode(),
        "naive_timestamp",
    ),
    (
        json.dumps({"id": "neg", "created_at": START_S, "author": {"id": "u", "followers": -5}}).encode(),
        "invalid_followers",
    ),
    (
        json.dumps(
            {"id": "orphan", "created_at": START_S, "kind": "forward", "author": {"id": "u"}}
        ).encode(),
        "missing_parent",
    ),
    (json.dumps([1, 2, 3]).encode(), "not_an_object"),
]

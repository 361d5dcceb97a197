"""The one interface every detector implements (river style), and the batch columns they share.

A detector is one small object per key (a cascade's `root_id`, or a brand), configured by its frozen config
dataclass (`config.py`, validated in `__post_init__`):

- `update(event) -> Score`: fold one event in, then score. The score is taken after the event is counted
  in the sliding windows; baselines learn only from data that has left the window (or, for a count series,
  after the interval was scored), so an event is always judged against a baseline it has not yet taught.
- `update_many(detectors, batch, rows, owners) -> list[Score]` (classmethod): the batch path. Row j of the
  batch belongs to `detectors[owners[j]]`; rows are folded in order, vectorised across keys where the
  arithmetic allows, and each detector that received rows returns one `Score`, taken at its newest row.
- `score_at(now_s) -> Score`: judge at event time `now_s` without a new event (event time moved on).
- `to_state()` / `from_state(state, ...)`: a small JSON-able, versioned state; a restored detector gives the
  same future scores as the original.

Scoring is separate from deciding: a `Score` carries numbers, `paging.py` turns them into a severity.
Detectors trust their input to be unique: the engine drops redelivered duplicates before they reach them.
Event time only: nothing here reads a clock.
"""

from __future__ import annotations

import math
import struct
from base64 import b64decode, b64encode
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, NamedTuple, Protocol
from zlib import crc32

import numpy as np

from crisiswatch.detectors.events import EnrichedPost

NO_METRICS: dict[str, Any] = {}


class Score(NamedTuple):
    """One detector's score for one key at one event time.

    `value` is on the detector's documented scale (its class docstring). `metrics` holds the numbers the
    paging policy decides on; it is empty when the update could not have changed any verdict (a late
    event, or a key still below every floor, or no new evidence since the last judgement), and then
    `value` is what costs nothing to keep current: forward_surge's window z, negative_surge's last judged
    z, volume_surge's last closed interval. `explain()` gives one plain-language sentence; it is a
    callable because scores are taken far more often than they are read.
    """

    detector: str
    key: str
    value: float
    event_time_s: float
    metrics: dict[str, Any]
    explain: Callable[[], str]

    @property
    def judged(self) -> bool:
        return bool(self.metrics)

    @property
    def explanation(self) -> str:
        return self.explain()


# `new_score(Score, (detector, key, value, event_time_s, metrics, explain))`: the hot paths build a Score
# without the named constructor's Python-level call (half the cost; a score is taken for most events).
new_score = tuple.__new__


def not_judged() -> str:
    """The explanation of an unjudged score (most updates): built once, not per event."""
    return "not judged: nothing that could change a verdict since the last judgement"


class Detector(Protocol):
    """What the engine and the contract tests rely on (see the module docstring)."""

    name: ClassVar[str]
    STATE_VERSION: ClassVar[int]

    def update(self, event: Any) -> Score: ...

    def score_at(self, now_s: float) -> Score: ...

    def to_state(self) -> dict[str, Any]: ...


def check_version(state: dict[str, Any], what: str, supported: int) -> None:
    version = state.get("v")
    if version != supported:
        raise ValueError(f"{what} state version {version!r} is not supported (expected {supported})")


def first_sighting(recent: list[int], post_hash: int, keep: int) -> bool:
    """False when `post_hash` is among the last `keep` post ids in `recent` (a redelivery); else remember it."""
    if post_hash in recent:
        return False
    recent.append(post_hash)
    if len(recent) > keep:
        del recent[0]
    return True


def pack_ids(ids: list[int]) -> str | list[int]:
    """32-bit post-id hashes as unpadded base64 of little-endian uint32s: 22 bytes of JSON per 4 ids
    instead of ~44. Anything else stays a list (both forms load with `unpack_ids`)."""
    if not all(0 <= i < 2**32 for i in ids):
        return list(ids)
    return b64encode(struct.pack(f"<{len(ids)}I", *ids)).decode("ascii").rstrip("=")


def unpack_ids(packed: str | list[int]) -> list[int]:
    if not isinstance(packed, str):
        return [int(i) for i in packed]
    raw = b64decode(packed + "=" * (-len(packed) % 4))
    return list(struct.unpack(f"<{len(raw) // 4}I", raw))


def finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def none_to(value: float | None, default: float) -> float:
    return default if value is None else float(value)


class PostBatch:
    """A batch of posts as columns, built once per batch and shared by every detector's `update_many`.

    Columns are numpy arrays (NaN where a probability is unknown); each is computed on first use.
    """

    __slots__ = ("posts", "_cache")

    def __init__(self, posts: Sequence[EnrichedPost]) -> None:
        self.posts = posts
        self._cache: dict[str, Any] = {}

    def __len__(self) -> int:
        return len(self.posts)

    def _column(self, name: str, build: Callable[[], Any]) -> Any:
        found = self._cache.get(name)
        if found is None:
            found = self._cache[name] = build()
        return found

    @property
    def times(self) -> np.ndarray:
        return self._column(
            "times", lambda: np.fromiter((p.post.created_at_s for p in self.posts), float, len(self.posts))
        )

    @property
    def hashes(self) -> list[int]:
        """Stable 32-bit hashes of the post ids (duplicate detection; `hash()` is salted per process)."""
        return self._column("hashes", lambda: [crc32(p.post.id.encode()) for p in self.posts])

    @property
    def is_root(self) -> np.ndarray:
        """`Post.is_root` per post."""

        def build() -> np.ndarray:
            return np.fromiter((i.post.is_root for i in self.posts), bool, len(self.posts))

        return self._column("is_root", build)

    @property
    def is_forward(self) -> np.ndarray:
        return self._column(
            "is_forward",
            lambda: np.fromiter((p.post.kind == "forward" for p in self.posts), bool, len(self.posts)),
        )

    @property
    def followers(self) -> np.ndarray:
        """The author's followers, negative counts as 0."""
        return self._column(
            "followers",
            lambda: np.maximum(
                np.fromiter((p.post.author.followers for p in self.posts), float, len(self.posts)), 0.0
            ),
        )

    @property
    def verified(self) -> np.ndarray:
        return self._column(
            "verified",
            lambda: np.fromiter((p.post.author.verified for p in self.posts), bool, len(self.posts)),
        )

    @property
    def negative_probability(self) -> np.ndarray:
        def build() -> np.ndarray:
            nan = math.nan
            return np.array(
                [nan if (v := p.negative_probability) is None else v for p in self.posts], dtype=float
            )

        return self._column("negative_probability", build)

    @property
    def complaint_probability(self) -> np.ndarray:
        def build() -> np.ndarray:
            nan = math.nan
            return np.array(
                [nan if (v := p.complaint_probability) is None else v for p in self.posts], dtype=float
            )

        return self._column("complaint_probability", build)


def runs(owners: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Group rows (given in arrival order) into runs of one owner and one key (e.g. a window bucket).

    Returns (order, starts, run_owner, run_key): `order` sorts rows by owner keeping arrival order, `starts`
    are the first positions of each run in that order. Where an owner's keys ever go backwards (events out
    of order across buckets), each of its rows is its own run, so applying runs in order reproduces the
    one-at-a-time fold exactly; otherwise rows of one owner and one key form a single run.
    """
    order = np.argsort(owners, kind="stable")
    owner_sorted = owners[order]
    key_sorted = keys[order]
    n = len(order)
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return order, empty, empty, empty
    same_owner = owner_sorted[1:] == owner_sorted[:-1]
    backwards = same_owner & (key_sorted[1:] < key_sorted[:-1])
    boundary = np.empty(n, dtype=bool)
    boundary[0] = True
    boundary[1:] = ~same_owner | (key_sorted[1:] != key_sorted[:-1])
    if backwards.any():
        disordered = np.zeros(int(owner_sorted.max()) + 1, dtype=bool)
        disordered[owner_sorted[1:][backwards]] = True
        boundary |= disordered[owner_sorted]
    starts = np.flatnonzero(boundary)
    return order, starts, owner_sorted[starts], key_sorted[starts]

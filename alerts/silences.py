"""Silences: "do not page about this until then", shared by every worker.

A silence needs at least one matcher that does not match the empty string (so `brand=~".*"` cannot
silence everything by accident) and an expiry. `SilenceStore` is the interface; `FileSilenceStore`
keeps them in one JSON file (atomic rename, `flock` against concurrent CLI/worker writes, re-read
when the file changes), which every worker on the host — or on a shared volume — sees.
`crisiswatch.streams.silences.KafkaSilenceStore` keeps them on a compacted Kafka topic that every
worker follows (config `alerting.silences_store: kafka`): the choice for workers on several hosts.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from crisiswatch.alerts.clock import iso_z
from crisiswatch.alerts.routing import Matcher, matches_all, parse_matcher_list
from crisiswatch.detectors.settings import ConfigError, require

MAX_SILENCE_S = 90 * 86400.0


@dataclass(frozen=True, slots=True)
class Silence:
    id: str
    matchers: tuple[Matcher, ...]
    starts_at_s: float
    ends_at_s: float
    created_by: str
    comment: str = ""

    def active(self, now_s: float) -> bool:
        return self.starts_at_s <= now_s < self.ends_at_s

    def silences(self, labels: Mapping[str, str], now_s: float) -> bool:
        return self.active(now_s) and matches_all(self.matchers, labels)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "matchers": [str(m) for m in self.matchers],
            "starts_at_s": self.starts_at_s,
            "ends_at_s": self.ends_at_s,
            "starts_at": iso_z(self.starts_at_s),
            "ends_at": iso_z(self.ends_at_s),
            "created_by": self.created_by,
            "comment": self.comment,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Silence:
        return cls(
            id=str(data["id"]),
            matchers=parse_matcher_list(list(data["matchers"]), "matchers"),
            starts_at_s=float(data["starts_at_s"]),
            ends_at_s=float(data["ends_at_s"]),
            created_by=str(data.get("created_by", "")),
            comment=str(data.get("comment", "")),
        )


def new_silence(
    matchers: Sequence[str],
    starts_at_s: float,
    ends_at_s: float,
    created_by: str,
    comment: str = "",
) -> Silence:
    """Validate and build a silence; the id is derived from its content (adding twice is one silence)."""
    parsed = parse_matcher_list(list(matchers), "matchers")
    require(bool(parsed), "matchers", list(matchers), "at least one matcher")
    require(
        any(not m.matches_empty() for m in parsed),
        "matchers",
        [str(m) for m in parsed],
        'at least one matcher that does not match the empty string (e.g. brand="acme")',
    )
    require(ends_at_s > starts_at_s, "ends_at", iso_z(ends_at_s), f"a time after {iso_z(starts_at_s)}")
    require(ends_at_s - starts_at_s <= MAX_SILENCE_S, "duration", ends_at_s - starts_at_s, "at most 90 days")
    require(bool(created_by.strip()), "created_by", created_by, "who is silencing")
    digest = hashlib.sha256(
        json.dumps([sorted(str(m) for m in parsed), starts_at_s, ends_at_s, created_by, comment]).encode()
    ).hexdigest()[:16]
    return Silence(digest, parsed, float(starts_at_s), float(ends_at_s), created_by.strip(), comment)


class SilenceStore(Protocol):
    def all(self) -> list[Silence]: ...
    def add(self, silence: Silence) -> Silence: ...
    def expire(self, silence_id: str, now_s: float) -> Silence: ...


def active_silences(store: SilenceStore, now_s: float) -> list[Silence]:
    return [s for s in store.all() if s.active(now_s)]


def silenced_by(store: SilenceStore, labels: Mapping[str, str], now_s: float) -> Silence | None:
    for silence in store.all():
        if silence.silences(labels, now_s):
            return silence
    return None


class MemorySilenceStore:
    """For tests and the routing simulator."""

    def __init__(self, silences: Sequence[Silence] = ()) -> None:
        self._silences = {s.id: s for s in silences}

    def all(self) -> list[Silence]:
        return sorted(self._silences.values(), key=lambda s: (s.starts_at_s, s.id))

    def add(self, silence: Silence) -> Silence:
        self._silences[silence.id] = silence
        return silence

    def expire(self, silence_id: str, now_s: float) -> Silence:
        silence = find_silence(self._silences, silence_id)
        expired = expired_silence(silence, now_s)
        self._silences[silence.id] = expired
        return expired


def find_silence(silences: Mapping[str, Silence], silence_id: str) -> Silence:
    """The silence with this id or unique id prefix; ConfigError otherwise."""
    hits = [s for key, s in silences.items() if key.startswith(silence_id)] if silence_id else []
    if len(hits) != 1:
        raise ConfigError("silence_id", silence_id, "the id (or a unique prefix) of an existing silence")
    return hits[0]


def expired_silence(silence: Silence, now_s: float) -> Silence:
    """The silence ending at `now_s` (or at its start if it has not begun; never later than it would)."""
    end = min(silence.ends_at_s, max(now_s, silence.starts_at_s))
    return Silence(
        silence.id, silence.matchers, silence.starts_at_s, end, silence.created_by, silence.comment
    )


class FileSilenceStore:
    """Silences in one JSON file; expired silences are kept `retention_s` for `silence list --all`."""

    def __init__(self, path: str, retention_s: float = 7 * 86400.0) -> None:
        self.path = path
        self.retention_s = retention_s
        self._cache: dict[str, Silence] = {}
        self._stamp: tuple[float, int] | None = None

    def all(self) -> list[Silence]:
        self._refresh()
        return sorted(self._cache.values(), key=lambda s: (s.starts_at_s, s.id))

    def add(self, silence: Silence) -> Silence:
        with self._locked() as silences:
            silences[silence.id] = silence
        return silence

    def expire(self, silence_id: str, now_s: float) -> Silence:
        with self._locked() as silences:
            silence = find_silence(silences, silence_id)
            expired = expired_silence(silence, now_s)
            silences[silence.id] = expired
        return expired

    def prune(self, now_s: float) -> int:
        with self._locked() as silences:
            old = [k for k, s in silences.items() if s.ends_at_s + self.retention_s < now_s]
            for key in old:
                del silences[key]
        return len(old)

    def _refresh(self) -> None:
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            self._cache, self._stamp = {}, None
            return
        stamp = (stat.st_mtime, stat.st_size)
        if stamp != self._stamp:
            self._cache = self._read()
            self._stamp = stamp

    def _read(self) -> dict[str, Silence]:
        try:
            with open(self.path, encoding="utf-8") as handle:
                data = json.load(handle)
        except FileNotFoundError:
            return {}
        except (OSError, json.JSONDecodeError) as error:
            raise ConfigError(
                "silences_path", self.path, f"a readable JSON silences file ({error})"
            ) from None
        return {s["id"]: Silence.from_dict(s) for s in data.get("silences", [])}

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, Silence]]:
        directory = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(directory, exist_ok=True)
        with open(self.path + ".lock", "a+") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                silences = self._read()
                yield silences
                payload = {
                    "v": 1,
                    "silences": [s.to_dict() for s in sorted(silences.values(), key=lambda s: s.id)],
                }
                fd, tmp = tempfile.mkstemp(dir=directory, prefix=".silences.")
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    json.dump(payload, handle, ensure_ascii=False, indent=1)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, self.path)
                self._stamp = None
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

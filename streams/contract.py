"""The input contract: one JSON object per Kafka message or JSONL line, decoded into a `Post` or rejected.

Bad input is data: `decode_post` never raises for any bytes; it returns either a `Post` or a `Rejection`
with a stable reason code (the README's contract table lists them, `post.schema.json` is the same contract
as a JSON Schema, and a test keeps the two in agreement).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from crisiswatch.detectors.events import POST_KINDS, Author, Post

CONTRACT_VERSION = 1

MAX_ID_CHARS = 256
MAX_TEXT_BYTES = 64 * 1024
MAX_FOLLOWERS = 10_000_000_000
MAX_BRANDS = 32
# 2006-01-01T00:00:00Z: nothing older is a social post we can act on.
EARLIEST_CREATED_AT_S = 1_136_073_600.0
MAX_FUTURE_S = 24 * 3600.0
EPOCH_MILLISECONDS_ABOVE = 1e11

# Reason codes, stable: they are label values of the dead-letter metric and keys in replay reports.
REASONS: dict[str, str] = {
    "invalid_utf8": "the bytes are not valid UTF-8",
    "invalid_json": "not parseable as JSON (syntax, nesting too deep, number too large)",
    "duplicate_key": "an object has the same key twice",
    "non_finite_number": "NaN or Infinity",
    "not_an_object": "the top-level JSON value is not an object",
    "missing_field": "a required field is absent or null",
    "wrong_type": "a field has the wrong JSON type",
    "id_too_long": "an id is longer than 256 characters or empty",
    "invalid_timestamp": "created_at is not ISO-8601 with an offset, nor epoch seconds/milliseconds",
    "naive_timestamp": "created_at has no UTC offset",
    "timestamp_too_old": "created_at is before 2006",
    "timestamp_in_future": "created_at is more than a day ahead of the stream",
    "invalid_kind": "kind is not post, forward or comment",
    "missing_parent": "a forward or comment has no parent_id",
    "invalid_followers": "author.followers is negative or above 1e10",
    "text_too_long": "text is over 64 KiB of UTF-8",
    "invalid_sentiment": "sentiment is not a probability in [0, 1]",
    "invalid_lang": "lang is not a two-letter ISO 639-1 code",
    "invalid_brands": "brands is not a list of non-empty strings (at most 32)",
    "parent_cycle": "the post is its own parent or root, or its parent chain loops",
}


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: str
    detail: str


class _Reject(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        assert reason in REASONS, reason
        self.rejection = Rejection(reason, detail)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _Reject("duplicate_key", f"key {key[:64]!r} appears twice")
        result[key] = value
    return result


def _non_finite(token: str) -> float:
    raise _Reject("non_finite_number", f"{token} is not allowed")


_DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicate_keys, parse_constant=_non_finite)


def loads_strict(raw: bytes | str) -> Any:
    """The one JSON decoder for untrusted input: strict UTF-8, no duplicate keys, no NaN/Infinity."""
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise _Reject("invalid_utf8", f"byte {error.start}: {error.reason}") from None
    else:
        text = raw
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        return _DECODER.decode(text)
    except _Reject:
        raise
    except RecursionError:
        raise _Reject("invalid_json", "nesting too deep") from None
    except (ValueError, OverflowError) as error:
        raise _Reject("invalid_json", str(error)[:200]) from None


def parse_created_at(value: Any) -> float:
    """Event time in epoch seconds from ISO-8601 with an offset, or epoch seconds (ms above 1e11)."""
    if isinstance(value, bool):
        raise _Reject("wrong_type", "created_at is a boolean")
    if isinstance(value, int | float):
        seconds = float(value)
        if not math.isfinite(seconds):
            raise _Reject("non_finite_number", "created_at is not finite")
        if seconds > EPOCH_MILLISECONDS_ABOVE:
            seconds /= 1000.0
        return seconds
    if not isinstance(value, str):
        raise _Reject("wrong_type", f"created_at is {type(value).__name__}")
    if len(value) > 64:
        raise _Reject("invalid_timestamp", "created_at is longer than 64 characters")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _Reject("invalid_timestamp", f"created_at {value!r} is not ISO-8601") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise _Reject("naive_timestamp", f"created_at {value!r} has no offset")
    return parsed.timestamp()


def _string(obj: Mapping[str, Any], key: str, *, required: bool, max_chars: int | None = None) -> str | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise _Reject("missing_field", f"{key} is required")
        return None
    if not isinstance(value, str):
        raise _Reject("wrong_type", f"{key} is {type(value).__name__}, expected string")
    if max_chars is not None and not 0 < len(value) <= max_chars:
        raise _Reject("id_too_long", f"{key} has {len(value)} characters (1..{max_chars} allowed)")
    return value


def _author(value: Any) -> Author:
    if value is None:
        raise _Reject("missing_field", "author is required")
    if not isinstance(value, dict):
        raise _Reject("wrong_type", f"author is {type(value).__name__}, expected object")
    author_id = _string(value, "id", required=True, max_chars=MAX_ID_CHARS)
    followers = value.get("followers", 0)
    if followers is None:
        followers = 0
    if isinstance(followers, bool) or not isinstance(followers, int | float):
        raise _Reject("wrong_type", "author.followers is not a number")
    if isinstance(followers, float) and (not math.isfinite(followers) or followers != int(followers)):
        raise _Reject("invalid_followers", "author.followers is not a whole number")
    if not 0 <= followers <= MAX_FOLLOWERS:
        raise _Reject("invalid_followers", f"author.followers={followers}")
    verified = value.get("verified", False)
    if verified is None:
        verified = False
    if not isinstance(verified, bool):
        raise _Reject("wrong_type", "author.verified is not a boolean")
    assert author_id is not None
    return Author(id=author_id, followers=int(followers), verified=verified)


def _brands(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > MAX_BRANDS:
        raise _Reject("invalid_brands", "brands must be a list of at most 32 strings")
    if not all(isinstance(b, str) and 0 < len(b.strip()) <= MAX_ID_CHARS for b in value):
        raise _Reject("invalid_brands", "every brand must be a non-empty string")
    return tuple(dict.fromkeys(b.strip() for b in value))


def _post_from_object(obj: Any, reference_time_s: float | None) -> Post:
    if not isinstance(obj, dict):
        raise _Reject("not_an_object", f"top-level value is {type(obj).__name__}")
    post_id = _string(obj, "id", required=True, max_chars=MAX_ID_CHARS)
    assert post_id is not None
    if obj.get("created_at") is None:
        raise _Reject("missing_field", "created_at is required")
    created_at_s = parse_created_at(obj["created_at"])
    if created_at_s < EARLIEST_CREATED_AT_S:
        raise _Reject("timestamp_too_old", f"created_at={created_at_s:.0f} is before 2006")
    if reference_time_s is not None and created_at_s > reference_time_s + MAX_FUTURE_S:
        raise _Reject("timestamp_in_future", f"created_at is {created_at_s - reference_time_s:.0f} s ahead")
    text = obj.get("text", "")
    if text is None:
        text = ""
    if not isinstance(text, str):
        raise _Reject("wrong_type", f"text is {type(text).__name__}, expected string")
    if len(text) * 4 > MAX_TEXT_BYTES and len(text.encode("utf-8", "surrogatepass")) > MAX_TEXT_BYTES:
        raise _Reject("text_too_long", f"text has {len(text.encode('utf-8', 'surrogatepass'))} bytes")
    kind = obj.get("kind", "post")
    if kind is None:
        kind = "post"
    if kind not in POST_KINDS:
        raise _Reject("invalid_kind", f"kind={str(kind)[:32]!r}")
    parent_id = _string(obj, "parent_id", required=False, max_chars=MAX_ID_CHARS)
    root_id = _string(obj, "root_id", required=False, max_chars=MAX_ID_CHARS)
    if kind == "post":
        parent_id = None
        if root_id not in (None, post_id):
            raise _Reject("parent_cycle", "a post's root_id must be its own id")
        root_id = post_id
    else:
        if parent_id is None:
            raise _Reject("missing_parent", f"a {kind} needs parent_id")
        if parent_id == post_id or root_id == post_id:
            raise _Reject("parent_cycle", "a reaction cannot be its own parent or root")
    sentiment = obj.get("sentiment")
    if sentiment is not None:
        if isinstance(sentiment, bool) or not isinstance(sentiment, int | float) or not 0 <= sentiment <= 1:
            raise _Reject("invalid_sentiment", f"sentiment={str(sentiment)[:32]}")
        sentiment = float(sentiment)
    lang = _string(obj, "lang", required=False)
    if lang is not None:
        lang = lang.lower()
        if len(lang) != 2 or not lang.isascii() or not lang.isalpha():
            raise _Reject("invalid_lang", f"lang={lang[:16]!r}")
    platform = _string(obj, "platform", required=False)
    url = _string(obj, "url", required=False)
    return Post(
        id=post_id,
        created_at_s=created_at_s,
        text=text,
        kind=kind,
        parent_id=parent_id,
        # Resolved later by the pipeline when absent (root of a known parent, else the parent itself).
        root_id=root_id if root_id is not None else "",
        author=_author(obj.get("author")),
        platform=platform[:64] if platform else None,
        lang=lang,
        url=url[:2048] if url else None,
        sentiment=sentiment,
        brands=_brands(obj.get("brands")),
    )


def decode_post(raw: bytes | str, reference_time_s: float | None = None) -> Post | Rejection:
    """Bytes in, a Post or a Rejection out; never raises.

    `reference_time_s` is "now" for the future check: the wall clock when live, the watermark in replay.
    A reaction without `root_id` comes back with `root_id == ""` for the pipeline to resolve.
    """
    try:
        return _post_from_object(loads_strict(raw), reference_time_s)
    except _Reject as rejected:
        return rejected.rejection
    except RecursionError:
        return Rejection("invalid_json", "nesting too deep")


def post_to_dict(post: Post) -> dict[str, Any]:
    """The canonical JSON form of a post (used by generators, `produce` and tests)."""
    from datetime import UTC

    data: dict[str, Any] = {
        "id": post.id,
        "created_at": datetime.fromtimestamp(post.created_at_s, UTC).isoformat().replace("+00:00", "Z"),
        "text": post.text,
        "kind": post.kind,
        "root_id": post.root_id,
        "author": {
            "id": post.author.id,
            "followers": post.author.followers,
            "verified": post.author.verified,
        },
    }
    optional = {
        "parent_id": post.parent_id,
        "platform": post.platform,
        "lang": post.lang,
        "url": post.url,
        "sentiment": post.sentiment,
        "brands": list(post.brands) if post.brands is not None else None,
    }
    data.update({key: value for key, value in optional.items() if value is not None})
    return data

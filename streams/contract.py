"""The input contract: one JSON object per Kafka message or JSONL line, decoded into a `Post` or rejected.

Bad input is data: `decode_post` never raises for any bytes; it returns either a `Post` or a `Rejection`
with a stable reason code (the README's contract table lists them, `post.schema.json` is the same contract
as a JSON Schema, and a test keeps the two in agreement).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from types import MemberDescriptorType
from typing import Any, TypeVar

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
    "non_finite_number": "NaN or Infinity (an integer beyond the float range counts as infinite)",
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
        try:
            seconds = float(value)
        except OverflowError:  # an integer beyond the float range: the same number as 1e400 (infinite)
            raise _Reject("non_finite_number", "created_at is beyond the float range") from None
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

    Two paths, one contract: `_decode_well_formed` accepts the common, plainly valid record cheaply and
    returns None for anything else (or raises on input it cannot handle), and `_decode_checked` then
    decides with the full checks and reason codes. The fast path only ever accepts what the checked path
    accepts, giving an equal `Post` (tests compare the two on valid, mutated and hostile input).
    """
    try:
        post = _decode_well_formed(raw, reference_time_s)
    except Exception:  # noqa: BLE001 - any doubt goes to the checked path, which never raises
        post = None
    if post is not None:
        return post
    return _decode_checked(raw, reference_time_s)


def _decode_checked(raw: bytes | str, reference_time_s: float | None) -> Post | Rejection:
    """The reference decoder: every check in contract order, a reason code for the first that fails."""
    try:
        return _post_from_object(loads_strict(raw), reference_time_s)
    except _Reject as rejected:
        return rejected.rejection
    except RecursionError:
        return Rejection("invalid_json", "nesting too deep")


# -- fast path for well-formed records -------------------------------------------------------------------
# JSON objects come out of this scanner as tuples of (key, value) pairs (arrays stay lists), so duplicate
# keys are found by comparing `len(dict(pairs))` with `len(pairs)`, in C, instead of a Python hook per
# object. NaN/Infinity raise (`_non_finite`), which sends the record to the checked path.
_SCAN_PAIRS: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder(  # type: ignore[attr-defined]
    object_pairs_hook=tuple, parse_constant=_non_finite
).scan_once
_POST_FIELDS = frozenset(
    ("id", "created_at", "text", "kind", "parent_id", "root_id", "author", "platform", "lang", "url")
    + ("sentiment", "brands")
)
_AUTHOR_FIELDS = frozenset(("id", "followers", "verified"))
_CACHE_LIMIT = 4096  # distinct values remembered per cache below; hostile input cannot grow them further
_LANG_CACHE: dict[str, str] = {}  # raw `lang` -> validated lower-case code
_SINGLE_BRAND_CACHE: dict[str, tuple[str]] = {}  # raw single brand -> validated (stripped,) tuple
_fromisoformat = datetime.fromisoformat
_isfinite = math.isfinite
_Frozen = TypeVar("_Frozen")


def slot_builder(cls: type[_Frozen]) -> Callable[..., _Frozen]:
    """`cls(*field_values)` without the generated `__init__` of a frozen slots dataclass, which sets every
    field through `object.__setattr__`: the slot descriptors set directly cost half (~1 µs per post for a
    Post and its Author, a quarter of the fast path). The result is the same object. Classes this cannot
    build exactly (no slots, a `__post_init__`, fields outside `__init__` or keyword-only) get their own
    constructor.
    """
    cls_fields = fields(cls)  # type: ignore[arg-type]
    names = [f.name for f in cls_fields]
    if (
        hasattr(cls, "__post_init__")
        or any(not f.init or f.kw_only for f in cls_fields)
        or not all(isinstance(vars(cls).get(name), MemberDescriptorType) for name in names)
    ):
        return cls
    namespace: dict[str, Any] = {"new": object.__new__, "cls": cls}
    namespace.update({f"set_{name}": vars(cls)[name].__set__ for name in names})
    source = "\n".join(
        [f"def build({', '.join(names)}):", "    instance = new(cls)"]
        + [f"    set_{name}(instance, {name})" for name in names]
        + ["    return instance"]
    )
    exec(source, namespace)  # noqa: S102 - code made from the dataclass's own field names, as dataclasses does
    return namespace["build"]  # type: ignore[no-any-return]


_build_post = slot_builder(Post)
_build_author = slot_builder(Author)


def _free_of_duplicate_keys(value: Any) -> bool:
    """No object anywhere inside `value` (as the pairs scanner returns it) repeats a key."""
    if type(value) is tuple:
        return len(dict(value)) == len(value) and all(_free_of_duplicate_keys(item) for _, item in value)
    if type(value) is list:
        return all(_free_of_duplicate_keys(item) for item in value)
    return True


def _unique_keys_object(pairs: tuple[tuple[str, Any], ...], known: frozenset[str]) -> dict[str, Any] | None:
    """The object as a dict, or None when a key repeats in it or in any object inside its unknown fields
    (the known ones are type-checked by the caller: a nested object there is rejected anyway)."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        return None
    if not obj.keys() <= known and not all(
        _free_of_duplicate_keys(value) for key, value in pairs if key not in known
    ):
        return None
    return obj


def _decode_well_formed(raw: bytes | str, reference_time_s: float | None) -> Post | None:
    """A `Post` when `raw` is a plainly valid record, else None. Mirrors `_post_from_object` check for
    check; every branch that would reject, default-with-doubt or normalise unusually returns None."""
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    pairs, end = _SCAN_PAIRS(text, 0)  # a leading BOM or whitespace raises StopIteration: checked path
    if end != len(text) or type(pairs) is not tuple:
        return None
    obj = _unique_keys_object(pairs, _POST_FIELDS)
    if obj is None:
        return None

    post_id = obj.get("id")
    if type(post_id) is not str or not 0 < len(post_id) <= MAX_ID_CHARS:
        return None
    created_at: Any = obj.get("created_at")
    created_type = type(created_at)
    if created_type is str:
        if len(created_at) > 64:
            return None
        parsed = _fromisoformat(created_at)  # ValueError: checked path
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            return None
        created_at_s = parsed.timestamp()
    elif created_type is int or created_type is float:
        created_at_s = float(created_at)  # OverflowError: checked path
        if not _isfinite(created_at_s):
            return None
        if created_at_s > EPOCH_MILLISECONDS_ABOVE:
            created_at_s /= 1000.0
    else:
        return None
    if created_at_s < EARLIEST_CREATED_AT_S or (
        reference_time_s is not None and created_at_s > reference_time_s + MAX_FUTURE_S
    ):
        return None

    post_text = obj.get("text", "")
    if post_text is None:
        post_text = ""
    elif type(post_text) is not str or (
        len(post_text) * 4 > MAX_TEXT_BYTES
        and len(post_text.encode("utf-8", "surrogatepass")) > MAX_TEXT_BYTES
    ):
        return None

    kind = obj.get("kind", "post")
    parent_id = obj.get("parent_id")
    if parent_id is not None and (type(parent_id) is not str or not 0 < len(parent_id) <= MAX_ID_CHARS):
        return None
    root_id = obj.get("root_id")
    if root_id is not None and (type(root_id) is not str or not 0 < len(root_id) <= MAX_ID_CHARS):
        return None
    if kind is None or kind == "post":
        if root_id is not None and root_id != post_id:
            return None
        kind, parent_id, root_id = "post", None, post_id
    elif kind == "forward" or kind == "comment":
        if parent_id is None or parent_id == post_id or root_id == post_id:
            return None
        kind = "forward" if kind == "forward" else "comment"
        if root_id is None:
            root_id = ""
    else:
        return None

    sentiment = obj.get("sentiment")
    if sentiment is not None:
        sentiment_type = type(sentiment)
        if (sentiment_type is not float and sentiment_type is not int) or not 0 <= sentiment <= 1:
            return None
        sentiment = float(sentiment)

    lang = obj.get("lang")
    if lang is not None:
        known_lang = _LANG_CACHE.get(lang)  # an unhashable value raises: checked path
        if known_lang is None:
            if type(lang) is not str:
                return None
            lowered = lang.lower()
            if len(lowered) != 2 or not lowered.isascii() or not lowered.isalpha():
                return None
            if len(_LANG_CACHE) < _CACHE_LIMIT:
                _LANG_CACHE[lang] = lowered
            known_lang = lowered
        lang = known_lang

    platform = obj.get("platform")
    if platform is not None:
        if type(platform) is not str:
            return None
        platform = platform[:64] if platform else None
    url = obj.get("url")
    if url is not None:
        if type(url) is not str:
            return None
        url = url[:2048] if url else None

    brands = obj.get("brands")
    if brands is not None:
        if type(brands) is not list or len(brands) > MAX_BRANDS:
            return None
        if len(brands) == 1:
            single = _SINGLE_BRAND_CACHE.get(brands[0])  # an unhashable value raises: checked path
            if single is None:
                brand = brands[0]
                if type(brand) is not str:
                    return None
                stripped = brand.strip()
                if not 0 < len(stripped) <= MAX_ID_CHARS:
                    return None
                single = (stripped,)
                if len(_SINGLE_BRAND_CACHE) < _CACHE_LIMIT:
                    _SINGLE_BRAND_CACHE[brand] = single
            brands = single
        else:
            stripped_brands = []
            for brand in brands:
                if type(brand) is not str:
                    return None
                stripped = brand.strip()
                if not 0 < len(stripped) <= MAX_ID_CHARS:
                    return None
                stripped_brands.append(stripped)
            brands = tuple(dict.fromkeys(stripped_brands))

    author_pairs = obj.get("author")
    if type(author_pairs) is not tuple:
        return None
    author = _unique_keys_object(author_pairs, _AUTHOR_FIELDS)
    if author is None:
        return None
    author_id = author.get("id")
    if type(author_id) is not str or not 0 < len(author_id) <= MAX_ID_CHARS:
        return None
    followers = author.get("followers", 0)
    if followers is None:
        followers = 0
    elif type(followers) is int:
        if not 0 <= followers <= MAX_FOLLOWERS:
            return None
    elif type(followers) is float:
        if not _isfinite(followers) or followers != int(followers) or not 0 <= followers <= MAX_FOLLOWERS:
            return None
        followers = int(followers)
    else:
        return None
    verified = author.get("verified", False)
    if verified is None:
        verified = False
    elif type(verified) is not bool:
        return None

    # Positional, in `Post`'s field order (a test pins it).
    return _build_post(
        post_id,
        created_at_s,
        post_text,
        kind,
        parent_id,
        root_id,
        _build_author(author_id, followers, verified),
        platform,
        lang,
        url,
        sentiment,
        brands,
    )


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

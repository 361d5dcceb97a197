"""decode → validate → dedup → event time → enrich → detect → incidents, as plain Python.

The Faust agents (`streams/app.py`), `crisiswatch replay` and `crisiswatch demo` all run this code; it never
imports Faust and never reads the wall clock (live "now" is passed in by the caller).

Accounting holds for every batch and in total: consumed = processed + dead_lettered + duplicate + late.
"""

from __future__ import annotations

from bisect import insort
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from crisiswatch.alerts.incidents import IncidentEvent, IncidentTracker
from crisiswatch.detectors.engine import DetectionEngine
from crisiswatch.detectors.events import Assessment, Author, BrandProfile, EnrichedPost, Post
from crisiswatch.detectors.text import TextAnalyzer
from crisiswatch.detectors.text.brands import BrandMatcher
from crisiswatch.streams.config import PipelineConfig, Settings
from crisiswatch.streams.contract import Rejection, decode_post, slot_builder

OTHER_BRAND = "other"
# Observability: functions called with every new Pipeline (`crisiswatch replay --metrics-port` attaches
# its metrics hooks this way, see streams/observability.py).
PIPELINE_CREATED_HOOKS: list[Callable[[Pipeline], None]] = []
# EnrichedPost(post, lang, brands, own_text, negative_probability, complaint_probability, category),
# positional, without the frozen dataclass's per-field `object.__setattr__` (once per post)
_build_enriched = slot_builder(EnrichedPost)


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One input message: its bytes and where it came from (Kafka partition/offset, or file line)."""

    value: bytes
    partition: int = 0
    offset: int = -1
    source: str = ""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    reason: str
    detail: str
    record: RawRecord

    def to_report(self) -> dict[str, Any]:
        return {"source": self.record.source, "reason": self.reason, "detail": self.detail}


@dataclass(slots=True)
class Accounting:
    consumed: int = 0
    processed: int = 0
    duplicate: int = 0
    late: int = 0
    dead_lettered: Counter[str] = field(default_factory=Counter)

    @property
    def dead_lettered_total(self) -> int:
        return sum(self.dead_lettered.values())

    def balanced(self) -> bool:
        return self.consumed == self.processed + self.dead_lettered_total + self.duplicate + self.late

    def add(self, other: Accounting) -> None:
        self.consumed += other.consumed
        self.processed += other.processed
        self.duplicate += other.duplicate
        self.late += other.late
        self.dead_lettered.update(other.dead_lettered)

    def to_dict(self) -> dict[str, Any]:
        return {
            "consumed": self.consumed,
            "processed": self.processed,
            "dead_lettered": self.dead_lettered_total,
            "duplicate": self.duplicate,
            "late": self.late,
            "dead_lettered_by_reason": dict(sorted(self.dead_lettered.items())),
        }


class Watermark:
    """Event-time progress of one partition: the k-th largest of recent event times, never decreasing.

    One post stamped far in the future moves the maximum but not the k-th largest, so it cannot make
    every later post look late.
    """

    __slots__ = ("quorum", "_recent", "_recent_limit", "_top", "value_s")

    def __init__(self, quorum: int = 3, recent_limit: int = 64) -> None:
        self.quorum = quorum
        self._recent: deque[float] = deque(maxlen=recent_limit)
        self._recent_limit = recent_limit
        self._top: list[float] = []  # the `quorum` largest of `_recent`, ascending
        self.value_s: float | None = None

    def observe(self, event_time_s: float) -> None:
        recent, top, quorum = self._recent, self._top, self.quorum
        if len(recent) == self._recent_limit and top and recent[0] >= top[0]:
            # the time about to fall out may be one of the largest: take them afresh (rare when posts come
            # roughly in order, as the oldest of the recent times is then below the k largest)
            recent.append(event_time_s)
            top[:] = sorted(recent)[-quorum:]
        else:
            recent.append(event_time_s)  # the oldest falls out past recent_limit
            if len(top) < quorum:
                insort(top, event_time_s)
            elif event_time_s > top[0]:
                insort(top, event_time_s)
                del top[0]
        if len(top) == quorum and (self.value_s is None or top[0] > self.value_s):
            self.value_s = top[0]  # the k-th largest of the recent times; it never goes down


class DedupStage:
    """Drops redelivered post ids seen within `horizon_s` of event time; at most `max_ids` remembered."""

    __slots__ = ("horizon_s", "max_ids", "_seen", "_expired_below_s")

    def __init__(self, horizon_s: float, max_ids: int) -> None:
        self.horizon_s = horizon_s
        self.max_ids = max_ids
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._expired_below_s = float("-inf")  # the horizon of the last expiry pass

    def is_duplicate(self, post_id: str, event_time_s: float, watermark_s: float | None) -> bool:
        if post_id in self._seen:
            return True
        if self.max_ids == 0:
            return False
        self._seen[post_id] = event_time_s
        if len(self._seen) > self.max_ids:
            self._seen.popitem(last=False)
            self._expired_below_s = float("-inf")  # a new oldest entry: the next pass looks at it
        if watermark_s is not None:
            horizon = watermark_s - self.horizon_s
            if horizon > self._expired_below_s:  # the watermark moved: look at the oldest entries again
                self._expired_below_s = horizon
                seen = self._seen
                while seen:
                    oldest_id, oldest_s = next(iter(seen.items()))
                    if oldest_s >= horizon:
                        break
                    del seen[oldest_id]
        return False

    def __len__(self) -> int:
        return len(self._seen)


class _BoundedMap:
    """Insertion-ordered map (parent → root, root → brands) that forgets its oldest entries past `limit`
    and, like the dedup stage, entries older than the horizon in event time (`expire`): without the
    latter it only stopped growing at `limit` entries per partition (bench/results/perf.md, soak)."""

    __slots__ = ("limit", "_data")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._data: OrderedDict[str, tuple[Any, float | None]] = OrderedDict()

    def get(self, key: str) -> Any:
        entry = self._data.get(key)
        return None if entry is None else entry[0]

    def put(self, key: str, value: Any, event_time_s: float | None = None) -> None:
        data = self._data
        existed = key in data
        data[key] = (value, event_time_s)
        if existed:
            data.move_to_end(key)
        elif len(data) > self.limit:
            data.popitem(last=False)

    def expire(self, oldest_s: float, watermark_s: float) -> None:
        data = self._data
        while data:
            key, (value, event_time_s) = next(iter(data.items()))
            if event_time_s is None:  # restored from state without a time: its horizon starts now
                data[key] = (value, watermark_s)
                data.move_to_end(key)
            elif event_time_s >= oldest_s:
                break
            else:
                del data[key]


@dataclass(slots=True)
class IngestResult:
    posts: list[EnrichedPost] = field(default_factory=list)
    records: list[RawRecord] = field(default_factory=list)  # parallel to posts
    # The partition's watermark right after each post was observed (parallel to posts).
    watermarks: list[float | None] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    accounting: Accounting = field(default_factory=Accounting)


class BrandResolver:
    """Which monitored brands a post is about: its own `brands`, its root's, or configured aliases."""

    def __init__(self, brands: Sequence[BrandProfile], max_auto_brands: int) -> None:
        self.configured = {brand.name: brand for brand in brands}
        self.matcher = BrandMatcher(list(brands)) if brands else None
        self.max_auto_brands = max_auto_brands
        self.auto: dict[str, BrandProfile] = {}
        self.overflow_mentions = 0

    def profile(self, name: str) -> BrandProfile | None:
        return self.configured.get(name) or self.auto.get(name)

    def monitored(self, names: Iterable[str]) -> tuple[str, ...]:
        result = []
        for name in names:
            if name in self.configured or name in self.auto:
                result.append(name)
            elif len(self.auto) < self.max_auto_brands:
                self.auto[name] = BrandProfile(name=name)
                result.append(name)
            else:
                self.overflow_mentions += 1
                result.append(OTHER_BRAND)
        return tuple(dict.fromkeys(result))

    def match_text(self, text: str) -> tuple[str, ...]:
        return self.matcher.match(text) if self.matcher is not None else ()


class Pipeline:
    """The whole per-partition processing, without Kafka. One instance per partition in the worker."""

    def __init__(
        self,
        settings: Settings,
        analyzer: TextAnalyzer | None = None,
        *,
        resolver: BrandResolver | None = None,
    ) -> None:
        self.settings = settings
        config: PipelineConfig = settings.pipeline
        self.analyzer = analyzer if analyzer is not None else TextAnalyzer.load_default(settings.text)
        self.resolver = resolver or BrandResolver(settings.brands, config.max_auto_brands)
        self.engine = DetectionEngine(settings.detectors, settings.brands_by_name)
        self.tracker = IncidentTracker(settings.alerting.incidents, settings.brands_by_name)
        self.watermark = Watermark(config.watermark_quorum)
        self.advance_every_s = config.advance_every_s
        self._advanced_tick_s: float | None = None
        self.dedup = DedupStage(config.dedup_horizon_s, config.dedup_max_ids)
        self.allowed_lateness_s = config.allowed_lateness_s
        self._root_of = _BoundedMap(max(config.dedup_max_ids, 1000))
        self._cascade_context = _BoundedMap(max(config.dedup_max_ids // 4, 1000))
        self.totals = Accounting()
        # Observability hooks (streams/observability.py): every ingest result and detector assessment.
        self.on_ingest: Callable[[IngestResult], None] | None = None
        self.on_assessment: Callable[[Assessment], None] | None = None
        self.on_events: Callable[[list[IncidentEvent]], None] | None = None  # from `detect` (replay)
        for hook in PIPELINE_CREATED_HOOKS:
            hook(self)

    # -- stage 1: bytes → enriched posts ---------------------------------------------------------------
    def ingest(
        self,
        records: Sequence[RawRecord],
        *,
        now_s: float | None = None,
        already_applied: Callable[[Post, RawRecord], bool] | None = None,
    ) -> IngestResult:
        """Decode, validate, resolve roots, drop duplicates and late posts, enrich what is left.

        `now_s` is the wall clock when live (for the future-timestamp check); replay passes None and the
        watermark is used. `already_applied` lets the worker skip a redelivered record whose effect its
        recovered state already holds; such records count as duplicates.
        """
        result = IngestResult()
        accepted: list[tuple[Post, RawRecord]] = []
        watermarks: list[float | None] = []
        for record in records:
            result.accounting.consumed += 1
            reference_s = now_s if now_s is not None else self.watermark.value_s
            decoded = decode_post(record.value, reference_s)
            if isinstance(decoded, Post):
                decoded = self._resolve_root(decoded)
            if isinstance(decoded, Rejection):
                result.dead_letters.append(DeadLetter(decoded.reason, decoded.detail, record))
                result.accounting.dead_lettered[decoded.reason] += 1
                continue
            watermark_s = self.watermark.value_s
            # A redelivery is a duplicate however late it comes; lateness applies to new posts only.
            if (already_applied is not None and already_applied(decoded, record)) or self.dedup.is_duplicate(
                decoded.id, decoded.created_at_s, watermark_s
            ):
                result.accounting.duplicate += 1
                continue
            if watermark_s is not None and decoded.created_at_s < watermark_s - self.allowed_lateness_s:
                result.accounting.late += 1
                continue
            self.watermark.observe(decoded.created_at_s)
            accepted.append((decoded, record))
            watermarks.append(self.watermark.value_s)
        result.posts = self._enrich([post for post, _ in accepted])
        result.records = [record for _, record in accepted]
        result.watermarks = watermarks
        result.accounting.processed += len(result.posts)
        self.totals.add(result.accounting)
        if self.watermark.value_s is not None:
            oldest_s = self.watermark.value_s - self.dedup.horizon_s
            self._root_of.expire(oldest_s, self.watermark.value_s)
            self._cascade_context.expire(oldest_s, self.watermark.value_s)
        if self.on_ingest is not None:
            self.on_ingest(result)
        return result

    def cascade_brands(self, root_id: str) -> tuple[str, ...] | None:
        """The brands a cascade's reactions inherit (its root's), when the root has been seen."""
        brands = self._cascade_context.get(root_id)
        return tuple(brands) if brands is not None else None

    def remember_cascade_brands(self, root_id: str, brands: Iterable[str]) -> None:
        """Restore a cascade's brands from durable state (after a restart or rebalance)."""
        self._cascade_context.put(root_id, tuple(brands))

    def _resolve_root(self, post: Post) -> Post | Rejection:
        if post.kind == "post":
            self._root_of.put(post.id, post.id, post.created_at_s)
            return post
        root_id = post.root_id
        if not root_id:
            assert post.parent_id is not None
            root_id = self._root_of.get(post.parent_id) or post.parent_id
            if root_id == post.id:
                return Rejection("parent_cycle", "the parent chain leads back to the post itself")
            post = _with_root(post, root_id)
        self._root_of.put(post.id, root_id, post.created_at_s)
        return post

    def _enrich(self, posts: Sequence[Post]) -> list[EnrichedPost]:
        if not posts:
            return []
        analyses = self.analyzer.analyze_many([post.text for post in posts], [post.lang for post in posts])
        enriched = []
        for post, analysis in zip(posts, analyses, strict=True):
            context = self._cascade_context.get(post.root_id) if post.kind != "post" else None
            if post.brands is not None:
                brands = self.resolver.monitored(post.brands)
            elif context is not None:
                brands = context
            else:
                brands = self.resolver.monitored(self.resolver.match_text(post.text))
            if post.kind == "post":
                self._cascade_context.put(post.id, brands, post.created_at_s)
            negative = analysis.negative_probability
            if post.sentiment is not None and negative is not None:
                negative = post.sentiment
            enriched.append(
                _build_enriched(
                    post,
                    analysis.lang,
                    brands,
                    analysis.own_text,
                    negative,
                    analysis.complaint_probability,
                    analysis.category,
                )
            )
        return enriched

    # -- stage 2: enriched posts → incident events ------------------------------------------------------
    def detect(
        self, ingested: IngestResult, *, cascades: bool = True, brands: bool = True
    ) -> list[IncidentEvent]:
        """Apply posts to the detectors in order, advancing event time between them.

        Event time advances in ticks of `advance_every_s` interleaved with the posts, never per batch, so
        the incidents depend on the posts and their order only, not on how they were batched.
        """
        events: list[IncidentEvent] = []
        for post, watermark_s in zip(ingested.posts, ingested.watermarks, strict=True):
            events += self.tick(watermark_s)
            if cascades and post.brands and post.brands != (OTHER_BRAND,):
                events += self._incidents(self.engine.update_cascade(post), post)
            if brands:
                for brand in post.brands:
                    events += self.detect_brands_for(brand, post)
        if self.on_events is not None:
            self.on_events(events)
        return events

    def detect_brands_for(self, brand: str, post: EnrichedPost) -> list[IncidentEvent]:
        if brand == OTHER_BRAND:
            return []
        return self._incidents(self.engine.update_brand(brand, post), post)

    def tick(self, watermark_s: float | None) -> list[IncidentEvent]:
        """Advance event time to the last whole tick at or before the watermark, once per tick."""
        if watermark_s is None:
            return []
        tick_s = (watermark_s // self.advance_every_s) * self.advance_every_s
        if self._advanced_tick_s is not None and tick_s <= self._advanced_tick_s:
            return []
        self._advanced_tick_s = tick_s
        return self.advance(tick_s)

    def advance(self, watermark_s: float) -> list[IncidentEvent]:
        """Event time moved: let quiet keys resolve and idle state expire (called by `tick`)."""
        events: list[IncidentEvent] = []
        for assessment in self.engine.advance(watermark_s):
            if self.on_assessment is not None:
                self.on_assessment(assessment)
            events += self.tracker.observe(self._labelled(assessment, None))
        events += self.tracker.advance(watermark_s)
        return events

    def process(
        self, records: Sequence[RawRecord], *, now_s: float | None = None
    ) -> tuple[IngestResult, list[IncidentEvent]]:
        """The whole pipeline for one batch (replay and demo; the worker splits it across two agents)."""
        ingested = self.ingest(records, now_s=now_s)
        return ingested, self.detect(ingested)

    def _incidents(self, assessments: Sequence[Assessment], post: EnrichedPost | None) -> list[IncidentEvent]:
        events: list[IncidentEvent] = []
        for assessment in assessments:
            if self.on_assessment is not None:
                self.on_assessment(assessment)
            events += self.tracker.observe(self._labelled(assessment, post))
        return events

    def _labelled(self, assessment: Assessment, post: EnrichedPost | None) -> Assessment:
        profile = self.resolver.profile(assessment.brand)
        labels = dict(assessment.labels)
        labels.setdefault("role", profile.role if profile else "own")
        labels.setdefault("brand_lang", profile.lang if profile else "en")
        if post is not None:
            labels.setdefault("lang", post.lang)
            if post.post.platform:
                labels.setdefault("platform", post.post.platform)
            if post.category:
                labels.setdefault("category", post.category)
        if labels == assessment.labels:
            return assessment
        return _replace_labels(assessment, labels)


def _with_root(post: Post, root_id: str) -> Post:
    return replace(post, root_id=root_id)


def _replace_labels(assessment: Assessment, labels: dict[str, str]) -> Assessment:
    return replace(assessment, labels=labels)


# Compact form of an enriched post for the brand-observation topic (the brand agent needs no raw text).
_OBSERVED_TEXT_CHARS = 500


def enriched_to_dict(post: EnrichedPost) -> dict[str, Any]:
    raw = post.post
    return {
        "id": raw.id,
        "t": raw.created_at_s,
        "kind": raw.kind,
        "parent_id": raw.parent_id,
        "root_id": raw.root_id,
        "author": [raw.author.id, raw.author.followers, raw.author.verified],
        "platform": raw.platform,
        "url": raw.url,
        "text": raw.text[:_OBSERVED_TEXT_CHARS],
        "lang": post.lang,
        "brands": list(post.brands),
        "own_text": post.own_text[:_OBSERVED_TEXT_CHARS],
        "negative": post.negative_probability,
        "complaint": post.complaint_probability,
        "category": post.category,
    }


def enriched_from_dict(data: dict[str, Any]) -> EnrichedPost:
    author_id, followers, verified = data["author"]
    post = Post(
        id=data["id"],
        created_at_s=data["t"],
        text=data["text"],
        kind=data["kind"],
        parent_id=data["parent_id"],
        root_id=data["root_id"],
        author=Author(author_id, followers, verified),
        platform=data["platform"],
        lang=data["lang"],
        url=data["url"],
        brands=tuple(data["brands"]),
    )
    return EnrichedPost(
        post=post,
        lang=data["lang"],
        brands=tuple(data["brands"]),
        own_text=data["own_text"],
        negative_probability=data["negative"],
        complaint_probability=data["complaint"],
        category=data["category"],
    )

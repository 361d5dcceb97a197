"""DetectionEngine: every detector, for every cascade and brand, behind one small interface.

The Faust worker and the offline replay drive the same object: `update_cascade` / `update_brand` (or
`update_many`) per post, `advance(watermark)` when event time moves, `drain_dirty()` to learn which keys'
states to write to the changelog-backed table, `*_state` / `load_*_state` to move them in and out.

Per key the engine holds detector objects with one interface (`base.Detector`: `update(event) -> Score`,
`update_many`, `score_at`, `to_state`/`from_state`): per cascade `cascade.ForwardSurge` and
`negative.CascadeNegativeSurge` (`cascade.CascadeState`), per brand `volume.VolumeSurge` and
`negative.BrandNegativeSurge` (`brand.BrandState`). The engine routes posts to them, drops duplicates, gives
them their context (the brand's typical cascade rate and negative share) and turns their judged `Score`s
into severities with the paging policy (`paging`): scoring is separate from deciding.

Assessments are emitted on changes only: when a key's severity changes (firing, escalation, resolution)
or an open episode grew by `paging.update_growth_factor`. Event time only; the engine never reads a clock.
"""

from __future__ import annotations

import math
import zlib
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, TypeGuard

import numpy as np

from crisiswatch.detectors import paging
from crisiswatch.detectors.base import PostBatch, Score
from crisiswatch.detectors.brand import BrandState
from crisiswatch.detectors.cascade import CascadeState, ForwardSurge, PendingRoot
from crisiswatch.detectors.config import DetectorsConfig
from crisiswatch.detectors.events import SEVERITY_RANK, Assessment, BrandProfile, EnrichedPost, Severity
from crisiswatch.detectors.negative import BrandNegativeSurge, CascadeNegativeSurge, is_surge
from crisiswatch.detectors.volume import VolumeSurge

FORWARD_SURGE = "forward_surge"
NEGATIVE_SURGE = "negative_surge"
VOLUME_SURGE = "volume_surge"
DETECTORS: tuple[str, ...] = (FORWARD_SURGE, NEGATIVE_SURGE, VOLUME_SURGE)
# Every detector class, by the name its scores and assessments carry (the contract suite runs over these).
DETECTOR_CLASSES: dict[str, tuple[type, ...]] = {
    FORWARD_SURGE: (ForwardSurge,),
    NEGATIVE_SURGE: (BrandNegativeSurge, CascadeNegativeSurge),
    VOLUME_SURGE: (VolumeSurge,),
}
NO_RECORD: list[Any] = [None, 0, 0, None]  # a paging record that never fired
# Batches up to this size take the per-post path (same rules; numpy's per-call cost dominates below it).
SMALL_BATCH = 4


class DetectionEngine:
    def __init__(self, config: DetectorsConfig, brands: Mapping[str, BrandProfile] | None = None) -> None:
        self.config = config
        self.brands: dict[str, BrandProfile] = dict(brands or {})
        self._configs: dict[str | None, DetectorsConfig] = {}
        # a cascade that is only its root so far is a PendingRoot (see there)
        self._cascades: OrderedDict[str, CascadeState | PendingRoot] = OrderedDict()
        self._brand_states: OrderedDict[str, BrandState] = OrderedDict()
        self._dirty_cascades: set[str] = set()
        self._dirty_brands: set[str] = set()
        self._open_cascades: set[str] = set()
        self.watermark_s = -math.inf
        self.expired_cascades = 0
        self.expired_brands = 0
        # bumped whenever a brand's typical cascade rate may have changed: cascades refresh their context
        self._context_version = 0

    # ------------------------------------------------------------------ config
    def config_for(self, brand: str | None) -> DetectorsConfig:
        """The brand's config: the section with the brand's `detector_overrides` merged over it."""
        if brand is None:
            return self.config
        found = self._configs.get(brand)
        if found is None:
            profile = self.brands.get(brand)
            found = self.config.with_overrides(profile.detector_overrides) if profile else self.config
            self._configs[brand] = found
        return found

    def _time_zone(self, brand: str) -> str:
        profile = self.brands.get(brand)
        return profile.time_zone if profile else "UTC"

    def _labels(
        self, brand: str, platform: str | None, lang: str | None, category: str | None
    ) -> dict[str, str]:
        profile = self.brands.get(brand)
        labels = {"role": profile.role if profile else "own"}
        if profile:
            labels["lang"] = profile.lang
        elif lang:
            labels["lang"] = lang
        if platform:
            labels["platform"] = platform
        if category:
            labels["category"] = category
        return labels

    # ------------------------------------------------------------------ context from the brand
    def _brand_expectation(self, brand: str | None, config: DetectorsConfig) -> float:
        """Forwards+comments per minute expected of a cascade of this brand (its typical, at least the prior)."""
        prior = config.forward_surge.expected_per_min
        brand_state = self._brand_states.get(brand) if brand is not None else None
        return max(prior, brand_state.cascade_peaks.typical_per_min) if brand_state is not None else prior

    def _brand_surge_floor(self, brand: str | None) -> float:
        """The window count the brand's ordinary cascades reach at most `ordinary_surges_per_day` (0: not
        learnt yet)."""
        brand_state = self._brand_states.get(brand) if brand is not None else None
        return brand_state.cascade_peaks.surge_floor if brand_state is not None else 0.0

    def _baseline_share(self, brand: str | None, config: DetectorsConfig) -> float:
        brand_state = self._brand_states.get(brand) if brand is not None else None
        if brand_state is None:
            return config.negative_surge.prior_share
        return brand_state.negative.baseline_share()

    # ------------------------------------------------------------------ cascades
    def _build_cascade(self, root_id: str, pending: PendingRoot) -> CascadeState:
        """The cascade of a pending root: the steps `update_cascade` takes for a root that starts a cascade."""
        item = pending.item
        state = CascadeState(root_id, self.config_for(item.brands[0]))
        state.admit(pending.post_hash, self.config.dedup_ids)  # no brands noted yet: the default config's
        state.note_brands(item, True)
        state.forward.update(item)  # the root: observed, nothing to judge; CascadeNegativeSurge ignores it
        state.duplicates = pending.duplicates
        return state

    def _pending_root_again(self, pending: PendingRoot, post: EnrichedPost, post_hash: int) -> None:
        """The root of a pending cascade once more: a duplicate, as `CascadeState.admit` counts it, or (the
        duplicate filter off, or another id) observed again: it replaces the pending root, which carries
        its duplicates count."""
        if self.config_for(pending.brands[0]).dedup_ids and post_hash == pending.post_hash:
            pending.duplicates += 1
            return
        root_id = post.post.root_id
        replaced = self._cascades[root_id] = PendingRoot(post, post_hash)
        replaced.duplicates = pending.duplicates
        self._dirty_cascades.add(root_id)

    def update_cascade(self, post: EnrichedPost) -> list[Assessment]:
        item = post.post
        root_id = item.root_id
        cascades = self._cascades
        state = cascades.get(root_id)
        if state is None:
            if not post.brands:
                return []  # no brand to page for; the enrichment gives reactions their root's brands
            if item.is_root:
                cascades[root_id] = PendingRoot(post, zlib.crc32(item.id.encode()))
                self._dirty_cascades.add(root_id)
                return []
            state = cascades[root_id] = CascadeState(root_id, self.config_for(post.brands[0]))
        else:
            cascades.move_to_end(root_id)
            if type(state) is PendingRoot:
                if item.is_root:
                    self._pending_root_again(state, post, zlib.crc32(item.id.encode()))
                    return []
                state = cascades[root_id] = self._build_cascade(root_id, state)
        brand = state.brands[0] if state.brands else None
        config = self._configs.get(brand) or self.config_for(brand)  # once per post: the lookup inlined
        if not state.admit(zlib.crc32(item.id.encode()), config.dedup_ids):
            return []
        if post.brands and (not state.brands or item.is_root):
            state.note_brands(post, item.is_root)
            brand = state.brands[0]
        self._dirty_cascades.add(root_id)
        if state.context_version != self._context_version:
            state.forward.expected_per_min = self._brand_expectation(brand, config)
            state.forward.surge_floor_events = self._brand_surge_floor(brand)
            state.context_version = self._context_version
        forward = state.forward.update(post)
        negative = None
        if post.negative_probability is not None:  # the only posts the negative share counts
            brand_state = self._brand_states.get(brand) if brand is not None else None
            state.negative.baseline_share = (
                brand_state.negative.baseline_share()
                if brand_state is not None
                else config.negative_surge.prior_share
            )
            negative = state.negative.update(post)
        if not (forward.metrics or (negative is not None and negative.metrics)):
            return []
        return self._assess_cascade(state, state.last_s, item.id, forward, negative)

    def _assess_cascade(
        self,
        state: CascadeState,
        now_s: float,
        post_id: str | None,
        forward: Score | None = None,
        negative: Score | None = None,
    ) -> list[Assessment]:
        """Judge a cascade for each of its brands: forward_surge, and negative_surge over its comments."""
        out: list[Assessment] = []
        for i, brand in enumerate(state.brands or ()):
            config = self.config_for(brand)
            expected = self._brand_expectation(brand, config)
            share0 = self._baseline_share(brand, config)
            # reuse the update's judged scores when they were taken now, with this brand's context
            f = (
                forward
                if i == 0 and _judged_at(forward, now_s) and state.forward.expected_per_min == expected
                else state.forward.score_at(now_s, expected)
            )
            n = (
                negative
                if i == 0 and _judged_at(negative, now_s) and state.negative.baseline_share == share0
                else state.negative.score_at(now_s, share0)
            )
            m = dict(f.metrics)
            m.update(n.metrics)
            page: dict[str, Any] | None = None
            labels: dict[str, str] | None = None
            # forward_surge
            record = state.paging.get(brand)
            if record is None:
                record = state.paging[brand] = [None, 0, 0.0, None]
            resolved_size = float(record[1]) if record[0] is None else 0.0
            m["surge_floor_events"] = self._brand_surge_floor(brand)
            severity, why = paging.forward_surge_severity(m, config, record[0], resolved_size)
            if i:
                severity, why = paging.mentioned_brand(severity, why, config, state.brands[0])
            if self._should_emit(record, severity, float(m["projected_final_size"]), config, now_s):
                page = self._cascade_page(state, m, now_s)
                labels = self._labels(
                    brand, state.forward.platform, state.forward.lang, state.forward.category
                )
                out.append(
                    Assessment(
                        detector=FORWARD_SURGE,
                        brand=brand,
                        root_id=state.root_id,
                        severity=severity,
                        score=float(m["rate_z"]),
                        event_time_s=now_s,
                        explanation=why(),
                        metrics=page,
                        labels=labels,
                        post_id=post_id,
                    )
                )
            # negative_surge over this cascade's comments
            neg_record = state.paging.get("~" + brand)
            if neg_record is None:
                neg_record = state.paging["~" + brand] = [None, 0, 0.0, None]
            nm = {
                "window_text_posts": m["window_text_posts"],
                "window_negative_posts": m["window_negative_posts"],
                "negative_share_lower": m["window_negative_share_lower"],
                "baseline_negative_share": m["baseline_negative_share"],
                "negative_z": m["negative_z"],
            }
            severity_n, why_n = paging.negative_share_severity(
                nm,
                config,
                neg_record[0],
                cascade=True,
                spread=m["window_events"] >= config.forward_surge.min_events
                or nm["window_text_posts"] >= 2 * config.negative_surge.cascade_min_posts,
                critical=record[0] == "critical",
            )
            if i:
                severity_n, why_n = paging.mentioned_brand(severity_n, why_n, config, state.brands[0])
            if self._should_emit(neg_record, severity_n, float(nm["window_negative_posts"]), config, now_s):
                merged = dict(page if page is not None else self._cascade_page(state, m, now_s))
                merged.update(nm)
                out.append(
                    Assessment(
                        detector=NEGATIVE_SURGE,
                        brand=brand,
                        root_id=state.root_id,
                        severity=severity_n,
                        score=float(nm["negative_z"]),
                        event_time_s=now_s,
                        explanation=why_n(),
                        metrics=merged,
                        labels=labels
                        or self._labels(
                            brand, state.forward.platform, state.forward.lang, state.forward.category
                        ),
                        post_id=post_id,
                    )
                )
        if state.sync_incidents():
            self._open_cascades.add(state.root_id)
        else:
            self._open_cascades.discard(state.root_id)
        return out

    @staticmethod
    def _cascade_page(state: CascadeState, m: dict[str, Any], now_s: float) -> dict[str, Any]:
        """What a page shows: the decision numbers, then the content (built only for an emitted page)."""
        page = dict(m)
        page.update(state.forward.page_metrics(now_s))
        page.update(state.negative.page_metrics())
        return page

    @staticmethod
    def _should_emit(
        record: list[Any], severity: Severity | None, size: float, config: DetectorsConfig, now_s: float
    ) -> bool:
        """Emit on a severity change, or when an open episode grew materially; update the record."""
        previous = record[0]
        if severity != previous:
            record[0] = severity
            record[2] = max(record[2], SEVERITY_RANK[severity])
            record[1] = size
            record[3] = now_s if previous is None else record[3]
            if severity is None:
                record[3] = None
            return True
        if severity is not None and size >= max(record[1], 1.0) * config.paging.update_growth_factor:
            record[1] = size
            return True
        return False

    # ------------------------------------------------------------------ brands
    def _brand(self, brand: str) -> tuple[BrandState, DetectorsConfig]:
        config = self.config_for(brand)
        state = self._brand_states.get(brand)
        if state is None:
            state = self._brand_states[brand] = BrandState(brand, config, self._time_zone(brand))
        else:
            self._brand_states.move_to_end(brand)
        return state, config

    def update_brand(self, brand: str, post: EnrichedPost) -> list[Assessment]:
        state = self._brand_states.get(brand)
        if state is None:
            state, config = self._brand(brand)
        else:
            self._brand_states.move_to_end(brand)
            config = self._configs.get(brand) or self.config_for(brand)  # once per post: the lookup inlined
        if not state.admit(zlib.crc32(post.post.id.encode()), post.post.created_at_s, config.dedup_ids):
            return []
        self._dirty_brands.add(brand)
        negative = state.negative.update(post) if post.negative_probability is not None else None
        volume = state.volume.update(post)
        out: list[Assessment] = []
        if volume.metrics:
            out.extend(self._report_volume(state, config, volume, post.post.id))
        if negative is not None and negative.metrics:
            out.extend(self._assess_brand_negative(state, config, negative, post.post.id))
        return out

    @staticmethod
    def _negativity(nm: dict[str, Any], config: DetectorsConfig) -> tuple[bool, bool]:
        ns = config.negative_surge
        negativity = is_surge(
            nm["window_text_posts"],
            nm["window_negative_posts"],
            nm["negative_z"],
            nm["negative_share_lower"],
            nm["baseline_negative_share"],
            ns,
        )
        return negativity, nm["window_negative_posts"] >= ns.critical_negative_posts

    def _assess_brand_negative(
        self, state: BrandState, config: DetectorsConfig, score: Score, post_id: str | None
    ) -> list[Assessment]:
        ns = config.negative_surge
        nm = score.metrics
        now_s = score.event_time_s
        _, critical = self._negativity(nm, config)
        spread = (
            nm["window_negative_posts"]
            >= max(ns.spread_ratio * nm["expected_window_negatives"], ns.min_negative)
            or state.volume.surging
        )
        record = state.paging.setdefault(NEGATIVE_SURGE, [None, 0, 0.0, None])
        severity, why = paging.negative_share_severity(
            nm, config, record[0], cascade=False, spread=spread, critical=critical and spread
        )
        base_posts = state.negative.base_posts
        if record[0] is None and base_posts < ns.baseline_min_posts:
            severity, why = (
                None,
                lambda: f"learning the baseline ({base_posts:.0f} of {ns.baseline_min_posts} posts)",
            )
        emit = self._should_emit(record, severity, float(nm["window_negative_posts"]), config, now_s)
        state.sync_incidents()
        if not emit:
            return []
        return [
            Assessment(
                detector=NEGATIVE_SURGE,
                brand=state.brand,
                root_id=None,
                severity=severity,
                score=float(nm["negative_z"]),
                event_time_s=now_s,
                explanation=why(),
                metrics=dict(nm),
                labels=self._labels(state.brand, None, None, None),
                post_id=post_id,
            )
        ]

    def _report_volume(
        self, state: BrandState, config: DetectorsConfig, score: Score, post_id: str | None
    ) -> list[Assessment]:
        """One decision per interval the volume score reports (closed ones, or an early alarm)."""
        out: list[Assessment] = []
        vs = config.volume_surge
        for entry in score.metrics["intervals"]:
            now_s = entry["event_time_s"]
            nm = state.negative.score_at(now_s).metrics
            negativity, critical = self._negativity(nm, config)
            record = state.paging.setdefault(VOLUME_SURGE, [None, 0, 0.0, None])
            severity = paging.volume_severity(entry["surging"], negativity, critical, record[0])
            count = entry["mentions"]
            if not self._should_emit(record, severity, float(count), config, now_s):
                continue
            m = {
                "interval_start_s": entry["interval_start_s"],
                "interval_s": vs.bucket_s,
                "mentions": count,
                "expected_mentions": entry["expected_mentions"],
                "volume_z": entry["volume_z"],
                "surge_score": entry["surge_score"],
                **nm,
            }
            if severity is None:
                why = f"volume back to normal: {count} mentions per {vs.bucket_s / 60:g} min"
            else:
                tone = "with a rising negative share" if negativity else "without sign of negativity"
                why = (
                    f"{count} mentions per {vs.bucket_s / 60:g} min against about "
                    f"{entry['expected_mentions']} expected at this hour (z={entry['volume_z']:.1f}), {tone}"
                )
            out.append(
                Assessment(
                    detector=VOLUME_SURGE,
                    brand=state.brand,
                    root_id=None,
                    severity=severity,
                    score=float(entry["surge_score"]),
                    event_time_s=now_s,
                    explanation=why,
                    metrics=m,
                    labels=self._labels(state.brand, None, None, None),
                    post_id=post_id,
                )
            )
        return out

    # ------------------------------------------------------------------ batch
    def update_many(self, posts: Sequence[EnrichedPost]) -> list[Assessment]:
        """Both sides for a batch of posts: the replay path and the worker's batch path.

        The batch is turned into columns once (`base.PostBatch`) and every detector class folds its keys'
        rows at once (`update_many`, vectorised across keys); then each touched key is judged once, at its
        newest event (the per-post path judges after every post; a batch answers at most one batch later,
        with the same rules). Same states as `update_cascade` + `update_brand` per post, up to float rounding
        in the projection's sums.
        """
        if len(posts) <= SMALL_BATCH:  # columns cost more than they save on a handful of posts
            out = [a for post in posts for a in self.update_cascade(post)]
            out += [a for post in posts for brand in post.brands for a in self.update_brand(brand, post)]
            return out
        batch = PostBatch(posts)
        return self.update_cascades_many(posts, batch) + self.update_brands_many(posts, batch)

    def update_cascades_many(
        self, posts: Sequence[EnrichedPost], batch: PostBatch | None = None
    ) -> list[Assessment]:
        """The cascade side of `update_many`."""
        batch = batch if batch is not None else PostBatch(posts)
        if not len(posts):
            return []
        hashes = batch.hashes
        roots = batch.is_root.tolist()
        cascades = self._cascades
        owner_of: dict[str, int] = {}
        states: list[CascadeState] = []
        keeps: list[int] = []
        newest_row: list[int] = []
        rows: list[int] = []
        owners: list[int] = []
        for r, item in enumerate(posts):
            root_id = item.post.root_id
            o = owner_of.get(root_id)
            if o is None:
                state = cascades.get(root_id)
                if state is None:
                    if not item.brands:
                        continue  # no brand to page for
                    if roots[r]:  # pending until a reaction, in this batch or a later one (as per post)
                        cascades[root_id] = PendingRoot(item, hashes[r])
                        self._dirty_cascades.add(root_id)
                        continue
                    state = cascades[root_id] = CascadeState(root_id, self.config_for(item.brands[0]))
                else:
                    cascades.move_to_end(root_id)
                    if type(state) is PendingRoot:
                        if roots[r]:
                            self._pending_root_again(state, item, hashes[r])
                            continue
                        state = cascades[root_id] = self._build_cascade(root_id, state)
                o = owner_of[root_id] = len(states)
                states.append(state)
                keeps.append(self.config_for(state.brands[0] if state.brands else None).dedup_ids)
                newest_row.append(-1)
            else:
                state = states[o]
            if not state.admit(hashes[r], keeps[o]):
                continue
            if item.brands and (roots[r] or not state.brands):
                state.note_brands(item, roots[r])
            rows.append(r)
            owners.append(o)
            newest_row[o] = r
        out: list[Assessment] = []
        if not rows:
            return out
        version = self._context_version
        for state in states:
            brand = state.brands[0] if state.brands else None
            config = self.config_for(brand)
            if state.context_version != version:
                state.forward.expected_per_min = self._brand_expectation(brand, config)
                state.forward.surge_floor_events = self._brand_surge_floor(brand)
                state.context_version = version
            state.negative.baseline_share = self._baseline_share(brand, config)
        row_array = np.array(rows, dtype=np.int64)
        owner_array = np.array(owners, dtype=np.int64)
        forward = ForwardSurge.update_many([s.forward for s in states], batch, row_array, owner_array)
        negative = CascadeNegativeSurge.update_many(
            [s.negative for s in states], batch, row_array, owner_array
        )
        dirty = self._dirty_cascades
        for o, state in enumerate(states):
            if newest_row[o] < 0:
                continue
            dirty.add(state.root_id)
            f, n = forward[o], negative[o]
            if (f is not None and f.metrics) or (n is not None and n.metrics):
                out.extend(self._assess_cascade(state, state.last_s, posts[newest_row[o]].post.id, f, n))
        return out

    def update_brands_many(
        self, posts: Sequence[EnrichedPost], batch: PostBatch | None = None
    ) -> list[Assessment]:
        """The brand side of `update_many`: each brand's posts folded in order by its detectors' batch
        paths; interval closes and the early alarm report as they happen, the negative share is judged at
        most once per brand per batch (at its newest own-text post)."""
        batch = batch if batch is not None else PostBatch(posts)
        if not len(posts):
            return []
        hashes = batch.hashes
        owner_of: dict[str, int] = {}
        states: list[BrandState] = []
        configs: list[DetectorsConfig] = []
        newest_row: list[int] = []
        rows: list[int] = []
        owners: list[int] = []
        for r, item in enumerate(posts):
            for brand in item.brands:
                o = owner_of.get(brand)
                if o is None:
                    state, config = self._brand(brand)
                    o = owner_of[brand] = len(states)
                    states.append(state)
                    configs.append(config)
                    newest_row.append(-1)
                else:
                    state = states[o]
                if not state.admit(hashes[r], item.post.created_at_s, configs[o].dedup_ids):
                    continue
                rows.append(r)
                owners.append(o)
                newest_row[o] = r
        out: list[Assessment] = []
        if not rows:
            return out
        row_array = np.array(rows, dtype=np.int64)
        owner_array = np.array(owners, dtype=np.int64)
        negative = BrandNegativeSurge.update_many([s.negative for s in states], batch, row_array, owner_array)
        volume = VolumeSurge.update_many([s.volume for s in states], batch, row_array, owner_array)
        for o, state in enumerate(states):
            if newest_row[o] < 0:
                continue
            self._dirty_brands.add(state.brand)
            post_id = posts[newest_row[o]].post.id
            v, n = volume[o], negative[o]
            if v is not None and v.metrics:
                out.extend(self._report_volume(state, configs[o], v, post_id))
            if n is not None and n.metrics:
                out.extend(self._assess_brand_negative(state, configs[o], n, post_id))
        return out

    # ------------------------------------------------------------------ event time
    def advance(self, watermark_s: float) -> list[Assessment]:
        """Event time reached `watermark_s`: judge quiet open keys, close intervals, expire idle keys."""
        if watermark_s <= self.watermark_s:
            return []
        self.watermark_s = watermark_s
        out: list[Assessment] = []
        for root_id in sorted(self._open_cascades):
            state = self._cascades.get(root_id)
            if state is None:
                self._open_cascades.discard(root_id)
                continue
            found = self._assess_cascade(state, max(watermark_s, state.last_s), None)
            if found:
                self._dirty_cascades.add(root_id)
                out.extend(found)
        for brand, state in self._brand_states.items():
            volume = state.volume.score_at(watermark_s)
            if not volume.metrics:
                continue
            config = self.config_for(brand)
            found = self._report_volume(state, config, volume, None)
            if state.paging.get(NEGATIVE_SURGE, NO_RECORD)[0] is not None:
                found.extend(
                    self._assess_brand_negative(state, config, state.negative.score_at(watermark_s), None)
                )
            self._dirty_brands.add(brand)
            out.extend(found)
        out.extend(self._expire(watermark_s))
        return out

    def _expire(self, watermark_s: float) -> list[Assessment]:
        out: list[Assessment] = []
        cascades = self._cascades
        while cascades:
            root_id, state = next(iter(cascades.items()))
            config = self.config_for(state.brands[0] if state.brands else None)
            if state.last_s >= watermark_s - config.cascade_idle_s:
                break
            cascades.popitem(last=False)
            self._open_cascades.discard(root_id)
            self._dirty_cascades.add(root_id)
            self.expired_cascades += 1
            if type(state) is PendingRoot:  # no paging record; its peak window count is 0
                for brand in state.brands:
                    self._note_cascade_peak(brand, 0.0, watermark_s)
                continue
            for brand, record in state.paging.items():
                if record[0] is not None:
                    real = brand.lstrip("~")
                    out.append(
                        Assessment(
                            detector=NEGATIVE_SURGE if brand.startswith("~") else FORWARD_SURGE,
                            brand=real,
                            root_id=root_id,
                            severity=None,
                            score=0.0,
                            event_time_s=watermark_s,
                            explanation="cascade went quiet and expired",
                            metrics={"events_total": state.forward.events},
                            labels=self._labels(
                                real, state.forward.platform, state.forward.lang, state.forward.category
                            ),
                        )
                    )
            peak = max(state.forward.peak_window, float(state.forward.rate.totals[0]))
            for brand in state.brands:
                paged = state.paging.get(brand, NO_RECORD)[2], state.paging.get("~" + brand, NO_RECORD)[2]
                self._note_cascade_peak(brand, peak, watermark_s, max(paged) >= SEVERITY_RANK["warning"])
        brands = self._brand_states
        while brands:
            brand, brand_state = next(iter(brands.items()))
            if brand_state.last_s >= watermark_s - self.config_for(brand).brand_idle_s:
                break
            brands.popitem(last=False)
            self._dirty_brands.add(brand)
            self.expired_brands += 1
            self._context_version += 1
        return out

    def _note_cascade_peak(self, brand: str, peak: float, watermark_s: float, incident: bool = False) -> None:
        """An expired cascade's peak window count joins its brand's `CascadePeaks`."""
        brand_state = self._brand_states.get(brand)
        if brand_state is None:
            return
        config = self.config_for(brand)
        if incident:
            # it counts as one crossing of the floor but must not raise it (the baseline does not learn from
            # incidents)
            floor = brand_state.cascade_peaks.surge_floor
            peak = min(peak, max(floor, config.forward_surge.min_events))
        brand_state.cascade_peaks.note(peak, watermark_s, config)
        self._dirty_brands.add(brand)
        self._context_version += 1

    # ------------------------------------------------------------------ state
    def cascade_state(self, root_id: str) -> dict[str, Any] | None:
        state = self._cascades.get(root_id)
        if type(state) is PendingRoot:
            state = self._build_cascade(root_id, state)
        return None if state is None else state.state()

    def load_cascade_state(self, root_id: str, state: dict[str, Any]) -> None:
        brands = state.get("brands") or [None]
        cascade = CascadeState.from_state(state, self.config_for(brands[0]))
        self._cascades[root_id] = cascade
        if cascade.sync_incidents():
            self._open_cascades.add(root_id)

    def brand_state(self, brand: str) -> dict[str, Any] | None:
        state = self._brand_states.get(brand)
        return None if state is None else state.state()

    def load_brand_state(self, brand: str, state: dict[str, Any]) -> None:
        self._context_version += 1
        self._brand_states[brand] = BrandState.from_state(
            state, self.config_for(brand), self._time_zone(brand)
        )

    def drain_dirty(self) -> tuple[set[str], set[str]]:
        """Keys whose state changed (or expired: their state is now None) since the last call."""
        cascades, brands = self._dirty_cascades, self._dirty_brands
        self._dirty_cascades, self._dirty_brands = set(), set()
        return cascades, brands

    @property
    def active_keys(self) -> tuple[int, int]:
        """(cascades, brands) held in memory."""
        return len(self._cascades), len(self._brand_states)


def _judged_at(score: Score | None, now_s: float) -> TypeGuard[Score]:
    """A score with its metrics, taken at `now_s` (reusable instead of judging the key again)."""
    return score is not None and bool(score.metrics) and score.event_time_s == now_s

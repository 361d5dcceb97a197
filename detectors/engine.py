"""DetectionEngine: every detector, for every cascade and brand, behind one small interface.

The Faust worker and the offline replay drive the same object: `update_cascade` / `update_brand` (or
`update_many`) per post, `advance(watermark)` when event time moves, `drain_dirty()` to learn which keys'
states to write to the changelog-backed table, `*_state` / `load_*_state` to move them in and out.

Assessments are emitted on changes only: when a key's severity changes (firing, escalation, resolution)
or an open episode grew by `paging.update_growth_factor`. Event time only; the engine never reads a clock.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from crisiswatch.detectors import paging
from crisiswatch.detectors.brand import BrandState
from crisiswatch.detectors.cascade import CascadeState
from crisiswatch.detectors.config import DetectorsConfig
from crisiswatch.detectors.events import Assessment, BrandProfile, EnrichedPost, Severity
from crisiswatch.detectors.stats import beta_binomial_z

FORWARD_SURGE = "forward_surge"
NEGATIVE_SURGE = "negative_surge"
VOLUME_SURGE = "volume_surge"
DETECTORS: tuple[str, ...] = (FORWARD_SURGE, NEGATIVE_SURGE, VOLUME_SURGE)


class DetectionEngine:
    def __init__(self, config: DetectorsConfig, brands: Mapping[str, BrandProfile] | None = None) -> None:
        self.config = config
        self.brands: dict[str, BrandProfile] = dict(brands or {})
        self._configs: dict[str, DetectorsConfig] = {}
        self._cascades: OrderedDict[str, CascadeState] = OrderedDict()
        self._brand_states: OrderedDict[str, BrandState] = OrderedDict()
        self._dirty_cascades: set[str] = set()
        self._dirty_brands: set[str] = set()
        self._open_cascades: set[str] = set()
        self.watermark_s = -math.inf
        self.expired_cascades = 0
        self.expired_brands = 0

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

    # ------------------------------------------------------------------ cascades
    def update_cascade(self, post: EnrichedPost) -> list[Assessment]:
        root_id = post.post.root_id
        state = self._cascades.get(root_id)
        if state is None:
            if not post.brands:
                return []  # no brand to page for; the enrichment gives reactions their root's brands
            state = CascadeState(root_id, self.config_for(post.brands[0]))
            self._cascades[root_id] = state
        else:
            self._cascades.move_to_end(root_id)
        config = self.config_for(state.brands[0] if state.brands else None)
        if not state.observe(post, config):
            return []
        self._dirty_cascades.add(root_id)
        events = state.forwards + state.comments
        if root_id not in self._open_cascades and not self._could_fire(state, config, events):
            return []
        bucket = state.rate.index(state.last_s)
        if events < state.eval_at and bucket == state.eval_bucket:
            return []
        state.eval_at = events + max(events // 20, 3)
        state.eval_bucket = bucket
        return self._assess_cascade(state, state.last_s, post.post.id)

    @staticmethod
    def _could_fire(state: CascadeState, config: DetectorsConfig, events: int) -> bool:
        """A cheap necessary condition for any cascade detector to fire (window totals not yet rolled to
        now only over-estimate), so that most small cascades cost no evaluation at all."""
        fs = config.forward_surge
        window = state.rate.totals[0]
        if window >= fs.min_events:
            return True
        if events >= fs.projection_min_events and window >= max(fs.min_events // 2, 1):
            return True
        ns = config.negative_surge
        return (
            state.talk.totals[1] >= ns.cascade_min_negative and state.talk.totals[0] >= ns.cascade_min_posts
        )

    def _brand_expectation(self, brand: str, config: DetectorsConfig) -> float:
        brand_state = self._brand_states.get(brand)
        typical = brand_state.typical_cascade_per_min(config) if brand_state else 0.0
        return max(config.forward_surge.expected_per_min, typical)

    def _assess_cascade(self, state: CascadeState, now_s: float, post_id: str | None) -> list[Assessment]:
        out: list[Assessment] = []
        any_open = False
        for brand in state.brands or ():
            config = self.config_for(brand)
            # decide on the cheap numbers; the page content is built only for an emitted assessment
            m = state.decision_metrics(now_s, config, self._brand_expectation(brand, config))
            if m["window_events"] > state.peak_window:
                state.peak_window = float(m["window_events"])
            page: dict[str, Any] | None = None
            labels: dict[str, str] | None = None
            # forward_surge
            record = state.paging.get(brand)
            if record is None:
                record = state.paging[brand] = [None, 0, 0.0, None]
            previous: Severity | None = record[0]
            severity, why = paging.forward_surge_severity(m, config, previous)
            size = float(m["projected_final_size"])
            if self._should_emit(record, severity, size, config, now_s):
                page = dict(m)
                state.add_page_metrics(page, now_s, config)
                labels = self._labels(brand, state.platform, state.lang, state.category)
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
            nm = self._cascade_negative_metrics(state, m, brand, config)
            severity_n, why_n = paging.negative_share_severity(
                nm,
                config,
                neg_record[0],
                cascade=True,
                spread=m["window_events"] >= config.forward_surge.min_events
                or nm["window_text_posts"] >= 2 * config.negative_surge.cascade_min_posts,
                critical=record[0] == "critical",
            )
            if self._should_emit(neg_record, severity_n, float(nm["window_negative_posts"]), config, now_s):
                if page is None:
                    page = dict(m)
                    state.add_page_metrics(page, now_s, config)
                merged = dict(page)
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
                        labels=labels or self._labels(brand, state.platform, state.lang, state.category),
                        post_id=post_id,
                    )
                )
            any_open = any_open or record[0] is not None or neg_record[0] is not None
        if any_open:
            self._open_cascades.add(state.root_id)
        else:
            self._open_cascades.discard(state.root_id)
        return out

    def _cascade_negative_metrics(
        self, state: CascadeState, m: dict[str, Any], brand: str, config: DetectorsConfig
    ) -> dict[str, Any]:

        brand_state = self._brand_states.get(brand)
        ns = config.negative_surge
        share0 = brand_state.baseline_share(config) if brand_state else ns.prior_share
        n, k = m["window_text_posts"], m["window_negative_posts"]
        return {
            "window_text_posts": n,
            "window_negative_posts": k,
            "negative_share_lower": m["window_negative_share_lower"],
            "baseline_negative_share": round(share0, 4),
            "negative_z": round(beta_binomial_z(k, n, share0, ns.overdispersion), 3),
        }

    @staticmethod
    def _should_emit(
        record: list[Any], severity: Severity | None, size: float, config: DetectorsConfig, now_s: float
    ) -> bool:
        """Emit on a severity change, or when an open episode grew materially; update the record."""
        previous = record[0]
        if severity != previous:
            record[0] = severity
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
    def update_brand(self, brand: str, post: EnrichedPost) -> list[Assessment]:
        state = self._brand_states.get(brand)
        config = self.config_for(brand)
        if state is None:
            state = BrandState(brand, config, self._time_zone(brand))
            self._brand_states[brand] = state
        else:
            self._brand_states.move_to_end(brand)
        was_early = state.early
        if not state.observe(post, config):
            return []
        self._dirty_brands.add(brand)
        out: list[Assessment] = []
        if state.closed:
            out.extend(self._report_volume(state, config, post.post.id))
        elif state.early and not was_early:
            out.extend(self._report_early(state, config, post.post.id))
        if post.negative_probability is not None and state.negative_due(config):
            out.extend(self._assess_brand_negative(state, config, post.created_at_s, post.post.id))
        return out

    def _negativity(
        self, state: BrandState, config: DetectorsConfig, now_s: float
    ) -> tuple[bool, bool, dict[str, Any]]:
        ns = config.negative_surge
        nm = state.negative_metrics(now_s, config)
        negativity = (
            nm["window_text_posts"] >= ns.min_posts
            and nm["window_negative_posts"] >= ns.min_negative
            and nm["negative_z"] >= ns.surge_z
            and nm["negative_share_lower"] >= nm["baseline_negative_share"] + ns.min_share_increase
        )
        critical = nm["window_negative_posts"] >= ns.critical_negative_posts
        return negativity, critical, nm

    def _assess_brand_negative(
        self, state: BrandState, config: DetectorsConfig, now_s: float, post_id: str | None
    ) -> list[Assessment]:
        ns = config.negative_surge
        _, critical, nm = self._negativity(state, config, now_s)
        expected = nm["expected_window_negatives"]
        spread = (
            nm["window_negative_posts"] >= max(ns.spread_ratio * expected, ns.min_negative)
            or state.volume.surging
        )
        record = state.paging.setdefault(NEGATIVE_SURGE, [None, 0, 0.0, None])
        severity, why = paging.negative_share_severity(
            nm, config, record[0], cascade=False, spread=spread, critical=critical and spread
        )
        if record[0] is None and state.base_posts < ns.baseline_min_posts:
            severity, why = (
                None,
                lambda: f"learning the baseline ({state.base_posts:.0f} of {ns.baseline_min_posts} posts)",
            )
        if not self._should_emit(record, severity, float(nm["window_negative_posts"]), config, now_s):
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
                metrics=nm,
                labels=self._labels(state.brand, None, None, None),
                post_id=post_id,
            )
        ]

    def _volume_assessment(
        self,
        state: BrandState,
        config: DetectorsConfig,
        start_s: float,
        count: float,
        z: float,
        surging: bool,
        now_s: float,
        post_id: str | None,
    ) -> list[Assessment]:
        negativity, critical, nm = self._negativity(state, config, now_s)
        record = state.paging.setdefault(VOLUME_SURGE, [None, 0, 0.0, None])
        severity = paging.volume_severity(surging, negativity, critical, record[0])
        if not self._should_emit(record, severity, count, config, now_s):
            return []
        vs = config.volume_surge
        expected = state.volume.model.threshold_count(start_s, 0.0)
        m = {
            "interval_start_s": start_s,
            "interval_s": vs.bucket_s,
            "mentions": int(count),
            "expected_mentions": round(expected, 1) if math.isfinite(expected) else None,
            "volume_z": round(z, 3),
            **nm,
        }
        if severity is None:
            why = f"volume back to normal: {int(count)} mentions per {vs.bucket_s / 60:g} min"
        else:
            tone = "with a rising negative share" if negativity else "without sign of negativity"
            why = (
                f"{int(count)} mentions per {vs.bucket_s / 60:g} min against about "
                f"{m['expected_mentions']} expected at this hour (z={z:.1f}), {tone}"
            )
        return [
            Assessment(
                detector=VOLUME_SURGE,
                brand=state.brand,
                root_id=None,
                severity=severity,
                score=round(z, 3),
                event_time_s=now_s,
                explanation=why,
                metrics=m,
                labels=self._labels(state.brand, None, None, None),
                post_id=post_id,
            )
        ]

    def _report_volume(
        self, state: BrandState, config: DetectorsConfig, post_id: str | None
    ) -> list[Assessment]:
        out: list[Assessment] = []
        for start, count, z, surging in state.closed:
            now_s = start + config.volume_surge.bucket_s
            out.extend(self._volume_assessment(state, config, start, count, z, surging, now_s, post_id))
        state.closed.clear()
        return out

    def _report_early(
        self, state: BrandState, config: DetectorsConfig, post_id: str | None
    ) -> list[Assessment]:
        vs = config.volume_surge
        # the newest open interval: the one after `interval` when posts already arrived in it (grace)
        interval, count = (
            (state.interval + 1, state.next_count)
            if state.next_count
            else (state.interval, state.interval_count)
        )
        start = interval * vs.bucket_s
        z = state.volume.model.score(start, count)
        return self._volume_assessment(state, config, start, count, z, True, state.last_s, post_id)

    # ------------------------------------------------------------------ batch
    def update_many(self, posts: Sequence[EnrichedPost]) -> list[Assessment]:
        """Both sides for a batch of posts: the replay path and the worker's batch path.

        Cascade side first: every post is folded into its cascade, the projection's exposure sums of the
        whole batch are added at once (numpy), then each touched cascade is judged once, at its newest event
        (the per-post path judges after every post; a batch answers at most one batch later, with the same
        rules). Then the brand side, post by post in order. Same states and, up to float rounding in the
        projection, the same verdicts as `update_cascade` + `update_brand` per post.
        """
        return self.update_cascades_many(posts) + self.update_brands_many(posts)

    def update_brands_many(self, posts: Sequence[EnrichedPost]) -> list[Assessment]:
        """The brand side of `update_many`: posts grouped by brand, each brand's posts folded in order;
        interval closes and the early alarm report as they happen, the negative share is judged once per
        brand per batch (at its newest own-text post)."""
        groups: dict[str, list[EnrichedPost]] = {}
        for item in posts:
            for brand in item.brands:
                group = groups.get(brand)
                if group is None:
                    groups[brand] = [item]
                else:
                    group.append(item)
        out: list[Assessment] = []
        states = self._brand_states
        for brand, items in groups.items():
            config = self.config_for(brand)
            state = states.get(brand)
            if state is None:
                state = states[brand] = BrandState(brand, config, self._time_zone(brand))
            else:
                states.move_to_end(brand)
            changed = False
            judged: EnrichedPost | None = None
            observe = state.observe
            for item in items:
                was_early = state.early
                if not observe(item, config):
                    continue
                changed = True
                if state.closed:
                    out.extend(self._report_volume(state, config, item.post.id))
                elif state.early and not was_early:
                    out.extend(self._report_early(state, config, item.post.id))
                if item.negative_probability is not None:
                    judged = item
            if changed:
                self._dirty_brands.add(brand)
            if judged is not None and state.negative_due(config):
                out.extend(self._assess_brand_negative(state, config, judged.created_at_s, judged.post.id))
        return out

    def update_cascades_many(self, posts: Sequence[EnrichedPost]) -> list[Assessment]:
        """The cascade side of `update_many` (the worker's cascades agent calls this per batch)."""
        cascades = self._cascades
        touched: dict[str, tuple[CascadeState, DetectorsConfig, str]] = {}
        # exposure to add, grouped by config (a brand may override the kernel): config -> batch lists
        exposure: dict[
            int,
            tuple[DetectorsConfig, list[CascadeState], dict[str, int], list[float], list[float], list[int]],
        ] = {}
        config_for = self.config_for
        for item in posts:
            post = item.post
            root_id = post.root_id
            seen = touched.get(root_id)
            if seen is not None:
                state, config = seen[0], seen[1]
            else:
                state = cascades.get(root_id)
                if state is None:
                    if not item.brands:
                        continue  # no brand to page for
                    state = CascadeState(root_id, config_for(item.brands[0]))
                    cascades[root_id] = state
                else:
                    cascades.move_to_end(root_id)
                config = config_for(state.brands[0] if state.brands else None)
            weight = state.fold(item, config)
            if weight < 0.0:
                continue
            touched[root_id] = (state, config, post.id)
            if weight > 0.0:
                group = exposure.get(id(config))
                if group is None:
                    group = exposure[id(config)] = (config, [], {}, [], [], [])
                _, states, index, times, weights, owners = group
                owner = index.get(root_id)
                if owner is None:
                    owner = index[root_id] = len(states)
                    states.append(state)
                times.append(post.created_at_s)
                weights.append(weight)
                owners.append(owner)
        for config, states, _, times, weights, owners in exposure.values():
            CascadeState.add_exposures(states, times, weights, owners, config)
        out: list[Assessment] = []
        self._dirty_cascades.update(touched)
        open_cascades = self._open_cascades
        for root_id, (state, config, post_id) in touched.items():
            events = state.forwards + state.comments
            if root_id not in open_cascades and not self._could_fire(state, config, events):
                continue
            bucket = int(state.last_s // state.rate.bucket_s)
            if events < state.eval_at and bucket == state.eval_bucket:
                continue
            state.eval_at = events + max(events // 20, 3)
            state.eval_bucket = bucket
            out.extend(self._assess_cascade(state, state.last_s, post_id))
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
            config = self.config_for(brand)
            index = state.closable(watermark_s, config)
            if index > state.interval and state.interval > -(2**62):
                state.close_until(index, config)
                found = self._report_volume(state, config, None)
                if state.paging.get(NEGATIVE_SURGE, [None])[0] is not None:
                    found.extend(self._assess_brand_negative(state, config, watermark_s, None))
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
                            metrics={"events_total": state.events},
                            labels=self._labels(real, state.platform, state.lang, state.category),
                        )
                    )
            for brand in state.brands:
                brand_state = self._brand_states.get(brand)
                if brand_state is not None:
                    brand_state.note_cascade_peak(max(state.peak_window, float(state.rate.totals[0])))
                    self._dirty_brands.add(brand)
            self._open_cascades.discard(root_id)
            self._dirty_cascades.add(root_id)
            self.expired_cascades += 1
        brands = self._brand_states
        while brands:
            brand, state = next(iter(brands.items()))
            if state.last_s >= watermark_s - self.config_for(brand).brand_idle_s:
                break
            brands.popitem(last=False)
            self._dirty_brands.add(brand)
            self.expired_brands += 1
        return out

    # ------------------------------------------------------------------ state
    def cascade_state(self, root_id: str) -> dict[str, Any] | None:
        state = self._cascades.get(root_id)
        return None if state is None else state.state()

    def load_cascade_state(self, root_id: str, state: dict[str, Any]) -> None:
        brands = state.get("brands") or [None]
        cascade = CascadeState.from_state(state, self.config_for(brands[0]))
        self._cascades[root_id] = cascade
        if any(record[0] is not None for record in cascade.paging.values()):
            self._open_cascades.add(root_id)

    def brand_state(self, brand: str) -> dict[str, Any] | None:
        state = self._brand_states.get(brand)
        return None if state is None else state.state()

    def load_brand_state(self, brand: str, state: dict[str, Any]) -> None:
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

"""forward_surge: one complaint cascade (root_id) spreading: rate, reach, amplifiers, SEISMIC projection.

`ForwardSurge` folds one post at a time in O(1): a ring of minute buckets for the rate (events and
reach-weighted events), running totals, a handful of exponential sums for the projection, and the few things
a page shows (root text, top amplifiers), all bounded. `CascadeState` is what the engine keeps per cascade:
the cascade's two detectors (`ForwardSurge`, `negative.CascadeNegativeSurge`), its brands, the paging
records and the duplicate filter; it is the unit written to the changelog-backed table.

Projection (Zhao et al., "SEISMIC", KDD 2015): every event i with n_i followers exposes them with a memory
kernel phi; the infectiousness estimate is p = R / sum_i n_i Phi(t - t_i), and the final size is
R + alpha * p * sum_i n_i (1 - Phi(t - t_i)) / (1 - gamma * p * n_star). phi is approximated by a sum of
exponentials (`stats.kernel_mixture`) so the sums update exactly and the state stays a fixed size.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from functools import lru_cache
from math import exp
from typing import Any, ClassVar

import numpy as np

from crisiswatch.detectors.base import (
    NO_METRICS,
    PostBatch,
    Score,
    check_version,
    finite_or_none,
    new_score,
    none_to,
    not_judged,
    pack_ids,
    runs,
    unpack_ids,
)
from crisiswatch.detectors.config import DetectorsConfig, ForwardSurgeConfig
from crisiswatch.detectors.events import EnrichedPost
from crisiswatch.detectors.negative import CascadeNegativeSurge
from crisiswatch.detectors.stats import anscombe_z, kernel_mixture
from crisiswatch.detectors.windows import Ring, whole

NAME = "forward_surge"
# of `CascadeState`; versions 1 (one flat record, before the detector split) and 2 (one versioned sub-state
# per detector, dense rings) still load
STATE_VERSION = 3
V3_FORWARD = 2  # the detector state versions a version-3 cascade state holds
V3_NEGATIVE = 2
ROOT_TEXT_CHARS = 500
MAX_BRANDS = 3


class ForwardSurge:
    """forward_surge for one cascade.

    Score value: the Anscombe z of the forwards+comments in the window (`window_s`) against the count
    expected for this cascade and brand (`expected_per_min`, see below): 0 is as expected, `surge_z`
    (default 4) is a surge, below `resolve_z` is calm. The judged metrics add the SEISMIC projection
    (`projected_final_size`, `projected_reach`, `infectiousness`), the biggest amplifier and the root's
    negativity, which the paging policy combines into a severity.

    `expected_per_min` is context, not state: the engine sets it to the brand's typical cascade rate (at
    least the config's prior). `in_incident` is set by the engine while the paging policy holds an open
    forward surge: the detector then judges every few events even below its floors.
    """

    name: ClassVar[str] = NAME
    STATE_VERSION: ClassVar[int] = 2  # version 1 (dense ring, exposure reference always written) loads

    __slots__ = (
        "key",
        "config",
        "t0_s",
        "last_s",
        "root_seen",
        "root_followers",
        "root_author",
        "root_text",
        "root_url",
        "root_negative",
        "root_complaint",
        "category",
        "platform",
        "lang",
        "forwards",
        "comments",
        "reach_followers",
        "late",
        "rate",
        "exp_sums",
        "exp_ref_s",
        "resharer_weight",
        "amplifiers",
        "eval_at",
        "eval_bucket",
        "peak_window",
        "in_incident",
        "every_brand_paged",
        "expected_per_min",
        "surge_floor_events",
        "_window_min",
        "_floor",
        "_rates",
        "_neg_rates",
        "_kernel",
    )

    def __init__(self, key: str, config: ForwardSurgeConfig) -> None:
        self.key = key
        self.config = config
        self.t0_s = math.inf
        self.last_s = -math.inf
        self.root_seen = False
        self.root_followers = 0
        self.root_author: str | None = None
        self.root_text = ""
        self.root_url: str | None = None
        self.root_negative: float | None = None
        self.root_complaint: float | None = None
        self.category: str | None = None
        self.platform: str | None = None
        self.lang: str | None = None
        self.forwards = 0
        self.comments = 0
        self.reach_followers = 0  # raw followers of every forwarder/commenter
        self.late = 0
        # channels: events, reach-weighted events
        self.rate = Ring(config.bucket_s, round(config.window_s / config.bucket_s), 2)
        weights, rates = kernel_mixture(config.kernel_s0_s, config.kernel_theta)
        self.exp_sums = [0.0] * len(weights)
        self.exp_ref_s = -math.inf
        self.resharer_weight = 0.0  # sum of n_i over resharers (followers, at least 1)
        self.amplifiers: list[list[Any]] = []  # [author_id, followers, verified], biggest first
        self.eval_at = 0  # events at which the next judgement is due
        self.eval_bucket = -1
        self.peak_window = 0.0
        self.in_incident = False
        # set with in_incident (CascadeState.sync_incidents, not stored): each of the cascade's brands holds
        # an open forward incident, so no rate crossing can make a first page any more
        self.every_brand_paged = False
        self.expected_per_min = config.expected_per_min
        # context from the brand (not stored): the learnt floor of a rate surge (brand.CascadePeaks)
        self.surge_floor_events = 0.0
        self._window_min = config.window_s / 60.0
        self._floor = max(config.min_events // 2, 1)
        self._rates = rates
        # shared by every detector with this kernel (a list per detector would cost ~300 B per cascade)
        self._kernel = _kernel_constants(config.kernel_s0_s, config.kernel_theta)
        self._neg_rates = self._kernel[1]

    @property
    def events(self) -> int:
        return self.forwards + self.comments

    # ------------------------------------------------------------------ folding
    def update(self, item: EnrichedPost) -> Score:
        # One function for the common path (a reaction in the window): this runs for most posts of the
        # stream, and each Python call saved is ~1% of the per-event budget.
        post = item.post
        t = post.created_at_s
        if post.kind == "post" or post.id == self.key:
            self._observe_root(item)
            return self._after_fold(t)
        author = post.author
        followers = author.followers
        if followers < 0:
            followers = 0
        weighted = followers * self.config.verified_weight if author.verified else float(followers)
        rate = self.rate
        index = int(t // rate.bucket_s)
        if index > rate.head:
            rate.roll(index)
        elif index <= rate.head - rate.n:
            self.late += 1
            return self._idle_score(t)
        slot = index % rate.n
        sums, totals = rate.sums, rate.totals
        sums[0][slot] += 1.0
        sums[1][slot] += weighted
        totals[0] += 1.0
        totals[1] += weighted
        if totals[0] > self.peak_window:
            self.peak_window = totals[0]
        if t < self.t0_s:
            self.t0_s = t
        if t > self.last_s:
            self.last_s = t
        if post.kind == "forward":
            self.forwards += 1
        else:
            self.comments += 1
        self.reach_followers += followers
        n_i = float(followers) if followers > 1 else 1.0
        self.resharer_weight += n_i
        if followers > 0:
            amplifiers = self.amplifiers
            keep = self.config.top_amplifiers
            if keep and (len(amplifiers) < keep or followers > amplifiers[-1][1]):
                self._note_amplifier(author.id, followers, author.verified)
        # the exposure (`_add_exposure`), its common case inlined: the newest event so far
        ref = self.exp_ref_s
        if t >= ref and ref != -math.inf:
            dt = t - ref
            sums = self.exp_sums
            # in place, a plain loop: in Python 3.11 a list comprehension costs a call of its own
            for k, nb in enumerate(self._neg_rates):
                sums[k] = sums[k] * exp(nb * dt) + n_i
            self.exp_ref_s = t
        else:
            self._add_exposure(t, n_i)
        return self._after_fold(t)

    def _add_run(
        self,
        index: int,
        size: int,
        forwards: int,
        weighted: float,
        followers: float,
        n_i: float,
        first_s: float,
        last_s: float,
    ) -> bool:
        """Fold a run of reactions that share one rate bucket (the batch path); False when too late."""
        rate = self.rate
        if index > rate.head:
            rate.roll(index)
        elif index <= rate.head - rate.n:
            self.late += size
            return False
        slot = index % rate.n
        sums, totals = rate.sums, rate.totals
        sums[0][slot] += size
        sums[1][slot] += weighted
        totals[0] += size
        totals[1] += weighted
        if totals[0] > self.peak_window:
            self.peak_window = totals[0]
        if first_s < self.t0_s:
            self.t0_s = first_s
        if last_s > self.last_s:
            self.last_s = last_s
        self.forwards += forwards
        self.comments += size - forwards
        self.reach_followers += int(followers)
        self.resharer_weight += n_i
        return True

    def _observe_root(self, item: EnrichedPost) -> None:
        post = item.post
        self.root_seen = True
        self.root_followers = max(post.author.followers, 0)
        self.root_author = post.author.id
        self.root_text = (item.own_text or post.text)[:ROOT_TEXT_CHARS]
        self.root_url = post.url
        self.root_negative = item.negative_probability
        self.root_complaint = item.complaint_probability
        self.category = item.category
        self.platform = post.platform
        self.lang = item.lang
        self.t0_s = min(self.t0_s, post.created_at_s)
        if post.created_at_s > self.last_s:
            self.last_s = post.created_at_s

    def _after_fold(self, t: float) -> Score:
        """Judge only when a verdict may have changed. On a schedule (every 5% of growth, each new minute
        bucket) and above the volume floor, a key with an open incident is judged; another only if it could
        fire (a rate surge, or a projected size of `spread_projected_size`), a necessary condition that
        costs a fraction of a judgement. Otherwise the cheap score."""
        fs = self.config
        window = self.rate.totals[0]
        expected = self.expected_per_min * self._window_min
        z = 2.0 * (math.sqrt(window + 0.375) - math.sqrt(expected + 0.375))  # stats.anscombe_z, inlined
        if window >= self._floor or self.in_incident:
            events = self.forwards + self.comments
            bucket = int(self.last_s // self.rate.bucket_s)
            rate_surge = window >= max(fs.min_events, self.surge_floor_events) and z >= fs.surge_z
            # a rate crossing is judged at once, whatever the schedule: a first page must not wait for more
            # posts. Once every brand of the cascade has an open incident, no crossing can make a first page:
            # the schedule (and a big account, `_note_amplifier`) follows them, not a judgement at every post.
            if (
                events >= self.eval_at
                or bucket != self.eval_bucket
                or (rate_surge and not self.every_brand_paged)
            ):
                if (
                    self.in_incident
                    or rate_surge
                    or self.projection(self.last_s)[0] >= fs.spread_projected_size
                ):
                    return self.score_at(self.last_s)
                self.eval_at = events + max(events // 20, 3)
                self.eval_bucket = bucket
        return new_score(Score, (NAME, self.key, z, t, NO_METRICS, not_judged))

    def _idle_score(self, t: float) -> Score:
        """The cheap score (no metrics): the window's z as it stands."""
        z = anscombe_z(self.rate.totals[0], self.expected_per_min * self._window_min)
        return new_score(Score, (NAME, self.key, z, t, NO_METRICS, not_judged))

    def _add_exposure(self, t: float, weight: float) -> None:
        sums = self.exp_sums
        ref = self.exp_ref_s
        if t >= ref:
            if ref == -math.inf:
                for k in range(len(sums)):
                    sums[k] = weight
            else:
                dt = t - ref
                for k, b in enumerate(self._rates):
                    sums[k] = sums[k] * math.exp(-b * dt) + weight
            self.exp_ref_s = t
        else:
            dt = ref - t
            for k, b in enumerate(self._rates):
                sums[k] += weight * math.exp(-b * dt)

    @staticmethod
    def _add_exposures(
        detectors: Sequence[ForwardSurge], times: np.ndarray, weights: np.ndarray, owners: np.ndarray
    ) -> None:
        """Add many reactions' exposure at once; reaction j belongs to `detectors[owners[j]]` (all with one
        kernel). Each detector's sums move to its newest time T and gain sum_j w_j exp(-b (T - t_j)): the
        sums the one-at-a-time path builds, up to rounding."""
        fs = detectors[0].config
        rates = np.asarray(kernel_mixture(fs.kernel_s0_s, fs.kernel_theta)[1])
        order = np.argsort(owners, kind="stable")
        owner_sorted = owners[order]
        times_sorted = times[order]
        starts = np.flatnonzero(np.concatenate(([True], owner_sorted[1:] != owner_sorted[:-1])))
        used = [detectors[o] for o in owner_sorted[starts].tolist()]
        refs = np.array([d.exp_ref_s for d in used])
        target = np.maximum(np.maximum.reduceat(times_sorted, starts), refs)
        segment = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(order))))
        contribution = np.exp(-np.outer(target[segment] - times_sorted, rates)) * weights[order][:, None]
        added = np.add.reduceat(contribution, starts, axis=0)
        old = np.array([d.exp_sums for d in used])
        started = np.isfinite(refs)
        gap = np.where(started, target - np.where(started, refs, 0.0), 0.0)
        new = old * np.exp(-np.outer(gap, rates)) + added
        for detector, sums, ref in zip(used, new.tolist(), target.tolist(), strict=True):
            detector.exp_sums = sums
            detector.exp_ref_s = ref

    def _note_amplifier(self, author_id: str, followers: int, verified: bool) -> None:
        keep = self.config.top_amplifiers
        entries = self.amplifiers
        if len(entries) >= keep and followers <= entries[-1][1]:
            return
        for entry in entries:
            if entry[0] == author_id:
                return
        # insert in order (biggest first, ties by id): the list is at most `top_amplifiers` long
        at = len(entries)
        while at and (
            entries[at - 1][1] < followers
            or (entries[at - 1][1] == followers and entries[at - 1][0] > author_id)
        ):
            at -= 1
        if self.in_incident and followers >= self.config.big_account_followers:
            self.eval_at = 0  # judged now: a big account raises the page's severity (forward_surge_severity)
        entries.insert(at, [author_id, followers, verified])
        del entries[keep:]

    @classmethod
    def update_many(
        cls, detectors: Sequence[ForwardSurge], batch: PostBatch, rows: np.ndarray, owners: np.ndarray
    ) -> list[Score | None]:
        """The batch path (module `base`): reactions summed per (cascade, minute bucket) run with numpy, the
        projection's exposure sums of the whole batch added at once; one score per cascade that took a row
        (at its newest event), None for the others. Same state as the one-at-a-time path, up to float
        rounding in the projection's sums."""
        out: list[Score | None] = [None] * len(detectors)
        touched = [False] * len(detectors)
        is_root = batch.is_root[rows]
        if is_root.any():
            posts = batch.posts
            for r, o in zip(rows[is_root].tolist(), owners[is_root].tolist(), strict=True):
                detectors[o]._observe_root(posts[r])
                touched[o] = True
            rows, owners = rows[~is_root], owners[~is_root]
        if len(rows):
            configs = [d.config for d in detectors]
            times = batch.times[rows]
            bucket_s = np.array([c.bucket_s for c in configs])[owners]
            index = np.floor(times / bucket_s).astype(np.int64)
            followers = batch.followers[rows]
            verified_weight = np.array([c.verified_weight for c in configs])[owners]
            weighted = np.where(batch.verified[rows], followers * verified_weight, followers)
            exposure = np.maximum(followers, 1.0)
            order, starts, run_owner, run_index = runs(owners, index)
            ends = np.append(starts[1:], len(order))
            times_sorted = times[order]
            columns = (
                run_owner.tolist(),
                run_index.tolist(),
                (ends - starts).tolist(),
                np.add.reduceat(batch.is_forward[rows][order].astype(np.int64), starts).tolist(),
                np.add.reduceat(weighted[order], starts).tolist(),
                np.add.reduceat(followers[order], starts).tolist(),
                np.add.reduceat(exposure[order], starts).tolist(),
                np.minimum.reduceat(times_sorted, starts).tolist(),
                np.maximum.reduceat(times_sorted, starts).tolist(),
            )
            accepted = []
            for o, i, size, fwd, wsum, fsum, nsum, first, last in zip(*columns, strict=True):
                ok = detectors[o]._add_run(i, size, fwd, wsum, fsum, nsum, first, last)
                accepted.append(ok)
                if ok:
                    touched[o] = True
            kept = np.empty(len(order), dtype=bool)
            kept[order] = np.repeat(np.array(accepted, dtype=bool), ends - starts)
            if kept.any():
                cls._exposures_by_kernel(detectors, times[kept], exposure[kept], owners[kept])
                cls._amplifiers(detectors, batch, rows[kept], owners[kept], followers[kept])
        for o, detector in enumerate(detectors):
            if touched[o]:
                out[o] = detector._after_fold(detector.last_s)
        return out

    @staticmethod
    def _exposures_by_kernel(
        detectors: Sequence[ForwardSurge], times: np.ndarray, weights: np.ndarray, owners: np.ndarray
    ) -> None:
        kernels = [(d.config.kernel_s0_s, d.config.kernel_theta) for d in detectors]
        distinct = set(kernels)
        if len(distinct) == 1:
            ForwardSurge._add_exposures(detectors, times, weights, owners)
            return
        for kernel in distinct:  # brands that override the projection kernel: one pass per kernel
            mine = np.array([k == kernel for k in kernels])[owners]
            if mine.any():
                ForwardSurge._add_exposures(detectors, times[mine], weights[mine], owners[mine])

    @staticmethod
    def _amplifiers(
        detectors: Sequence[ForwardSurge],
        batch: PostBatch,
        rows: np.ndarray,
        owners: np.ndarray,
        followers: np.ndarray,
    ) -> None:
        """Offer the reactions that could enter a cascade's top amplifiers, in arrival order."""
        floor = np.array(
            [d.amplifiers[-1][1] if len(d.amplifiers) >= d.config.top_amplifiers else 0 for d in detectors],
            dtype=float,
        )
        wanted = np.array([d.config.top_amplifiers > 0 for d in detectors])
        candidates = (followers > 0) & (followers > floor[owners]) & wanted[owners]
        if not candidates.any():
            return
        posts = batch.posts
        for r, o, f in zip(
            rows[candidates].tolist(),
            owners[candidates].tolist(),
            followers[candidates].tolist(),
            strict=True,
        ):
            detector = detectors[o]
            entries = detector.amplifiers
            if len(entries) < detector.config.top_amplifiers or f > entries[-1][1]:
                author = posts[r].post.author
                detector._note_amplifier(author.id, author.followers, author.verified)

    # ------------------------------------------------------------------ scoring
    def projection(self, now_s: float) -> tuple[float, float]:
        """(projected final number of events, infectiousness p) at event time `now_s` (SEISMIC)."""
        fs = self.config
        seen = float(self.events)
        if self.events < fs.projection_min_events or now_s - self.t0_s < fs.projection_min_age_s:
            return seen, 0.0
        weights, neg_rates, tail = self._kernel
        root_weight = float(self.root_followers) if self.root_followers > 0 else fs.root_default_followers
        root_weight = max(root_weight, 1.0)
        total = self.resharer_weight + root_weight
        dt = max(now_s - self.exp_ref_s, 0.0)
        root_age = max(now_s - self.t0_s, 0.0)
        remaining = tail * total
        for w, nb, s in zip(weights, neg_rates, self.exp_sums, strict=True):
            remaining += w * (s * exp(nb * dt) + root_weight * exp(nb * root_age))
        exposed = total - remaining
        if exposed <= 0:
            return seen, 0.0
        p = seen / exposed
        n_star = fs.projection_n_star or self.resharer_weight / seen
        branching = fs.projection_gamma * p * n_star
        if branching >= 1.0:
            return fs.projection_max_size, p
        final = seen + fs.projection_alpha * p * remaining / (1.0 - branching)
        return min(max(final, seen), fs.projection_max_size), p

    def score_at(self, now_s: float, expected_per_min: float | None = None) -> Score:
        """The judged score at event time `now_s` (the numbers paging decides on; cheap enough to run at
        every judgement). `expected_per_min` overrides the context for a second brand of the cascade."""
        fs = self.config
        rate = self.rate
        rate.roll(int(now_s // rate.bucket_s))
        events = self.forwards + self.comments
        # the gate of `_after_fold` counts from the last judgement, whoever asked for it
        self.eval_at = events + max(events // 20, 3)
        self.eval_bucket = int(now_s // rate.bucket_s)
        window_events = rate.totals[0]
        per_min = self.expected_per_min if expected_per_min is None else expected_per_min
        expected = per_min * self._window_min
        projected, p = self.projection(now_s)
        seen = self.events
        mean_followers = self.reach_followers / seen if seen else 0.0
        reach = self.root_followers + self.reach_followers
        z = round(anscombe_z(window_events, expected), 3)
        m = {
            "window_events": int(window_events),
            "expected_window_events": round(expected, 3),
            "rate_z": z,
            "projected_final_size": round(projected, 1),
            "projected_reach": round(reach + max(projected - seen, 0.0) * mean_followers, 0),
            "infectiousness": round(p, 8),
            "root_negative_probability": self.root_negative,
            "complaint_probability": self.root_complaint,
            "max_amplifier_followers": self.amplifiers[0][1] if self.amplifiers else 0,
        }
        return new_score(Score, (NAME, self.key, z, now_s, m, lambda: _size_sentence(m, fs)))

    def page_metrics(self, now_s: float) -> dict[str, Any]:
        """The rest of what a page shows about the cascade (texts, lists, totals)."""
        seen = self.events
        return {
            "forwards_per_minute": round(self.rate.totals[0] / self._window_min, 3),
            "forwards_total": self.forwards,
            "comments_total": self.comments,
            "events_total": seen,
            "reach_followers": self.root_followers + self.reach_followers,
            "weighted_reach_window": int(self.rate.totals[1]),
            "age_s": round(max(now_s - self.t0_s, 0.0), 1),
            "category": self.category,
            "root_text": self.root_text,
            "root_url": self.root_url,
            "root_author_id": self.root_author,
            "root_followers": self.root_followers,
            "top_amplifiers": [
                {"author_id": a, "followers": f, "verified": v} for a, f, v in self.amplifiers
            ],
            "late_events": self.late,
        }

    # ------------------------------------------------------------------ state
    def to_state(self) -> dict[str, Any]:
        """Version 2: the rate ring sparse (`Ring.sparse_state`), whole floats as ints, flags as 0/1, the
        exposure's reference time only when it is not `last`, its sums only once there are any."""
        state: dict[str, Any] = {
            "v": self.STATE_VERSION,
            "t0": finite_or_none(self.t0_s),
            "last": finite_or_none(self.last_s),
            "root": [
                self.root_seen,
                self.root_followers,
                self.root_author,
                self.root_text,
                self.root_url,
                self.root_negative,
                self.root_complaint,
                self.category,
                self.platform,
                self.lang,
            ],
            "counts": [self.forwards, self.comments, self.reach_followers, self.late],
            "rate": self.rate.sparse_state(),
            # [resharer weight, exposure sums...]; no sums before the first reaction's exposure
            "exp": [whole(self.resharer_weight), *(self.exp_sums if any(self.exp_sums) else ())],
            "amp": [[a, f, int(v)] for a, f, v in self.amplifiers],
            "eval": [self.eval_at, self.eval_bucket, whole(self.peak_window), int(self.in_incident)],
        }
        if self.exp_ref_s != self.last_s:
            state["ref"] = finite_or_none(self.exp_ref_s)
        return state

    @classmethod
    def from_state(cls, key: str, state: dict[str, Any], config: ForwardSurgeConfig) -> ForwardSurge:
        if state.get("v") == 1:
            return cls._from_state_v1(key, state, config)
        check_version(state, "forward_surge", cls.STATE_VERSION)
        self = cls(key, config)
        self._load_common(state)
        self.rate.load_sparse(state["rate"])
        resharer_weight, *sums = state["exp"]
        self.resharer_weight = float(resharer_weight)
        self._load_sums(sums)
        self.exp_ref_s = none_to(state["ref"], -math.inf) if "ref" in state else self.last_s
        self.amplifiers = [[a, f, bool(v)] for a, f, v in state["amp"]]
        return self

    @classmethod
    def _from_state_v1(cls, key: str, state: dict[str, Any], config: ForwardSurgeConfig) -> ForwardSurge:
        self = cls(key, config)
        self._load_common(state)
        self.rate.load(state["rate"])
        ref, resharer_weight, sums = state["exp"]
        self.exp_ref_s = none_to(ref, -math.inf)
        self.resharer_weight = float(resharer_weight)
        self._load_sums(sums)
        self.amplifiers = [list(a) for a in state["amp"]]
        return self

    def _load_common(self, state: dict[str, Any]) -> None:
        self.t0_s = none_to(state["t0"], math.inf)
        self.last_s = none_to(state["last"], -math.inf)
        (
            self.root_seen,
            self.root_followers,
            self.root_author,
            self.root_text,
            self.root_url,
            self.root_negative,
            self.root_complaint,
            self.category,
            self.platform,
            self.lang,
        ) = state["root"]
        self.forwards, self.comments, self.reach_followers, self.late = (int(x) for x in state["counts"])
        eval_at, eval_bucket, peak, in_incident = state["eval"]
        self.eval_at, self.eval_bucket = int(eval_at), int(eval_bucket)
        self.peak_window, self.in_incident = float(peak), bool(in_incident)

    def _load_sums(self, sums: list[float]) -> None:
        if not sums:
            return  # none yet: the zeros of __init__
        if len(sums) != len(self.exp_sums):
            raise ValueError("forward_surge state was written with a different projection kernel")
        self.exp_sums = [float(s) for s in sums]


@lru_cache(maxsize=16)
def _kernel_constants(s0_s: float, theta: float) -> tuple[tuple[float, ...], tuple[float, ...], float]:
    """(weights, negated rates, tail weight) of `stats.kernel_mixture`: what `projection` and the exposure
    update use, computed once per kernel."""
    weights, rates = kernel_mixture(s0_s, theta)
    return weights, tuple(-b for b in rates), 1.0 - sum(weights)


def _size_sentence(m: dict[str, Any], fs: ForwardSurgeConfig) -> str:
    return (
        f"{m['window_events']} forwards/comments in {fs.window_s / 60:g} min "
        f"(expected {m['expected_window_events']:g}), projected {m['projected_final_size']:.0f} events "
        f"reaching {m['projected_reach']:.0f}"
    )


class PendingRoot:
    """A cascade that is only its root so far. Most posts are never forwarded or commented on (two thirds of
    the cascades of the `week` preset end as their root alone), so the engine keeps just the root, its
    texts trimmed to what a cascade keeps of them, and builds the `CascadeState` at the first reaction by
    folding the root in first: the same state as one built when the root arrived (`DetectionEngine.
    _build_cascade`), at a fraction of the memory and of the time to build, judge and free it."""

    __slots__ = ("item", "post_hash", "duplicates")

    def __init__(self, item: EnrichedPost, post_hash: int) -> None:
        post = item.post
        if len(item.own_text) > ROOT_TEXT_CHARS or len(post.text) > ROOT_TEXT_CHARS:
            # `ForwardSurge._observe_root` keeps `(own_text or text)[:ROOT_TEXT_CHARS]`: the same after this
            item = dataclasses.replace(
                item,
                own_text=item.own_text[:ROOT_TEXT_CHARS],
                post=dataclasses.replace(post, text=post.text[:ROOT_TEXT_CHARS]),
            )
        self.item = item
        self.post_hash = post_hash  # the duplicate filter's hash of the root's id
        self.duplicates = 0  # redeliveries of the root while pending

    @property
    def last_s(self) -> float:
        return self.item.post.created_at_s

    @property
    def brands(self) -> tuple[str, ...]:
        return self.item.brands[:MAX_BRANDS]


class CascadeState:
    """What the engine keeps per cascade: its detectors, brands, paging records and duplicate filter.

    `state()` / `from_state()` round-trip it exactly (version 3, see `state`; version 2, one versioned
    sub-state per detector, and version 1, the flat record written before the detectors were split, load).
    """

    __slots__ = (
        "root_id",
        "brands",
        "forward",
        "negative",
        "recent_ids",
        "duplicates",
        "paging",
        "context_version",
    )

    def __init__(self, root_id: str, config: DetectorsConfig) -> None:
        self.root_id = root_id
        self.brands: tuple[str, ...] = ()
        self.forward = ForwardSurge(root_id, config.forward_surge)
        self.negative = CascadeNegativeSurge(
            root_id, config.negative_surge, config.forward_surge.sample_comments
        )
        self.recent_ids: list[int] = []
        self.duplicates = 0
        # brand ('~brand' for the comments' negative_surge) -> [severity or None, size at last emission,
        # highest severity rank reached, started_s]
        self.paging: dict[str, list[Any]] = {}
        # the engine's context version the detectors' context (brand expectation) was last set at
        self.context_version = -1

    @property
    def last_s(self) -> float:
        return self.forward.last_s

    def admit(self, post_hash: int, keep: int) -> bool:
        """False for a redelivered duplicate (one of the last `keep` post ids seen on this cascade)."""
        if keep:  # `base.first_sighting`, inlined (once per post)
            recent = self.recent_ids
            if post_hash in recent:
                self.duplicates += 1
                return False
            recent.append(post_hash)
            if len(recent) > keep:
                del recent[0]
        return True

    def note_brands(self, item: EnrichedPost, is_root: bool) -> None:
        """The root names the cascade's brands; before it arrives, the first reaction's do."""
        if item.brands and (is_root or not self.brands):
            self.brands = tuple(item.brands[:MAX_BRANDS])
            self.context_version = -1

    def sync_incidents(self) -> bool:
        """Tell the detectors whether paging holds an open incident for them; True if any is open."""
        forward = negative = False
        for key, record in self.paging.items():
            if record[0] is not None:
                if key.startswith("~"):
                    negative = True
                else:
                    forward = True
        self.forward.in_incident = forward
        self.forward.every_brand_paged = forward and all(
            brand in self.paging and self.paging[brand][0] is not None for brand in self.brands
        )
        self.negative.in_incident = negative
        return forward or negative

    # ------------------------------------------------------------------ state
    def state(self) -> dict[str, Any]:
        """Version 3: the detectors' sub-states without their own version keys (version 3 implies
        forward_surge 2 and negative_surge 2), the duplicate filter's ids packed (`base.pack_ids`), empty
        paging and zero duplicates left out."""
        forward = self.forward.to_state()
        negative = self.negative.to_state()
        del forward["v"], negative["v"]
        # The root record and the newest event time sit at the top level, as in versions 1 and 2: the
        # streams layer reads them from a saved state (root brands for reactions, LRU order of saved keys).
        root, last = forward.pop("root"), forward.pop("last")
        state: dict[str, Any] = {
            "v": STATE_VERSION,
            "root_id": self.root_id,
            "brands": list(self.brands),
            "last": last,
            "root": root,
            "ids": pack_ids(self.recent_ids),
            "forward": forward,
            "negative": negative,
        }
        if self.paging:
            state["paging"] = {k: list(v) for k, v in self.paging.items()}
        if self.duplicates:
            state["duplicates"] = self.duplicates
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any], config: DetectorsConfig) -> CascadeState:
        version = state.get("v")
        if version == 1:
            state, version = _upgrade_v1(state), 2
        if version == 2:  # one versioned sub-state per detector, under the detectors' names
            forward = dict(state[NAME], root=state["root"], last=state["last"])
            negative = state["negative_surge"]
        else:
            check_version(state, "cascade", STATE_VERSION)
            forward = dict(state["forward"], v=V3_FORWARD, root=state["root"], last=state["last"])
            negative = dict(state["negative"], v=V3_NEGATIVE)
        root_id = str(state["root_id"])
        self = cls(root_id, config)
        self.brands = tuple(state["brands"])
        self.recent_ids = unpack_ids(state["ids"])
        self.duplicates = int(state.get("duplicates", 0))
        self.paging = {k: list(v) for k, v in state.get("paging", {}).items()}
        self.forward = ForwardSurge.from_state(root_id, forward, config.forward_surge)
        self.negative = CascadeNegativeSurge.from_state(
            root_id, negative, config.negative_surge, config.forward_surge.sample_comments
        )
        self.sync_incidents()
        return self


def _upgrade_v1(old: dict[str, Any]) -> dict[str, Any]:
    """A version-1 cascade record (one flat record) as version 2 (one sub-state per detector)."""
    forwards, comments, reach, text_posts, negative_posts, late, duplicates = old["counts"]
    eval_at, eval_bucket, peak = old["eval"]
    paging = old["paging"]
    forward_open = any(v[0] is not None for k, v in paging.items() if not k.startswith("~"))
    negative_open = any(v[0] is not None for k, v in paging.items() if k.startswith("~"))
    return {
        "v": 2,
        "root_id": old["root_id"],
        "brands": old["brands"],
        "last": old["last"],
        "root": old["root"],
        "ids": old["ids"],
        "duplicates": duplicates,
        "paging": paging,
        NAME: {
            "v": 1,
            "t0": old["t0"],
            "counts": [forwards, comments, reach, late],
            "rate": old["rate"],
            "exp": old["exp"],
            "amp": old["amp"],
            "eval": [eval_at, eval_bucket, peak, forward_open],
        },
        "negative_surge": {
            "v": 1,
            "counts": [text_posts, negative_posts],
            "talk": old["talk"],
            "samples": old["samples"],
            "eval": [0, -1, negative_open],
        },
    }

"""Per complaint cascade (root_id) state: spread rate, reach, amplifiers, negativity, SEISMIC projection.

One `CascadeState` per root, folded one post at a time in O(1): a ring of minute buckets for the rate,
a ring for the comments' negative share, running totals, a handful of exponential sums for the projection,
and the few things a page shows (root text, top amplifiers, sample comments), all bounded.

Projection (Zhao et al., "SEISMIC", KDD 2015): every event i with n_i followers exposes them with a memory
kernel phi; the infectiousness estimate is p = R / sum_i n_i Phi(t - t_i), and the final size is
R + alpha * p * sum_i n_i (1 - Phi(t - t_i)) / (1 - gamma * p * n_star). phi is approximated by a sum of
exponentials (`stats.kernel_mixture`) so the sums update exactly and the state stays a fixed size.
"""

from __future__ import annotations

import math
import zlib
from typing import Any

import numpy as np

from crisiswatch.detectors.config import DetectorsConfig
from crisiswatch.detectors.events import EnrichedPost
from crisiswatch.detectors.stats import anscombe_z, kernel_mixture, wilson_bounds
from crisiswatch.detectors.windows import Ring

STATE_VERSION = 1
ROOT_TEXT_CHARS = 500
COMMENT_TEXT_CHARS = 280
MAX_BRANDS = 3


def post_hash(post_id: str) -> int:
    """A stable 32-bit id hash for duplicate detection (Python's hash() is salted per process)."""
    return zlib.crc32(post_id.encode())


class CascadeState:
    """Everything the detectors keep about one cascade; `state()`/`load()` round-trip it exactly."""

    __slots__ = (
        "root_id",
        "brands",
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
        "text_posts",
        "negative_posts",
        "late",
        "duplicates",
        "rate",
        "talk",
        "exp_sums",
        "exp_ref_s",
        "resharer_weight",
        "amplifiers",
        "samples",
        "recent_ids",
        "paging",
        "eval_at",
        "eval_bucket",
        "peak_window",
    )

    def __init__(self, root_id: str, config: DetectorsConfig) -> None:
        fs = config.forward_surge
        ns = config.negative_surge
        self.root_id = root_id
        self.brands: tuple[str, ...] = ()
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
        self.text_posts = 0  # comments/forwards with own text
        self.negative_posts = 0  # ... of which negative or complaint
        self.late = 0
        self.duplicates = 0
        # channels: events, weighted reach
        self.rate = Ring(fs.bucket_s, round(fs.window_s / fs.bucket_s), 2)
        # channels: own-text reactions, negative ones
        self.talk = Ring(ns.bucket_s, round(ns.window_s / ns.bucket_s), 2)
        weights, _ = kernel_mixture(fs.kernel_s0_s, fs.kernel_theta)
        self.exp_sums = [0.0] * len(weights)
        self.exp_ref_s = -math.inf
        self.resharer_weight = 0.0  # sum of n_i over resharers (followers, at least 1)
        self.amplifiers: list[list[Any]] = []  # [author_id, followers, verified], biggest first
        self.samples: list[list[Any]] = []  # [own_text, negative?]
        self.recent_ids: list[int] = []
        # brand ('~brand' for the comments' negative_surge) -> [severity or None, size at last emission, unused, started_s]
        self.paging: dict[str, list[Any]] = {}
        self.eval_at = 0  # next events_total at which a full evaluation is due
        self.eval_bucket = -1
        self.peak_window = 0.0

    @property
    def events(self) -> int:
        return self.forwards + self.comments

    # ------------------------------------------------------------------ folding
    def observe(self, item: EnrichedPost, config: DetectorsConfig) -> bool:
        """Fold one post in; False when it changed nothing (duplicate or too late)."""
        weight = self.fold(item, config)
        if weight > 0.0:
            fs = config.forward_surge
            self._add_exposure(item.post.created_at_s, weight, fs.kernel_s0_s, fs.kernel_theta)
        return weight >= 0.0

    def fold(self, item: EnrichedPost, config: DetectorsConfig) -> float:
        """Fold one post in, except its exposure in the projection's sums, which the caller adds (one at a
        time with `_add_exposure`, or a batch at once with `add_exposures`).

        Returns -1.0 when nothing changed (duplicate or too late), 0.0 for the root, else the reaction's
        exposure weight (followers, at least 1). The hot path: window adds inlined, no allocation.
        """
        post = item.post
        keep = config.dedup_ids
        if keep:
            h = zlib.crc32(post.id.encode())
            recent = self.recent_ids
            if h in recent:
                self.duplicates += 1
                return -1.0
            recent.append(h)
            if len(recent) > keep:
                del recent[0]
        if not self.brands and item.brands:
            self.brands = tuple(item.brands[:MAX_BRANDS])
        kind = post.kind
        if kind == "post" or post.id == self.root_id:
            self._observe_root(item)
            return 0.0
        t = post.created_at_s
        author = post.author
        followers = author.followers if author.followers > 0 else 0
        fs = config.forward_surge
        weighted = followers * fs.verified_weight if author.verified else float(followers)
        rate = self.rate
        index = int(t // rate.bucket_s)
        if index > rate.head:
            rate.roll(index)
        elif index <= rate.head - rate.n:
            self.late += 1
            return -1.0
        slot = index % rate.n
        sums, totals = rate.sums, rate.totals
        sums[0][slot] += 1.0
        sums[1][slot] += weighted
        totals[0] += 1.0
        totals[1] += weighted
        if t < self.t0_s:
            self.t0_s = t
        if t > self.last_s:
            self.last_s = t
        if kind == "forward":
            self.forwards += 1
        else:
            self.comments += 1
        self.reach_followers += followers
        n_i = float(followers) if followers > 1 else 1.0
        self.resharer_weight += n_i
        if followers > 0 and fs.top_amplifiers:
            amplifiers = self.amplifiers
            if len(amplifiers) < fs.top_amplifiers or followers > amplifiers[-1][1]:
                self._note_amplifier(author.id, followers, author.verified, fs.top_amplifiers)
        negative_probability = item.negative_probability
        if negative_probability is not None:
            ns = config.negative_surge
            complaint = item.complaint_probability
            negative = negative_probability >= ns.negative_probability or (
                complaint is not None and complaint >= ns.complaint_probability
            )
            self.text_posts += 1
            self.negative_posts += negative
            talk = self.talk
            index = int(t // talk.bucket_s)
            if index > talk.head:
                talk.roll(index)
            if index > talk.head - talk.n:  # else older than the talk window: only the totals count it
                slot = index % talk.n
                talk.sums[0][slot] += 1.0
                talk.totals[0] += 1.0
                if negative:
                    talk.sums[1][slot] += 1.0
                    talk.totals[1] += 1.0
            if fs.sample_comments and item.own_text:
                self._note_sample(item.own_text, negative, fs.sample_comments)
        return n_i

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
        if item.brands:
            self.brands = tuple(item.brands[:MAX_BRANDS])
        self.t0_s = min(self.t0_s, post.created_at_s)
        if post.created_at_s > self.last_s:
            self.last_s = post.created_at_s

    def _add_exposure(self, t: float, weight: float, s0_s: float, theta: float) -> None:
        _, rates = kernel_mixture(s0_s, theta)
        sums = self.exp_sums
        if t >= self.exp_ref_s:
            if self.exp_ref_s == -math.inf:
                for k in range(len(sums)):
                    sums[k] = weight
            else:
                dt = t - self.exp_ref_s
                for k, b in enumerate(rates):
                    sums[k] = sums[k] * math.exp(-b * dt) + weight
            self.exp_ref_s = t
        else:
            dt = self.exp_ref_s - t
            for k, b in enumerate(rates):
                sums[k] += weight * math.exp(-b * dt)

    @staticmethod
    def add_exposures(
        states: list[CascadeState],
        times: list[float],
        weights: list[float],
        owners: list[int],
        config: DetectorsConfig,
    ) -> None:
        """Add many reactions' exposure at once (vectorised over a batch); reaction j belongs to
        `states[owners[j]]`. Each state's sums move to its newest time T and gain sum_j w_j exp(-b (T - t_j)):
        the sums the one-at-a-time path builds, up to rounding."""
        fs = config.forward_surge
        rates = np.asarray(kernel_mixture(fs.kernel_s0_s, fs.kernel_theta)[1])
        t = np.asarray(times)
        owner = np.asarray(owners)
        refs = np.array([s.exp_ref_s for s in states])
        newest = np.full(len(states), -np.inf)
        np.maximum.at(newest, owner, t)
        target = np.maximum(newest, refs)
        contribution = np.exp(-np.outer(target[owner] - t, rates)) * np.asarray(weights)[:, None]
        added = np.zeros((len(states), len(rates)))
        np.add.at(added, owner, contribution)
        old = np.array([s.exp_sums for s in states])
        started = np.isfinite(refs)
        gap = np.where(started, target - np.where(started, refs, 0.0), 0.0)
        new = old * np.exp(-np.outer(gap, rates)) + added
        for state, sums, ref in zip(states, new.tolist(), target.tolist(), strict=True):
            state.exp_sums = sums
            state.exp_ref_s = ref

    def _note_amplifier(self, author_id: str, followers: int, verified: bool, keep: int) -> None:
        entries = self.amplifiers
        if len(entries) >= keep and followers <= entries[-1][1]:
            return
        for entry in entries:
            if entry[0] == author_id:
                return
        entries.append([author_id, followers, verified])
        entries.sort(key=lambda e: (-e[1], e[0]))
        del entries[keep:]

    def _note_sample(self, text: str, negative: bool, keep: int) -> None:
        if len(self.samples) < keep:
            self.samples.append([text[:COMMENT_TEXT_CHARS], negative])
            return
        if negative:
            for sample in self.samples:
                if not sample[1]:
                    sample[0] = text[:COMMENT_TEXT_CHARS]
                    sample[1] = True
                    return

    # ------------------------------------------------------------------ scoring
    def projection(self, now_s: float, config: DetectorsConfig) -> tuple[float, float]:
        """(projected final number of events, infectiousness p) at event time `now_s` (SEISMIC)."""
        fs = config.forward_surge
        seen = float(self.events)
        if self.events < fs.projection_min_events or now_s - self.t0_s < fs.projection_min_age_s:
            return seen, 0.0
        weights, rates = kernel_mixture(fs.kernel_s0_s, fs.kernel_theta)
        root_weight = float(self.root_followers) if self.root_followers > 0 else fs.root_default_followers
        root_weight = max(root_weight, 1.0)
        total = self.resharer_weight + root_weight
        dt = max(now_s - self.exp_ref_s, 0.0)
        root_age = max(now_s - self.t0_s, 0.0)
        tail = 1.0 - sum(weights)
        remaining = tail * total
        for w, b, s in zip(weights, rates, self.exp_sums, strict=True):
            remaining += w * (s * math.exp(-b * dt) + root_weight * math.exp(-b * root_age))
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

    def metrics(self, now_s: float, config: DetectorsConfig, expected_per_min: float) -> dict[str, Any]:
        """What a page shows and what paging decides on, at event time `now_s`."""
        m = self.decision_metrics(now_s, config, expected_per_min)
        self.add_page_metrics(m, now_s, config)
        return m

    def decision_metrics(
        self, now_s: float, config: DetectorsConfig, expected_per_min: float
    ) -> dict[str, Any]:
        """Only the numbers paging decides on (cheap); `add_page_metrics` completes them for an emitted page."""
        fs = config.forward_surge
        ns = config.negative_surge
        rate, talk = self.rate, self.talk
        rate.roll(int(now_s // rate.bucket_s))
        talk.roll(int(now_s // talk.bucket_s))
        window_events = rate.totals[0]
        expected = expected_per_min * (fs.window_s / 60.0)
        projected, p = self.projection(now_s, config)
        seen = self.events
        mean_followers = self.reach_followers / seen if seen else 0.0
        reach = self.root_followers + self.reach_followers
        lower, _ = wilson_bounds(self.negative_posts, self.text_posts, ns.wilson_z)
        window_lower, _ = wilson_bounds(talk.totals[1], talk.totals[0], ns.wilson_z)
        return {
            "window_events": int(window_events),
            "expected_window_events": round(expected, 3),
            "rate_z": round(anscombe_z(window_events, expected), 3),
            "projected_final_size": round(projected, 1),
            "projected_reach": round(reach + max(projected - seen, 0.0) * mean_followers, 0),
            "infectiousness": round(p, 8),
            "negative_share_lower": round(lower, 4),
            "negative_posts": self.negative_posts,
            "text_posts": self.text_posts,
            "window_text_posts": int(talk.totals[0]),
            "window_negative_posts": int(talk.totals[1]),
            "window_negative_share_lower": round(window_lower, 4),
            "root_negative_probability": self.root_negative,
            "complaint_probability": self.root_complaint,
            "max_amplifier_followers": self.amplifiers[0][1] if self.amplifiers else 0,
        }

    def add_page_metrics(self, m: dict[str, Any], now_s: float, config: DetectorsConfig) -> None:
        """The rest of what a page shows (texts, lists, totals), added to `decision_metrics`' dict in place."""
        seen = self.events
        m.update(
            {
                "forwards_per_minute": round(self.rate.totals[0] / (config.forward_surge.window_s / 60.0), 3),
                "forwards_total": self.forwards,
                "comments_total": self.comments,
                "events_total": seen,
                "reach_followers": self.root_followers + self.reach_followers,
                "weighted_reach_window": int(self.rate.totals[1]),
                "age_s": round(max(now_s - self.t0_s, 0.0), 1),
                "negative_share": round(self.negative_posts / self.text_posts, 4)
                if self.text_posts
                else None,
                "category": self.category,
                "root_text": self.root_text,
                "root_url": self.root_url,
                "root_author_id": self.root_author,
                "root_followers": self.root_followers,
                "top_amplifiers": [
                    {"author_id": a, "followers": f, "verified": v} for a, f, v in self.amplifiers
                ],
                "sample_comments": [sample[0] for sample in self.samples],
                "late_events": self.late,
            }
        )

    # ------------------------------------------------------------------ state
    def state(self) -> dict[str, Any]:
        return {
            "v": STATE_VERSION,
            "root_id": self.root_id,
            "brands": list(self.brands),
            "t0": _finite(self.t0_s),
            "last": _finite(self.last_s),
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
            "counts": [
                self.forwards,
                self.comments,
                self.reach_followers,
                self.text_posts,
                self.negative_posts,
                self.late,
                self.duplicates,
            ],
            "rate": self.rate.state(),
            "talk": self.talk.state(),
            "exp": [_finite(self.exp_ref_s), self.resharer_weight, list(self.exp_sums)],
            "amp": [list(a) for a in self.amplifiers],
            "samples": [list(s) for s in self.samples],
            "ids": list(self.recent_ids),
            "paging": {k: list(v) for k, v in self.paging.items()},
            "eval": [self.eval_at, self.eval_bucket, self.peak_window],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], config: DetectorsConfig) -> CascadeState:
        version = state.get("v")
        if version != STATE_VERSION:
            raise ValueError(f"cascade state version {version!r} is not supported (expected {STATE_VERSION})")
        self = cls(str(state["root_id"]), config)
        self.brands = tuple(state["brands"])
        self.t0_s = _infinite(state["t0"], math.inf)
        self.last_s = _infinite(state["last"], -math.inf)
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
        (
            self.forwards,
            self.comments,
            self.reach_followers,
            self.text_posts,
            self.negative_posts,
            self.late,
            self.duplicates,
        ) = state["counts"]
        self.rate.load(state["rate"])
        self.talk.load(state["talk"])
        ref, self.resharer_weight, sums = state["exp"]
        self.exp_ref_s = _infinite(ref, -math.inf)
        if len(sums) != len(self.exp_sums):
            raise ValueError("cascade state was written with a different projection kernel")
        self.exp_sums = [float(s) for s in sums]
        self.amplifiers = [list(a) for a in state["amp"]]
        self.samples = [list(s) for s in state["samples"]]
        self.recent_ids = [int(i) for i in state["ids"]]
        self.paging = {k: list(v) for k, v in state["paging"].items()}
        self.eval_at, self.eval_bucket, self.peak_window = state["eval"]
        return self


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _infinite(value: float | None, default: float) -> float:
    return default if value is None else float(value)

"""negative_surge: the share of negative own-text posts in a sliding window against the brand's baseline.

Two detectors share the window arithmetic:
- `BrandNegativeSurge`, one per brand: the brand's original posts (`brand_originals_only`, the default;
  else every post about the brand with its own text). A brand-wide shift is many people posting on their
  own; the reactions under one post are that cascade's (below), and counting them here let one big cascade
  swing the brand's share and page it twice. Its baseline is a pair
  of exponentially decayed counts (negatives, posts) learnt only from buckets leaving the window, and frozen
  while the brand has an open negative surge (`protect_baseline`), so an incident never becomes the normal.
- `CascadeNegativeSurge`, one per complaint cascade: the reactions with their own text (comments, quoted
  forwards), judged against the baseline share of the cascade's brand (given by the engine).

Score value (both): the beta-binomial z of the window's negatives against the baseline share, allowing for
over-dispersion (`stats.beta_binomial_z`); `surge_z` (default 3) is a surge, below `resolve_z` is calm.
A significance test that behaves for small brands: volume floors, and the Wilson lower bound of the share
must exceed the baseline by `min_share_increase` (the paging policy applies both).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from crisiswatch.detectors.base import (
    NO_METRICS,
    PostBatch,
    Score,
    check_version,
    new_score,
    not_judged,
    runs,
)
from crisiswatch.detectors.config import NegativeSurgeConfig
from crisiswatch.detectors.events import EnrichedPost
from crisiswatch.detectors.stats import beta_binomial_z, wilson_bounds
from crisiswatch.detectors.windows import Ring, whole

NAME = "negative_surge"
COMMENT_TEXT_CHARS = 280
NONE = -(2**62)


def _fold_runs(
    detectors: Sequence[CascadeNegativeSurge] | Sequence[BrandNegativeSurge],
    batch: PostBatch,
    rows: np.ndarray,
    owners: np.ndarray,
) -> tuple[np.ndarray, list[float | None]]:
    """The batch path shared by both negative-share detectors: each row judged negative or not, the rows
    summed per (detector, bucket) run and added to that detector's window. Returns the per-row verdicts
    and each detector's newest event time in the batch (None for a detector without rows)."""
    configs = [d.config for d in detectors]
    negative = _batch_negative(batch, rows, owners, configs)
    times = batch.times[rows]
    bucket_s = np.array([c.bucket_s for c in configs])[owners]
    index = np.floor(times / bucket_s).astype(np.int64)
    order, starts, run_owner, run_index = runs(owners, index)
    ends = np.append(starts[1:], len(order))
    negatives = np.add.reduceat(negative[order].astype(np.int64), starts)
    last_times = times[order][ends - 1]
    newest: list[float | None] = [None] * len(detectors)
    for o, i, size, k, t in zip(
        run_owner.tolist(),
        run_index.tolist(),
        (ends - starts).tolist(),
        negatives.tolist(),
        last_times.tolist(),
        strict=True,
    ):
        detectors[o]._add(i, size, k)
        newest[o] = t
    return negative, newest


def _batch_negative(
    batch: PostBatch, rows: np.ndarray, owners: np.ndarray, configs: Sequence[NegativeSurgeConfig]
) -> np.ndarray:
    threshold = np.array([c.negative_probability for c in configs])[owners]
    complaint = np.array([c.complaint_probability for c in configs])[owners]
    with np.errstate(invalid="ignore"):
        return (batch.negative_probability[rows] >= threshold) | (
            batch.complaint_probability[rows] >= complaint
        )


class CascadeNegativeSurge:
    """negative_surge over one cascade's own-text reactions (see the module docstring for the scale).

    `baseline_share` is context, not state: the engine sets it to the brand's learnt share before an
    update (default: the config's `prior_share`). `in_incident` is set by the engine while the paging
    policy holds an open negative surge for this cascade: the detector then judges every update.
    """

    name: ClassVar[str] = NAME
    STATE_VERSION: ClassVar[int] = 2  # version 1 (dense window ring) still loads

    __slots__ = (
        "key",
        "config",
        "sample_comments",
        "talk",
        "text_posts",
        "negative_posts",
        "samples",
        "eval_at",
        "eval_bucket",
        "in_incident",
        "baseline_share",
        "last_value",
        "_judged",
    )

    def __init__(self, key: str, config: NegativeSurgeConfig, sample_comments: int = 3) -> None:
        self.key = key
        self.config = config
        self.sample_comments = sample_comments
        self.talk = Ring(config.bucket_s, round(config.window_s / config.bucket_s), 2)
        self.text_posts = 0
        self.negative_posts = 0
        self.samples: list[list[Any]] = []  # [own_text, negative?], negative ones preferred
        self.eval_at = 0  # text posts at which the next judgement is due
        self.eval_bucket = -1  # talk bucket of the last judgement
        self.in_incident = False
        self.baseline_share = config.prior_share
        self.last_value = 0.0  # the last judged z: the value of an unjudged score
        self._judged: tuple[Any, ...] | None = None  # (inputs, z, metrics) of the last judgement

    # ------------------------------------------------------------------ folding
    def update(self, item: EnrichedPost) -> Score:
        post = item.post
        if item.negative_probability is None or post.kind == "post" or post.id == self.key:
            return self._idle_score(post.created_at_s)  # nothing this detector counts
        t = post.created_at_s
        ns = self.config
        c = item.complaint_probability  # the rule of `_batch_negative`, one post
        negative = item.negative_probability >= ns.negative_probability or (
            c is not None and c >= ns.complaint_probability
        )
        talk = self.talk
        index = int(t // talk.bucket_s)
        if index == talk.head:  # the common case of `_add`, inlined
            self.text_posts += 1
            slot = index % talk.n
            talk.sums[0][slot] += 1
            talk.totals[0] += 1
            if negative:
                self.negative_posts += 1
                talk.sums[1][slot] += 1
                talk.totals[1] += 1
        else:
            self._add(index, 1, int(negative))
        # a sample is taken while there is room, else only a negative one may replace a neutral one
        if self.sample_comments and item.own_text and (negative or len(self.samples) < self.sample_comments):
            self._note_sample(item.own_text, negative)
        return self._after_fold(t)

    def _add(self, index: int, posts: int, negatives: int) -> None:
        self.text_posts += posts
        self.negative_posts += negatives
        talk = self.talk
        if index > talk.head:
            talk.roll(index)
        if index > talk.head - talk.n:  # else older than the window: only the totals count it
            slot = index % talk.n
            talk.sums[0][slot] += posts
            talk.totals[0] += posts
            if negatives:
                talk.sums[1][slot] += negatives
                talk.totals[1] += negatives

    def _after_fold(self, t: float) -> Score:
        ns = self.config
        talk = self.talk
        n, k = talk.totals
        could = self.in_incident or (k >= ns.cascade_min_negative and n >= ns.cascade_min_posts)
        if could and (self.text_posts >= self.eval_at or talk.head != self.eval_bucket):
            # without an open incident, judge only what could fire: the z reaches surge_z
            if (
                self.in_incident
                or beta_binomial_z(k, n, self.baseline_share, ns.overdispersion) >= ns.surge_z
            ):
                return self.score_at(t)
            self.eval_at = self.text_posts + max(self.text_posts // 20, 3)
            self.eval_bucket = talk.head
        return _cheap_score(self.key, self.last_value, t)

    def _idle_score(self, t: float) -> Score:
        """The cheap score (no metrics): the window's z as it stands."""
        return _cheap_score(self.key, self.last_value, t)

    def _note_sample(self, text: str, negative: bool) -> None:
        samples = self.samples
        if len(samples) < self.sample_comments:
            samples.append([text[:COMMENT_TEXT_CHARS], negative])
            return
        if negative:
            for sample in samples:
                if not sample[1]:
                    sample[0] = text[:COMMENT_TEXT_CHARS]
                    sample[1] = True
                    return

    def _wants_samples(self) -> bool:
        return bool(self.sample_comments) and (
            len(self.samples) < self.sample_comments or not all(s[1] for s in self.samples)
        )

    @classmethod
    def update_many(
        cls,
        detectors: Sequence[CascadeNegativeSurge],
        batch: PostBatch,
        rows: np.ndarray,
        owners: np.ndarray,
    ) -> list[Score | None]:
        """The batch path (module `base`): counts summed per (cascade, bucket) run; one score per cascade
        that counted a row, None for the others."""
        keep = ~batch.is_root[rows] & ~np.isnan(batch.negative_probability[rows])
        rows, owners = rows[keep], owners[keep]
        out: list[Score | None] = [None] * len(detectors)
        if not len(rows):
            return out
        negative, newest = _fold_runs(detectors, batch, rows, owners)
        wants = np.array([d._wants_samples() for d in detectors])[owners]
        if wants.any():
            posts = batch.posts
            for r, o, neg in zip(
                rows[wants].tolist(), owners[wants].tolist(), negative[wants].tolist(), strict=True
            ):
                detector = detectors[o]
                if neg or len(detector.samples) < detector.sample_comments:  # else it replaces nothing
                    text = posts[r].own_text
                    if text:
                        detector._note_sample(text, neg)
        for o, t in enumerate(newest):
            if t is not None:
                out[o] = detectors[o]._after_fold(t)
        return out

    # ------------------------------------------------------------------ scoring
    def score_at(self, now_s: float, baseline_share: float | None = None) -> Score:
        ns = self.config
        share0 = self.baseline_share if baseline_share is None else baseline_share
        talk = self.talk
        talk.roll(int(now_s // talk.bucket_s))
        # the gate of `_after_fold` counts from the last judgement, whoever asked for it
        self.eval_at = self.text_posts + max(self.text_posts // 20, 3)
        self.eval_bucket = talk.head
        n, k = talk.totals
        # A forward surge judges the cascade at every forward while the comments stand still: the same
        # inputs give the same numbers, so the last judgement's are reused (a copy: callers own `metrics`).
        inputs = (self.negative_posts, self.text_posts, n, k, share0)
        judged = self._judged
        if judged is not None and judged[0] == inputs:
            z, m = judged[1], dict(judged[2])
        else:
            lower, _ = wilson_bounds(self.negative_posts, self.text_posts, ns.wilson_z)
            window_lower, _ = wilson_bounds(k, n, ns.wilson_z)
            z = round(beta_binomial_z(k, n, share0, ns.overdispersion), 3)
            m = {
                "negative_share_lower": round(lower, 4),
                "negative_posts": self.negative_posts,
                "text_posts": self.text_posts,
                "window_text_posts": int(n),
                "window_negative_posts": int(k),
                "window_negative_share_lower": round(window_lower, 4),
                "baseline_negative_share": round(share0, 4),
                "negative_z": z,
            }
            self._judged = (inputs, z, dict(m))
        self.last_value = z
        return new_score(
            Score, (NAME, self.key, z, now_s, m, lambda: _sentence(k, n, share0, z, ns.window_s))
        )

    def page_metrics(self) -> dict[str, Any]:
        """What a page shows of the cascade's reactions."""
        return {
            "negative_share": round(self.negative_posts / self.text_posts, 4) if self.text_posts else None,
            "sample_comments": [sample[0] for sample in self.samples],
        }

    # ------------------------------------------------------------------ state
    def to_state(self) -> dict[str, Any]:
        """Version 2: the window ring sparse (`Ring.sparse_state`), flags as 0/1, whole floats as ints."""
        return {
            "v": self.STATE_VERSION,
            "counts": [self.text_posts, self.negative_posts],
            "talk": self.talk.sparse_state(),
            "samples": [[text, int(negative)] for text, negative in self.samples],
            "eval": [self.eval_at, self.eval_bucket, int(self.in_incident), whole(self.last_value)],
        }

    @classmethod
    def from_state(
        cls, key: str, state: dict[str, Any], config: NegativeSurgeConfig, sample_comments: int = 3
    ) -> CascadeNegativeSurge:
        version = state.get("v")
        if version != 1:  # version 1: the dense ring of `Ring.state`
            check_version(state, "cascade negative_surge", cls.STATE_VERSION)
        self = cls(key, config, sample_comments)
        self.text_posts, self.negative_posts = (int(x) for x in state["counts"])
        if version == 1:
            self.talk.load(state["talk"])
        else:
            self.talk.load_sparse(state["talk"])
        self.samples = [[text, bool(negative)] for text, negative in state["samples"]]
        self.eval_at, self.eval_bucket, self.in_incident = (
            int(state["eval"][0]),
            int(state["eval"][1]),
            bool(state["eval"][2]),
        )
        self.last_value = float(state["eval"][3]) if len(state["eval"]) > 3 else 0.0
        return self


class BrandNegativeSurge:
    """negative_surge over one brand's original posts (`brand_originals_only`; else all its own-text posts; see
    the module docstring for the scale).

    `in_incident` is set by the engine while the paging policy holds an open brand negative surge: the
    baseline then stops learning (`protect_baseline`) and every new negative is judged.
    """

    name: ClassVar[str] = NAME
    STATE_VERSION: ClassVar[int] = 1

    __slots__ = (
        "key",
        "config",
        "talk",
        "base_posts",
        "base_negative",
        "base_buckets",
        "late",
        "eval_at",
        "eval_bucket",
        "in_incident",
        "last_value",
        "_decay_one",
    )

    def __init__(self, key: str, config: NegativeSurgeConfig) -> None:
        self.key = key
        self.config = config
        self.talk = Ring(config.bucket_s, round(config.window_s / config.bucket_s), 2)
        self.base_posts = 0.0
        self.base_negative = 0.0
        self.base_buckets = 0.0
        self.late = 0
        # negatives in the window at which the next judgement is due, and the bucket of the last one
        self.eval_at = 0
        self.eval_bucket = -1
        self.in_incident = False
        self.last_value = 0.0  # the last judged z: the value of an unjudged score
        self._decay_one = 0.5 ** (config.bucket_s / config.baseline_half_life_s)

    # ------------------------------------------------------------------ folding
    def update(self, item: EnrichedPost) -> Score:
        t = item.post.created_at_s
        p = item.negative_probability
        if p is None or (self.config.brand_originals_only and not item.post.is_root):
            return self._idle_score(t)
        ns = self.config
        c = item.complaint_probability  # the rule of `_batch_negative`, one post
        negative = p >= ns.negative_probability or (c is not None and c >= ns.complaint_probability)
        talk = self.talk
        index = int(t // talk.bucket_s)
        if index == talk.head:  # the common case of `_add`, inlined
            slot = index % talk.n
            talk.sums[0][slot] += 1
            talk.totals[0] += 1
            if negative:
                talk.sums[1][slot] += 1
                talk.totals[1] += 1
        else:
            self._add(index, 1, int(negative))
        # `_after_fold`, inlined: judge only when the window's negatives grew 5% or a new bucket began
        k = talk.totals[1]
        if (k < ns.min_negative and not self.in_incident) or (
            k < self.eval_at and talk.head == self.eval_bucket
        ):
            return new_score(Score, (NAME, self.key, self.last_value, t, NO_METRICS, not_judged))
        return self.score_at(t)

    def _add(self, index: int, posts: int, negatives: int) -> None:
        talk = self.talk
        if index > talk.head:
            self._roll(index)
        elif index <= talk.head - talk.n:
            self.late += posts
            return
        slot = index % talk.n
        talk.sums[0][slot] += posts
        talk.totals[0] += posts
        if negatives:
            talk.sums[1][slot] += negatives
            talk.totals[1] += negatives

    def _roll(self, index: int) -> None:
        """Move the window to bucket `index`; buckets leaving the window teach the baseline.

        Learning only what leaves the window (an hour late by default) gives the detector that long to
        notice an incident before any of it can enter the baseline; during an open negative surge nothing
        is learnt (`protect_baseline`).
        """
        talk = self.talk
        head = talk.head
        if index <= head:
            return
        n = talk.n
        protected = self.config.protect_baseline and self.in_incident
        if head > NONE:
            decay_one = self._decay_one
            sums_posts, sums_negative = talk.sums
            for j in range(max(head - n + 1, index - n - 10 * n), index - n + 1):
                self.base_posts *= decay_one
                self.base_negative *= decay_one
                self.base_buckets *= decay_one
                if j > head - n and not protected:
                    slot = j % n
                    self.base_posts += sums_posts[slot]
                    self.base_negative += sums_negative[slot]
                    self.base_buckets += 1.0
        talk.roll(index)

    def _after_fold(self, t: float) -> Score:
        """Judge only when the window's negatives grew 5% or a new bucket began (a cheap gate)."""
        talk = self.talk
        k = talk.totals[1]
        if (k < self.config.min_negative and not self.in_incident) or (
            k < self.eval_at and talk.head == self.eval_bucket
        ):
            return _cheap_score(self.key, self.last_value, t)
        return self.score_at(t)

    def _idle_score(self, t: float) -> Score:
        """The cheap score (no metrics): the window's z as it stands."""
        return _cheap_score(self.key, self.last_value, t)

    @classmethod
    def update_many(
        cls,
        detectors: Sequence[BrandNegativeSurge],
        batch: PostBatch,
        rows: np.ndarray,
        owners: np.ndarray,
    ) -> list[Score | None]:
        """The batch path: counts summed per (brand, bucket) run; each brand that counted a row is scored
        once, at its newest own-text post (in arrival order); None for the others."""
        keep = ~np.isnan(batch.negative_probability[rows])
        originals_only = np.array([d.config.brand_originals_only for d in detectors])[owners]
        if originals_only.any():
            keep &= batch.is_root[rows] | ~originals_only
        rows, owners = rows[keep], owners[keep]
        out: list[Score | None] = [None] * len(detectors)
        if not len(rows):
            return out
        _, newest = _fold_runs(detectors, batch, rows, owners)
        for o, t in enumerate(newest):
            if t is not None:
                out[o] = detectors[o]._after_fold(t)
        return out

    # ------------------------------------------------------------------ scoring
    def baseline_share(self) -> float:
        ns = self.config
        return (self.base_negative + ns.prior_share * ns.prior_posts) / (self.base_posts + ns.prior_posts)

    def expected_window_negatives(self) -> float:
        n = self.talk.n
        if self.base_buckets < n:
            return 0.0
        return self.base_negative / self.base_buckets * n

    def score_at(self, now_s: float) -> Score:
        ns = self.config
        self._roll(int(now_s // self.talk.bucket_s))
        n, k = self.talk.totals
        # the gate of `_after_fold` counts from the last judgement, whoever asked for it
        self.eval_at = int(k * 1.05) + 1
        self.eval_bucket = self.talk.head
        share0 = self.baseline_share()
        window_s = ns.window_s
        lower, upper = wilson_bounds(k, n, ns.wilson_z)
        z = beta_binomial_z(k, n, share0, ns.overdispersion)
        fast_buckets = ns.fast_buckets
        if fast_buckets and not is_surge(n, k, z, lower, share0, ns):
            n_fast, k_fast = self.talk.recent(fast_buckets)
            lower_fast, upper_fast = wilson_bounds(k_fast, n_fast, ns.wilson_z)
            z_fast = beta_binomial_z(k_fast, n_fast, share0, ns.overdispersion)
            if is_surge(n_fast, k_fast, z_fast, lower_fast, share0, ns):
                window_s, n, k, lower, upper, z = (
                    fast_buckets * ns.bucket_s,
                    n_fast,
                    k_fast,
                    lower_fast,
                    upper_fast,
                    z_fast,
                )
        z = round(z, 3)
        self.last_value = z
        m = {
            "window_s": window_s,
            "window_text_posts": int(n),
            "window_negative_posts": int(k),
            "negative_share": round(k / n, 4) if n else None,
            "negative_share_lower": round(lower, 4),
            "negative_share_upper": round(upper, 4),
            "baseline_negative_share": round(share0, 4),
            "expected_window_negatives": round(self.expected_window_negatives() * window_s / ns.window_s, 2),
            "negative_z": z,
        }
        score = Score(NAME, self.key, z, now_s, m, lambda: _sentence(k, n, share0, z, window_s))
        return score

    # ------------------------------------------------------------------ state
    def to_state(self) -> dict[str, Any]:
        return {
            "v": self.STATE_VERSION,
            "talk": self.talk.state(),
            "base": [self.base_posts, self.base_negative, self.base_buckets],
            "late": self.late,
            "eval": [self.eval_at, self.eval_bucket, self.in_incident, self.last_value],
        }

    @classmethod
    def from_state(cls, key: str, state: dict[str, Any], config: NegativeSurgeConfig) -> BrandNegativeSurge:
        check_version(state, "brand negative_surge", cls.STATE_VERSION)
        self = cls(key, config)
        self.talk.load(state["talk"])
        self.base_posts, self.base_negative, self.base_buckets = (float(x) for x in state["base"])
        self.late = int(state["late"])
        self.eval_at, self.eval_bucket = int(state["eval"][0]), int(state["eval"][1])
        self.in_incident = bool(state["eval"][2])
        self.last_value = float(state["eval"][3]) if len(state["eval"]) > 3 else 0.0
        return self


def _cheap_score(key: str, last_value: float, t: float) -> Score:
    return new_score(Score, (NAME, key, last_value, t, NO_METRICS, not_judged))


def is_surge(
    n: float,
    k: float,
    z: float,
    lower: float,
    share0: float,
    ns: NegativeSurgeConfig,
    *,
    cascade: bool = False,
) -> bool:
    """The surge tests, shared by the detectors and the paging policy: volume floors (a cascade's are lower),
    z, and the Wilson lower bound above the baseline share by `min_share_increase`."""
    return (
        n >= (ns.cascade_min_posts if cascade else ns.min_posts)
        and k >= (ns.cascade_min_negative if cascade else ns.min_negative)
        and z >= ns.surge_z
        and lower >= share0 + ns.min_share_increase
    )


def _sentence(k: float, n: float, share0: float, z: float, window_s: float) -> str:
    return (
        f"{int(k)} of {int(n)} posts negative in {window_s / 60:g} min "
        f"(baseline share {share0:.0%}, z={z:.1f})"
    )

"""Typed configuration of the `detectors` section: every threshold, with its unit, overridable per brand.

`DetectorsConfig.from_mapping(section)` builds and validates it (errors name the key path relative to the
section); `config.with_overrides(brand.detector_overrides)` gives the brand's own copy. An empty section is
valid: the defaults are the documented operating point.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from crisiswatch.detectors.settings import ConfigError, require


def _positive(key: str, value: float) -> None:
    require(value > 0, key, value, "a number > 0")


def _non_negative(key: str, value: float) -> None:
    require(value >= 0, key, value, "a number >= 0")


def _probability(key: str, value: float) -> None:
    require(0.0 <= value <= 1.0, key, value, "a probability between 0 and 1")


def _window(window_s: float, bucket_s: float, max_buckets: int = 512) -> None:
    _positive("bucket_s", bucket_s)
    n = window_s / bucket_s
    require(
        abs(n - round(n)) < 1e-9 and 1 <= round(n) <= max_buckets,
        "window_s",
        window_s,
        f"a whole multiple (1..{max_buckets}) of bucket_s={bucket_s}",
    )


@dataclass(frozen=True, slots=True)
class ForwardSurgeConfig:
    """Cascade spread: forwards+comments per minute, reach, amplifiers, projected final size (SEISMIC)."""

    window_s: float = 600.0
    bucket_s: float = 60.0
    # Prior expected forwards+comments per minute of an ordinary cascade (a brand learns its own above it).
    expected_per_min: float = 0.5
    # Volume floor: fewer events in the window never count as a surge.
    min_events: int = 10
    # Anscombe z of the window count over the expected count: above `surge_z` spreads, below `resolve_z` calm.
    surge_z: float = 4.0
    resolve_z: float = 1.5
    # A projected final size at least this large counts as spread even before the rate surges.
    spread_projected_size: float = 300.0
    # The brand's own cascades set a second volume floor for the rate surge: the window count that its
    # ordinary cascades reach at most this often per day (the tail of their peak window counts, learnt as
    # cascades expire; `brand.CascadePeaks`). 0 turns the learnt floor off (only min_events applies).
    ordinary_surges_per_day: float = 0.5
    # The learnt floor applies once the brand has this much history (event time) ...
    peak_history_min_s: float = 6 * 3600.0
    # ... and its peaks are remembered with this half-life.
    peak_half_life_s: float = 7 * 86400.0
    # Reach weighting: verified forwarders' followers count this many times.
    verified_weight: float = 2.0
    # A forwarder with this many followers is a big account: it amplifies severity one step.
    big_account_followers: int = 100_000
    critical_projected_reach: float = 1_000_000.0
    critical_projected_size: float = 2_000.0
    # SEISMIC memory kernel (Zhao et al., KDD 2015): constant up to kernel_s0_s then power law with theta.
    kernel_s0_s: float = 300.0
    kernel_theta: float = 0.242
    # Calibration of the projection: final = seen + alpha * p * remaining / (1 - gamma * p * n_star);
    # alpha, gamma and root_default_followers tuned on half of twitter15_16 (bench/cascades.py).
    projection_alpha: float = 1.0
    projection_gamma: float = 0.0
    # Weight of the root in the point process, in followers, when its author's followers are unknown (0).
    root_default_followers: float = 1000.0
    # A projection is only trusted after this many events and this age of the cascade.
    projection_min_events: int = 10
    projection_min_age_s: float = 120.0
    # Mean followers reached per event (SEISMIC's n*); 0 uses the cascade's own mean resharer followers.
    projection_n_star: float = 0.0
    # Supercritical cascades (gamma * p * n_star >= 1) are projected at this size.
    projection_max_size: float = 1e6
    top_amplifiers: int = 3
    sample_comments: int = 3

    def __post_init__(self) -> None:
        _window(self.window_s, self.bucket_s)
        _positive("expected_per_min", self.expected_per_min)
        require(self.min_events >= 1, "min_events", self.min_events, "an integer >= 1")
        require(
            self.resolve_z < self.surge_z, "resolve_z", self.resolve_z, f"less than surge_z={self.surge_z}"
        )
        _positive("spread_projected_size", self.spread_projected_size)
        _non_negative("ordinary_surges_per_day", self.ordinary_surges_per_day)
        _non_negative("peak_history_min_s", self.peak_history_min_s)
        _positive("peak_half_life_s", self.peak_half_life_s)
        require(self.verified_weight >= 1, "verified_weight", self.verified_weight, "a number >= 1")
        _positive("big_account_followers", self.big_account_followers)
        _positive("critical_projected_reach", self.critical_projected_reach)
        _positive("critical_projected_size", self.critical_projected_size)
        _positive("kernel_s0_s", self.kernel_s0_s)
        require(0 < self.kernel_theta < 2, "kernel_theta", self.kernel_theta, "a number in (0, 2)")
        _positive("projection_alpha", self.projection_alpha)
        _non_negative("projection_gamma", self.projection_gamma)
        _non_negative("root_default_followers", self.root_default_followers)
        require(self.projection_min_events >= 1, "projection_min_events", self.projection_min_events, ">= 1")
        _non_negative("projection_min_age_s", self.projection_min_age_s)
        _non_negative("projection_n_star", self.projection_n_star)
        _positive("projection_max_size", self.projection_max_size)
        require(0 <= self.top_amplifiers <= 10, "top_amplifiers", self.top_amplifiers, "an integer 0..10")
        require(0 <= self.sample_comments <= 10, "sample_comments", self.sample_comments, "an integer 0..10")


@dataclass(frozen=True, slots=True)
class NegativeSurgeConfig:
    """Share of negative own-text posts in a sliding window against the brand's baseline share."""

    window_s: float = 3600.0
    bucket_s: float = 300.0
    # A brand's newest `fast_window_s` is judged as well, by the same tests: a sharp shift (an outage) shows
    # there before it moves the whole window's share past `min_share_increase`. The whole window is reported
    # unless only the fast one is a surge. Rounded down to whole buckets (`fast_buckets`); off when 0 or when
    # that is not shorter than window_s (so a shorter window_s or another bucket_s needs no change here).
    fast_window_s: float = 1800.0
    # The brand-wide share counts the brand's original posts only (a cascade's comments and quoted forwards
    # are judged with their cascade); false: every post with its own text, as before 2026-11-24.
    brand_originals_only: bool = True
    # A post counts as negative when its negative probability reaches this.
    negative_probability: float = 0.5
    # Volume floors per window: posts with own text, and negative ones among them.
    min_posts: int = 20
    min_negative: int = 8
    # Per cascade (comments with own text on one root) the floors are lower: a cascade is small.
    cascade_min_posts: int = 8
    cascade_min_negative: int = 5
    # The Wilson lower bound of the window share must exceed the baseline share by this much.
    min_share_increase: float = 0.15
    # z of the Wilson bound (2.576 = 99% two-sided).
    wilson_z: float = 2.576
    # Beta-binomial z of the window against the baseline: surge above, calm below resolve_z.
    surge_z: float = 3.0
    resolve_z: float = 1.0
    # Over-dispersion (intra-class correlation) of the beta-binomial: big brands' shares wander naturally.
    overdispersion: float = 0.01
    # Baseline prior, as pseudo-counts at this share, before a brand has history.
    prior_share: float = 0.25
    prior_posts: float = 50.0
    # A brand-wide negative surge pages only once the baseline has learnt from this many original (own-text) posts:
    # a brand whose normal share is far from the prior must not page on its first hour (a warm start from
    # `replay --save-state` skips the wait).
    baseline_min_posts: int = 200
    baseline_half_life_s: float = 7 * 86400.0
    # Spread evidence for the brand: negatives in the window at least this multiple of the expected number.
    spread_ratio: float = 2.0
    critical_negative_posts: int = 100
    # Root or comments count as a complaint from this probability on.
    complaint_probability: float = 0.5
    # The baseline stops learning while the brand has an open negative surge.
    protect_baseline: bool = True

    @property
    def fast_buckets(self) -> int:
        """Buckets in the fast window: `fast_window_s` rounded down, 0 (off) unless shorter than the window."""
        buckets = int(self.fast_window_s // self.bucket_s + 1e-9)
        return buckets if 1 <= buckets < round(self.window_s / self.bucket_s) else 0

    def __post_init__(self) -> None:
        _window(self.window_s, self.bucket_s)
        _non_negative("fast_window_s", self.fast_window_s)
        _probability("negative_probability", self.negative_probability)
        for key in ("min_posts", "min_negative", "cascade_min_posts", "cascade_min_negative"):
            require(getattr(self, key) >= 1, key, getattr(self, key), "an integer >= 1")
        _probability("min_share_increase", self.min_share_increase)
        _positive("wilson_z", self.wilson_z)
        require(
            self.resolve_z < self.surge_z, "resolve_z", self.resolve_z, f"less than surge_z={self.surge_z}"
        )
        require(0 <= self.overdispersion < 1, "overdispersion", self.overdispersion, "a number in [0, 1)")
        require(0 < self.prior_share < 1, "prior_share", self.prior_share, "a number in (0, 1)")
        _positive("prior_posts", self.prior_posts)
        require(
            self.baseline_min_posts >= 0, "baseline_min_posts", self.baseline_min_posts, "an integer >= 0"
        )
        _positive("baseline_half_life_s", self.baseline_half_life_s)
        require(self.spread_ratio >= 1, "spread_ratio", self.spread_ratio, "a number >= 1")
        require(
            self.critical_negative_posts >= 1, "critical_negative_posts", self.critical_negative_posts, ">= 1"
        )
        _probability("complaint_probability", self.complaint_probability)


@dataclass(frozen=True, slots=True)
class VolumeSurgeConfig:
    """Mentions per interval against a baseline that knows the brand's daily and weekly cycle."""

    bucket_s: float = 300.0
    # An interval closes this long after its end, so slightly late posts still count in it (below bucket_s;
    # posts later than this are counted as late; the pipeline drops posts beyond its allowed_lateness_s).
    grace_s: float = 60.0
    # Level and spread learn with these half-lives (in intervals' event time).
    level_half_life_s: float = 24 * 3600.0
    spread_half_life_s: float = 24 * 3600.0
    # Daily (hour of day) and weekly (day of week) profiles learn with this half-life.
    season_half_life_s: float = 14 * 86400.0
    # Intervals before the score is trusted (the baseline is still learning).
    warmup_intervals: int = 288
    # score = z / (running `quantile` of z): 1.0 = as unusual as the brand's rarest 1-in-1000 intervals.
    quantile: float = 0.999
    quantile_step: float = 0.1
    initial_quantile_z: float = 4.0
    min_quantile_z: float = 2.0
    # ... and at most this: a long surge raises the running quantile quickly and it falls only ~0.03 z a day,
    # so without a ceiling one level shift would deafen the brand's volume_surge for months.
    max_quantile_z: float = 8.0
    # An episode opens at surge_score and resolves after resolve_intervals below resolve_score.
    surge_score: float = 1.0
    resolve_score: float = 0.75
    resolve_intervals: int = 72
    # The threshold-free alarm score forgets a past score's height with this half-life (CountSurge).
    alarm_memory_s: float = 2 * 86400.0
    # Volume floor: fewer mentions in an interval never count as a surge.
    min_count: float = 10.0
    # Surging intervals teach the baseline at this fraction of the normal rate (protect_baseline).
    protect_baseline: bool = True
    surge_learning_fraction: float = 0.1
    # Spread floor in log(count+1) units.
    min_spread: float = 0.15
    seasonal: bool = True

    def __post_init__(self) -> None:
        _positive("bucket_s", self.bucket_s)
        require(86400.0 % self.bucket_s == 0, "bucket_s", self.bucket_s, "a divisor of 86400 (one day)")
        require(
            0 <= self.grace_s < self.bucket_s,
            "grace_s",
            self.grace_s,
            f"a number in [0, bucket_s={self.bucket_s})",
        )
        _positive("level_half_life_s", self.level_half_life_s)
        _positive("spread_half_life_s", self.spread_half_life_s)
        _positive("season_half_life_s", self.season_half_life_s)
        require(self.warmup_intervals >= 0, "warmup_intervals", self.warmup_intervals, "an integer >= 0")
        require(0.5 < self.quantile < 1, "quantile", self.quantile, "a number in (0.5, 1)")
        _positive("quantile_step", self.quantile_step)
        _positive("initial_quantile_z", self.initial_quantile_z)
        _positive("min_quantile_z", self.min_quantile_z)
        require(
            self.max_quantile_z >= max(self.min_quantile_z, self.initial_quantile_z),
            "max_quantile_z",
            self.max_quantile_z,
            f"at least min_quantile_z and initial_quantile_z ({max(self.min_quantile_z, self.initial_quantile_z)})",
        )
        require(
            self.resolve_score < self.surge_score,
            "resolve_score",
            self.resolve_score,
            f"less than surge_score={self.surge_score}",
        )
        _non_negative("min_count", self.min_count)
        require(self.resolve_intervals >= 1, "resolve_intervals", self.resolve_intervals, "an integer >= 1")
        _positive("alarm_memory_s", self.alarm_memory_s)
        _probability("surge_learning_fraction", self.surge_learning_fraction)
        _positive("min_spread", self.min_spread)


@dataclass(frozen=True, slots=True)
class PagingConfig:
    """How scores become severities. A crisis is negative: spread alone is at most `info`."""

    # Spread without negativity (viral campaign, news burst, daily peak) is reported at this level, or not.
    spread_only_severity: str | None = "info"
    # Root post negative (or complaint) from this probability on counts as negativity evidence.
    root_negative_probability: float = 0.6
    # Negative share of a cascade's comments (Wilson lower bound) from this on counts as negativity evidence.
    comment_negative_share: float = 0.4
    # Update an open incident when its size grew by this factor since the last emitted assessment.
    update_growth_factor: float = 1.5
    # Critical needs negative share / negativity; a big-account amplifier raises warning to critical.
    amplifier_raises_severity: bool = True
    # A cascade whose root names several brands is taken to be about the first one named; the others are
    # only mentioned ("... switching to Y") and their incidents reach at most this severity.
    mentioned_brand_max_severity: str = "info"
    # A cascade's comments turning negative is negativity evidence for its forward_surge (which pages when
    # the cascade spreads); their own negative_surge incident reaches at most this severity. Comments under
    # a complaint are mostly negative, so at `warning` every small complaint cascade with a few sympathetic
    # comments paged as well (most of negative_surge's false alerts in the generated streams).
    cascade_comments_max_severity: str = "info"

    def __post_init__(self) -> None:
        require(
            self.spread_only_severity in (None, "info"),
            "spread_only_severity",
            self.spread_only_severity,
            "null or 'info' (volume or speed alone never pages)",
        )
        for key in ("mentioned_brand_max_severity", "cascade_comments_max_severity"):
            require(
                getattr(self, key) in ("info", "warning", "critical"),
                key,
                getattr(self, key),
                "'info', 'warning' or 'critical'",
            )
        _probability("root_negative_probability", self.root_negative_probability)
        _probability("comment_negative_share", self.comment_negative_share)
        require(
            self.update_growth_factor > 1, "update_growth_factor", self.update_growth_factor, "a number > 1"
        )


@dataclass(frozen=True, slots=True)
class DetectorsConfig:
    """The `detectors` section."""

    forward_surge: ForwardSurgeConfig = field(default_factory=ForwardSurgeConfig)
    negative_surge: NegativeSurgeConfig = field(default_factory=NegativeSurgeConfig)
    volume_surge: VolumeSurgeConfig = field(default_factory=VolumeSurgeConfig)
    paging: PagingConfig = field(default_factory=PagingConfig)
    # A cascade with no event for this long (event time) is forgotten; so is a brand.
    cascade_idle_s: float = 6 * 3600.0
    brand_idle_s: float = 7 * 86400.0
    # Recent post ids remembered per key to drop redelivered duplicates. A last line of defence only: the
    # pipeline's dedup stage (streams `dedup_horizon_s`, a day of event time) drops redeliveries before
    # they reach a detector; this catches what slips past it (e.g. a replay straddling a restart) without
    # growing per-key state.
    dedup_ids: int = 16

    def __post_init__(self) -> None:
        _positive("cascade_idle_s", self.cascade_idle_s)
        _positive("brand_idle_s", self.brand_idle_s)
        require(0 <= self.dedup_ids <= 256, "dedup_ids", self.dedup_ids, "an integer 0..256")
        require(
            self.cascade_idle_s >= self.forward_surge.window_s,
            "cascade_idle_s",
            self.cascade_idle_s,
            f">= forward_surge.window_s={self.forward_surge.window_s}",
        )

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> DetectorsConfig:
        return _build(cls, data or {}, "")

    def to_mapping(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def with_overrides(self, overrides: Mapping[str, Any] | None) -> DetectorsConfig:
        """This config with a brand's raw overrides merged over it (nested keys, validated again)."""
        if not overrides:
            return self
        return DetectorsConfig.from_mapping(_deep_merge(self.to_mapping(), overrides))


_SECTIONS: dict[str, type] = {
    "forward_surge": ForwardSurgeConfig,
    "negative_surge": NegativeSurgeConfig,
    "volume_surge": VolumeSurgeConfig,
    "paging": PagingConfig,
}

T = TypeVar("T")


def _deep_merge(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _coerce(key: str, value: Any, annotation: str) -> Any:
    if annotation == "bool":
        require(isinstance(value, bool), key, value, "true or false")
        return value
    if annotation == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
        ok = ok or (isinstance(value, float) and value.is_integer())
        require(ok, key, value, "an integer")
        return int(value)
    if annotation == "float":
        require(isinstance(value, int | float) and not isinstance(value, bool), key, value, "a number")
        return float(value)
    if annotation == "str | None":
        require(value is None or isinstance(value, str), key, value, "a string or null")
        return value
    return value


def _build(cls: type[T], data: Any, prefix: str) -> T:
    where = prefix.rstrip(".")
    if not isinstance(data, Mapping):
        raise ConfigError(where, data, "a mapping")
    names = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for key in data:
        if key not in names:
            raise ConfigError(prefix + str(key), data[key], f"one of: {', '.join(sorted(names))}")
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key in _SECTIONS and cls is DetectorsConfig:
            kwargs[key] = _build(_SECTIONS[key], value, prefix + key + ".")
            continue
        kwargs[key] = _coerce(prefix + key, value, str(names[key].type))
    try:
        return cls(**kwargs)
    except ConfigError as error:
        raise error.under(where) if where else error from None


def _schema_for(cls: type) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        kind = str(f.type)
        if f.name in _SECTIONS:
            props[f.name] = _schema_for(_SECTIONS[f.name])
        elif kind == "bool":
            props[f.name] = {"type": "boolean"}
        elif kind == "int":
            props[f.name] = {"type": "integer"}
        elif kind == "float":
            props[f.name] = {"type": "number"}
        elif kind == "str | None":
            props[f.name] = {"type": ["string", "null"]}
        else:
            props[f.name] = {}
        if f.name not in _SECTIONS:
            default = f.default if f.default is not dataclasses.MISSING else None
            props[f.name]["default"] = default
    return {"type": "object", "additionalProperties": False, "properties": props}


# JSON-schema fragment of the `detectors` section (the loader composes the whole file's schema).
CONFIG_SCHEMA: dict[str, Any] = _schema_for(DetectorsConfig)

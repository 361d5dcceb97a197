"""Synthetic social-media streams with planted incidents and their ground truth.

Used by `crisiswatch demo` (a preset), `crisiswatch simulate`, tests and benchmarks. Pure: numpy and the
standard library only, no Faust, no wall clock (the start time is a parameter), deterministic from the seed.

What a scenario contains:

- Background traffic per brand: original posts arrive as a Poisson process whose rate follows a daily
  cycle (and optionally a weekly one) in the brand's time zone; each spawns a cascade.
- Cascades are the cluster form of a Hawkes process: every post has a Poisson number of direct reactions
  (forwards, comments) whose mean grows with its author's followers (a heavy-tailed, lognormal/Pareto
  population) and carries gamma noise, and each reaction comes after a Lomax (power-law tailed) delay.
  Sub-critical on average, so most posts get nothing and a few get a lot.
- Planted incidents (`IncidentSpec`, kinds in `INCIDENT_KINDS`): crises that should page (a viral
  complaint amplified mid-way by a big account, a brand-wide outage, a slow-burn complaint) and hard
  negatives that should not (a positive viral campaign, an extra-strong daily peak, a neutral news burst,
  another brand's crisis that mentions this one, a few scattered negative posts about a small brand).
- Ground truth: one `GroundTruthIncident` per incident and brand.

Posts are plain dicts following the input contract (README, `streams/post.schema.json`): English posts
come as Twitter (`RT @user: ...`), Chinese posts as Weibo (`//@user: ...`, `转发微博`, `回复@user:`).
`lang` is present on about 70% of posts and `brands` on about half of the originals, so language detection
and alias matching are exercised; `sentiment` is only added on request.
"""

from __future__ import annotations

import gc
import json
import math
import random
import string
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from crisiswatch.detectors.events import BrandProfile
from crisiswatch.detectors.settings import ConfigError, require

LANGS: tuple[str, ...] = ("en", "zh")
PLATFORMS: dict[str, str] = {"en": "twitter", "zh": "weibo"}
CATEGORIES: tuple[str, ...] = ("delivery", "product_quality", "service", "billing", "safety")
STANCES: tuple[str, ...] = ("neutral", "positive", "negative", "complaint")
SECTORS: tuple[str, ...] = ("retail", "airline", "coffee", "courier", "electronics", "books")
# 2026-11-24T13:00:00Z: morning on the US east coast, evening in China.
DEFAULT_START_S = 1_795_525_200.0

POST, FORWARD, COMMENT = 0, 1, 2
KIND_NAMES: tuple[str, ...] = ("post", "forward", "comment")
NEUTRAL, POSITIVE, NEGATIVE, COMPLAINT = 0, 1, 2, 3


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class IncidentKind:
    """What a kind of incident plants, and its defaults (sizes are expected post counts)."""

    is_crisis: bool
    duration_s: float
    size: int
    amplified: bool
    description: str


INCIDENT_KINDS: dict[str, IncidentKind] = {
    "viral_complaint": IncidentKind(
        True,
        6 * 3600.0,
        1500,
        True,
        "a complaint by an ordinary user goes viral; a big account forwards it mid-way (size: reactions)",
    ),
    "outage": IncidentKind(
        True,
        2 * 3600.0,
        0,
        False,
        "brand-wide negative shift: extra complaint posts ramp up and decay (size: extra originals, "
        "default 4x the brand's hourly originals over the duration)",
    ),
    "slow_burn": IncidentKind(
        True,
        12 * 3600.0,
        400,
        False,
        "a complaint whose cascade grows slowly and steadily, plus a rising trickle of similar complaints",
    ),
    "positive_campaign": IncidentKind(
        False,
        6 * 3600.0,
        1000,
        True,
        "hard negative: the brand's giveaway goes viral, a celebrity forwards it (size: reactions)",
    ),
    "daily_peak": IncidentKind(
        False,
        2 * 3600.0,
        0,
        False,
        "hard negative: an extra-strong daily peak with the normal sentiment mix (size: extra originals, "
        "default 1.5x the brand's hourly originals over the duration)",
    ),
    "neutral_news": IncidentKind(
        False,
        3 * 3600.0,
        600,
        False,
        "hard negative: a media account's neutral news about the brand spreads, with neutral chatter",
    ),
    "other_brand_crisis": IncidentKind(
        False,
        6 * 3600.0,
        800,
        True,
        "hard negative: a viral complaint about `other_brand` whose root mentions this brand",
    ),
    "scattered_negative": IncidentKind(
        False,
        6 * 3600.0,
        15,
        False,
        "hard negative: isolated negative posts about a (small) brand, no cascade (size: posts)",
    ),
}


@dataclass(frozen=True)
class BrandSpec:
    """A brand posts talk about. `aliases` are the other surface forms used in texts (and matched by config)."""

    name: str
    aliases: tuple[str, ...] = ()
    lang: str = "en"
    role: str = "own"
    time_zone: str = "UTC"
    # Mean posts per hour (originals and their reactions) averaged over the day, before `rate_scale`.
    base_posts_per_hour: float = 60.0
    sector: str = "retail"
    # Share of background originals that are negative or complaints.
    negative_share: float = 0.2
    # Handle of the brand's verified account; derived from the name when None.
    official_account: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "aliases", tuple(self.aliases))
        require(
            isinstance(self.name, str) and bool(self.name.strip()), "name", self.name, "a non-empty string"
        )
        require(
            all(isinstance(a, str) and a.strip() for a in self.aliases),
            "aliases",
            self.aliases,
            "non-empty strings",
        )
        require(self.lang in LANGS, "lang", self.lang, f"one of {LANGS}")
        require(self.role in ("own", "competitor"), "role", self.role, "'own' or 'competitor'")
        require(self.sector in SECTORS, "sector", self.sector, f"one of {SECTORS}")
        require(
            _finite(self.base_posts_per_hour) and self.base_posts_per_hour >= 0,
            "base_posts_per_hour",
            self.base_posts_per_hour,
            "a finite number >= 0",
        )
        require(
            _finite(self.negative_share) and 0 <= self.negative_share <= 1,
            "negative_share",
            self.negative_share,
            "a share in [0, 1]",
        )
        try:
            ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(
                "time_zone", self.time_zone, "an IANA time zone such as 'Asia/Shanghai'"
            ) from None

    @property
    def official_handle(self) -> str:
        if self.official_account:
            return self.official_account
        return f"{self.name}官方" if self.lang == "zh" else "".join(self.name.split())

    def profile(self) -> BrandProfile:
        """The `brands` config entry that monitors this brand with the aliases the generator writes."""
        return BrandProfile(
            name=self.name,
            aliases=self.aliases,
            role=self.role,  # type: ignore[arg-type]
            time_zone=self.time_zone,
            lang=self.lang,
        )


@dataclass(frozen=True)
class IncidentSpec:
    """One planted incident; `None` fields take the kind's default (`INCIDENT_KINDS`)."""

    kind: str
    brand: str
    # Offset from the scenario start.
    start_s: float
    duration_s: float | None = None
    size: int | None = None
    # Complaint category of crisis posts; default the sector's most common one.
    category: str | None = None
    amplified: bool | None = None
    # When the big account forwards, after the root.
    amplify_after_s: float = 40 * 60.0
    # For other_brand_crisis: the brand actually in crisis (need not be configured).
    other_brand: str | None = None

    def __post_init__(self) -> None:
        require(self.kind in INCIDENT_KINDS, "kind", self.kind, f"one of {sorted(INCIDENT_KINDS)}")
        require(_finite(self.start_s) and self.start_s >= 0, "start_s", self.start_s, "an offset >= 0 s")
        require(
            self.duration_s is None or (_finite(self.duration_s) and self.duration_s > 0),
            "duration_s",
            self.duration_s,
            "a duration > 0 s",
        )
        require(
            self.size is None or (isinstance(self.size, int) and self.size >= 0),
            "size",
            self.size,
            "an integer >= 0",
        )
        require(
            self.category is None or self.category in CATEGORIES,
            "category",
            self.category,
            f"one of {CATEGORIES}",
        )
        require(
            _finite(self.amplify_after_s) and self.amplify_after_s > 0,
            "amplify_after_s",
            self.amplify_after_s,
            "a delay > 0 s",
        )
        if self.kind == "other_brand_crisis":
            require(
                bool(self.other_brand) and self.other_brand != self.brand,
                "other_brand",
                self.other_brand,
                "the name of another brand (the one in crisis)",
            )

    @property
    def defaults(self) -> IncidentKind:
        return INCIDENT_KINDS[self.kind]

    @property
    def effective_duration_s(self) -> float:
        return self.duration_s if self.duration_s is not None else self.defaults.duration_s

    @property
    def effective_size(self) -> int:
        return self.size if self.size is not None else self.defaults.size

    @property
    def effective_amplified(self) -> bool:
        return self.amplified if self.amplified is not None else self.defaults.amplified


@dataclass(frozen=True)
class ScenarioConfig:
    seed: int = 0
    # Event time of the first post, epoch seconds UTC.
    start_s: float = DEFAULT_START_S
    duration_s: float = 6 * 3600.0
    brands: tuple[BrandSpec, ...] = ()
    incidents: tuple[IncidentSpec, ...] = ()
    # Posts are emitted up to this much later than event-time order (0: sorted by created_at).
    out_of_order_s: float = 0.0
    # Multiplies background rates (and default brand-wide incident sizes); for load tests.
    rate_scale: float = 1.0
    weekly_cycle: bool = True
    lang_field_share: float = 0.7
    brands_field_share: float = 0.5
    # Add the contract's optional `sentiment` (a noisy P(negative)) to posts with own text.
    include_sentiment: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "brands", tuple(self.brands))
        object.__setattr__(self, "incidents", tuple(self.incidents))
        require(isinstance(self.seed, int) and self.seed >= 0, "seed", self.seed, "an integer >= 0")
        require(_finite(self.start_s) and self.start_s >= 0, "start_s", self.start_s, "epoch seconds >= 0")
        require(
            _finite(self.duration_s) and 0 < self.duration_s <= 366 * 86400,
            "duration_s",
            self.duration_s,
            "a duration in (0 s, 1 year]",
        )
        require(len(self.brands) > 0, "brands", self.brands, "at least one BrandSpec")
        names = [brand.name for brand in self.brands]
        require(len(set(names)) == len(names), "brands", names, "unique brand names")
        for index, incident in enumerate(self.incidents):
            require(incident.brand in names, f"incidents[{index}].brand", incident.brand, f"one of {names}")
            require(
                incident.start_s < self.duration_s,
                f"incidents[{index}].start_s",
                incident.start_s,
                f"an offset before the end of the scenario ({self.duration_s} s)",
            )
        require(
            _finite(self.out_of_order_s) and 0 <= self.out_of_order_s <= 3600,
            "out_of_order_s",
            self.out_of_order_s,
            "0..3600 s",
        )
        require(
            _finite(self.rate_scale) and 0 <= self.rate_scale <= 10_000,
            "rate_scale",
            self.rate_scale,
            "a factor in [0, 10000]",
        )
        for key in ("lang_field_share", "brands_field_share"):
            value = getattr(self, key)
            require(_finite(value) and 0 <= value <= 1, key, value, "a share in [0, 1]")

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s

    def brand(self, name: str) -> BrandSpec:
        return next(brand for brand in self.brands if brand.name == name)


@dataclass(frozen=True)
class GroundTruthIncident:
    """What really happened: `is_crisis` says whether a page for `brand` in [start_s, end_s] is right.

    `root_id` names the cascade for cascade incidents and is None for brand-wide ones; any alert on the
    brand that overlaps a brand-wide incident belongs to it.
    """

    brand: str
    root_id: str | None
    start_s: float
    end_s: float
    is_crisis: bool
    kind: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "brand": self.brand,
            "root_id": self.root_id,
            "start": iso_utc(self.start_s),
            "end": iso_utc(self.end_s),
            "is_crisis": self.is_crisis,
            "kind": self.kind,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GroundTruthIncident:
        return cls(
            brand=data["brand"],
            root_id=data.get("root_id"),
            start_s=_parse_iso(data["start"]),
            end_s=_parse_iso(data["end"]),
            is_crisis=bool(data["is_crisis"]),
            kind=data["kind"],
        )


@dataclass
class Scenario:
    config: ScenarioConfig
    # Contract dicts in emission order (event-time order up to `out_of_order_s`).
    posts: list[dict[str, Any]]
    incidents: list[GroundTruthIncident]

    def to_jsonl(self, target: str | Path | IO[str]) -> None:
        """Write the posts, one JSON object per line."""
        _write_lines(target, self.posts)

    def incidents_to_jsonl(self, target: str | Path | IO[str]) -> None:
        _write_lines(target, (incident.to_dict() for incident in self.incidents))

    def brand_profiles(self) -> tuple[BrandProfile, ...]:
        """Config brands that monitor this scenario's brands (aliases included)."""
        return tuple(brand.profile() for brand in self.config.brands)


def generate(config: ScenarioConfig) -> Scenario:
    """The posts and ground truth of a scenario; the same config always gives the same output."""
    return _Generator(config).run()


# ---------------------------------------------------------------------------------------------- presets

_DEMO_BRANDS = (
    BrandSpec(name="Northwind Air", aliases=("Northwind", "@NorthwindAir", "#NorthwindAir"), lang="en",
              time_zone="America/New_York", base_posts_per_hour=150.0, sector="airline"),
    BrandSpec(name="ByteBrew Coffee", aliases=("ByteBrew", "@ByteBrew", "#ByteBrew"), lang="en",
              time_zone="Europe/London", base_posts_per_hour=120.0, sector="coffee"),
    BrandSpec(name="快达快递", aliases=("快达", "@快达快递官方", "KuaiDa Express"), lang="zh",
              time_zone="Asia/Shanghai", base_posts_per_hour=200.0, sector="courier"),
)  # fmt: skip
_WEEK_BRANDS = (
    *_DEMO_BRANDS,
    BrandSpec(name="SkyLark Airlines", aliases=("SkyLark", "@SkyLarkAir"), lang="en", role="competitor",
              time_zone="America/Chicago", base_posts_per_hour=80.0, sector="airline"),
    BrandSpec(name="星辰手机", aliases=("星辰", "Xingchen Mobile"), lang="zh", time_zone="Asia/Shanghai",
              base_posts_per_hour=90.0, sector="electronics"),
    # A small brand: a handful of posts a day, so a few negative ones are a big share but no crisis.
    BrandSpec(name="Pebble Books", aliases=("Pebble", "@PebbleBooks"), lang="en",
              time_zone="America/Los_Angeles", base_posts_per_hour=4.0, sector="books"),
)  # fmt: skip
_H = 3600.0
_D = 86400.0


def _demo() -> ScenarioConfig:
    return ScenarioConfig(
        seed=7,
        duration_s=6 * _H,
        brands=_DEMO_BRANDS,
        out_of_order_s=5.0,
        incidents=(
            IncidentSpec("positive_campaign", "ByteBrew Coffee", start_s=1 * _H, size=800),
            IncidentSpec(
                "viral_complaint", "Northwind Air", start_s=2.5 * _H, size=1200, category="delivery"
            ),
        ),
    )


def _smoke() -> ScenarioConfig:
    return ScenarioConfig(
        seed=1,
        duration_s=1.5 * _H,
        out_of_order_s=2.0,
        brands=(_DEMO_BRANDS[0], replace(_DEMO_BRANDS[2], base_posts_per_hour=80.0)),
        incidents=(
            IncidentSpec(
                "viral_complaint", "快达快递", start_s=0.25 * _H, size=250, amplify_after_s=15 * 60.0
            ),
            IncidentSpec("positive_campaign", "Northwind Air", start_s=0.5 * _H, size=150),
            IncidentSpec("scattered_negative", "Northwind Air", start_s=0.0, duration_s=1.5 * _H, size=6),
        ),
    )


def _week() -> ScenarioConfig:
    return ScenarioConfig(
        seed=2026,
        start_s=DEFAULT_START_S - 13 * _H,
        duration_s=7 * _D,
        brands=_WEEK_BRANDS,
        out_of_order_s=10.0,
        incidents=(
            IncidentSpec("viral_complaint", "Northwind Air", start_s=0 * _D + 15 * _H, category="delivery"),
            IncidentSpec("positive_campaign", "ByteBrew Coffee", start_s=1 * _D + 10 * _H),
            IncidentSpec("neutral_news", "快达快递", start_s=1 * _D + 3 * _H),
            IncidentSpec("outage", "快达快递", start_s=2 * _D + 2 * _H, category="service"),
            IncidentSpec("slow_burn", "ByteBrew Coffee", start_s=3 * _D + 8 * _H, category="product_quality"),
            IncidentSpec(
                "other_brand_crisis",
                "Northwind Air",
                start_s=4 * _D + 14 * _H,
                other_brand="SkyLark Airlines",
            ),
            IncidentSpec("viral_complaint", "星辰手机", start_s=5 * _D + 2 * _H, category="safety"),
            IncidentSpec("scattered_negative", "Pebble Books", start_s=5 * _D + 16 * _H, duration_s=8 * _H),
            IncidentSpec("daily_peak", "ByteBrew Coffee", start_s=6 * _D + 11 * _H),
            IncidentSpec("neutral_news", "Northwind Air", start_s=6 * _D + 14 * _H),
        ),
    )


PRESETS = {"demo": _demo, "smoke": _smoke, "week": _week}


def preset(name: str, **overrides: Any) -> ScenarioConfig:
    """A named scenario: `demo` (3 brands, 6 h, one viral complaint and one viral campaign, ~5k posts),
    `smoke` (small, for tests), `week` (6 brands, 7 days, every incident kind, ~100k posts; `rate_scale=10`
    gives ~1M). Keyword overrides replace config fields, e.g. `preset("demo", seed=3)`."""
    if name not in PRESETS:
        raise ConfigError("preset", name, f"one of {sorted(PRESETS)}")
    unknown = sorted(set(overrides) - set(ScenarioConfig.__dataclass_fields__))
    if unknown:
        raise ConfigError(unknown[0], overrides[unknown[0]], "a ScenarioConfig field")
    return replace(PRESETS[name](), **overrides)


# ---------------------------------------------------------------------------------------------- helpers


def iso_utc(t_s: float) -> str:
    """`2026-11-24T08:00:00.123Z`: the contract's created_at format (millisecond precision, UTC)."""
    milliseconds = int(round(t_s * 1000.0))
    stamp = np.datetime64(milliseconds, "ms")
    return f"{np.datetime_as_string(stamp, unit='ms')}Z"


def _utc_offset_s(zone: ZoneInfo, t_s: float) -> float:
    """Local time minus UTC at the instant `t_s`, daylight saving included."""
    offset = datetime.fromtimestamp(t_s, UTC).astimezone(zone).utcoffset()
    return offset.total_seconds() if offset is not None else 0.0


def _parse_iso(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _dump(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _write_lines(target: str | Path | IO[str], rows: Any) -> None:
    if isinstance(target, str | Path):
        with open(target, "w", encoding="utf-8", newline="\n") as handle:
            _write_lines(handle, rows)
        return
    for row in rows:
        target.write(_dump(row))
        target.write("\n")


# Activity by local hour (0..23): night trough, lunch and evening peaks; normalised to mean 1.
# fmt: off
_DIURNAL = np.array([0.45, 0.30, 0.20, 0.15, 0.12, 0.15, 0.30, 0.60, 0.90, 1.05, 1.10, 1.20,
                     1.35, 1.30, 1.15, 1.10, 1.10, 1.15, 1.30, 1.50, 1.65, 1.70, 1.50, 0.90])
# fmt: on
_DIURNAL = _DIURNAL / _DIURNAL.mean()
# Monday..Sunday, mean 1.
_WEEKLY = np.array([1.02, 1.02, 1.02, 1.03, 1.05, 0.93, 0.93])
_WEEKLY = _WEEKLY / _WEEKLY.mean()


@dataclass(frozen=True)
class _Dynamics:
    """How a cascade grows: mean reactions per reaction (`n`), Lomax delay shape/scale, forward share."""

    n: float
    delay_shape: float
    delay_scale_s: float
    forward_share: float


_BACKGROUND = _Dynamics(n=0.35, delay_shape=1.1, delay_scale_s=300.0, forward_share=0.5)
_VIRAL = _Dynamics(n=0.55, delay_shape=1.2, delay_scale_s=360.0, forward_share=0.75)
_CAMPAIGN = _Dynamics(n=0.5, delay_shape=1.2, delay_scale_s=300.0, forward_share=0.8)
_NEWS = _Dynamics(n=0.4, delay_shape=1.1, delay_scale_s=300.0, forward_share=0.7)
# Mean direct reactions of a background original by an average author.
_ROOT_FERTILITY = 0.8
# Comments are rarely forwarded; their replies are few.
_COMMENT_FERTILITY_FACTOR = 0.15
# Gamma shape of the per-post fertility noise (smaller: heavier tail of cascade sizes).
_FERTILITY_NOISE_SHAPE = 0.6
_MIN_DELAY_S = 1.0
_MAX_GENERATIONS = 60
_MAX_CHAIN_HOPS = 4

# Reaction behaviour by cascade profile: P(stance) of comments, P(own text) of forwards, P(stance) of that text.
_PROFILES: dict[str, tuple[tuple[float, ...], float, tuple[float, ...]]] = {
    "follow_neutral": ((0.70, 0.15, 0.10, 0.05), 0.30, (0.80, 0.15, 0.05, 0.0)),
    "follow_positive": ((0.35, 0.55, 0.07, 0.03), 0.40, (0.40, 0.60, 0.0, 0.0)),
    "follow_negative": ((0.30, 0.08, 0.32, 0.30), 0.30, (0.30, 0.0, 0.50, 0.20)),
    "crisis": ((0.18, 0.07, 0.35, 0.40), 0.45, (0.15, 0.0, 0.55, 0.30)),
    "campaign": ((0.30, 0.60, 0.05, 0.05), 0.60, (0.15, 0.85, 0.0, 0.0)),
    "news": ((0.75, 0.10, 0.10, 0.05), 0.20, (0.90, 0.05, 0.05, 0.0)),
}
_PROFILE_NAMES = tuple(_PROFILES)
_PROFILE_ID = {name: index for index, name in enumerate(_PROFILE_NAMES)}

# Complaint categories by sector (background complaints), in CATEGORIES order.
_CATEGORY_MIX: dict[str, tuple[float, ...]] = {
    "retail": (0.30, 0.30, 0.20, 0.15, 0.05),
    "airline": (0.30, 0.05, 0.45, 0.15, 0.05),
    "coffee": (0.20, 0.35, 0.30, 0.10, 0.05),
    "courier": (0.60, 0.05, 0.20, 0.10, 0.05),
    "electronics": (0.15, 0.45, 0.20, 0.10, 0.10),
    "books": (0.40, 0.25, 0.15, 0.20, 0.0),
}


def _expected_cascade_size(dynamics: _Dynamics, root_fertility: float) -> float:
    """Mean posts per cascade (root included) of the branching process, comments' lower fertility included."""
    n_effective = dynamics.n * (
        dynamics.forward_share + _COMMENT_FERTILITY_FACTOR * (1 - dynamics.forward_share)
    )
    return 1.0 + root_fertility / (1.0 - n_effective)


def _root_fertility_for(size: float, dynamics: _Dynamics) -> float:
    """The root fertility that makes a cascade's expected number of reactions `size`."""
    return max(0.0, size * (_expected_cascade_size(dynamics, 1.0) - 1.0) ** -1)


# ---------------------------------------------------------------------------------------------- texts
# Slots: {brand} a surface form of the cascade's brand, {other} another brand, {item} a sector noun, {n},
# {hours}, {money}, {order}, {city}, {friend}. Forward chains and reply prefixes are added separately.

_TEMPLATES: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "complaint:delivery": (
            "{brand} my {item} was supposed to arrive {n} days ago and tracking hasn't moved. Useless.",
            "Ordered from {brand} a week ago, still no {item}. Where is it??",
            "{brand} marked my {item} as delivered but nothing is here. Who signed for it?",
            "Third time this month {brand} has lost my {item}. Order {order}, where is it?",
            "Waited {hours} hours at home for {brand} and they never showed up. Zero notice.",
            "{brand} sent my {item} to the wrong city ({city}!) and now nobody can tell me when I get it.",
        ),
        "complaint:product_quality": (
            "The {item} I got from {brand} broke after {n} days. Quality has gone downhill.",
            "Opened my {item} from {brand} and it's damaged. Really disappointed.",
            "{brand} the {item} is half the size it used to be and costs more. Not ok.",
            "Second faulty {item} from {brand} in a row. What is going on with your quality control?",
            "My {item} from {brand} arrived cold/broken/wrong, pick one. Every time lately.",
        ),
        "complaint:service": (
            "{brand} customer service hung up on me twice. {hours} hours on hold for nothing.",
            "Stood in line {hours} hours at {brand} in {city} and the staff just shrugged.",
            "{brand} your app keeps crashing and support just sends copy-paste replies.",
            "Worst customer service ever, {brand}. Nobody can answer a simple question about my {item}.",
            "{brand} cancelled my {item} with no explanation and the chat bot is useless.",
        ),
        "complaint:billing": (
            "{brand} charged me twice (${money}) and the refund has been 'processing' for {n} weeks.",
            "Hidden fees again, {brand}. ${money} extra on my bill for nothing.",
            "Still waiting for my ${money} refund from {brand}. Order {order}. This is theft.",
            "{brand} billed me for a {item} I cancelled. Support says 'wait {n} business days'. Again.",
        ),
        "complaint:safety": (
            "My {item} from {brand} started smoking while charging. Could have burned the house down.",
            "Found a piece of metal in my {item} from {brand}. Is anyone checking anything?",
            "{brand} the {item} is a safety hazard, my kid almost got hurt. Recall it now.",
            "Staff at {brand} in {city} ignored a clear safety issue today. Someone will get hurt.",
        ),
        "outage": (
            "Is {brand} down? App won't load at all.",
            "{brand} website down AGAIN. Can't do anything with my {item}.",
            "{brand} system outage, stuck for {hours} hours and nobody tells us anything",
            "Anyone else getting errors from {brand}? Nothing works since this morning.",
            "{brand} outage is a joke. {hours} hours and counting.",
        ),
        "negative": (
            "{brand} keeps getting worse every year.",
            "Not impressed with {brand} lately, to be honest.",
            "Why is {brand} so expensive now?",
            "Sad to see what {brand} has become.",
            "{brand} prices went up again. Meh.",
        ),
        "neutral": (
            "Anyone know if {brand} is open on Sunday?",
            "Heading to {brand} in {city}, any tips?",
            "Does {brand} deliver to {city}?",
            "Comparing {brand} with the others for my next {item}.",
            "{brand} has a new {item} out, has anyone tried it?",
            "Just got an email from {brand} about their new terms.",
        ),
        "positive": (
            "Love my new {item} from {brand}!",
            "{brand} got my {item} to me a day early. Impressed.",
            "Shout out to the {brand} team in {city}, super helpful today.",
            "Best {item} in town, thanks {brand}",
            "{brand} never lets me down. Great {item} again.",
            "Really friendly service at {brand} today :)",
        ),
        "news": (
            "{brand} announces a new CEO, effective next month.",
            "{brand} to open {n} new locations in {city} next year.",
            "{brand} reports quarterly results: revenue up {n}%.",
            "{brand} changes its loyalty programme from January, details on their site.",
        ),
        "news_chat": (
            "Interesting news from {brand} today.",
            "So {brand} is changing things up, we'll see.",
            "Did anyone else see the {brand} announcement?",
            "{brand} in the news again.",
        ),
        "campaign": (
            "Free {item} day! Forward this and follow {brand} for a chance to win a year of free {item}!",
            "It's our birthday! {brand} is giving away {n}00 prizes. Share this post to enter!",
        ),
        "other_crisis": (
            "{brand} lost my {item} AGAIN. Switching to {other} for good.",
            "After this {brand} fiasco I'm only using {other} from now on.",
            "{brand} is a disaster today, at least {other} answers the phone.",
        ),
        "reply:agree": (
            "Same thing happened to me last week!",
            "This is unacceptable.",
            "Exactly my experience with {brand}.",
            "Happened to my sister too. They never fixed it.",
            "Never using {brand} again.",
            "They did the same to me, still waiting.",
        ),
        "reply:negative": (
            "Shame on you {brand}",
            "Wow, that's terrible",
            "Disgusting.",
            "Sorry this happened to you, that's awful",
            "{brand} needs to fix this asap",
        ),
        "reply:question": (
            "Did they ever reply to you?",
            "What happened in the end?",
            "Is this real?",
            "Which city was this?",
            "Following this",
        ),
        "reply:neutral": ("Good to know", "Thanks for sharing", "Interesting", "Same question here", "ok"),
        "reply:defend": (
            "Never had a problem with them tbh",
            "My order came fine today",
            "Probably a one-off, they're usually good",
        ),
        "reply:positive": ("Love this!", "Count me in!", "So good", "Just got mine, amazing", "Yes please!"),
        "forward:negative": (
            "This needs to be seen.",
            "Unbelievable.",
            "Spread this.",
            "{brand} explain yourselves.",
        ),
        "forward:neutral": ("FYI", "Worth a read", "Hm", "Interesting"),
        "forward:positive": ("Nice!", "Great stuff", "Yes!!"),
        "forward:campaign": ("Entering! @{friend}", "Pick me! @{friend}", "Fingers crossed @{friend}"),
        "amplify:negative": (
            "This is outrageous. {brand} owes this customer an answer today.",
            "Thousands of you have sent us stories like this one. {brand}, what is going on?",
        ),
        "amplify:positive": ("Love this, {brand}! Everyone go enter", "My favourite {item}! Don't miss this"),
        "official_reply": (
            "Hi, we're sorry to hear this. Please DM us your order number and we'll look into it right away.",
            "We apologise for the trouble. Our team is on it, please check your DMs.",
        ),
    },
    "zh": {
        "complaint:delivery": (
            "{brand}的{item}说好{n}天到，现在物流信息一动不动，太离谱了",
            "{brand}显示已签收，可我根本没收到{item}，到底谁签的？",
            "在{brand}下单一周了还没发货，客服也联系不上",
            "{brand}又把我的{item}弄丢了，这个月第{n}次了",
            "等了{hours}个小时{brand}都没上门，连个电话都没有",
            "{brand}把我的{item}送到了{city}，现在谁也说不清什么时候能到",
        ),
        "complaint:product_quality": (
            "{brand}的{item}用了{n}天就坏了，质量太差",
            "刚收到{brand}的{item}，外包装破了，里面也坏了",
            "{brand}这次的{item}明显缩水了，还涨价",
            "连续两次买到{brand}的问题{item}，品控在干什么？",
        ),
        "complaint:service": (
            "{brand}客服态度太差了，打了{n}次电话都没人解决",
            "在{city}的{brand}排队{hours}个小时，工作人员还爱答不理",
            "{brand}的App又崩了，客服只会复制粘贴",
            "{brand}的服务真是越来越差，问个{item}的问题都没人管",
        ),
        "complaint:billing": (
            "{brand}重复扣了我{money}元，申请退款一直拖着",
            "{brand}乱收费，账单里莫名多出{money}块钱",
            "退款申请{n}周了，{brand}还没给我退，订单号{order}",
        ),
        "complaint:safety": (
            "{brand}的{item}充电的时候冒烟了，太吓人了",
            "在{brand}的{item}里发现了异物，还有没有安全保障？",
            "{brand}的{item}有严重安全隐患，孩子差点受伤",
        ),
        "outage": (
            "{brand}的App崩了吗？一直打不开",
            "{brand}系统又瘫痪了，什么都办不了",
            "{brand}宕机{hours}个小时了，也没个说法",
            "只有我{brand}登不上去吗？从早上到现在都不行",
        ),
        "negative": (
            "感觉{brand}越来越不行了",
            "{brand}怎么又涨价了",
            "对{brand}有点失望",
            "{brand}现在真的一般般",
        ),
        "neutral": (
            "有人知道{brand}周末上班吗？",
            "{brand}在{city}有网点吗？",
            "准备试试{brand}的{item}，有人用过吗",
            "{brand}出了新的{item}，大家觉得怎么样",
            "刚收到{brand}的短信通知",
        ),
        "positive": (
            "{brand}的{item}真不错，点赞",
            "{brand}这次好快，{item}提前一天到了",
            "{city}{brand}的小哥服务太好了",
            "一直很喜欢{brand}，这次也没失望",
            "{brand}的{item}yyds",
        ),
        "news": (
            "【{brand}宣布任命新CEO】下月起生效",
            "【{brand}将在{city}新开{n}家门店】",
            "【{brand}发布季度财报】营收同比增长{n}%",
            "{brand}宣布明年起调整会员体系，详情见官网",
        ),
        "news_chat": (
            "{brand}这个消息有意思",
            "{brand}又上新闻了",
            "看到{brand}的公告了吗",
            "{brand}要变了啊",
        ),
        "campaign": (
            "{brand}周年庆！转发本条微博并关注，抽{n}位送全年{item}！",
            "福利来了！关注{brand}并转发，抽{n}00份{item}！",
        ),
        "other_crisis": (
            "{brand}又把我的{item}弄丢了，以后只用{other}了",
            "{brand}这次太离谱了，还是{other}靠谱",
            "被{brand}坑惨了，果断换{other}",
        ),
        "reply:agree": (
            "我也遇到过一模一样的情况！",
            "太过分了",
            "同样的遭遇，到现在也没解决",
            "再也不用{brand}了",
            "我家也是，投诉无门",
        ),
        "reply:negative": ("{brand}必须给个说法", "离谱", "气死了", "心疼博主", "这也太差了吧"),
        "reply:question": ("后来解决了吗？", "真的假的？", "是哪个城市的？", "蹲一个后续", "官方回复了吗"),
        "reply:neutral": ("了解了", "mark", "路过", "学到了", "嗯嗯"),
        "reply:defend": ("我用了很多年都没问题", "我的今天刚到，挺好的", "应该是个例吧"),
        "reply:positive": ("好喜欢！", "冲冲冲", "太棒了", "已参与！", "爱了爱了"),
        "forward:negative": ("大家评评理", "太过分了", "扩散", "{brand}出来解释一下"),
        "forward:neutral": ("mark", "转发", "看看"),
        "forward:positive": ("赞！", "支持", "好棒"),
        "forward:campaign": ("希望中奖 @{friend}", "来了来了 @{friend}", "许愿 @{friend}"),
        "amplify:negative": ("这件事{brand}必须给消费者一个交代", "又一起投诉，{brand}到底怎么了？"),
        "amplify:positive": ("{brand}这个活动可以！大家快来", "我最爱的{item}，冲"),
        "official_reply": (
            "您好，非常抱歉给您带来不便，请私信我们订单号，我们会尽快为您处理。",
            "抱歉让您久等了，已安排专人跟进，请留意私信。",
        ),
    },
}
_ITEMS: dict[str, dict[str, tuple[str, ...]]] = {
    "retail": {
        "en": ("order", "item", "gift card", "membership"),
        "zh": ("订单", "商品", "会员卡", "礼品卡"),
    },
    "airline": {
        "en": ("suitcase", "checked bag", "booking", "flight", "seat upgrade"),
        "zh": ("行李", "托运行李", "机票", "航班", "座位"),
    },
    "coffee": {
        "en": ("latte", "order", "flat white", "coffee beans", "cold brew"),
        "zh": ("拿铁", "外卖订单", "咖啡豆", "冷萃", "美式"),
    },
    "courier": {
        "en": ("parcel", "package", "delivery", "shipment"),
        "zh": ("快递", "包裹", "快件", "退货包裹"),
    },
    "electronics": {
        "en": ("phone", "charger", "laptop", "earbuds"),
        "zh": ("手机", "充电器", "笔记本", "耳机"),
    },
    "books": {"en": ("book", "order", "gift card", "preorder"), "zh": ("书", "订单", "礼品卡", "预售书")},
}
_CITIES = {
    "en": ("Boston", "Denver", "Leeds", "Toronto", "Austin", "Dublin", "Seattle"),
    "zh": ("上海", "北京", "杭州", "成都", "广州", "武汉", "西安"),
}
_FIRST_NAMES = (
    "maria",
    "james",
    "li",
    "sam",
    "alex",
    "nina",
    "omar",
    "kate",
    "raj",
    "emma",
    "leo",
    "zoe",
    "dan",
    "ivy",
    "tom",
    "ana",
    "ben",
    "mia",
    "jon",
    "sara",
)
_ZH_NICKS = (
    "小鱼儿",
    "奶茶不加糖",
    "追风少年",
    "橘子汽水",
    "momo酱",
    "阿杰",
    "一颗柠檬",
    "深夜食堂",
    "不想上班的猫",
    "晴天",
    "大白",
    "吃货小王",
    "山海",
    "北漂阿明",
)
# Verified accounts outside the user population: (handle, followers).
_BIG_ACCOUNTS = {
    "en": (
        ("MetroNewsDesk", 3_400_000),
        ("TheMarketLedger", 1_200_000),
        ("chef.rosa", 2_300_000),
        ("consumer_watch", 850_000),
    ),
    "zh": (
        ("热点速报", 8_600_000),
        ("财经观察室", 2_100_000),
        ("美食家阿苏", 3_900_000),
        ("消费维权说", 1_500_000),
    ),
}
_PARTIAL_FIELDS = string.Formatter()


def _slots(template: str) -> tuple[str, ...]:
    return tuple(name for _, name, _, _ in _PARTIAL_FIELDS.parse(template) if name)


_GROUP_NAMES: tuple[str, ...] = tuple(_TEMPLATES["en"])
_GROUP_ID = {name: index for index, name in enumerate(_GROUP_NAMES)}
assert set(_TEMPLATES["zh"]) == set(_GROUP_NAMES)
_NO_TEXT = -1


def _reaction_group_table() -> np.ndarray:
    """Text group of a reaction by (profile, kind - 1, stance): forwards and comments of each profile."""
    table = np.full((len(_PROFILE_NAMES), 2, 4), _NO_TEXT, dtype=np.int16)
    for profile, index in _PROFILE_ID.items():
        critical = profile in ("crisis", "follow_negative")
        comment = (
            "reply:question" if critical else "reply:neutral",
            "reply:defend" if critical else "reply:positive",
            "reply:negative",
            "reply:agree",
        )
        forward = (
            "forward:neutral",
            "forward:campaign" if profile == "campaign" else "forward:positive",
            "forward:negative",
            "forward:negative",
        )
        table[index, FORWARD - 1] = [_GROUP_ID[name] for name in forward]
        table[index, COMMENT - 1] = [_GROUP_ID[name] for name in comment]
    return table


_REACTION_GROUPS = _reaction_group_table()


# ---------------------------------------------------------------------------------------------- generator


class _Generator:
    """One run of `generate`: users, seeds (roots and planted reactions), growth, then texts and dicts."""

    def __init__(self, config: ScenarioConfig) -> None:
        self.config = config
        self.rng = np.random.default_rng(config.seed)
        self.text_rng = random.Random(config.seed * 1_000_003 + 17)
        # Every brand named in the scenario: configured ones, then others only mentioned by incidents.
        self.brands: list[BrandSpec] = list(config.brands)
        for incident in config.incidents:
            if incident.other_brand and incident.other_brand not in {b.name for b in self.brands}:
                base = config.brand(incident.brand)
                self.brands.append(
                    BrandSpec(
                        incident.other_brand, (), base.lang, "competitor", base.time_zone, 0.0, base.sector
                    )
                )
        self.brand_index = {brand.name: index for index, brand in enumerate(self.brands)}
        self.seed_rows: list[dict[str, np.ndarray]] = []
        # Cascade table (one row per cascade), columns appended as lists then frozen into arrays.
        self.cascades: dict[str, list[Any]] = {
            key: [] for key in ("brand", "lang", "profile", "n", "shape", "scale", "forward", "end", "other")
        }
        self.cascade_count = 0
        self.seed_count = 0
        # (incident, root event or -1, start_s, end_s); cascade incidents get their window from the data.
        self.truth: list[tuple[IncidentSpec, int, float, float]] = []
        self._build_users()

    # -- users

    def _build_users(self) -> None:
        """Per language: a heavy-tailed population (lognormal with a Pareto tail), then verified big accounts."""
        config, rng = self.config, self.rng
        expected: dict[str, float] = {lang: 0.0 for lang in LANGS}
        for brand in config.brands:
            expected[brand.lang] += brand.base_posts_per_hour * config.rate_scale * config.duration_s / 3600.0
        for incident in config.incidents:
            expected[config.brand(incident.brand).lang] += incident.effective_size
        followers: list[np.ndarray] = []
        verified: list[np.ndarray] = []
        activity: list[np.ndarray] = []
        langs: list[np.ndarray] = []
        # Handles of special accounts are fixed; the population's are made on first use (`_handle`).
        handles: list[str | None] = []
        self.pool: dict[str, np.ndarray] = {}
        self.pool_cumulative: dict[str, np.ndarray] = {}
        self.big_accounts: dict[str, np.ndarray] = {}
        offset = 0
        for lang_code, lang in enumerate(LANGS):
            count = int(np.clip(expected[lang] * 0.35, 300, 300_000))
            count_followers = rng.lognormal(math.log(180.0), 1.5, count)
            tail = rng.random(count) < 0.02
            count_followers[tail] = 20_000.0 * (1.0 + rng.pareto(1.1, int(tail.sum())))
            count_followers = np.minimum(count_followers, 50_000_000.0).astype(np.int64)
            p_verified = 1.0 / (1.0 + np.exp(-2.2 * (np.log10(count_followers + 1.0) - 5.0))) + 0.005
            followers.append(count_followers)
            verified.append(rng.random(count) < p_verified)
            activity.append(rng.lognormal(0.0, 1.2, count))
            langs.append(np.full(count, lang_code, dtype=np.int8))
            handles.extend([None] * count)
            self.pool[lang] = np.arange(offset, offset + count)
            offset += count
            big = _BIG_ACCOUNTS[lang]
            followers.append(np.array([f for _, f in big], dtype=np.int64))
            verified.append(np.ones(len(big), dtype=bool))
            activity.append(np.zeros(len(big)))
            langs.append(np.full(len(big), lang_code, dtype=np.int8))
            handles.extend(handle for handle, _ in big)
            self.big_accounts[lang] = np.arange(offset, offset + len(big))
            offset += len(big)
        # Brand accounts: verified, large.
        self.official: dict[str, int] = {}
        for brand in self.brands:
            followers.append(np.array([int(rng.lognormal(math.log(600_000.0), 0.6))], dtype=np.int64))
            verified.append(np.ones(1, dtype=bool))
            activity.append(np.zeros(1))
            langs.append(np.full(1, LANGS.index(brand.lang), dtype=np.int8))
            handles.append(brand.official_handle)
            self.official[brand.name] = offset
            offset += 1
        self.followers = np.concatenate(followers)
        self.verified = np.concatenate(verified)
        self.user_lang = np.concatenate(langs)
        self.handles: list[str | None] = handles
        self.handle_style = rng.integers(0, 1 << 30, offset)
        activity_all = np.concatenate(activity)
        # Fertility: reactions grow like sqrt(followers), capped, normalised to mean 1 over who posts.
        raw = np.minimum(np.sqrt((self.followers + 10.0) / 190.0), 30.0)
        self.fertility = np.empty(offset)
        for lang in LANGS:
            pool = self.pool[lang]
            weights = activity_all[pool] / activity_all[pool].sum()
            mean = float((raw[pool] * weights).sum())
            self.fertility[pool] = raw[pool] / mean
            self.fertility[self.big_accounts[lang]] = raw[self.big_accounts[lang]] / mean
            self.pool_cumulative[lang] = np.cumsum(weights)
        for brand in self.brands:
            self.fertility[self.official[brand.name]] = raw[self.official[brand.name]]

    def _handle(self, user: int) -> str:
        handle = self.handles[user]
        if handle is None:
            style = int(self.handle_style[user])
            if self.user_lang[user] == 0:
                first = _FIRST_NAMES[style % len(_FIRST_NAMES)]
                initial = "abcdefghijklmnopqrstuvwxyz"[(style >> 5) % 26]
                handle = f"{first}_{initial}{user}" if style & 1 << 12 else f"{first}{user}"
            elif style & 1 << 12:
                handle = f"用户{5_800_000_000 + user * 37}"
            else:
                handle = f"{_ZH_NICKS[style % len(_ZH_NICKS)]}{user}"
            self.handles[user] = handle
        return handle

    def _authors(self, lang: str, count: int) -> np.ndarray:
        """Authors drawn by activity: a few users post a lot."""
        index = np.searchsorted(self.pool_cumulative[lang], self.rng.random(count), side="right")
        return self.pool[lang][np.minimum(index, len(self.pool[lang]) - 1)]

    def _ordinary_author(self, lang: str) -> int:
        """An unremarkable account (hundreds to a few thousand followers): who starts real complaints."""
        pool = self.pool[lang]
        candidates = pool[
            (self.followers[pool] >= 150) & (self.followers[pool] <= 3000) & ~self.verified[pool]
        ]
        return int(self.rng.choice(candidates if len(candidates) else pool))

    def _climbing_authors(self, lang: str, count: int) -> list[int]:
        """Distinct well-followed accounts (thousands to hundreds of thousands), smallest first: how a
        complaint climbs before a big account picks it up."""
        pool = self.pool[lang]
        candidates = pool[(self.followers[pool] >= 5_000) & (self.followers[pool] <= 500_000)]
        if len(candidates) < count:
            candidates = np.concatenate([candidates, self.big_accounts[lang]])
        chosen = self.rng.choice(candidates, size=count, replace=False)
        return [int(user) for user in chosen[np.argsort(self.followers[chosen], kind="stable")]]

    # -- cascades and seeds

    def _cascades(
        self,
        count: int,
        brand: int,
        profile: np.ndarray | str,
        dynamics: _Dynamics,
        end_s: float,
        other: int = -1,
    ) -> np.ndarray:
        """Append `count` cascades (rows of the cascade table); `other` is a brand the texts also mention."""
        profiles = np.full(count, _PROFILE_ID[profile]) if isinstance(profile, str) else profile
        columns = self.cascades
        columns["brand"].append(np.full(count, brand))
        columns["lang"].append(np.full(count, LANGS.index(self.brands[brand].lang)))
        columns["profile"].append(profiles)
        columns["n"].append(np.full(count, dynamics.n))
        columns["shape"].append(np.full(count, dynamics.delay_shape))
        columns["scale"].append(np.full(count, dynamics.delay_scale_s))
        columns["forward"].append(np.full(count, dynamics.forward_share))
        columns["end"].append(np.full(count, end_s))
        columns["other"].append(np.full(count, other))
        ids = np.arange(self.cascade_count, self.cascade_count + count)
        self.cascade_count += count
        return ids

    def _seeds(self, **columns: Any) -> int:
        """Append seed events (roots or planted reactions); returns the index of the first one."""
        count = len(np.atleast_1d(columns["t"]))
        if "root" not in columns:  # originals (-1: themselves) and direct reactions to an original
            columns["root"] = columns["parent"]
        first = self.seed_count
        self.seed_rows.append(
            {key: np.broadcast_to(np.asarray(value), (count,)).copy() for key, value in columns.items()}
        )
        self.seed_count += count
        return first

    def _originals(
        self,
        brand: int,
        times: np.ndarray,
        stance_p: Sequence[float],
        category_p: Sequence[float],
        groups: dict[int, str] | None = None,
        dynamics: _Dynamics = _BACKGROUND,
        fertility_scale: float = 1.0,
    ) -> None:
        """Background-style originals: each starts its own cascade, reactions follow the root's stance."""
        count = len(times)
        if count == 0:
            return
        rng = self.rng
        spec = self.brands[brand]
        stance = rng.choice(4, size=count, p=np.asarray(stance_p) / np.sum(stance_p))
        category = rng.choice(len(CATEGORIES), size=count, p=np.asarray(category_p) / np.sum(category_p))
        group = np.array([_GROUP_ID["neutral"], _GROUP_ID["positive"], _GROUP_ID["negative"], 0])[stance]
        complaint_group = np.array([_GROUP_ID[f"complaint:{c}"] for c in CATEGORIES])[category]
        group = np.where(stance == COMPLAINT, complaint_group, group)
        for stance_code, name in (groups or {}).items():
            group = np.where(stance == stance_code, _GROUP_ID[name], group)
        profile = np.array(
            [
                _PROFILE_ID["follow_neutral"],
                _PROFILE_ID["follow_positive"],
                _PROFILE_ID["follow_negative"],
                _PROFILE_ID["follow_negative"],
            ]
        )[stance]
        cascade = self._cascades(count, brand, profile, dynamics, self.config.end_s)
        authors = self._authors(spec.lang, count)
        noise = rng.gamma(_FERTILITY_NOISE_SHAPE, 1.0 / _FERTILITY_NOISE_SHAPE, count)
        fertility = _ROOT_FERTILITY * fertility_scale * self.fertility[authors] * noise
        self._seeds(
            t=times,
            parent=-1,
            cascade=cascade,
            author=authors,
            kind=POST,
            stance=stance,
            group=group,
            m=fertility,
            scale=dynamics.delay_scale_s,
        )

    def _rate_profile(self, brand: BrandSpec, edges: np.ndarray) -> np.ndarray:
        """Daily (and weekly) cycle multiplier at UTC times `edges`, in the brand's local time."""
        zone = ZoneInfo(brand.time_zone)
        hours = np.floor(edges / 3600.0)
        unique_hours, inverse = np.unique(hours, return_inverse=True)
        offsets = np.array([_utc_offset_s(zone, h * 3600.0) for h in unique_hours])[inverse]
        local = edges + offsets
        local_hour = (local % 86400.0) / 3600.0
        multiplier = np.interp(local_hour, np.arange(25), np.append(_DIURNAL, _DIURNAL[0]))
        if self.config.weekly_cycle:
            weekday = ((np.floor(local / 86400.0) + 3) % 7).astype(int)  # 1970-01-01 was a Thursday
            multiplier = multiplier * _WEEKLY[weekday]
        return multiplier

    def _roots_per_hour(self, brand: BrandSpec) -> float:
        return (
            brand.base_posts_per_hour
            * self.config.rate_scale
            / _expected_cascade_size(_BACKGROUND, _ROOT_FERTILITY)
        )

    def _background(self) -> None:
        config, rng = self.config, self.rng
        bin_s = 60.0
        edges = config.start_s + np.arange(0.0, config.duration_s, bin_s)
        widths = np.minimum(bin_s, config.end_s - edges)
        for brand in config.brands:
            rate_per_s = self._roots_per_hour(brand) / 3600.0
            counts = rng.poisson(rate_per_s * widths * self._rate_profile(brand, edges + widths / 2))
            times = np.repeat(edges, counts) + rng.random(int(counts.sum())) * np.repeat(widths, counts)
            negative = brand.negative_share
            stance_p = (0.6 * (1 - negative), 0.4 * (1 - negative), 0.45 * negative, 0.55 * negative)
            self._originals(self.brand_index[brand.name], times, stance_p, _CATEGORY_MIX[brand.sector])

    # -- incidents

    def _incidents(self) -> None:
        for spec in self.config.incidents:
            getattr(self, f"_plant_{spec.kind}")(spec)

    def _window(self, spec: IncidentSpec) -> tuple[float, float]:
        start = self.config.start_s + spec.start_s
        return start, min(self.config.end_s, start + spec.effective_duration_s)

    def _category(self, spec: IncidentSpec, brand: BrandSpec) -> int:
        if spec.category is not None:
            return CATEGORIES.index(spec.category)
        return int(np.argmax(_CATEGORY_MIX[brand.sector]))

    def _viral_cascade(self, spec: IncidentSpec, brand_name: str, root_group: str, other: int = -1) -> int:
        """A complaint by an ordinary user that climbs: forwarded by ever larger accounts (each forwarding the
        previous one), then, when amplified, by a big account after `amplify_after_s`; the brand replies."""
        brand = self.brand_index[brand_name]
        lang = self.brands[brand].lang
        start, end = self._window(spec)
        size = spec.effective_size
        cascade = self._cascades(1, brand, "crisis", _VIRAL, end, other)
        amplified = spec.effective_amplified and start + spec.amplify_after_s < end
        climb_s = spec.amplify_after_s if amplified else min(3600.0, (end - start) / 3)
        # Shares of the expected reactions: root, three climbing forwards, the big account.
        shares = (0.06, 0.04, 0.06, 0.09, 0.75) if amplified else (0.25, 0.2, 0.25, 0.3, 0.0)
        root = self._seeds(
            t=start,
            parent=-1,
            cascade=cascade,
            author=self._ordinary_author(lang),
            kind=POST,
            stance=COMPLAINT,
            group=_GROUP_ID[root_group],
            m=_root_fertility_for(size * shares[0], _VIRAL),
            scale=600.0,
        )
        previous = root
        climbers = self._climbing_authors(lang, 3)
        for step, share in enumerate(shares[1:4], start=1):
            previous = self._seeds(
                t=start + climb_s * (0.25 * step),
                parent=previous,
                root=root,
                cascade=cascade,
                author=climbers[step - 1],
                kind=FORWARD,
                stance=NEGATIVE,
                group=_GROUP_ID["forward:negative"],
                m=_root_fertility_for(size * share, _VIRAL),
                scale=300.0,
            )
        if amplified:
            self._amplify(spec, lang, previous, root, cascade, NEGATIVE, size * shares[4], _VIRAL)
        reply_at = start + climb_s + 25 * 60.0
        if reply_at < end:
            self._seeds(
                t=reply_at,
                parent=root,
                cascade=cascade,
                author=self.official[brand_name],
                kind=COMMENT,
                stance=NEUTRAL,
                group=_GROUP_ID["official_reply"],
                m=0.3,
                scale=600.0,
            )
        return root

    def _amplify(
        self,
        spec: IncidentSpec,
        lang: str,
        parent: int,
        root: int,
        cascade: np.ndarray,
        stance: int,
        expected_reactions: float,
        dynamics: _Dynamics,
    ) -> None:
        """A big verified account forwards `parent` `amplify_after_s` after the incident starts: a fast burst."""
        self._seeds(
            t=self.config.start_s + spec.start_s + spec.amplify_after_s, parent=parent, root=root,
            cascade=cascade, author=int(self.rng.choice(self.big_accounts[lang])), kind=FORWARD, stance=stance,
            group=_GROUP_ID["amplify:negative" if stance == NEGATIVE else "amplify:positive"],
            m=_root_fertility_for(expected_reactions, dynamics), scale=240.0,
        )  # fmt: skip

    def _plant_viral_complaint(self, spec: IncidentSpec) -> None:
        category = CATEGORIES[self._category(spec, self.config.brand(spec.brand))]
        root = self._viral_cascade(spec, spec.brand, f"complaint:{category}")
        self.truth.append((spec, root, 0.0, 0.0))

    def _plant_other_brand_crisis(self, spec: IncidentSpec) -> None:
        assert spec.other_brand is not None
        root = self._viral_cascade(spec, spec.other_brand, "other_crisis", other=self.brand_index[spec.brand])
        self.truth.append((spec, root, 0.0, 0.0))

    def _plant_positive_campaign(self, spec: IncidentSpec) -> None:
        brand = self.brand_index[spec.brand]
        lang = self.brands[brand].lang
        start, end = self._window(spec)
        size = spec.effective_size
        cascade = self._cascades(1, brand, "campaign", _CAMPAIGN, end)
        amplified = spec.effective_amplified and start + spec.amplify_after_s < end
        share_before = 0.5 if amplified else 1.0
        root = self._seeds(
            t=start,
            parent=-1,
            cascade=cascade,
            author=self.official[spec.brand],
            kind=POST,
            stance=POSITIVE,
            group=_GROUP_ID["campaign"],
            m=_root_fertility_for(size * share_before, _CAMPAIGN),
            scale=600.0,
        )
        if amplified:
            self._amplify(spec, lang, root, root, cascade, POSITIVE, size * (1 - share_before), _CAMPAIGN)
        self.truth.append((spec, root, 0.0, 0.0))

    def _plant_neutral_news(self, spec: IncidentSpec) -> None:
        brand = self.brand_index[spec.brand]
        lang = self.brands[brand].lang
        start, end = self._window(spec)
        size = spec.effective_size
        cascade = self._cascades(1, brand, "news", _NEWS, end)
        root = self._seeds(
            t=start,
            parent=-1,
            cascade=cascade,
            author=int(self.rng.choice(self.big_accounts[lang])),
            kind=POST,
            stance=NEUTRAL,
            group=_GROUP_ID["news"],
            m=_root_fertility_for(0.75 * size, _NEWS),
            scale=300.0,
        )
        chatter = self.rng.poisson(0.25 * size / _expected_cascade_size(_BACKGROUND, _ROOT_FERTILITY))
        times = start + (end - start) * self.rng.beta(1.0, 3.0, chatter)
        self._originals(
            brand, times, (0.85, 0.05, 0.10, 0.0), _CATEGORY_MIX["retail"], {NEUTRAL: "news_chat"}
        )
        self.truth.append((spec, root, start, end))

    def _brand_wide_size(self, spec: IncidentSpec, factor: float) -> int:
        if spec.size is not None:
            return spec.size
        hours = spec.effective_duration_s / 3600.0
        return max(30, int(round(factor * self._roots_per_hour(self.config.brand(spec.brand)) * hours)))

    def _plant_outage(self, spec: IncidentSpec) -> None:
        brand = self.brand_index[spec.brand]
        start, end = self._window(spec)
        count = self.rng.poisson(self._brand_wide_size(spec, 4.0))
        times = start + (end - start) * self.rng.beta(1.5, 2.0, count)
        category_p = np.eye(len(CATEGORIES))[CATEGORIES.index(spec.category or "service")]
        self._originals(brand, times, (0.12, 0.03, 0.15, 0.70), category_p, {COMPLAINT: "outage"})
        self.truth.append((spec, -1, start, end))

    def _plant_daily_peak(self, spec: IncidentSpec) -> None:
        brand_spec = self.config.brand(spec.brand)
        start, end = self._window(spec)
        count = self.rng.poisson(self._brand_wide_size(spec, 1.5))
        times = start + (end - start) * self.rng.beta(2.0, 2.0, count)
        negative = brand_spec.negative_share
        stance_p = (0.6 * (1 - negative), 0.4 * (1 - negative), 0.45 * negative, 0.55 * negative)
        self._originals(self.brand_index[spec.brand], times, stance_p, _CATEGORY_MIX[brand_spec.sector])
        self.truth.append((spec, -1, start, end))

    def _plant_scattered_negative(self, spec: IncidentSpec) -> None:
        brand_spec = self.config.brand(spec.brand)
        start, end = self._window(spec)
        count = spec.effective_size
        times = np.sort(start + (end - start) * self.rng.random(count))
        self._originals(
            self.brand_index[spec.brand],
            times,
            (0.0, 0.0, 0.4, 0.6),
            _CATEGORY_MIX[brand_spec.sector],
            fertility_scale=0.2,
        )
        self.truth.append((spec, -1, start, end))

    def _plant_slow_burn(self, spec: IncidentSpec) -> None:
        brand = self.brand_index[spec.brand]
        brand_spec = self.brands[brand]
        start, end = self._window(spec)
        size = spec.effective_size
        category = self._category(spec, brand_spec)
        slow = _Dynamics(n=0.5, delay_shape=2.0, delay_scale_s=(end - start) / 3.0, forward_share=0.6)
        cascade = self._cascades(1, brand, "crisis", slow, end)
        root = self._seeds(
            t=start,
            parent=-1,
            cascade=cascade,
            author=self._ordinary_author(brand_spec.lang),
            kind=POST,
            stance=COMPLAINT,
            group=_GROUP_ID[f"complaint:{CATEGORIES[category]}"],
            m=_root_fertility_for(0.6 * size, slow),
            scale=slow.delay_scale_s,
        )
        trickle = self.rng.poisson(0.4 * size / _expected_cascade_size(_BACKGROUND, _ROOT_FERTILITY))
        times = start + (end - start) * self.rng.beta(2.0, 1.0, trickle)
        self._originals(brand, times, (0.0, 0.0, 0.3, 0.7), np.eye(len(CATEGORIES))[category])
        self.truth.append((spec, root, start, end))

    # -- growth

    def _grow(self) -> dict[str, np.ndarray]:
        """Generation by generation, every cascade at once: the cluster form of a Hawkes process."""
        rng = self.rng
        cascades = {key: np.concatenate(value) for key, value in self.cascades.items()}
        seeds = {key: np.concatenate([rows[key] for rows in self.seed_rows]) for key in self.seed_rows[0]}
        count = len(seeds["t"])
        seeds["root"] = np.where(seeds["root"] < 0, np.arange(count), seeds["root"])
        seeds["has_text"] = np.ones(count, dtype=bool)
        chunks = [seeds]
        current, offset = seeds, 0
        lang_codes = cascades["lang"]
        for _ in range(_MAX_GENERATIONS):
            size = len(current["t"])
            children_per_event = rng.poisson(current["m"])
            total = int(children_per_event.sum())
            if total == 0:
                break
            parent_local = np.repeat(np.arange(size), children_per_event)
            cascade = current["cascade"][parent_local]
            shape = cascades["shape"][cascade]
            uniform = rng.random(total)
            delay = current["scale"][parent_local] * np.expm1(-np.log1p(-uniform) / shape)
            t = current["t"][parent_local] + np.maximum(delay, _MIN_DELAY_S + rng.random(total))
            keep = t < cascades["end"][cascade]
            parent_local, cascade, t = parent_local[keep], cascade[keep], t[keep]
            total = len(t)
            if total == 0:
                break
            authors = np.empty(total, dtype=np.int64)
            for lang_code, lang in enumerate(LANGS):
                mask = lang_codes[cascade] == lang_code
                authors[mask] = self._authors(lang, int(mask.sum()))
            parent_kind = current["kind"][parent_local]
            forward = (parent_kind != COMMENT) & (rng.random(total) < cascades["forward"][cascade])
            kind = np.where(forward, FORWARD, COMMENT)
            noise = rng.gamma(_FERTILITY_NOISE_SHAPE, 1.0 / _FERTILITY_NOISE_SHAPE, total)
            fertility = cascades["n"][cascade] * self.fertility[authors] * noise
            fertility = np.where(forward, fertility, fertility * _COMMENT_FERTILITY_FACTOR)
            profile = cascades["profile"][cascade]
            stance = np.empty(total, dtype=np.int64)
            has_text = np.ones(total, dtype=bool)
            draw = rng.random(total)
            text_draw = rng.random(total)
            for profile_name, profile_id in _PROFILE_ID.items():
                comment_p, forward_text_p, forward_p = _PROFILES[profile_name]
                in_profile = profile == profile_id
                is_comment = in_profile & ~forward
                stance[is_comment] = np.searchsorted(np.cumsum(comment_p), draw[is_comment], side="right")
                is_forward = in_profile & forward
                stance[is_forward] = np.searchsorted(np.cumsum(forward_p), draw[is_forward], side="right")
                has_text[is_forward] = text_draw[is_forward] < forward_text_p
            stance = np.minimum(stance, 3)
            group = _REACTION_GROUPS[profile, kind - 1, stance]
            group = np.where(has_text, group, _NO_TEXT)
            child = {
                "t": t,
                "parent": offset + parent_local,
                "cascade": cascade,
                "author": authors,
                "kind": kind,
                "stance": stance,
                "group": group,
                "m": fertility,
                "scale": cascades["scale"][cascade],
                "root": current["root"][parent_local],
                "has_text": has_text,
            }
            chunks.append(child)
            offset += size
            current = child
        events = {key: np.concatenate([chunk[key] for chunk in chunks]) for key in chunks[0]}
        events["t"] = np.round(events["t"], 3)
        events["brand"] = cascades["brand"][events["cascade"]]
        events["lang"] = cascades["lang"][events["cascade"]]
        events["other"] = cascades["other"][events["cascade"]]
        return events

    # -- output

    def _ground_truth(self, events: dict[str, np.ndarray], ids: list[str]) -> list[GroundTruthIncident]:
        result = []
        for spec, root, start, end in self.truth:
            is_crisis = spec.defaults.is_crisis
            if spec.kind in ("viral_complaint", "positive_campaign", "other_brand_crisis"):
                times = events["t"][events["root"] == root]
                start = float(events["t"][root])
                end = max(start + 600.0, float(np.quantile(times, 0.95)))
            root_id = ids[root] if root >= 0 and spec.kind not in ("neutral_news",) else None
            if spec.kind == "other_brand_crisis":
                assert spec.other_brand is not None
                result.append(
                    GroundTruthIncident(spec.other_brand, ids[root], start, end, True, "viral_complaint")
                )
            result.append(GroundTruthIncident(spec.brand, root_id, start, end, is_crisis, spec.kind))
        return sorted(result, key=lambda incident: (incident.start_s, incident.brand))

    def _surface(self, brand: BrandSpec) -> str:
        """How a post names the brand: mostly the name, else an alias; sometimes lower case or a Weibo tag."""
        rng = self.text_rng
        forms = (brand.name, *brand.aliases)
        form = (
            brand.name
            if rng.random() < 0.5 or len(forms) == 1
            else forms[1 + int(rng.random() * (len(forms) - 1))]
        )
        roll = rng.random()
        if brand.lang == "zh" and roll < 0.2 and not form.startswith(("@", "#")):
            return f"#{form}#"
        if brand.lang == "en" and roll < 0.1:
            return form.lower()
        return form

    def _fill(self, group: int, lang: str, brand: BrandSpec, other: BrandSpec | None) -> str:
        rng = self.text_rng
        templates = _TEMPLATES[lang][_GROUP_NAMES[group]]
        template = templates[int(rng.random() * len(templates))]
        values: dict[str, str] = {}
        for slot in _slots_cached(template):
            if slot == "brand":
                values[slot] = self._surface(brand)
            elif slot == "other":
                values[slot] = self._surface(other) if other is not None else self._surface(brand)
            elif slot == "item":
                items = _ITEMS[brand.sector][lang]
                values[slot] = items[int(rng.random() * len(items))]
            elif slot == "city":
                values[slot] = _CITIES[lang][int(rng.random() * len(_CITIES[lang]))]
            elif slot == "n":
                values[slot] = str(2 + int(rng.random() * 8))
            elif slot == "hours":
                values[slot] = str(2 + int(rng.random() * 10))
            elif slot == "money":
                values[slot] = str(20 + int(rng.random() * 480))
            elif slot == "order":
                values[slot] = f"#{'ABCDEFGH'[int(rng.random() * 8)]}{10_000 + int(rng.random() * 89_999)}"
            elif slot == "friend":
                values[slot] = self._handle(self.pool[lang][int(rng.random() * len(self.pool[lang]))])
        return template.format_map(values)

    def _texts(
        self, events: dict[str, np.ndarray], order: np.ndarray, handles: list[str]
    ) -> tuple[list[str], list[bool]]:
        """Own texts plus forward chains and reply prefixes, in event-time order so that a parent's text is
        known before its children's. Returns (texts, whether each post has own words)."""
        count = len(order)
        texts = [""] * count
        owns = [""] * count
        # zh: `//@` hops in the chain so far; en: the post a retweet quotes (nearest ancestor with own words).
        hops = [0] * count
        quoted = list(range(count))
        kind, parent, group = events["kind"].tolist(), events["parent"].tolist(), events["group"].tolist()
        lang, brand, other = events["lang"].tolist(), events["brand"].tolist(), events["other"].tolist()
        brands = self.brands
        for index in order.tolist():
            language = LANGS[lang[index]]
            own = ""
            if group[index] != _NO_TEXT:
                other_brand = brands[other[index]] if other[index] >= 0 else None
                own = self._fill(group[index], language, brands[brand[index]], other_brand)
            owns[index] = own
            post_kind = kind[index]
            if post_kind == POST:
                texts[index] = own
                continue
            up = parent[index]
            if post_kind == COMMENT:
                if kind[up] == COMMENT:
                    own = f"回复@{handles[up]}:{own}" if language == "zh" else f"@{handles[up]} {own}"
                texts[index] = own
            elif language == "zh":
                if kind[up] == FORWARD:
                    chain = texts[up]
                    if hops[up] >= _MAX_CHAIN_HOPS:  # drop the oldest hop, as clients truncate long chains
                        chain = chain.rsplit("//@", 1)[0]
                    texts[index] = f"{own}//@{handles[up]}:{chain}"
                    hops[index] = min(hops[up] + 1, _MAX_CHAIN_HOPS)
                else:
                    texts[index] = own or "转发微博"
            else:
                source = quoted[up]
                retweet = f"RT @{handles[source]}: {owns[source]}"
                texts[index] = f"{own} {retweet}" if own else retweet
                if not own:
                    quoted[index] = source
        return texts, [bool(own) for own in owns]

    def run(self) -> Scenario:
        self._background()
        self._incidents()
        if not self.seed_rows:
            return Scenario(self.config, [], [])
        events = self._grow()
        count = len(events["t"])
        order = np.lexsort((np.arange(count), events["t"]))
        rank = np.empty(count, dtype=np.int64)
        rank[order] = np.arange(count)
        width = max(8, len(str(count)))
        prefixes = ("tw", "wb")
        ids = [
            f"{prefixes[lang]}{r:0{width}d}"
            for lang, r in zip(events["lang"].tolist(), rank.tolist(), strict=True)
        ]
        with _collector_paused():
            posts = self._posts(events, order, rank, ids)
        return Scenario(self.config, posts, self._ground_truth(events, ids))

    def _posts(
        self, events: dict[str, np.ndarray], order: np.ndarray, rank: np.ndarray, ids: list[str]
    ) -> list[dict[str, Any]]:
        """Contract dicts in emission order."""
        config, rng = self.config, self.rng
        count = len(ids)
        unique_authors, author_of = np.unique(events["author"], return_inverse=True)
        handle_of_author = [self._handle(user) for user in unique_authors.tolist()]
        handles = [handle_of_author[a] for a in author_of.tolist()]
        texts, has_own = self._texts(events, order, handles)
        created = np.datetime_as_string(
            (events["t"] * 1000.0).round().astype("datetime64[ms]"), unit="ms"
        ).tolist()
        emit_key = (
            events["t"] + rng.random(count) * config.out_of_order_s if config.out_of_order_s else events["t"]
        )
        emission = np.lexsort((rank, emit_key))
        lang_field = (rng.random(count) < config.lang_field_share).tolist()
        brands_field = (rng.random(count) < config.brands_field_share).tolist()
        sentiment = None
        if config.include_sentiment:
            stance = events["stance"]
            alpha = np.array([2.0, 1.0, 8.0, 9.0])[stance]
            beta = np.array([6.0, 9.0, 2.0, 1.5])[stance]
            sentiment = np.round(rng.beta(alpha, beta), 3).tolist()
        kind, parent, root = events["kind"].tolist(), events["parent"].tolist(), events["root"].tolist()
        brand, other, lang = events["brand"].tolist(), events["other"].tolist(), events["lang"].tolist()
        followers = self.followers[events["author"]].tolist()
        verified = self.verified[events["author"]].tolist()
        brand_names = [spec.name for spec in self.brands]
        posts: list[dict[str, Any]] = []
        for index in emission.tolist():
            post_kind = kind[index]
            post: dict[str, Any] = {
                "id": ids[index],
                "created_at": created[index] + "Z",
                "text": texts[index],
                "kind": KIND_NAMES[post_kind],
            }
            if post_kind != POST:
                post["parent_id"] = ids[parent[index]]
            post["root_id"] = ids[root[index]]
            post["author"] = {
                "id": handles[index],
                "followers": followers[index],
                "verified": verified[index],
            }
            language = LANGS[lang[index]]
            post["platform"] = PLATFORMS[language]
            if lang_field[index]:
                post["lang"] = language
            if post_kind == POST:
                if language == "zh":
                    post["url"] = f"https://weibo.com/{handles[index]}/{ids[index]}"
                else:
                    post["url"] = f"https://twitter.com/{handles[index]}/status/{ids[index]}"
                if brands_field[index]:
                    names = [brand_names[brand[index]]]
                    if other[index] >= 0:
                        names.append(brand_names[other[index]])
                    post["brands"] = names
            if sentiment is not None and has_own[index]:
                post["sentiment"] = sentiment[index]
            posts.append(post)
        return posts


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Building a million small dicts makes the cyclic garbage collector rescan them again and again; none of
    them form cycles, so pausing it roughly halves generation time."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


_SLOT_CACHE: dict[str, tuple[str, ...]] = {}


def _slots_cached(template: str) -> tuple[str, ...]:
    slots = _SLOT_CACHE.get(template)
    if slots is None:
        slots = _SLOT_CACHE[template] = _slots(template)
    return slots


def iter_jsonl(scenario: Scenario) -> Iterator[str]:
    """The posts as JSON lines (no trailing newline), e.g. to send to Kafka."""
    return (_dump(post) for post in scenario.posts)

"""`crisiswatch simulate`: labelled streams from the scenario generator, for replay, scoring and tuning.

Presets: the generator's `demo` (what `crisiswatch demo` runs), `smoke` and `week`, and `mixed`: a random
but seeded mix of brands (English/Twitter and Chinese/Weibo, one small brand) and incidents over `--days`
days. `mixed` plants, per day after the warm-up, crises (viral complaint often amplified mid-way by a big
account, brand-wide outage, slow-burn complaint) and hard negatives that must not page (positive viral
campaign, daily peak, neutral news burst, another brand's crisis that mentions this one, scattered negative
posts about a small brand). Outputs: the posts (JSONL, .gz), the labelled incidents (JSONL, the format
`replay --incidents` reads) and a config with the brands and their aliases.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import io
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import yaml

from crisiswatch.detectors.settings import ConfigError
from crisiswatch.streams.scenarios import (
    CATEGORIES,
    BrandSpec,
    IncidentSpec,
    Scenario,
    ScenarioConfig,
    generate,
    iter_jsonl,
)
from crisiswatch.streams.scenarios import preset as scenario_preset

DAY_S = 86_400.0
HOUR_S = 3_600.0
PRESETS: tuple[str, ...] = ("demo", "smoke", "week", "mixed")
CRISIS_KINDS: tuple[str, ...] = ("viral_complaint", "outage", "slow_burn")
HARD_NEGATIVE_KINDS: tuple[str, ...] = (
    "positive_campaign",
    "daily_peak",
    "neutral_news",
    "other_brand_crisis",
    "scattered_negative",
)

# The brands `mixed` draws from: (name, aliases, lang, time zone, posts per hour, sector).
BRAND_POOL: tuple[tuple[str, tuple[str, ...], str, str, float, str], ...] = (
    (
        "Northwind Air",
        ("Northwind", "@NorthwindAir", "#NorthwindAir"),
        "en",
        "America/New_York",
        150.0,
        "airline",
    ),
    ("ByteBrew Coffee", ("ByteBrew", "@ByteBrew", "#ByteBrew"), "en", "Europe/London", 120.0, "coffee"),
    ("快达快递", ("快达", "@快达快递官方", "KuaiDa Express"), "zh", "Asia/Shanghai", 200.0, "courier"),
    ("星辰手机", ("星辰", "Xingchen Mobile"), "zh", "Asia/Shanghai", 90.0, "electronics"),
    ("SkyLark Airlines", ("SkyLark", "@SkyLarkAir"), "en", "America/Chicago", 80.0, "airline"),
    ("Maple Mart", ("MapleMart", "@MapleMart"), "en", "America/Toronto", 100.0, "retail"),
    ("青柠咖啡", ("青柠", "Qingning Coffee"), "zh", "Asia/Shanghai", 70.0, "coffee"),
    ("VoltEdge", ("Volt Edge", "@VoltEdge"), "en", "America/Los_Angeles", 70.0, "electronics"),
    ("云鹤航空", ("云鹤", "Yunhe Airlines"), "zh", "Asia/Shanghai", 110.0, "airline"),
    ("ParcelPoint", ("Parcel Point", "@ParcelPoint"), "en", "Europe/Berlin", 90.0, "courier"),
)
# Small brands: a handful of posts a day, so a few negative posts are a big share but no crisis.
SMALL_BRAND_POOL: tuple[tuple[str, tuple[str, ...], str, str, float, str], ...] = (
    ("Pebble Books", ("Pebble", "@PebbleBooks"), "en", "America/Los_Angeles", 4.0, "books"),
    ("书香书店", ("书香", "Shuxiang Books"), "zh", "Asia/Shanghai", 6.0, "books"),
)


@dataclasses.dataclass(frozen=True)
class MixedOptions:
    """What `simulate --preset mixed` varies; every default is a documented, tested operating point."""

    seed: int = 0
    days: float = 3.0
    brands: int = 5
    # Multiplies every brand's traffic (and brand-wide incident sizes).
    volume: float = 1.0
    # Days without incidents at the start, so baselines have history (0: incidents from the first hour).
    warmup_days: float = 1.0
    crises_per_day: float = 2.0
    hard_negatives_per_day: float = 3.0
    langs: tuple[str, ...] = ("en", "zh")
    out_of_order_s: float = 10.0
    include_sentiment: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.days <= 60:
            raise ConfigError("--days", self.days, "a number of days in (0, 60]")
        if not 1 <= self.brands <= len(BRAND_POOL) + len(SMALL_BRAND_POOL):
            raise ConfigError("--brands", self.brands, f"1..{len(BRAND_POOL) + len(SMALL_BRAND_POOL)}")
        if not 0 < self.volume <= 1000:
            raise ConfigError("--volume", self.volume, "a factor in (0, 1000]")
        if not 0 <= self.warmup_days < self.days:
            raise ConfigError("--warmup-days", self.warmup_days, f"0 <= days < --days ({self.days})")
        if not self.langs or any(lang not in ("en", "zh") for lang in self.langs):
            raise ConfigError("--langs", ",".join(self.langs), "en, zh or en,zh")
        for key in ("crises_per_day", "hard_negatives_per_day"):
            if not 0 <= getattr(self, key) <= 50:
                raise ConfigError("--" + key.replace("_", "-"), getattr(self, key), "0..50")


def _brand_spec(
    entry: tuple[str, tuple[str, ...], str, str, float, str], rate: float, role: str = "own"
) -> BrandSpec:
    name, aliases, lang, zone, _, sector = entry
    return BrandSpec(
        name=name,
        aliases=aliases,
        lang=lang,
        role=role,
        time_zone=zone,
        base_posts_per_hour=rate,
        sector=sector,
    )


def mixed_config(options: MixedOptions) -> ScenarioConfig:
    """A seeded random scenario: brands from the pools, incidents spread over the days after the warm-up."""
    rng = np.random.default_rng([options.seed, 20261124])
    pool = [entry for entry in BRAND_POOL if entry[2] in options.langs]
    small = [entry for entry in SMALL_BRAND_POOL if entry[2] in options.langs]
    want_small = 1 if options.brands >= 3 and small else 0
    big_count = min(options.brands - want_small, len(pool))
    chosen: list[BrandSpec] = []
    # At least one brand per language asked for, then the rest at random.
    order = list(rng.permutation(len(pool)))
    picked: list[int] = []
    for lang in options.langs:
        first = next((i for i in order if pool[i][2] == lang and i not in picked), None)
        if first is not None and len(picked) < big_count:
            picked.append(first)
    picked += [i for i in order if i not in picked][: big_count - len(picked)]
    for rank, index in enumerate(sorted(picked)):
        entry = pool[index]
        rate = entry[4] * float(rng.uniform(0.6, 1.5))
        chosen.append(
            _brand_spec(
                entry, round(rate, 1), "competitor" if rank == len(picked) - 1 and len(picked) > 2 else "own"
            )
        )
    if want_small:
        entry = small[int(rng.integers(len(small)))]
        chosen.append(_brand_spec(entry, entry[4]))
    duration = options.days * DAY_S
    planner = _Planner(rng, chosen, duration)
    crises, negatives = _Bag(rng, CRISIS_KINDS), _Bag(rng, HARD_NEGATIVE_KINDS)
    day = options.warmup_days
    while day < options.days:
        span = (day * DAY_S, min(duration, (day + 1) * DAY_S))
        share = (span[1] - span[0]) / DAY_S
        for _ in range(_count(rng, options.crises_per_day * share)):
            planner.plant(crises.draw(), span)
        for _ in range(_count(rng, options.hard_negatives_per_day * share)):
            planner.plant(negatives.draw(), span)
        day += 1
    return ScenarioConfig(
        seed=options.seed,
        duration_s=duration,
        brands=tuple(chosen),
        incidents=tuple(sorted(planner.incidents, key=lambda spec: (spec.start_s, spec.brand))),
        out_of_order_s=options.out_of_order_s,
        rate_scale=options.volume,
        include_sentiment=options.include_sentiment,
    )


def _count(rng: np.random.Generator, mean: float) -> int:
    """The integer part always, the fraction by chance: steady counts per day, right on average."""
    whole = int(mean)
    return whole + int(rng.random() < mean - whole)


class _Bag:
    """Kinds drawn without replacement, refilled when empty: every kind shows up, in a random order."""

    def __init__(self, rng: np.random.Generator, kinds: Sequence[str]) -> None:
        self.rng = rng
        self.kinds = list(kinds)
        self.left: list[str] = []

    def draw(self) -> str:
        if not self.left:
            self.left = [self.kinds[i] for i in self.rng.permutation(len(self.kinds))]
        return self.left.pop()


class _Planner:
    """Places incidents at random times, never two on one brand at once (each needs its own window)."""

    # Quiet time kept around an incident on its brand, so episodes of different incidents don't merge.
    MARGIN_S = 2 * HOUR_S

    def __init__(self, rng: np.random.Generator, brands: Sequence[BrandSpec], duration_s: float) -> None:
        self.rng = rng
        self.brands = list(brands)
        self.duration_s = duration_s
        self.busy: dict[str, list[tuple[float, float]]] = {brand.name: [] for brand in brands}
        self.incidents: list[IncidentSpec] = []

    def _candidates(self, kind: str) -> list[BrandSpec]:
        small = [b for b in self.brands if b.base_posts_per_hour < 20]
        big = [b for b in self.brands if b.base_posts_per_hour >= 20]
        if kind == "scattered_negative":
            return small or sorted(self.brands, key=lambda b: b.base_posts_per_hour)[:1]
        return big or self.brands

    def _free(self, brand: str, start: float, end: float) -> bool:
        return all(end + self.MARGIN_S <= s or start >= e + self.MARGIN_S for s, e in self.busy[brand])

    def plant(self, kind: str, span: tuple[float, float]) -> None:
        rng = self.rng
        candidates = self._candidates(kind)
        for _ in range(30):
            brand = candidates[int(rng.integers(len(candidates)))]
            spec = self._spec(kind, brand, span)
            if spec is None:
                continue
            start, end = spec.start_s, spec.start_s + spec.effective_duration_s
            if end > self.duration_s or not self._free(brand.name, start, end):
                continue
            if spec.other_brand is not None:
                if not self._free(spec.other_brand, start, end):
                    continue
                self.busy[spec.other_brand].append((start, end))
            self.busy[brand.name].append((start, end))
            self.incidents.append(spec)
            return

    def _spec(self, kind: str, brand: BrandSpec, span: tuple[float, float]) -> IncidentSpec | None:
        rng = self.rng
        start = float(round(rng.uniform(span[0], span[1]) / 60.0) * 60.0)
        category = str(rng.choice(CATEGORIES))
        if kind == "viral_complaint":
            return IncidentSpec(
                kind, brand.name, start, size=int(rng.integers(300, 2000)), category=category,
                amplified=bool(rng.random() < 0.7), amplify_after_s=float(rng.integers(20, 61)) * 60.0,
            )  # fmt: skip
        if kind == "outage":
            return IncidentSpec(
                kind, brand.name, start, duration_s=float(rng.integers(1, 4)) * HOUR_S, category="service"
            )
        if kind == "slow_burn":
            return IncidentSpec(kind, brand.name, start, size=int(rng.integers(200, 600)), category=category)
        if kind == "positive_campaign":
            return IncidentSpec(
                kind, brand.name, start, size=int(rng.integers(400, 1500)), amplified=bool(rng.random() < 0.7)
            )
        if kind == "neutral_news":
            return IncidentSpec(kind, brand.name, start, size=int(rng.integers(300, 900)))
        if kind == "daily_peak":
            return IncidentSpec(kind, brand.name, start)
        if kind == "other_brand_crisis":
            others = [
                b
                for b in self.brands
                if b.name != brand.name and b.lang == brand.lang and b.base_posts_per_hour >= 20
            ]
            if not others:
                return None
            other = others[int(rng.integers(len(others)))]
            return IncidentSpec(
                kind, brand.name, start, size=int(rng.integers(400, 1200)), other_brand=other.name
            )
        if kind == "scattered_negative":
            return IncidentSpec(kind, brand.name, start, duration_s=8 * HOUR_S, size=int(rng.integers(8, 20)))
        raise ConfigError("kind", kind, "an incident kind")


def scenario_config(
    preset: str,
    *,
    seed: int | None = None,
    days: float | None = None,
    brands: int | None = None,
    volume: float | None = None,
    **mixed: Any,
) -> ScenarioConfig:
    """The named preset with the flags applied (`demo`, `smoke`, `week` are the generator's presets)."""
    if preset not in PRESETS:
        raise ConfigError("--preset", preset, f"one of {list(PRESETS)}")
    if preset == "mixed":
        fields = {"seed": seed, "days": days, "brands": brands, "volume": volume, **mixed}
        return mixed_config(
            MixedOptions(**{key: value for key, value in fields.items() if value is not None})
        )
    if brands is not None or any(value is not None for value in mixed.values()):
        raise ConfigError("--brands", brands, "only with --preset mixed")
    overrides: dict[str, Any] = {}
    if seed is not None:
        overrides["seed"] = seed
    if days is not None:
        overrides["duration_s"] = days * DAY_S
    if volume is not None:
        overrides["rate_scale"] = volume
    config = scenario_preset(preset, **overrides)
    if days is not None:
        config = dataclasses.replace(
            config, incidents=tuple(i for i in config.incidents if i.start_s < config.duration_s)
        )
    return config


def simulate(preset: str = "demo", **options: Any) -> Scenario:
    """Generate the preset's scenario (what `crisiswatch demo` and the benchmarks run)."""
    return generate(scenario_config(preset, **options))


def brands_document(scenario: Scenario) -> dict[str, Any]:
    """A config document monitoring the scenario's brands with the aliases the generator writes."""
    return {
        "brands": [
            {
                "name": b.name,
                "aliases": list(b.aliases),
                "role": b.role,
                "time_zone": b.time_zone,
                "lang": b.lang,
            }
            for b in scenario.config.brands
        ]
    }


def _open_text(path: str) -> TextIO:
    if path == "-":
        return sys.stdout
    if path.endswith(".gz"):
        raw = gzip.GzipFile(path, mode="wb", mtime=0)
        return io.TextIOWrapper(raw, encoding="utf-8", newline="\n")
    return open(path, "w", encoding="utf-8", newline="\n")  # noqa: SIM115 - closed by the caller


def write_posts(scenario: Scenario, path: str) -> None:
    handle = _open_text(path)
    try:
        for line in iter_jsonl(scenario):
            handle.write(line)
            handle.write("\n")
    finally:
        if handle is not sys.stdout:
            handle.close()


def add_simulate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--preset",
        default="mixed",
        choices=PRESETS,
        help="scenario preset (default mixed; demo is `crisiswatch demo`)",
    )
    parser.add_argument(
        "--out", required=True, metavar="POSTS.jsonl", help="the posts (.gz compresses, - for stdout)"
    )
    parser.add_argument(
        "--incidents-out",
        metavar="INCIDENTS.jsonl",
        help="the labelled incidents (replay --incidents reads them)",
    )
    parser.add_argument(
        "--config-out", metavar="CONFIG.yaml", help="a config file with the scenario's brands and aliases"
    )
    parser.add_argument("--seed", type=int, help="random seed (default: the preset's)")
    parser.add_argument("--days", type=float, help="length in days (mixed default 3)")
    parser.add_argument(
        "--brands", type=int, help="number of brands (mixed only, default 5: English and Chinese, one small)"
    )
    parser.add_argument("--volume", type=float, help="traffic multiplier (default 1)")
    parser.add_argument(
        "--warmup-days", type=float, help="mixed: days without incidents at the start (default 1)"
    )
    parser.add_argument("--crises-per-day", type=float, help="mixed: mean crises per day (default 2)")
    parser.add_argument(
        "--hard-negatives-per-day", type=float, help="mixed: mean hard negatives per day (default 3)"
    )
    parser.add_argument("--langs", help="mixed: en, zh or en,zh (default both)")
    parser.add_argument(
        "--sentiment", action="store_true", help="add the contract's optional `sentiment` field"
    )


def run_simulate(args: argparse.Namespace, err: TextIO | None = None) -> int:
    err = err or sys.stderr
    mixed: dict[str, Any] = {
        "warmup_days": args.warmup_days,
        "crises_per_day": args.crises_per_day,
        "hard_negatives_per_day": args.hard_negatives_per_day,
        "langs": tuple(part.strip() for part in args.langs.split(",")) if args.langs else None,
    }
    if args.sentiment and args.preset == "mixed":
        mixed["include_sentiment"] = True
    config = scenario_config(
        args.preset, seed=args.seed, days=args.days, brands=args.brands, volume=args.volume, **mixed
    )
    if args.sentiment and args.preset != "mixed":
        config = dataclasses.replace(config, include_sentiment=True)
    scenario = generate(config)
    write_posts(scenario, args.out)
    if args.incidents_out:
        scenario.incidents_to_jsonl(args.incidents_out)
    if args.config_out:
        Path(args.config_out).write_text(
            "# Brands of a `crisiswatch simulate` scenario; add the other sections as needed.\n"
            + yaml.safe_dump(brands_document(scenario), allow_unicode=True, sort_keys=False),
            encoding="utf-8",
        )
    crises = sum(1 for incident in scenario.incidents if incident.is_crisis)
    err.write(
        f"simulated {len(scenario.posts):,} posts about {len(config.brands)} brands over {config.duration_s / DAY_S:g} days "
        f"(seed {config.seed}); {len(scenario.incidents)} labelled incidents, {crises} crises\n"
    )
    return 0

"""`crisiswatch tune`: a budgeted sweep of detector parameters against labelled streams.

Each stream is decoded and its text analysed once (`prepare_stream`: the expensive, parameter-independent
part of the pipeline); every trial then runs only detection and incidents with its own `detectors` config,
exactly as `Pipeline.process` would, and is scored with `streams/evaluation.py`. Trials run in parallel
over cores (multiprocessing, fork: the prepared streams are shared copy-on-write). The output is a table,
the Pareto front of (recall up, false alerts per brand per day down, median delay down), and the config
chosen by a stated rule — best recall within a false-alert budget, then precision, then delay — written as
a config file that `crisiswatch config check` accepts.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import math
import multiprocessing
import os
import random
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import yaml

from crisiswatch.detectors.config import DetectorsConfig
from crisiswatch.detectors.settings import ConfigError
from crisiswatch.streams.config import Settings, load_settings, settings_from_mapping
from crisiswatch.streams.evaluation import LabelledIncident, Score, evaluate, pool, read_labelled_incidents
from crisiswatch.streams.pipeline import IngestResult

# A small default space: the thresholds that decide paging, around the shipped defaults.
DEFAULT_SPACE: dict[str, list[Any]] = {
    "forward_surge.surge_z": [3.0, 4.0, 5.0],
    "forward_surge.min_events": [6, 10, 15],
    "forward_surge.ordinary_surges_per_day": [0.25, 0.5, 1.0, 2.0],
    "negative_surge.surge_z": [2.5, 3.0, 4.0],
    "negative_surge.min_share_increase": [0.1, 0.15, 0.2],
    "paging.root_negative_probability": [0.5, 0.6, 0.7],
    "paging.comment_negative_share": [0.3, 0.4, 0.5],
}
OBJECTIVES = ("recall", "false_alerts_per_brand_day", "median_delay_min")


# -- streams --------------------------------------------------------------------------------------------
@dataclass
class PreparedStream:
    """A labelled stream after decode and text analysis: batches of enriched posts and the watermark
    after each batch, ready for any number of detection runs."""

    name: str
    settings: Settings
    incidents: list[LabelledIncident]
    batches: list[IngestResult]
    resolver: Any
    forward_times: dict[str, list[float]]
    brands: int
    duration_s: float
    posts: int


def prepare_stream(
    name: str, records: Any, settings: Settings, incidents: Sequence[LabelledIncident], analyzer: Any = None
) -> PreparedStream:
    from crisiswatch.streams.pipeline import Pipeline
    from crisiswatch.streams.replay import BATCH_POSTS, _take

    pipeline = Pipeline(settings, analyzer)
    roots = {incident.root_id for incident in incidents if incident.root_id}
    forward_times: dict[str, list[float]] = {root: [] for root in roots}
    brands: set[str] = set()
    batches: list[IngestResult] = []
    iterator = iter(records)
    first_s: float | None = None
    posts = 0
    while True:
        batch = _take(iterator, BATCH_POSTS)
        if not batch:
            break
        ingested = pipeline.ingest(batch)
        # Posts and their watermarks are all detection needs; the raw records are dropped (memory).
        batches.append(IngestResult(posts=ingested.posts, watermarks=ingested.watermarks))
        posts += len(ingested.posts)
        for post in ingested.posts:
            brands.update(post.brands)
            if post.post.kind == "forward" and post.post.root_id in forward_times:
                forward_times[post.post.root_id].append(post.created_at_s)
        if first_s is None and ingested.posts:
            first_s = ingested.posts[0].created_at_s
    last_s = pipeline.watermark.value_s
    duration = 0.0 if first_s is None or last_s is None else max(0.0, last_s - first_s)
    return PreparedStream(
        name=name,
        settings=settings,
        incidents=list(incidents),
        batches=batches,
        resolver=pipeline.resolver,
        forward_times=forward_times,
        brands=len(settings.brands) or len(brands - {"other"}) or 1,
        duration_s=duration,
        posts=posts,
    )


def run_detection(stream: PreparedStream, detectors: DetectorsConfig) -> Score:
    """Detection and incidents over a prepared stream with this `detectors` config, then the score."""
    from crisiswatch.streams.pipeline import Pipeline

    settings = dataclasses.replace(stream.settings, detectors=detectors)
    pipeline = Pipeline(settings, _NoText(), resolver=stream.resolver)
    events: list[Any] = []
    for ingested in stream.batches:
        events += pipeline.detect(ingested)  # what Pipeline.process does after ingest
    return evaluate(
        stream.incidents,
        events,
        forward_times=stream.forward_times,
        brands=stream.brands,
        duration_s=stream.duration_s,
    )


class _NoText:
    """Detection-only pipelines never analyse text (the posts are already enriched)."""

    def analyze_many(self, texts: Any, langs: Any) -> Any:
        raise RuntimeError("a prepared stream is already enriched")


# -- the search space ------------------------------------------------------------------------------------
def parse_param(text: str) -> tuple[str, list[Any] | tuple[float, float]]:
    """`section.key=v1,v2,v3` (values, YAML scalars) or `section.key=lo:hi` (a range for random search)."""
    key, sep, values = text.partition("=")
    key = key.strip()
    if not sep or not values.strip() or key.count(".") != 1:
        raise ConfigError(
            "--param",
            text,
            "SECTION.KEY=v1,v2,... or SECTION.KEY=LOW:HIGH (e.g. forward_surge.surge_z=3,4,5)",
        )
    if ":" in values and "," not in values:
        low, high = (yaml.safe_load(part) for part in values.split(":", 1))
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (low, high)) or low > high:
            raise ConfigError("--param", text, "LOW:HIGH numbers with LOW <= HIGH")
        return key, (low, high)
    return key, [yaml.safe_load(part.strip()) for part in values.split(",") if part.strip()]


def _nested(flat: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for dotted, value in flat.items():
        node = out
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def _deep_merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def trials_for(space: Mapping[str, Any], *, search: str, budget: int, seed: int) -> list[dict[str, Any]]:
    """Parameter sets to try, the baseline (no change) first. Grid: every combination, or a random
    subset of `budget - 1` when there are more. Random: `budget - 1` draws (ranges uniform, lists uniform)."""
    rng = random.Random(seed)
    keys = sorted(space)
    trials: list[dict[str, Any]] = [{}]
    if search == "grid":
        grids = []
        for key in keys:
            values = space[key]
            if isinstance(values, tuple):
                low, high = values
                values = [low + (high - low) * i / 2 for i in range(3)]
                if all(isinstance(v, int) for v in space[key]):
                    values = sorted({round(v) for v in values})
            grids.append(values)
        combos = [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*grids)]
        if len(combos) > budget - 1:
            combos = rng.sample(combos, budget - 1)
        trials += combos
    else:
        seen: set[str] = set()
        attempts = 0
        while len(trials) < budget and attempts < budget * 20:
            attempts += 1
            trial = {}
            for key in keys:
                values = space[key]
                if isinstance(values, tuple):
                    low, high = values
                    trial[key] = (
                        rng.randint(low, high)
                        if isinstance(low, int) and isinstance(high, int)
                        else round(rng.uniform(low, high), 4)
                    )
                else:
                    trial[key] = values[rng.randrange(len(values))]
            fingerprint = json.dumps(trial, sort_keys=True)
            if fingerprint not in seen:
                seen.add(fingerprint)
                trials.append(trial)
    return trials


# -- running trials ----------------------------------------------------------------------------------------
@dataclass
class TrialResult:
    index: int
    params: dict[str, Any]
    metrics: dict[str, float | None] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    pareto: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "trial": self.index,
            "params": self.params,
            "metrics": self.metrics,
            "counts": self.counts,
            "error": self.error,
            "pareto": self.pareto,
        }


_STREAMS: list[PreparedStream] = []
_BASE_DETECTORS: dict[str, Any] = {}


def _run_trial(job: tuple[int, dict[str, Any]]) -> TrialResult:
    index, params = job
    try:
        detectors = DetectorsConfig.from_mapping(_deep_merge(_BASE_DETECTORS, _nested(params)))
    except ConfigError as error:
        return TrialResult(index, params, error=str(error))
    score = pool([run_detection(stream, detectors) for stream in _STREAMS])
    return TrialResult(
        index,
        params,
        metrics=score.metrics(),
        counts={
            "crises": score.crises,
            "detected": score.detected,
            "episodes": score.episodes,
            "false_episodes": score.false_episodes,
        },
    )


def run_trials(
    streams: list[PreparedStream],
    base_detectors: Mapping[str, Any],
    trials: Sequence[dict[str, Any]],
    jobs: int,
) -> list[TrialResult]:
    """Every trial over every stream; in `jobs` forked processes when jobs > 1 (results in trial order)."""
    global _STREAMS, _BASE_DETECTORS
    _STREAMS, _BASE_DETECTORS = streams, dict(base_detectors)
    work = list(enumerate(trials))
    try:
        if jobs <= 1 or len(work) <= 1:
            return [_run_trial(job) for job in work]
        context = multiprocessing.get_context("fork")
        with context.Pool(processes=min(jobs, len(work))) as workers:
            return sorted(workers.imap_unordered(_run_trial, work), key=lambda r: r.index)
    finally:
        _STREAMS, _BASE_DETECTORS = [], {}


def _objectives(result: TrialResult) -> tuple[float, float, float]:
    m = result.metrics
    delay = m.get("median_delay_min")
    return (
        float(m.get("recall") or 0.0),
        -float(m.get("false_alerts_per_brand_day") or 0.0),
        -(float(delay) if delay is not None else math.inf),
    )


def mark_pareto(results: Sequence[TrialResult]) -> list[TrialResult]:
    """Non-dominated trials of (recall max, false alerts min, delay min); marks them and returns them."""
    valid = [r for r in results if r.error is None]
    front = []
    for candidate in valid:
        mine = _objectives(candidate)
        dominated = any(
            all(o >= m for o, m in zip(_objectives(other), mine, strict=True)) and _objectives(other) != mine
            for other in valid
        )
        candidate.pareto = not dominated
        if not dominated:
            front.append(candidate)
    return front


def choose(
    results: Sequence[TrialResult], max_false_per_day: float, min_precision: float = 0.0
) -> tuple[TrialResult | None, str]:
    """The rule: best recall with false alerts / brand / day <= budget (and precision >= floor), ties by
    precision, then lower median delay, then the earlier trial (the baseline first). Without any trial
    in budget: the fewest false alerts, then recall, then lower median delay (so never a trial that another
    one dominates)."""
    valid = [r for r in results if r.error is None]
    if not valid:
        return None, "no valid trial"

    def delay(r: TrialResult) -> float:
        value = r.metrics.get("median_delay_min")
        return float(value) if value is not None else math.inf

    within = [
        r
        for r in valid
        if float(r.metrics["false_alerts_per_brand_day"] or 0.0) <= max_false_per_day
        and float(r.metrics["precision"] or 0.0) >= min_precision
    ]
    rule = f"best recall with false alerts/brand/day <= {max_false_per_day:g}" + (
        f" and precision >= {min_precision:g}" if min_precision else ""
    )
    if within:
        best = min(
            within,
            key=lambda r: (
                -float(r.metrics["recall"] or 0.0),
                -float(r.metrics["precision"] or 0.0),
                delay(r),
                r.index,
            ),
        )
        return best, rule + "; ties: precision, then median delay, then trial order"
    best = min(
        valid,
        key=lambda r: (
            float(r.metrics["false_alerts_per_brand_day"] or 0.0),
            -float(r.metrics["recall"] or 0.0),
            delay(r),
            r.index,
        ),
    )
    return best, (f"no trial met the budget ({rule}): fewest false alerts, then recall, then median delay")


# -- output --------------------------------------------------------------------------------------------------
def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def format_table(results: Sequence[TrialResult], chosen: TrialResult | None, keys: Sequence[str]) -> str:
    short = [_short(key) for key in keys]
    widths = [max(len(name), 5) for name in short]
    header = f"{'#':>4} {'P':1} {'C':1} " + " ".join(
        f"{name:>{w}}" for name, w in zip(short, widths, strict=True)
    )
    header += f" {'recall':>7} {'prec':>6} {'fa/b/d':>7} {'delay':>6} {'early':>6}"
    lines = [header]
    for r in results:
        values = " ".join(
            f"{str(r.params.get(key, '-'))[:w]:>{w}}" for key, w in zip(keys, widths, strict=True)
        )
        if r.error is not None:
            lines.append(f"{r.index:>4} {' ':1} {' ':1} {values} invalid: {r.error[:60]}")
            continue
        m = r.metrics
        lines.append(
            f"{r.index:>4} {'*' if r.pareto else ' ':1} {'>' if chosen is r else ' ':1} {values} "
            f"{_fmt(m['recall']):>7} {_fmt(m['precision'], 2):>6} {_fmt(m['false_alerts_per_brand_day']):>7} "
            f"{_fmt(m['median_delay_min'], 1):>6} {_fmt(m['early_share'], 2):>6}"
        )
    lines.append(
        "P: on the Pareto front (recall, false alerts/brand/day, median delay); C: chosen; '-': default value; "
        "delay: median minutes; " + ", ".join(f"{a}={b}" for b, a in _SECTION_ABBREVIATIONS.items())
    )
    return "\n".join(lines)


_SECTION_ABBREVIATIONS = {"forward_surge": "fs", "negative_surge": "ns", "volume_surge": "vs", "paging": "pg"}


def _short(key: str) -> str:
    section, _, name = key.partition(".")
    return f"{_SECTION_ABBREVIATIONS.get(section, section)}.{name}" if name else key


def chosen_document(
    base: Mapping[str, Any], base_detectors: Mapping[str, Any], params: Mapping[str, Any]
) -> dict[str, Any]:
    """The base config file with the chosen detector parameters merged into its `detectors` section."""
    document = dict(base)
    detectors = _deep_merge(base_detectors, _nested(params))
    if detectors:
        document["detectors"] = detectors
    return document


def write_config(path: str, document: Mapping[str, Any], comment: str) -> None:
    settings_from_mapping(document, source=path, environ={})  # refuse to write what the loader would refuse
    header = "".join(f"# {line}\n" for line in comment.splitlines())
    Path(path).write_text(
        header + yaml.safe_dump(dict(document), allow_unicode=True, sort_keys=False), encoding="utf-8"
    )


# -- the `crisiswatch tune` verb --------------------------------------------------------------------------------
def add_tune_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", help="the base config file (its brands, its detectors section as the baseline)"
    )
    parser.add_argument(
        "--stream",
        action="append",
        default=[],
        metavar="POSTS:INCIDENTS",
        help="a recorded stream and its labelled incidents (repeatable)",
    )
    parser.add_argument(
        "--simulate",
        type=int,
        default=0,
        metavar="N",
        help="also tune on N generated `mixed` streams (seeds --seed, --seed+1, ...)",
    )
    parser.add_argument(
        "--days", type=float, default=3.0, help="length of each generated stream in days (default 3)"
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=100,
        help="first seed of the generated streams and of the random search (default 100)",
    )
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUES",
        help="a detectors parameter and its values (a,b,c) or range (lo:hi); repeatable; default: a built-in space",
    )
    parser.add_argument(
        "--search",
        choices=["grid", "random"],
        default="random",
        help="grid (all combinations, sampled down to the budget) or random (default)",
    )
    parser.add_argument("--budget", type=int, default=24, help="trials including the baseline (default 24)")
    parser.add_argument(
        "--jobs", type=int, default=os.cpu_count() or 1, help="parallel processes (default: the cores)"
    )
    parser.add_argument(
        "--max-false-per-day",
        type=float,
        default=0.2,
        help="the rule's false-alert budget per brand per day (default 0.2)",
    )
    parser.add_argument(
        "--min-precision", type=float, default=0.0, help="the rule's precision floor (default none)"
    )
    parser.add_argument("--out", metavar="CHOSEN.yaml", help="write the chosen configuration here")
    parser.add_argument(
        "--results-out", metavar="FILE.json", help="every trial's parameters and metrics as JSON"
    )


def load_streams(args: argparse.Namespace, base: Settings, err: TextIO) -> list[PreparedStream]:
    from crisiswatch.detectors.text import TextAnalyzer
    from crisiswatch.streams.sources import FileSource

    analyzer = TextAnalyzer.load_default(base.text)
    streams = []
    for spec in args.stream:
        posts, sep, incidents = spec.rpartition(":")
        if not sep or not posts:
            raise ConfigError("--stream", spec, "POSTS.jsonl:INCIDENTS.jsonl")
        streams.append(
            prepare_stream(posts, FileSource([posts]), base, read_labelled_incidents(incidents), analyzer)
        )
    if args.simulate:
        from crisiswatch.streams.pipeline import RawRecord
        from crisiswatch.streams.replay import dump_line
        from crisiswatch.streams.scenarios import generate
        from crisiswatch.streams.simulate import MixedOptions, mixed_config

        for offset in range(args.simulate):
            scenario = generate(mixed_config(MixedOptions(seed=args.seed + offset, days=args.days)))
            settings = (
                dataclasses.replace(base, brands=scenario.brand_profiles()) if not base.brands else base
            )
            records = (
                RawRecord(dump_line(post).encode("utf-8"), 0, i, f"sim{offset}:{i + 1}")
                for i, post in enumerate(scenario.posts)
            )
            incidents = [LabelledIncident.from_dict(incident.to_dict()) for incident in scenario.incidents]
            streams.append(
                prepare_stream(f"mixed seed {args.seed + offset}", records, settings, incidents, analyzer)
            )
    if not streams:
        raise ConfigError("--stream", "(none)", "at least one --stream POSTS:INCIDENTS or --simulate N")
    for stream in streams:
        crises = sum(1 for incident in stream.incidents if incident.is_crisis)
        err.write(
            f"prepared {stream.name}: {stream.posts:,} posts, {stream.brands} brands, {stream.duration_s / 86400:.2f} days, {crises} crises\n"
        )
    return streams


def run_tune(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    if args.budget < 1:
        raise ConfigError("--budget", args.budget, "at least 1 trial")
    base = load_settings(args.config)
    base_document: dict[str, Any] = {}
    if args.config:
        base_document = yaml.safe_load(Path(args.config).read_text(encoding="utf-8")) or {}
    base_detectors = dict(base_document.get("detectors") or {})
    space: dict[str, Any] = (
        dict(parse_param(text) for text in args.param) if args.param else dict(DEFAULT_SPACE)
    )
    started = time.monotonic()
    streams = load_streams(args, base, err)
    prepared_s = time.monotonic() - started
    trials = trials_for(space, search=args.search, budget=args.budget, seed=args.seed)
    err.write(f"running {len(trials)} trials over {len(streams)} streams on {args.jobs} processes ...\n")
    results = run_trials(streams, base_detectors, trials, args.jobs)
    mark_pareto(results)
    chosen, rule = choose(results, args.max_false_per_day, args.min_precision)
    out.write(format_table(results, chosen, sorted(space)) + "\n")
    front = [r.index for r in results if r.pareto]
    out.write(f"Pareto front: trials {front}\n")
    out.write(f"rule: {rule}\n")
    if chosen is None:
        err.write("no valid trial: nothing written\n")
        return 1
    m = chosen.metrics
    summary = (
        f"chosen: trial {chosen.index} {json.dumps(chosen.params, sort_keys=True)}: recall {_fmt(m['recall'])}, precision {_fmt(m['precision'])}, "
        f"false alerts/brand/day {_fmt(m['false_alerts_per_brand_day'])}, median delay {_fmt(m['median_delay_min'], 1)} min, early {_fmt(m['early_share'])}"
    )
    out.write(summary + "\n")
    err.write(f"tuned in {time.monotonic() - started:.1f} s (streams prepared in {prepared_s:.1f} s)\n")
    if args.results_out:
        Path(args.results_out).write_text(
            json.dumps([r.to_dict() for r in results], indent=1, sort_keys=True) + "\n", encoding="utf-8"
        )
    if args.out:
        comment = (
            f"Chosen by `crisiswatch tune` ({args.search} search, {len(trials)} trials, {len(streams)} labelled streams).\n"
            f"Rule: {rule}.\n{summary}"
        )
        write_config(args.out, chosen_document(base_document, base_detectors, chosen.params), comment)
        err.write(f"config written to {args.out} (check it with `crisiswatch config check {args.out}`)\n")
    return 0

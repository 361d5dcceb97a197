"""`replay --report report.html`: one self-contained HTML file (inline CSS, images as data: URIs).

Per brand: mentions and negative share over time with a trailing baseline band, labelled incidents as
shaded spans and alert episodes as markers; the top incidents with their cascade growth (observed reactions
and the projected final size the detector reported); incident counts per day and severity; the score
against labelled incidents when there is one. Plots with matplotlib (Agg backend, no display needed).
"""

from __future__ import annotations

import base64
import html
import io
import math
import warnings
from array import array
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from crisiswatch.alerts.incidents import IncidentEvent
from crisiswatch.detectors.events import EnrichedPost
from crisiswatch.streams.config import Settings
from crisiswatch.streams.evaluation import LabelledIncident, Score, episodes_of, goal_rows
from crisiswatch.streams.replay import Observer

FINE_BUCKET_S = 300.0
TOP_INCIDENTS = 8
MAX_TABLE_ROWS = 60
SEVERITY_COLORS = {"info": "#8da0cb", "warning": "#fc8d62", "critical": "#d62728"}


class ReportCollector(Observer):
    """Counts per brand and 5-minute bucket (mentions, posts with own text, negative ones) and the reaction
    times of every cascade, while the replay runs."""

    def __init__(self, settings: Settings) -> None:
        self.negative_threshold = settings.detectors.negative_surge.negative_probability
        self.buckets: dict[str, dict[int, list[int]]] = defaultdict(dict)
        self.reactions: dict[str, array[float]] = {}
        self.posts_seen = 0
        self.first_s = math.inf
        self.last_s = -math.inf

    def posts(self, posts: Sequence[EnrichedPost]) -> None:
        threshold = self.negative_threshold
        reactions = self.reactions
        for post in posts:
            t = post.created_at_s
            self.posts_seen += 1
            if t < self.first_s:
                self.first_s = t
            if t > self.last_s:
                self.last_s = t
            raw = post.post
            if raw.kind != "post":
                times = reactions.get(raw.root_id)
                if times is None:
                    times = reactions[raw.root_id] = array("d")
                times.append(t)
            index = int(t // FINE_BUCKET_S)
            has_text = bool(post.own_text.strip())
            negative = (
                has_text and post.negative_probability is not None and post.negative_probability >= threshold
            )
            for brand in post.brands:
                if brand == "other":
                    continue
                cell = self.buckets[brand].get(index)
                if cell is None:
                    cell = self.buckets[brand][index] = [0, 0, 0]
                cell[0] += 1
                cell[1] += has_text
                cell[2] += negative


# -- plotting helpers ---------------------------------------------------------------------------------------
def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 8, "axes.titlesize": 9, "figure.dpi": 96})
    # CJK brand names: use a font that has the glyphs when one is installed, else boxes (still readable).
    from matplotlib import font_manager

    available = {font.name for font in font_manager.fontManager.ttflist}
    for name in ("Noto Sans CJK SC", "Noto Sans CJK JP", "WenQuanYi Zen Hei", "SimHei", "Microsoft YaHei"):
        if name in available:
            plt.rcParams["font.sans-serif"] = [name, "DejaVu Sans"]
            break
    return plt


def _png(figure: Any) -> str:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="Glyph .* missing from font"
        )  # CJK names without a CJK font
        figure.savefig(buffer, format="png", bbox_inches="tight", metadata={"Software": None})
    import matplotlib.pyplot as plt

    plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _bucket_s(span_s: float) -> float:
    """About 300 points across the stream, in whole multiples of 5 minutes."""
    return FINE_BUCKET_S * max(1, round(span_s / FINE_BUCKET_S / 300))


def _dates(times_s: np.ndarray) -> np.ndarray:
    return (times_s * 1000).astype("int64").astype("datetime64[ms]")


def _trailing_band(
    values: np.ndarray, window: int, valid: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Median and 10-90% band of the previous `window` values (NaN until there are 4 of them)."""
    mid = np.full(len(values), np.nan)
    low = np.full(len(values), np.nan)
    high = np.full(len(values), np.nan)
    for i in range(len(values)):
        past = values[max(0, i - window) : i]
        if valid is not None:
            past = past[valid[max(0, i - window) : i]]
        if len(past) >= 4:
            low[i], mid[i], high[i] = np.percentile(past, [10, 50, 90])
    return mid, low, high


def _series(
    collector: ReportCollector, brand: str, start_s: float, end_s: float, bucket_s: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    count = max(1, int(math.ceil((end_s - start_s) / bucket_s)))
    mentions = np.zeros(count)
    text = np.zeros(count)
    negative = np.zeros(count)
    for index, (m, t, n) in collector.buckets.get(brand, {}).items():
        slot = int((index * FINE_BUCKET_S - start_s) // bucket_s)
        if 0 <= slot < count:
            mentions[slot] += m
            text[slot] += t
            negative[slot] += n
    times = start_s + bucket_s * (np.arange(count) + 0.5)
    return times, mentions, text, negative


def _brand_figure(
    plt: Any,
    collector: ReportCollector,
    brand: str,
    episodes: Sequence[Any],
    labelled: Sequence[LabelledIncident],
    start_s: float,
    end_s: float,
) -> str:
    bucket_s = _bucket_s(end_s - start_s)
    times, mentions, text, negative = _series(collector, brand, start_s, end_s, bucket_s)
    window = max(4, int(86400 / bucket_s))
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(text > 0, negative / np.maximum(text, 1), np.nan)
    dates = _dates(times)
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(11, 4.2), sharex=True)
    mid, low, high = _trailing_band(mentions, window)
    top.fill_between(dates, low, high, color="#cfd8e3", label="baseline 10-90% (trailing 24 h)", step="mid")
    top.plot(dates, mid, color="#7f8c9d", linewidth=0.8, label="baseline median")
    top.plot(dates, mentions, color="#1f4e79", linewidth=1.0, label=f"mentions per {bucket_s / 60:g} min")
    top.set_ylabel("mentions")
    valid = text >= 5
    mid_s, low_s, high_s = _trailing_band(np.nan_to_num(share), window, valid)
    bottom.fill_between(dates, low_s, high_s, color="#f3d9d9", label="baseline 10-90%", step="mid")
    bottom.plot(dates, mid_s, color="#b38b8b", linewidth=0.8)
    bottom.plot(
        dates,
        np.where(valid, share, np.nan),
        color="#a83232",
        linewidth=1.0,
        label="negative share (posts with own text)",
    )
    bottom.set_ylim(0, 1)
    bottom.set_ylabel("negative share")
    for axis in (top, bottom):
        for incident in labelled:
            if incident.brand == brand:
                color = "#d62728" if incident.is_crisis else "#2ca02c"
                axis.axvspan(
                    _dates(np.array([incident.start_s]))[0],
                    _dates(np.array([incident.end_s]))[0],
                    color=color,
                    alpha=0.12,
                )
    ymax = max(float(np.nanmax(mentions)) if len(mentions) else 1.0, 1.0)
    for episode in episodes:
        if episode.brand != brand:
            continue
        top.scatter(
            _dates(np.array([episode.first_s])),
            [ymax * 1.07],
            marker="v",
            s=70,
            color=SEVERITY_COLORS.get(episode.severity, "black"),
            edgecolors="black",
            linewidths=0.6,
            zorder=5,
        )
    top.set_ylim(0, ymax * 1.18)
    top.set_title(
        f"{brand}: mentions and negative share (red spans: labelled crises, green: labelled non-crises, triangles: alert episodes)"
    )
    top.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7)
    bottom.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7)
    figure.autofmt_xdate()
    return _png(figure)


def _growth_figure(
    plt: Any, root_id: str, brand: str, reactions: array[float] | None, events: Sequence[IncidentEvent]
) -> str:
    figure, axis = plt.subplots(figsize=(5.4, 2.8))
    if reactions is not None and len(reactions):
        times = np.sort(np.frombuffer(reactions, dtype=np.float64))
        axis.step(
            _dates(times),
            np.arange(1, len(times) + 1),
            where="post",
            color="#1f4e79",
            label="observed reactions",
        )
    projected = [(event.detected_at_s, event.metrics.get("projected_final_size")) for event in events]
    projected = [
        (t, float(size)) for t, size in projected if isinstance(size, int | float) and math.isfinite(size)
    ]
    if projected:
        axis.plot(
            _dates(np.array([t for t, _ in projected])),
            [size for _, size in projected],
            "o--",
            color="#ff7f0e",
            markersize=3,
            label="projected final size",
        )
    pages = [
        event for event in events if event.severity in ("warning", "critical") and event.status != "resolved"
    ]
    if pages:
        first = min(event.detected_at_s for event in pages)
        axis.axvline(_dates(np.array([first]))[0], color="#d62728", linewidth=1, label="first page")
    axis.set_title(f"{brand} · {root_id}")
    axis.set_ylabel("posts in cascade")
    axis.legend(fontsize=7)
    figure.autofmt_xdate()
    return _png(figure)


def _per_day_figure(plt: Any, events: Sequence[IncidentEvent]) -> str:
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for event in events:
        if event.status == "firing" or (event.status == "updated" and event.severity != "info"):
            day = datetime.fromtimestamp(event.detected_at_s, UTC).strftime("%Y-%m-%d")
            counts[day][event.severity] += 1
    days = sorted(counts)
    figure, axis = plt.subplots(figsize=(8, 2.6))
    bottom = np.zeros(len(days))
    for severity in ("info", "warning", "critical"):
        values = np.array([counts[day][severity] for day in days], dtype=float)
        axis.bar(days, values, bottom=bottom, color=SEVERITY_COLORS[severity], label=severity)
        bottom += values
    axis.set_ylabel("incident events (firing / escalations)")
    axis.set_title("incidents per day (UTC) and severity")
    axis.legend(fontsize=7)
    if len(days) > 10:
        figure.autofmt_xdate()
    return _png(figure)


# -- the document ----------------------------------------------------------------------------------------------
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,Helvetica,Arial,sans-serif;margin:24px;color:#1d2733;max-width:1200px}
h1{font-size:20px}h2{font-size:16px;margin-top:28px;border-bottom:1px solid #dde3ea;padding-bottom:4px}
table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #dde3ea;padding:3px 6px;text-align:left}
th{background:#f3f6f9}.ok{color:#1a7f37}.no{color:#cf222e;font-weight:600}.grid{display:flex;flex-wrap:wrap;gap:8px}
img{max-width:100%}.muted{color:#6b7785;font-size:12px}
"""


def _iso(t_s: float) -> str:
    return datetime.fromtimestamp(t_s, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _score_html(score: Score) -> str:
    rows = []
    for label, value, goal, met in goal_rows(score):
        mark = (
            "n/a"
            if met is None
            else ('<span class="ok">met</span>' if met else '<span class="no">missed</span>')
        )
        rows.append(
            f"<tr><td>{html.escape(label)}</td><td>{value}</td><td>{html.escape(goal)}</td><td>{mark}</td></tr>"
        )
    counts = (
        f"{score.detected}/{score.crises} crises detected; {score.true_episodes}/{score.episodes} alert episodes true; "
        f"{score.false_episodes} false over {score.brands * score.days:.1f} brand-days"
    )
    return f"<h2>Score against labelled incidents</h2><p>{html.escape(counts)}</p><table><tr><th>metric</th><th>value</th><th>goal</th><th></th></tr>{''.join(rows)}</table>"


def _incident_rows(events: Sequence[IncidentEvent]) -> list[dict[str, Any]]:
    """One row per incident: the highest severity, first detection, biggest projection."""
    by_incident: dict[str, dict[str, Any]] = {}
    rank = {"info": 0, "warning": 1, "critical": 2}
    for event in events:
        row = by_incident.setdefault(
            event.incident_id,
            {"incident_id": event.incident_id, "brand": event.brand, "detector": event.detector, "root_id": event.root_id, "severity": event.severity,
             "detected_at_s": event.detected_at_s, "size": 0.0, "summary": event.summary, "events": []},
        )  # fmt: skip
        row["events"].append(event)
        if rank.get(event.severity, 0) > rank.get(row["severity"], 0):
            row["severity"] = event.severity
            row["summary"] = event.summary
        for key in ("projected_final_size", "forwards_total", "window_negative_posts", "mentions"):
            value = event.metrics.get(key)
            if isinstance(value, int | float) and math.isfinite(value):
                row["size"] = max(row["size"], float(value))
                break
    return sorted(
        by_incident.values(),
        key=lambda r: (-rank.get(r["severity"], 0), -r["size"], r["detected_at_s"], r["incident_id"]),
    )


def render_report(
    collector: ReportCollector,
    events: Sequence[IncidentEvent],
    *,
    labelled: Sequence[LabelledIncident] | None = None,
    score: Score | None = None,
    title: str = "crisiswatch replay",
) -> str:
    plt = _pyplot()
    labelled = list(labelled or ())
    episodes = episodes_of(events)
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
    ]
    parts.append(f"<h1>{html.escape(title)}</h1>")
    if collector.posts_seen:
        start_s, end_s = collector.first_s, collector.last_s
        span = f"{_iso(start_s)} – {_iso(end_s)}"
    else:
        start_s, end_s, span = 0.0, 1.0, "no posts"
    firing = sum(1 for e in events if e.status == "firing")
    parts.append(
        f"<p class='muted'>{collector.posts_seen:,} posts, {span}; {len(collector.buckets)} brands; {len(events):,} incident events, "
        f"{firing:,} incidents, {len(episodes)} warning/critical alert episodes.</p>"
    )
    if score is not None:
        parts.append(_score_html(score))
    if events:
        parts.append("<h2>Incidents per day and severity</h2>")
        parts.append(f"<img alt='incidents per day' src='{_per_day_figure(plt, events)}'>")
    parts.append("<h2>Brands</h2>")
    brands = sorted(collector.buckets, key=lambda b: (-sum(c[0] for c in collector.buckets[b].values()), b))
    for brand in brands:
        parts.append(
            f"<img alt='{html.escape(brand)}' src='{_brand_figure(plt, collector, brand, episodes, labelled, start_s, end_s)}'>"
        )
    rows = _incident_rows(events)
    top: dict[tuple[str, str], list[IncidentEvent]] = {}
    for row in rows:  # one growth chart per cascade, with the events of all its incidents
        if row["root_id"] and row["severity"] in ("warning", "critical"):
            key = (row["brand"], row["root_id"])
            if key in top or len(top) < TOP_INCIDENTS:
                top.setdefault(key, []).extend(row["events"])
    if top:
        parts.append("<h2>Top incidents: cascade growth, observed and projected</h2><div class='grid'>")
        for (brand, root_id), cascade_events in top.items():
            ordered = sorted(cascade_events, key=lambda e: e.detected_at_s)
            image = _growth_figure(plt, root_id, brand, collector.reactions.get(root_id), ordered)
            parts.append(f"<img alt='{html.escape(brand)} {html.escape(root_id)}' src='{image}'>")
        parts.append("</div>")
    if rows:
        parts.append(
            "<h2>Incidents</h2><table><tr><th>severity</th><th>brand</th><th>detector</th><th>root</th><th>detected</th><th>summary</th></tr>"
        )
        for row in rows[:MAX_TABLE_ROWS]:
            parts.append(
                f"<tr><td>{row['severity']}</td><td>{html.escape(row['brand'])}</td><td>{row['detector']}</td>"
                f"<td>{html.escape(row['root_id'] or '*')}</td><td>{_iso(row['detected_at_s'])}</td><td>{html.escape(row['summary'])}</td></tr>"
            )
        parts.append("</table>")
        if len(rows) > MAX_TABLE_ROWS:
            parts.append(
                f"<p class='muted'>... and {len(rows) - MAX_TABLE_ROWS} more incidents (see the alert lines).</p>"
            )
    if score is not None and score.outcomes:
        parts.append(
            "<h2>Labelled crises</h2><table><tr><th>kind</th><th>brand</th><th>root</th><th>start</th><th>delay</th><th>early</th></tr>"
        )
        for outcome in score.outcomes:
            incident = outcome.incident
            delay = "missed" if outcome.delay_s is None else f"{outcome.delay_s / 60:.1f} min"
            early = "" if outcome.early is None else ("yes" if outcome.early else "no")
            parts.append(
                f"<tr><td>{html.escape(incident.kind)}</td><td>{html.escape(incident.brand)}</td><td>{html.escape(incident.root_id or '*')}</td>"
                f"<td>{_iso(incident.start_s)}</td><td>{delay}</td><td>{early}</td></tr>"
            )
        parts.append("</table>")
    parts.append(
        "<p class='muted'>Generated by crisiswatch replay --report. Self-contained: no external resources.</p></body></html>"
    )
    return "\n".join(parts)


def write_report(
    path: str,
    collector: ReportCollector,
    events: Sequence[IncidentEvent],
    *,
    labelled: Sequence[LabelledIncident] | None = None,
    score: Score | None = None,
    title: str = "crisiswatch replay",
) -> None:
    document = render_report(collector, events, labelled=labelled, score=score, title=title)
    with open(path, "w", encoding="utf-8", errors="backslashreplace", newline="\n") as handle:
        handle.write(document)

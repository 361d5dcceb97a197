"""The paging policy: from a detector's metrics to a severity, with hysteresis. A crisis is negative.

- Spread alone (a positive campaign going viral, a news burst, the daily peak) is at most `info`.
- `warning` needs negativity evidence (negative root, complaint, negative share of comments or posts)
  together with spread; `critical` additionally needs a large projected reach or size, many negative
  posts, or a big account amplifying it.
- Hysteresis: an episode fires once at the surge threshold, keeps its highest severity while it lasts,
  and ends only when the signal falls below the (lower) resolve threshold.
Each function returns (severity or None, explanation) where the explanation is a zero-argument callable
giving one sentence: the engine evaluates far more often than it emits, and only emitted assessments need
the words.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from crisiswatch.detectors.config import DetectorsConfig
from crisiswatch.detectors.events import SEVERITY_RANK, Severity
from crisiswatch.detectors.negative import is_surge


def _higher(a: Severity | None, b: Severity | None) -> Severity | None:
    return a if SEVERITY_RANK[a] >= SEVERITY_RANK[b] else b


def mentioned_brand(
    severity: Severity | None, why: Callable[[], str], config: DetectorsConfig, about: str
) -> tuple[Severity | None, Callable[[], str]]:
    """A brand the cascade's root names after `about`: its incident reaches at most
    `paging.mentioned_brand_max_severity` (the complaint is taken to be about the brand named first)."""
    ceiling: Severity = config.paging.mentioned_brand_max_severity  # type: ignore[assignment]
    return _capped(severity, why, ceiling, f"only mentioned: the root is about {about}")


def _capped(
    severity: Severity | None, why: Callable[[], str], ceiling: Severity, reason: str
) -> tuple[Severity | None, Callable[[], str]]:
    """`severity` lowered to `ceiling`, the explanation saying why when it was."""
    if SEVERITY_RANK[severity] <= SEVERITY_RANK[ceiling]:
        return severity, why
    return ceiling, lambda: f"{why()} ({reason})"


def cascade_negativity(m: dict[str, Any], config: DetectorsConfig) -> list[str]:
    """The negativity evidence present for a cascade, as short reasons (empty: none)."""
    paging = config.paging
    ns = config.negative_surge
    reasons = []
    root_negative = m.get("root_negative_probability")
    if root_negative is not None and root_negative >= paging.root_negative_probability:
        reasons.append(f"negative root (p={root_negative:.2f})")
    complaint = m.get("complaint_probability")
    if complaint is not None and complaint >= ns.complaint_probability:
        reasons.append(f"complaint (p={complaint:.2f})")
    if m["text_posts"] >= ns.cascade_min_posts and m["negative_share_lower"] >= paging.comment_negative_share:
        reasons.append(f"{m['negative_posts']} of {m['text_posts']} comments negative")
    return reasons


def forward_surge_severity(
    m: dict[str, Any], config: DetectorsConfig, previous: Severity | None, resolved_size: float = 0.0
) -> tuple[Severity | None, Callable[[], str]]:
    """`resolved_size`: the projected size when this cascade's last episode resolved (0 if none). A
    resolved cascade fires again on a new rate surge, or when its projection grew by
    `paging.update_growth_factor` since: a big cascade trickling around the volume floor must not flap."""
    fs = config.forward_surge
    floor = max(fs.min_events // 2, 1)
    # the volume floor of a rate surge: min_events, raised to what the brand's ordinary cascades reach
    surge_events = max(fs.min_events, m.get("surge_floor_events", 0.0))
    rate_surge = m["window_events"] >= surge_events and m["rate_z"] >= fs.surge_z
    spread_size = max(fs.spread_projected_size, resolved_size * config.paging.update_growth_factor)
    projected_spread = m["projected_final_size"] >= spread_size and m["window_events"] >= floor

    def size() -> str:
        return (
            f"{m['window_events']} forwards/comments in {fs.window_s / 60:g} min "
            f"(expected {m['expected_window_events']:g}, surge from {surge_events:g}), projected {m['projected_final_size']:.0f} events "
            f"reaching {m['projected_reach']:.0f}"
        )

    firing = rate_surge or projected_spread
    if previous is None:
        if not firing:
            return None, lambda: f"normal: {size()}"
    elif not firing and (m["rate_z"] < fs.resolve_z or m["window_events"] < floor):
        return None, lambda: f"back to normal: {size()}"
    reasons = cascade_negativity(m, config)
    if not reasons:
        severity: Severity | None = config.paging.spread_only_severity  # type: ignore[assignment]
        return _higher(severity, None if previous is None else "info") if severity else None, (
            lambda: f"spreading without sign of negativity: {size()}"
        )
    severity = "warning"
    big = m["max_amplifier_followers"] >= fs.big_account_followers
    if (
        m["projected_reach"] >= fs.critical_projected_reach
        or m["projected_final_size"] >= fs.critical_projected_size
        or (big and config.paging.amplifier_raises_severity)
    ):
        severity = "critical"
    amplifier = f"; amplified by an account with {m['max_amplifier_followers']} followers" if big else ""
    return _higher(severity, previous), (
        lambda: f"negative cascade spreading: {size()}; {', '.join(reasons)}{amplifier}"
    )


def negative_share_severity(
    m: dict[str, Any],
    config: DetectorsConfig,
    previous: Severity | None,
    *,
    cascade: bool,
    spread: bool,
    critical: bool,
) -> tuple[Severity | None, Callable[[], str]]:
    """negative_surge for a brand (cascade=False) or a cascade's comments (cascade=True; at most
    `paging.cascade_comments_max_severity`: the comments' negativity pages through forward_surge)."""
    ns = config.negative_surge
    n, k = m["window_text_posts"], m["window_negative_posts"]
    min_negative = ns.cascade_min_negative if cascade else ns.min_negative
    share0 = m["baseline_negative_share"]
    z = m["negative_z"]
    significant = is_surge(n, k, z, m["negative_share_lower"], share0, ns, cascade=cascade)

    def what() -> str:
        return (
            f"{k} of {n} posts negative in {m.get('window_s', ns.window_s) / 60:g} min "
            f"(baseline share {share0:.0%}, z={z:.1f})"
        )

    if previous is None:
        if not significant:
            return None, lambda: f"normal: {what()}"
    elif not significant and (z < ns.resolve_z or k < min_negative):
        return None, lambda: f"back to normal: {what()}"
    if not spread:
        return _higher("info", previous), lambda: f"negative share up, but not spreading: {what()}"
    severity: Severity = "critical" if critical else "warning"
    result = _higher(severity, previous), lambda: f"negative surge: {what()}"
    if not cascade:
        return result
    ceiling: Severity = config.paging.cascade_comments_max_severity  # type: ignore[assignment]
    return _capped(*result, ceiling, "comments' negativity pages with the cascade's forward_surge")


def volume_severity(
    surging: bool, negativity: bool, critical: bool, previous: Severity | None
) -> Severity | None:
    if not surging:
        return None
    if not negativity:
        return _higher("info", previous)
    return _higher("critical" if critical else "warning", previous)

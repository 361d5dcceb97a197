"""What a PR person reads: one incident event rendered per channel, in the brand's language (en / zh).

`page_content()` gathers the raw (untrusted) facts once; each `render_*` function formats them for one
channel and escapes at that boundary through `escaping` only. No template engine: untrusted text is
never interpreted as a template.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from crisiswatch.alerts import escaping as esc
from crisiswatch.alerts.incidents import IncidentEvent

LANGS: tuple[str, ...] = ("en", "zh")
SMS_LIMIT = 160
SLACK_SECTION_LIMIT = 3000
SLACK_HEADER_LIMIT = 150
SLACK_FALLBACK_LIMIT = 3000
SLACK_BUTTON_VALUE_LIMIT = 2000
PAGERDUTY_SUMMARY_LIMIT = 1024
MAX_AMPLIFIERS = 5
MAX_SAMPLES = 3
SAMPLE_LIMIT = 280
COMPLAINT_LIMIT = 600

_WHAT = {
    "en": {
        "forward_surge": "a complaint is being forwarded fast",
        "negative_surge": "negative reactions are surging",
        "volume_surge": "mentions are surging",
    },
    "zh": {
        "forward_surge": "一条投诉正在被快速转发",
        "negative_surge": "负面评论正在激增",
        "volume_surge": "提及量正在激增",
    },
}
_ENDED = {
    "en": {
        "forward_surge": "the spreading complaint",
        "negative_surge": "the surge of negative reactions",
        "volume_surge": "the surge of mentions",
    },
    "zh": {"forward_surge": "投诉转发潮", "negative_surge": "负面评论潮", "volume_surge": "提及量激增"},
}
_SEVERITY = {
    "en": {"info": "info", "warning": "warning", "critical": "CRITICAL"},
    "zh": {"info": "提示", "warning": "警告", "critical": "严重"},
}
_STATUS = {
    "en": {"firing": "firing", "updated": "firing", "resolved": "resolved", "acknowledged": "acknowledged"},
    "zh": {"firing": "告警", "updated": "告警", "resolved": "已恢复", "acknowledged": "已确认"},
}
_RESOLUTION = {
    "en": {
        "detector": "the surge is over",
        "quiet": "no more activity",
        "manual": "resolved by hand",
        "false_alarm": "marked as a false alarm",
    },
    "zh": {
        "detector": "热度已回落",
        "quiet": "已无新动态",
        "manual": "已手动关闭",
        "false_alarm": "已标记为误报",
    },
}
_TEXT = {
    "en": {
        "what": "What",
        "complaint": "Complaint",
        "spread": "Spread",
        "amplifiers": "Amplified by",
        "reaction": "Reaction",
        "severity": "Severity",
        "since": "Since",
        "playbook": "Playbook",
        "ack": "Acknowledge",
        "resolve": "Resolve",
        "false_alarm": "False alarm",
        "fpm": "forwards/min",
        "forwards": "forwards so far",
        "reach": "reach",
        "projected_reach": "projected reach",
        "projected_size": "projected cascade size",
        "followers": "followers",
        "verified": "verified",
        "negative": "negative",
        "acknowledged_by": "Acknowledged by",
        "min_ago": "min ago",
        "incident": "Incident",
        "link": "link",
        "no_playbook": "No playbook configured for this category.",
        "category": "category",
    },
    "zh": {
        "what": "情况",
        "complaint": "投诉原文",
        "spread": "传播",
        "amplifiers": "主要转发者",
        "reaction": "舆论",
        "severity": "级别",
        "since": "开始于",
        "playbook": "应对预案",
        "ack": "确认",
        "resolve": "关闭",
        "false_alarm": "误报",
        "fpm": "次转发/分钟",
        "forwards": "次转发",
        "reach": "覆盖",
        "projected_reach": "预计覆盖",
        "projected_size": "预计传播规模",
        "followers": "粉丝",
        "verified": "认证",
        "negative": "负面",
        "acknowledged_by": "确认人",
        "min_ago": "分钟前",
        "incident": "事件",
        "link": "链接",
        "no_playbook": "该类别未配置应对预案。",
        "category": "类别",
    },
}


@dataclass(frozen=True, slots=True)
class RenderOptions:
    """What rendering needs beyond the event: playbooks, the brand's zone, the ack link."""

    # category -> text, or category -> {lang: text}; "default" is used when the category has none.
    playbooks: Mapping[str, Any] = field(default_factory=dict)
    lang: str | None = None
    time_zone: str = "UTC"
    ack_url: str | None = None
    resolve_url: str | None = None
    false_alarm_url: str | None = None
    # Shown to the recipient, e.g. "on call: Alice (primary)".
    on_call: str | None = None


def lang_of(event: IncidentEvent, options: RenderOptions | None = None) -> str:
    if options is not None and options.lang in LANGS:
        return str(options.lang)
    return "zh" if event.labels.get("lang") == "zh" else "en"


def human_number(value: object, lang: str = "en") -> str:
    """1234 -> 1.2K (en) / 1234 (zh); 2300000 -> 2.3M / 230万."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "?"
    number = float(value)
    if lang == "zh":
        for size, suffix in ((1e8, "亿"), (1e4, "万")):
            if abs(number) >= size:
                return f"{number / size:.1f}".rstrip("0").rstrip(".") + suffix
        return f"{number:.0f}" if number.is_integer() or abs(number) >= 10 else f"{number:.1f}"
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(number) >= size:
            return f"{number / size:.1f}".rstrip("0").rstrip(".") + suffix
    return f"{number:.0f}" if number.is_integer() or abs(number) >= 10 else f"{number:.1f}"


def summary_sentence(event: IncidentEvent, lang: str = "en") -> str:
    """What is happening, in one sentence (raw text: escape per channel)."""
    lang = lang if lang in LANGS else "en"
    what = _WHAT[lang].get(event.detector, event.detector.replace("_", " "))
    severity = _SEVERITY[lang].get(event.severity, event.severity)
    metrics = event.metrics
    numbers: list[str] = []
    text = _TEXT[lang]
    if _num(metrics.get("forwards_per_minute")) is not None:
        numbers.append(f"{human_number(metrics['forwards_per_minute'], lang)} {text['fpm']}")
    if _num(metrics.get("projected_reach")) is not None:
        numbers.append(f"{text['projected_reach']} {human_number(metrics['projected_reach'], lang)}")
    elif _num(metrics.get("negative_share")) is not None:
        numbers.append(f"{_pct(metrics['negative_share'])} {text['negative']}")
    brand = esc.one_line(event.brand)
    if event.status == "resolved":
        reason = _RESOLUTION[lang].get(event.resolution or "detector", "")
        ended = _ENDED[lang].get(event.detector, what)
        if lang == "zh":
            return f"{brand}：{ended}已结束（{reason}）。"
        return f"{brand}: {ended} is resolved ({reason})."
    if lang == "zh":
        tail = "，".join(numbers)
        return f"{brand}：{what}" + (f"（{tail}）" if tail else "") + f"，级别：{severity}。"
    tail = ", ".join(numbers)
    return f"{brand}: {what}" + (f" — {tail}" if tail else "") + f" ({severity})."


def _num(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _pct(value: object) -> str:
    number = _num(value)
    return "?" if number is None else f"{number * 100:.0f}%"


@dataclass(frozen=True, slots=True)
class Amplifier:
    author_id: str
    followers: float | None
    verified: bool


@dataclass(frozen=True, slots=True)
class PageContent:
    """The raw, unescaped facts of one page, already in the page's language."""

    lang: str
    title: str
    summary: str
    status: str
    severity: str
    severity_word: str
    complaint_text: str
    complaint_url: str
    spread: str
    amplifiers: tuple[Amplifier, ...]
    amplifiers_line: str
    reaction: str
    samples: tuple[str, ...]
    since: str
    playbook: str
    category: str
    acknowledged: str
    incident_id: str
    ack_url: str
    resolve_url: str
    false_alarm_url: str
    on_call: str
    labels: Mapping[str, str]


def _format_time(epoch_s: float, zone: str) -> str:
    try:
        tz: Any = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        tz, zone = UTC, "UTC"
    moment = datetime.fromtimestamp(epoch_s, tz=tz)
    return moment.strftime("%Y-%m-%d %H:%M ") + (moment.tzname() or zone)


def playbook_for(playbooks: Mapping[str, Any], category: str | None, lang: str) -> str:
    entry = playbooks.get(category or "", None)
    if entry is None:
        entry = playbooks.get("default")
    if entry is None:
        return ""
    if isinstance(entry, Mapping):
        chosen = entry.get(lang) or entry.get("en") or next(iter(entry.values()), "")
        return str(chosen)
    return str(entry)


def page_content(event: IncidentEvent, options: RenderOptions | None = None) -> PageContent:
    options = options or RenderOptions()
    lang = lang_of(event, options)
    text = _TEXT[lang]
    metrics = event.metrics
    severity_word = _SEVERITY[lang].get(event.severity, event.severity)
    status_word = _STATUS[lang].get(event.status, event.status)
    if event.status != "resolved" and event.acknowledged_by:
        status_word = _STATUS[lang]["acknowledged"]
    what = _WHAT[lang].get(event.detector, event.detector)
    colon = "：" if lang == "zh" else ": "
    title = f"[{severity_word}] {esc.one_line(event.brand)}{colon}{what}"
    if event.status == "resolved":
        title = f"[{status_word}] {esc.one_line(event.brand)}{colon}{what}"

    spread_parts: list[str] = []
    if _num(metrics.get("forwards_per_minute")) is not None:
        spread_parts.append(f"{human_number(metrics['forwards_per_minute'], lang)} {text['fpm']}")
    if _num(metrics.get("forwards_total")) is not None:
        spread_parts.append(f"{human_number(metrics['forwards_total'], lang)} {text['forwards']}")
    if _num(metrics.get("reach_followers")) is not None:
        spread_parts.append(
            f"{text['reach']} {human_number(metrics['reach_followers'], lang)} {text['followers']}"
        )
    if _num(metrics.get("projected_reach")) is not None:
        spread_parts.append(f"{text['projected_reach']} {human_number(metrics['projected_reach'], lang)}")
    if _num(metrics.get("projected_final_size")) is not None:
        spread_parts.append(f"{text['projected_size']} {human_number(metrics['projected_final_size'], lang)}")
    separator = "，" if lang == "zh" else ", "

    amplifiers: list[Amplifier] = []
    raw_amplifiers = metrics.get("top_amplifiers") or []
    if isinstance(raw_amplifiers, Sequence) and not isinstance(raw_amplifiers, str):
        for item in list(raw_amplifiers)[:MAX_AMPLIFIERS]:
            if isinstance(item, Mapping):
                amplifiers.append(
                    Amplifier(
                        author_id=esc.one_line(item.get("author_id", "?"))[:64],
                        followers=_num(item.get("followers")),
                        verified=bool(item.get("verified", False)),
                    )
                )
    amplifier_texts = []
    for amp in amplifiers:
        detail = f"{human_number(amp.followers, lang)} {text['followers']}"
        if amp.verified:
            detail += f", {text['verified']}" if lang == "en" else f"，{text['verified']}"
        amplifier_texts.append(
            f"@{amp.author_id} ({detail})" if lang == "en" else f"@{amp.author_id}（{detail}）"
        )

    reaction = ""
    if _num(metrics.get("negative_share")) is not None:
        reaction = f"{_pct(metrics['negative_share'])} {text['negative']}"
    samples: list[str] = []
    raw_samples = metrics.get("sample_comments") or []
    if isinstance(raw_samples, Sequence) and not isinstance(raw_samples, str):
        samples = [esc.truncate(esc.one_line(s), SAMPLE_LIMIT) for s in list(raw_samples)[:MAX_SAMPLES] if s]

    started = event.started_at_s
    minutes = max(0, int((event.detected_at_s - started) // 60))
    if lang == "zh":
        since = f"{_format_time(started, options.time_zone)}（{minutes} {text['min_ago']}）"
    else:
        since = f"{_format_time(started, options.time_zone)} ({minutes} {text['min_ago']})"
    category = event.labels.get("category") or str(metrics.get("category") or "")
    playbook = playbook_for(options.playbooks, category or None, lang)
    acknowledged = ""
    if event.acknowledged_by:
        acknowledged = f"{text['acknowledged_by']}{colon}{esc.one_line(event.acknowledged_by)}"
        if event.acknowledged_at:
            acknowledged += f" ({event.acknowledged_at})"

    return PageContent(
        lang=lang,
        title=title,
        summary=event.summary or summary_sentence(event, lang),
        status=status_word,
        severity=event.severity,
        severity_word=severity_word,
        complaint_text=esc.truncate(esc.plain(str(metrics.get("root_text") or "")).strip(), COMPLAINT_LIMIT),
        complaint_url=esc.url_or_empty(metrics.get("root_url")),
        spread=separator.join(spread_parts),
        amplifiers=tuple(amplifiers),
        amplifiers_line=separator.join(amplifier_texts),
        reaction=reaction,
        samples=tuple(samples),
        since=since,
        playbook=playbook,
        category=category,
        acknowledged=acknowledged,
        incident_id=event.incident_id,
        ack_url=esc.url_or_empty(options.ack_url),
        resolve_url=esc.url_or_empty(options.resolve_url),
        false_alarm_url=esc.url_or_empty(options.false_alarm_url),
        on_call=esc.one_line(options.on_call or ""),
        labels=dict(event.labels),
    )


def _quote(text: str, lang: str) -> str:
    return f"“{text}”" if lang == "zh" else f'"{text}"'


def render_text(event: IncidentEvent, options: RenderOptions | None = None) -> str:
    """Plain text for console, JSONL `text`, and the email text part."""
    page = page_content(event, options)
    t = _TEXT[page.lang]
    colon = "：" if page.lang == "zh" else ": "
    lines = [page.title, f"{t['what']}{colon}{page.summary}"]
    if page.complaint_text or page.complaint_url:
        complaint = _quote(page.complaint_text, page.lang) if page.complaint_text else ""
        lines.append(f"{t['complaint']}{colon}{complaint} {page.complaint_url}".rstrip())
    if page.spread:
        lines.append(f"{t['spread']}{colon}{page.spread}")
    if page.amplifiers_line:
        lines.append(f"{t['amplifiers']}{colon}{page.amplifiers_line}")
    if page.reaction or page.samples:
        reaction = page.reaction
        if page.samples:
            quoted = " / ".join(_quote(s, page.lang) for s in page.samples)
            reaction = (
                f"{reaction}. {quoted}" if reaction and page.lang == "en" else f"{reaction} {quoted}".strip()
            )
        lines.append(f"{t['reaction']}{colon}{reaction}")
    lines.append(f"{t['severity']}{colon}{page.severity_word} · {page.status}")
    lines.append(f"{t['since']}{colon}{page.since}")
    if page.acknowledged:
        lines.append(page.acknowledged)
    if page.on_call:
        lines.append(page.on_call)
    if page.playbook:
        if page.lang == "zh":
            category = f"（{t['category']}：{page.category}）" if page.category else ""
        else:
            category = f" ({t['category']}: {page.category})" if page.category else ""
        lines.append(f"{t['playbook']}{category}{colon}{esc.plain(page.playbook).strip()}")
    if page.ack_url and event.status != "resolved":
        lines.append(f"{t['ack']}{colon}{page.ack_url}")
    lines.append(f"{t['incident']}{colon}{page.incident_id}")
    return "\n".join(esc.plain(line) for line in lines) + "\n"


def render_sms(event: IncidentEvent, options: RenderOptions | None = None, limit: int = SMS_LIMIT) -> str:
    """SMS / push: the summary and the ack link, within `limit` characters (link kept whole)."""
    page = page_content(event, options)
    link = page.ack_url if event.status != "resolved" else ""
    room = limit - (len(link) + 1 if link else 0)
    if room < 20:
        link, room = "", limit
    body = esc.truncate(esc.one_line(page.summary), room)
    return f"{body} {link}" if link else body

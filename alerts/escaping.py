"""The single place untrusted text (post text, comments, author ids) is escaped, per channel.

Post text is attacker-controlled: it may contain `<!channel>`, `<@U123>`, `<https://evil|bank>`, HTML,
CR/LF to inject mail headers, or template syntax. Renderers never pass untrusted text through a
template engine or `str.format`; they build strings by concatenation and call one of these helpers at
the boundary of each channel. Truncation happens here too, so escapes are never cut in half.
"""

from __future__ import annotations

import html
import re

ELLIPSIS = "…"
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u2028\u2029]")
_LINE_BREAK_RE = re.compile(r"[\r\n\u2028\u2029\x85]+")
_BROADCAST_RE = re.compile(r"@(channel|here|everyone)\b", re.IGNORECASE)
_ZERO_WIDTH_SPACE = "\u200b"


def plain(text: object) -> str:
    """Console / JSONL / SMS text: control characters removed, newlines kept."""
    return _CONTROL_RE.sub("", str(text)).replace("\r\n", "\n").replace("\r", "\n")


def one_line(text: object) -> str:
    """Collapse to one line (list items, subjects before header encoding)."""
    return " ".join(_LINE_BREAK_RE.sub(" ", plain(text)).split())


def header_value(text: object, limit: int = 200) -> str:
    """An email header value: no CR/LF (header injection), no control characters, bounded length."""
    return truncate(one_line(text), limit)


def html_text(text: object) -> str:
    """Text inside HTML element content or a quoted attribute."""
    return html.escape(plain(text), quote=True)


def _slack_char(char: str) -> str:
    if char == "&":
        return "&amp;"
    if char == "<":
        return "&lt;"
    if char == ">":
        return "&gt;"
    return char


def slack_mrkdwn(text: object, limit: int | None = None) -> str:
    """Slack mrkdwn: `& < >` escaped (kills `<!channel>`, `<@U..>`, `<url|label>`), bare @channel defused."""
    cleaned = _BROADCAST_RE.sub(lambda m: "@" + _ZERO_WIDTH_SPACE + m.group(1), plain(text))
    if limit is None:
        return "".join(_slack_char(c) for c in cleaned)
    return _escape_within(cleaned, limit, _slack_char)


def slack_plain(text: object, limit: int | None = None) -> str:
    """Slack `plain_text` objects are not parsed, but broadcasts are still defused; bounded length."""
    cleaned = _BROADCAST_RE.sub(lambda m: "@" + _ZERO_WIDTH_SPACE + m.group(1), one_line(text))
    return cleaned if limit is None else truncate(cleaned, limit)


def truncate(text: str, limit: int) -> str:
    """At most `limit` characters, ending with an ellipsis when cut."""
    if limit <= 0:
        return ""
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + ELLIPSIS


def _escape_within(text: str, limit: int, escape_char: object) -> str:
    assert callable(escape_char)
    pieces = [escape_char(c) for c in text]
    if sum(len(p) for p in pieces) <= limit:
        return "".join(pieces)
    out: list[str] = []
    used = 0
    for piece in pieces:
        if used + len(piece) > limit - 1:
            break
        out.append(piece)
        used += len(piece)
    return "".join(out).rstrip() + ELLIPSIS


def url_or_empty(url: object) -> str:
    """Only http(s) URLs are linked; anything else (javascript:, data:) is dropped."""
    text = one_line(url) if url is not None else ""
    if re.match(r"^https?://[^\s<>\"'|]+$", text):
        return text
    return ""


def slack_link(url: object, label: object) -> str:
    safe_url = url_or_empty(url)
    if not safe_url:
        return slack_mrkdwn(label)
    return "<" + safe_url.replace("&", "&amp;").replace(">", "%3E") + "|" + slack_mrkdwn(label, 200) + ">"

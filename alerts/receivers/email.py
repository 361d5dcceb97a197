"""Email over SMTP (STARTTLS or implicit TLS, AUTH): text + HTML, an inline PNG of the surge, signed links.

Every notification has a stable `Message-ID` (`<notification id@domain>`): a retry after a lost
answer re-sends the same id, which mail stores and clients use to drop the duplicate. All mails of
one incident share `References` / `In-Reply-To` so clients thread them.
"""

from __future__ import annotations

import asyncio
import hashlib
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate

from crisiswatch.alerts import escaping as esc
from crisiswatch.alerts.config import EmailConfig
from crisiswatch.alerts.png import sparkline_png
from crisiswatch.alerts.receivers.base import DeliveryError, Notification, SendContext
from crisiswatch.alerts.render import RenderOptions, page_content, render_text

_HTML_LABELS = {
    "en": {
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
        "chart": "Surge chart",
    },
    "zh": {
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
        "chart": "传播趋势图",
    },
}


def _domain(address: str) -> str:
    domain = address.rsplit("@", 1)[-1].strip() or "crisiswatch.invalid"
    return "".join(c for c in domain if c.isalnum() or c in ".-") or "crisiswatch.invalid"


def trend_values(notification: Notification) -> list[float]:
    trend = notification.event.metrics.get("trend") or []
    values: list[float] = []
    for point in trend if isinstance(trend, list) else []:
        if isinstance(point, list | tuple) and len(point) == 2 and isinstance(point[1], int | float):
            values.append(float(point[1]))
    return values


def render_html(notification: Notification, options: RenderOptions, chart_cid: str | None) -> str:
    page = page_content(notification.event, options)
    t = _HTML_LABELS[page.lang]
    h = esc.html_text
    rows = []
    for key, value in (
        ("spread", page.spread),
        ("amplifiers", page.amplifiers_line),
        ("reaction", page.reaction),
        ("severity", f"{page.severity_word} · {page.status}"),
        ("since", page.since),
    ):
        if value:
            rows.append(
                f"<tr><th align='left' style='padding-right:12px'>{h(t[key])}</th><td>{h(value)}</td></tr>"
            )
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'></head><body style='font-family:sans-serif'>",
        f"<h2 style='margin:0 0 8px'>{h(page.title)}</h2>",
        f"<p><strong>{h(page.summary)}</strong></p>",
    ]
    if page.complaint_text or page.complaint_url:
        link = f" <a href='{h(page.complaint_url)}'>{h(page.complaint_url)}</a>" if page.complaint_url else ""
        parts.append(
            f"<p><b>{h(t['complaint'])}</b><br><blockquote>{h(page.complaint_text)}</blockquote>{link}</p>"
        )
    if chart_cid:
        parts.append(f"<p><img src='cid:{h(chart_cid)}' alt='{h(t['chart'])}' width='320' height='80'></p>")
    parts.append("<table>" + "".join(rows) + "</table>")
    if page.samples:
        parts.append("<ul>" + "".join(f"<li>“{h(s)}”</li>" for s in page.samples) + "</ul>")
    if page.acknowledged:
        parts.append(f"<p>{h(page.acknowledged)}</p>")
    if page.playbook:
        parts.append(f"<p><b>{h(t['playbook'])}</b><br>{h(page.playbook)}</p>")
    if notification.event.status != "resolved":
        links = [
            (page.ack_url, t["ack"]),
            (page.resolve_url, t["resolve"]),
            (page.false_alarm_url, t["false_alarm"]),
        ]
        buttons = [
            f"<a href='{h(url)}' style='margin-right:16px'>{h(label)}</a>" for url, label in links if url
        ]
        if buttons:
            parts.append("<p>" + "".join(buttons) + "</p>")
    for other in notification.others[:20]:
        parts.append(f"<p style='color:#555'>+ {h(other.summary)}</p>")
    parts.append(
        f"<p style='color:#888;font-size:small'>{h(notification.event.incident_id)}</p></body></html>"
    )
    return "".join(parts)


def build_message(
    notification: Notification, options: RenderOptions, config: EmailConfig, to: list[str]
) -> EmailMessage:
    domain = _domain(config.from_address)
    page = page_content(notification.event, options)
    message = EmailMessage()
    subject = page.title if notification.kind == "page" else f"{page.title} ({notification.kind})"
    message["Subject"] = esc.header_value(subject, 180)
    message["From"] = config.from_address
    message["To"] = ", ".join(to)
    message["Date"] = formatdate(notification.created_at_s or notification.event.detected_at_s, usegmt=True)
    message["Message-ID"] = f"<{notification.id}@{domain}>"
    thread = hashlib.sha256(notification.thread_key.encode()).hexdigest()[:24]
    message["References"] = f"<thread-{thread}@{domain}>"
    message["In-Reply-To"] = f"<thread-{thread}@{domain}>"
    message["X-Crisiswatch-Incident"] = esc.header_value(notification.event.incident_id, 300)
    message["X-Crisiswatch-Notification"] = notification.id
    message["Auto-Submitted"] = "auto-generated"
    text = render_text(notification.event, options)
    if notification.others:
        text += "\n" + "\n".join("+ " + esc.one_line(o.summary) for o in notification.others[:20]) + "\n"
    message.set_content(text)
    values = trend_values(notification)
    cid = f"chart-{notification.id[:16]}@{domain}" if len(values) >= 2 else None
    message.add_alternative(render_html(notification, options, cid), subtype="html")
    if cid:
        html_part: EmailMessage = message.get_payload()[1]  # type: ignore[index,assignment]
        html_part.add_related(
            sparkline_png(values), maintype="image", subtype="png", cid=f"<{cid}>", filename="surge.png"
        )
    return message


class EmailIntegration:
    kind = "email"
    idempotent = True  # by Message-ID

    def __init__(self, config: EmailConfig) -> None:
        self.config = config

    def recipients(self, notification: Notification, context: SendContext) -> list[str]:
        remembered: list[str] = context.thread_state.setdefault("to", [])
        addresses = list(self.config.to)
        if self.config.to_on_call:
            addresses += [r.email for r in notification.recipients if r.email]
            addresses += remembered
        unique = sorted(set(addresses), key=addresses.index)
        for address in unique:
            if address not in remembered and address not in self.config.to:
                remembered.append(address)
        return unique

    def _tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.config.ca_path)

    def send_blocking(self, message: EmailMessage, to: list[str]) -> None:
        config = self.config
        try:
            smtp: smtplib.SMTP
            if config.ssl:
                smtp = smtplib.SMTP_SSL(
                    config.smtp_host, config.smtp_port, timeout=config.timeout_s, context=self._tls()
                )
            else:
                smtp = smtplib.SMTP(config.smtp_host, config.smtp_port, timeout=config.timeout_s)
            with smtp:
                smtp.ehlo()
                if config.starttls:
                    smtp.starttls(context=self._tls())
                    smtp.ehlo()
                if config.username and config.password is not None:
                    smtp.login(config.username, config.password.reveal())
                smtp.send_message(message, from_addr=config.from_address, to_addrs=to)
        except smtplib.SMTPAuthenticationError as error:
            raise DeliveryError(
                "smtp", f"email: authentication failed ({error.smtp_code})", retryable=False
            ) from None
        except smtplib.SMTPRecipientsRefused:
            raise DeliveryError("smtp", "email: all recipients refused", retryable=False) from None
        except smtplib.SMTPResponseException as error:
            retryable = 400 <= error.smtp_code < 500
            raise DeliveryError("smtp", f"email: SMTP {error.smtp_code}", retryable=retryable) from None
        except smtplib.SMTPNotSupportedError:
            raise DeliveryError("smtp", "email: server lacks STARTTLS/AUTH", retryable=False) from None
        except TimeoutError:
            raise DeliveryError("timeout", "email: timed out", retryable=True) from None
        except ssl.SSLError as error:
            raise DeliveryError(
                "smtp", f"email: TLS failed ({type(error).__name__})", retryable=False
            ) from None
        except (smtplib.SMTPException, OSError) as error:
            raise DeliveryError("connection", f"email: {type(error).__name__}", retryable=True) from None

    async def send(self, notification: Notification, context: SendContext) -> None:
        to = self.recipients(notification, context)
        if not to:
            raise DeliveryError("config", "email: nobody to send to", retryable=False)
        message = build_message(notification, context.options, self.config, to)
        await asyncio.to_thread(self.send_blocking, message, to)

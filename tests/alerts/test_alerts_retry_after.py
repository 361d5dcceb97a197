"""Retry-After (RFC 9110 10.2.3): delay-seconds or an HTTP-date, against real HTTP receivers on 127.0.0.1.

An HTTP-date is measured against the response's `Date` (the server's clock on both sides) and, when
the response has no `Date`, against the notifier's injected clock.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
from aiohttp import web
from alerts_helpers import T0, assessment
from alerts_servers import FakeHttp, Recorded, make_notifier

from crisiswatch.alerts.clock import ManualClock
from crisiswatch.alerts.config import AlertingConfig
from crisiswatch.alerts.delivery import Notifier, Outcome
from crisiswatch.alerts.incidents import IncidentTracker
from crisiswatch.alerts.receivers.base import DeliveryError, Notification
from crisiswatch.alerts.receivers.http import check_status, parse_http_date, parse_retry_after

# 1994-11-06T08:49:37Z, RFC 9110's example date, in its three forms.
EXAMPLE_S = 784111777.0


def http_date(epoch_s: float) -> str:
    """IMF-fixdate, as servers send it."""
    return format_datetime(datetime.fromtimestamp(epoch_s, tz=UTC), usegmt=True)


# ------------------------------------------------------------------------------------------- parsing
@pytest.mark.parametrize(
    "text",
    [
        "Sun, 06 Nov 1994 08:49:37 GMT",  # IMF-fixdate
        "Sunday, 06-Nov-94 08:49:37 GMT",  # obsolete RFC 850
        "Sun Nov  6 08:49:37 1994",  # obsolete asctime
        "  Sun, 06 Nov 1994 08:49:37 GMT ",
    ],
)
def test_http_date_forms(text: str) -> None:
    assert parse_http_date(text) == EXAMPLE_S


@pytest.mark.parametrize(
    "text",
    [
        "",
        "tomorrow",
        "Sun, 06 Nov 1994 08:49:37 PST",  # HTTP-dates are always GMT
        "Sun, 31 Feb 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 25:49:37 GMT",
        "1994-11-06T08:49:37Z",
    ],
)
def test_not_http_dates(text: str) -> None:
    assert parse_http_date(text) is None


@pytest.mark.parametrize(
    ("retry_after", "date", "expected"),
    [
        ("120", None, (120.0, None)),
        (" 7 ", "Sun, 06 Nov 1994 08:49:37 GMT", (7.0, None)),
        ("0", None, (0.0, None)),
        # An HTTP-date with the response's Date: the server's clock on both sides.
        ("Sun, 06 Nov 1994 08:50:07 GMT", "Sun, 06 Nov 1994 08:49:37 GMT", (30.0, None)),
        ("Sun, 06 Nov 1994 08:49:00 GMT", "Sun, 06 Nov 1994 08:49:37 GMT", (0.0, None)),
        # No (usable) Date: an absolute time for the caller's clock.
        ("Sun, 06 Nov 1994 08:50:07 GMT", None, (None, EXAMPLE_S + 30)),
        ("Sun, 06 Nov 1994 08:50:07 GMT", "garbage", (None, EXAMPLE_S + 30)),
        ("-5", None, (None, None)),
        ("soon", None, (None, None)),
        (None, None, (None, None)),
    ],
)
def test_parse_retry_after(retry_after, date, expected) -> None:
    assert parse_retry_after(retry_after, date) == expected


def test_check_status_carries_retry_after_for_429_and_503() -> None:
    with pytest.raises(DeliveryError) as caught:
        check_status("webhook", 429, {"retry-after": http_date(T0 + 60)})
    assert caught.value.reason == "rate_limited" and caught.value.retry_at_s == T0 + 60
    assert caught.value.wait_s(T0) == 60
    with pytest.raises(DeliveryError) as caught:
        check_status("webhook", 503, {"retry-after": http_date(T0 + 60), "date": http_date(T0 + 50)})
    assert caught.value.reason == "http_5xx" and caught.value.retry_after_s == 10


# ----------------------------------------------------------------------------- real HTTP receivers
def _config(url: str) -> AlertingConfig:
    return AlertingConfig.from_mapping(
        {"receivers": [{"name": "h", "webhook": {"url": url}}], "route": {"receiver": "h"}}
    )


_notifier = make_notifier


def _page() -> Notification:
    event = IncidentTracker().observe(assessment("critical", 0))[0]
    return Notification(
        id="", receiver="h", kind="page", group_key="g", thread_key=event.incident_id, event=event
    ).with_id()


async def _two_attempts(notifier: Notifier, clock: ManualClock) -> tuple[Outcome, Outcome]:
    notifier.submit(_page())
    first = (await notifier.deliver_due())[0]
    assert first.next_attempt_s is not None
    clock.set(first.next_attempt_s)
    second = (await notifier.deliver_due())[0]
    await notifier.aclose()
    return first, second


@pytest.mark.integration
def test_429_with_http_date_is_measured_against_the_response_date(tmp_path) -> None:
    """The receiver's clock is 1000 s behind ours: its Date header cancels that skew out."""
    server_now = T0 - 1000.0

    def behaviour(server: FakeHttp, request: Recorded) -> web.Response | None:
        if len(server.requests) == 1:
            return web.Response(
                status=429,
                headers={"Retry-After": http_date(server_now + 45), "Date": http_date(server_now)},
            )
        return None  # 200

    async def run() -> tuple[Outcome, Outcome, list[Recorded]]:
        hook = await FakeHttp(behaviour).start()
        clock = ManualClock(T0)
        notifier = _notifier(_config(hook.base_url + "/hook"), clock, tmp_path)
        outcomes = await _two_attempts(notifier, clock)
        await hook.stop()
        return (*outcomes, hook.requests)

    first, second, requests = asyncio.run(run())
    assert first.result == "retry" and first.reason == "rate_limited"
    assert first.next_attempt_s == T0 + 45  # not the 1 s backoff, not 1045 s
    assert second.result == "sent" and len(requests) == 2


async def _bare_http_server(responses: list[bytes], seen: list[bytes]) -> asyncio.Server:
    """An HTTP/1.1 server without a Date header (aiohttp always adds one): answers `responses` in turn."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        seen.append(head + await reader.readexactly(length))
        writer.write(responses.pop(0) if responses else b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


@pytest.mark.integration
def test_429_with_http_date_and_no_date_header_uses_the_injected_clock(tmp_path) -> None:
    seen: list[bytes] = []
    retry_at = T0 + 90

    async def run() -> tuple[Outcome, Outcome]:
        reply = (
            "HTTP/1.1 429 Too Many Requests\r\n"
            f"Retry-After: {http_date(retry_at)}\r\n"
            "Content-Length: 0\r\nConnection: close\r\n\r\n"
        ).encode()
        server = await _bare_http_server([reply], seen)
        port = server.sockets[0].getsockname()[1]
        clock = ManualClock(T0)
        notifier = _notifier(_config(f"http://127.0.0.1:{port}/hook"), clock, tmp_path)
        outcomes = await _two_attempts(notifier, clock)
        server.close()
        await server.wait_closed()
        return outcomes

    first, second = asyncio.run(run())
    assert first.result == "retry" and first.reason == "rate_limited"
    assert first.next_attempt_s == retry_at
    assert second.result == "sent" and len(seen) == 2


@pytest.mark.integration
def test_http_date_in_the_past_falls_back_to_backoff_and_far_future_is_capped(tmp_path) -> None:
    server_now = T0

    def behaviour(server: FakeHttp, request: Recorded) -> web.Response | None:
        if len(server.requests) == 1:  # 503 "retry after a moment ago": no hot loop, the backoff
            return web.Response(
                status=503,
                headers={"Retry-After": http_date(server_now - 60), "Date": http_date(server_now)},
            )
        if len(server.requests) == 2:  # 429 "come back in two days": capped at max_retry_after_s
            return web.Response(
                status=429,
                headers={"Retry-After": http_date(server_now + 2 * 86400), "Date": http_date(server_now)},
            )
        return None

    async def run() -> tuple[Outcome, Outcome]:
        hook = await FakeHttp(behaviour).start()
        clock = ManualClock(T0)
        notifier = _notifier(
            _config(hook.base_url + "/hook"),
            clock,
            tmp_path,
            initial_backoff_s=5.0,
            jitter=0.0,
            max_retry_after_s=600.0,
            budget_s=86400.0,
        )
        first, second = await _two_attempts(notifier, clock)
        await hook.stop()
        return first, second

    first, second = asyncio.run(run())
    assert first.result == "retry" and first.next_attempt_s == T0 + 5.0
    assert second.result == "retry" and second.next_attempt_s == T0 + 5.0 + 600.0

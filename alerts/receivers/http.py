"""One HTTP client path for every HTTP receiver: timeouts, status -> DeliveryError, no secrets in errors.

Error messages name the receiver kind and the status, never the URL (webhook URLs are secrets).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import aiohttp

from crisiswatch.alerts.receivers.base import DeliveryError

_MONTHS = {
    m: i
    for i, m in enumerate(
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], 1
    )
}
_WEEKDAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
_LONG_WEEKDAY = r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)"
_MONTH = r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
_TIME = r"(\d{2}):(\d{2}):(\d{2})"
# RFC 9110 section 5.6.7: IMF-fixdate, and the obsolete RFC 850 and asctime forms recipients must accept.
_IMF_FIXDATE = re.compile(rf"^{_WEEKDAY}, (\d{{2}}) {_MONTH} (\d{{4}}) {_TIME} GMT$")
_RFC850_DATE = re.compile(rf"^{_LONG_WEEKDAY}, (\d{{2}})-{_MONTH}-(\d{{2}}) {_TIME} GMT$")
_ASCTIME_DATE = re.compile(rf"^{_WEEKDAY} {_MONTH} ([ \d]\d) {_TIME} (\d{{4}})$")
_DELAY_SECONDS = re.compile(r"^\d+(?:\.\d+)?$")


def parse_http_date(value: str | None) -> float | None:
    """Epoch seconds of an HTTP-date (RFC 9110 5.6.7, all three forms); None when it is not one."""
    if value is None:
        return None
    text = value.strip()
    try:
        if match := _IMF_FIXDATE.match(text):
            day, month, year, hour, minute, second = match.groups()
        elif match := _RFC850_DATE.match(text):
            day, month, short_year, hour, minute, second = match.groups()
            # Two-digit years: RFC 9110 reads a year more than 50 years ahead as the past century.
            year = str(2000 + int(short_year) if int(short_year) < 70 else 1900 + int(short_year))
        elif match := _ASCTIME_DATE.match(text):
            month, day, hour, minute, second, year = match.groups()
        else:
            return None
        moment = datetime(
            int(year), _MONTHS[month], int(day), int(hour), int(minute), int(second), tzinfo=UTC
        )
    except ValueError:  # 31 Feb, hour 25, ...
        return None
    return moment.timestamp()


def parse_retry_after(value: str | None, date: str | None = None) -> tuple[float | None, float | None]:
    """Retry-After (RFC 9110 10.2.3) as `(delay_s, retry_at_s)`, at most one of them set.

    delay-seconds gives the delay. An HTTP-date is measured against the response's own `Date`
    header when it has one (the server's clock on both sides, so clock skew cancels out); without a
    `Date` it is returned as an absolute time for the caller's injected clock. Anything else: (None, None).
    """
    if value is None:
        return None, None
    text = value.strip()
    if _DELAY_SECONDS.match(text):
        return float(text), None
    retry_at = parse_http_date(text)
    if retry_at is None:
        return None, None
    sent_at = parse_http_date(date)
    if sent_at is not None:
        return max(0.0, retry_at - sent_at), None
    return None, retry_at


class HttpClient:
    """A lazily created aiohttp session bound to the running loop."""

    def __init__(self, kind: str, timeout_s: float) -> None:
        self.kind = kind
        self.timeout_s = timeout_s
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _client(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout_s, connect=min(self.timeout_s, 5.0)),
                trust_env=False,
            )
            self._loop = loop
        return self._session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()

    async def post(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
    ) -> tuple[int, Mapping[str, str], bytes]:
        """POST and classify: 2xx returns; 408/429/5xx retryable; other 4xx not; network errors retryable."""
        try:
            async with self._client().post(
                url, data=body, headers=dict(headers), allow_redirects=False
            ) as response:
                payload = await response.read()
                status = response.status
                response_headers = {k.lower(): v for k, v in response.headers.items()}
        except TimeoutError:
            raise DeliveryError(
                "timeout", f"{self.kind}: timed out after {self.timeout_s:g}s", retryable=True
            ) from None
        except aiohttp.ClientConnectorError:
            raise DeliveryError("connection", f"{self.kind}: connection failed", retryable=True) from None
        except (aiohttp.ClientError, OSError) as error:
            raise DeliveryError(
                "connection", f"{self.kind}: {type(error).__name__}", retryable=True
            ) from None
        check_status(self.kind, status, response_headers)
        return status, response_headers, payload


def check_status(kind: str, status: int, headers: Mapping[str, str]) -> None:
    """2xx passes; 429, 408 and 5xx raise retryable errors carrying Retry-After; other statuses do not retry."""
    if 200 <= status < 300:
        return
    delay_s, at_s = parse_retry_after(headers.get("retry-after"), headers.get("date"))
    if status == 429:
        raise DeliveryError(
            "rate_limited", f"{kind}: HTTP 429", retryable=True, retry_after_s=delay_s, retry_at_s=at_s
        )
    if status >= 500 or status == 408:
        raise DeliveryError(
            "http_5xx", f"{kind}: HTTP {status}", retryable=True, retry_after_s=delay_s, retry_at_s=at_s
        )
    raise DeliveryError("http_4xx", f"{kind}: HTTP {status}", retryable=False)


def json_or_empty(payload: bytes) -> Any:
    import json

    try:
        return json.loads(payload or b"{}")
    except ValueError:
        return {}

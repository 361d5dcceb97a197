"""One HTTP client path for every HTTP receiver: timeouts, status -> DeliveryError, no secrets in errors.

Error messages name the receiver kind and the status, never the URL (webhook URLs are secrets).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import aiohttp

from crisiswatch.alerts.receivers.base import DeliveryError


def retry_after_s(value: str | None) -> float | None:
    """Retry-After in seconds (the HTTP-date form is treated as absent: we cannot read the clock here)."""
    if value is None:
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        return None


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
    if 200 <= status < 300:
        return
    if status == 429:
        raise DeliveryError(
            "rate_limited",
            f"{kind}: HTTP 429",
            retryable=True,
            retry_after_s=retry_after_s(headers.get("retry-after")),
        )
    if status >= 500 or status == 408:
        raise DeliveryError(
            "http_5xx",
            f"{kind}: HTTP {status}",
            retryable=True,
            retry_after_s=retry_after_s(headers.get("retry-after")),
        )
    raise DeliveryError("http_4xx", f"{kind}: HTTP {status}", retryable=False)


def json_or_empty(payload: bytes) -> Any:
    import json

    try:
        return json.loads(payload or b"{}")
    except ValueError:
        return {}

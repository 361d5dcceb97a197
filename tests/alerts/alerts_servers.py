"""Real servers on 127.0.0.1 standing in for Slack, PagerDuty, webhooks and SMTP."""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Behaviour = Callable[["FakeHttp", Recorded], Any]


@dataclass
class FakeHttp:
    """Records every request; `behaviour` returns a web.Response (or raises) per request."""

    behaviour: Behaviour | None = None
    requests: list[Recorded] = field(default_factory=list)
    port: int = 0
    _runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        recorded = Recorded(
            request.method,
            request.path,
            {k.lower(): v for k, v in request.headers.items()},
            await request.read(),
        )
        self.requests.append(recorded)
        if self.behaviour is not None:
            result = self.behaviour(self, recorded)
            if asyncio.iscoroutine(result):
                result = await result
            if result is not None:
                return result
        return web.json_response(
            {"ok": True, "status": "success", "ts": "1700000000.000100", "channel": "C123"}
        )

    async def start(self, port: int = 0) -> FakeHttp:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port or self.port or 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def make_notifier(config: Any, clock: Any, tmp_path: Path, **delivery: Any) -> Any:
    """A Notifier with the config's real integrations, a fresh registry and a dead-letter file in tmp_path."""
    from prometheus_client import CollectorRegistry

    from crisiswatch.alerts.config import DeliveryConfig
    from crisiswatch.alerts.delivery import DeadLetterLog, Notifier
    from crisiswatch.alerts.metrics import AlertMetrics
    from crisiswatch.alerts.service import build_integrations, render_options_factory

    return Notifier(
        build_integrations(config, clock),
        clock=clock,
        config=DeliveryConfig(dead_letter_path=str(tmp_path / "dead.jsonl"), **delivery),
        metrics=AlertMetrics(CollectorRegistry()),
        options_for=render_options_factory(config, clock),
        dead_letters=DeadLetterLog(str(tmp_path / "dead.jsonl")),
    )


async def serve_callbacks(handler: Any, prefix: str = "/alerts") -> tuple[web.AppRunner, int]:
    """A CallbackHandler mounted as the worker mounts it, on a real aiohttp server: (runner, port)."""
    app = web.Application()
    app.router.add_route("*", prefix + "/{tail:.*}", handler.aiohttp)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None
    return runner, server.sockets[0].getsockname()[1]  # type: ignore[union-attr]


def self_signed_cert(directory: Path) -> tuple[Path, Path] | None:
    """A throwaway certificate for 127.0.0.1 / localhost, or None when openssl is missing."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    try:
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-keyout",
                str(key),
                "-out",
                str(cert),
                "-subj",
                "/CN=localhost",
                "-addext",
                "subjectAltName=DNS:localhost,IP:127.0.0.1",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return cert, key


def tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert), str(key))
    return context

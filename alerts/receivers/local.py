"""The demo's receivers: console (human-readable) and a JSONL file (machine-readable).

Both are synchronous at heart (`send_sync`, used by replay and the demo) with an async wrapper for
the worker. Neither has an idempotency key: a crash between write and commit may repeat one line.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any, TextIO

from crisiswatch.alerts.receivers.base import DeliveryError, Notification, SendContext, dumps
from crisiswatch.alerts.render import render_text


class ConsoleIntegration:
    kind = "console"
    idempotent = False

    def __init__(self, stream: TextIO | str = "stdout") -> None:
        self._stream = stream

    def _target(self) -> TextIO:
        if isinstance(self._stream, str):
            return sys.stderr if self._stream == "stderr" else sys.stdout
        return self._stream

    def send_sync(self, notification: Notification, context: SendContext) -> None:
        text = render_text(notification.event, context.options)
        header = f"--- {notification.kind} -> {notification.receiver}"
        if notification.recipients:
            header += " (" + ", ".join(r.name or r.id for r in notification.recipients) + ")"
        lines = [header, text.rstrip("\n")]
        for other in notification.others:
            lines.append(f"  + {other.summary}")
        try:
            target = self._target()
            target.write("\n".join(lines) + "\n")
            target.flush()
        except (OSError, ValueError) as error:
            raise DeliveryError(
                "io", f"console write failed: {type(error).__name__}", retryable=True
            ) from None

    async def send(self, notification: Notification, context: SendContext) -> None:
        self.send_sync(notification, context)


def notification_record(notification: Notification, context: SendContext) -> dict[str, Any]:
    """The JSONL line: the notification as data plus its plain-text rendering."""
    record = notification.to_dict()
    record["text"] = render_text(notification.event, context.options)
    return record


class JsonlIntegration:
    kind = "jsonl"
    idempotent = False

    _locks: dict[str, threading.Lock] = {}

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = self._locks.setdefault(os.path.abspath(path), threading.Lock())

    def send_sync(self, notification: Notification, context: SendContext) -> None:
        line = dumps(notification_record(notification, context)) + "\n"
        try:
            directory = os.path.dirname(os.path.abspath(self.path))
            os.makedirs(directory, exist_ok=True)
            with self._lock, open(self.path, "a", encoding="utf-8") as handle:
                handle.write(line)
                handle.flush()
        except OSError as error:
            raise DeliveryError(
                "io", f"cannot append to {self.path}: {error.strerror}", retryable=True
            ) from None

    async def send(self, notification: Notification, context: SendContext) -> None:
        self.send_sync(notification, context)

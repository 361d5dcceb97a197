"""Logging set-up: plain text or one JSON object per line, with secrets and (optionally) handles redacted."""

from __future__ import annotations

import json
import logging
import re
import sys
from typing import Any

# Anything that looks like a credential in a URL or a header never reaches a log line.
_SECRET_PATTERNS = (
    re.compile(r"(https://hooks\.slack\.com/services/)[^\s\"']+"),
    re.compile(r"(xox[abpr]-)[A-Za-z0-9-]+"),
    re.compile(
        r"((?:password|passwd|token|secret|signing_key|routing_key|api_key)[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]+",
        re.IGNORECASE,
    ),
    re.compile(r"(://[^/\s:@]+:)[^@\s]+(@)"),
)
# `extra=` fields a JSON line carries (incident and delivery context; never post text or secrets).
_CONTEXT_FIELDS = (
    "incident_id",
    "event_id",
    "dedup_key",
    "status",
    "severity",
    "detector",
    "brand",
    "receiver",
    "partition",
)
_HANDLE = re.compile(r"@[\w\u4e00-\u9fff-]{1,64}")


def redact(text: str, *, authors: bool = False) -> str:
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(
            lambda m: m.group(1) + "***" + (m.group(2) if m.lastindex and m.lastindex >= 2 else ""), text
        )
    if authors:
        text = _HANDLE.sub("@***", text)
    return text


class RedactingFilter(logging.Filter):
    def __init__(self, redact_authors: bool = False) -> None:
        super().__init__()
        self.redact_authors = redact_authors

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg = redact(message, authors=self.redact_authors)
        record.args = None
        if record.exc_info and not record.exc_text:
            # Formatters reuse exc_text: a traceback quoting a webhook URL is redacted like the message.
            traceback = logging.Formatter().formatException(record.exc_info)
            record.exc_text = redact(traceback, authors=self.redact_authors)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in _CONTEXT_FIELDS:
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["error"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(log_format: str = "text", level: str = "info", *, redact_authors: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter(redact_authors))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def keep_logging_in_faust(conf: Any) -> None:
    """Set a Faust app's `logging_config` / `loghandlers` so that its worker keeps our handler."""
    for key, value in faust_logging_options().items():
        setattr(conf, key, value)


def faust_logging_options() -> dict[str, Any]:
    """Faust settings (`logging_config`, `loghandlers`) that keep the handler set up here (JSON, redaction).

    At start the worker resets the root logger to its own coloured handler; this config gives it no
    handler of its own and hands ours back.
    """
    root = logging.getLogger()
    return {
        "logging_config": {
            "version": 1,
            "disable_existing_loggers": False,
            "root": {"level": logging.getLevelName(root.level), "handlers": []},
        },
        "loghandlers": list(root.handlers),
    }

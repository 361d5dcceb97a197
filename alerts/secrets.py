"""A secret value that cannot leak by accident: repr/str/format show `***`; `.reveal()` is explicit.

The config loader has already replaced `X_env` / `X_file` keys by their values; `alerts/config.py`
wraps every secret-looking value in `Secret` at once, so it never reaches a log, a metric label, an
error message or a payload unless a sender calls `.reveal()` at the moment it needs it.
"""

from __future__ import annotations

import hmac
from typing import Any

from crisiswatch.detectors.settings import MASK


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = str(value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK})"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return MASK

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and hmac.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(("Secret", len(self._value)))

    def __reduce__(self) -> Any:
        raise TypeError("secrets are not serialisable")


def reveal(secret: Secret | None) -> str | None:
    return None if secret is None else secret.reveal()


def scrub(text: str, secrets: list[Secret | None]) -> str:
    """Remove any secret value that made its way into a string (e.g. an exception from a library)."""
    for secret in secrets:
        if secret is not None and len(secret.reveal()) >= 4:
            text = text.replace(secret.reveal(), MASK)
    return text

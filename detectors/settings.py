"""What every typed config section shares: one error type that names file, key, value and expectation.

Each package owns the frozen dataclasses of its own config section (`detectors/config.py`,
`alerts/config.py`) and raises `ConfigError` from `__post_init__`; `streams/config.py` loads the YAML
file, fills in the file name and builds the sections.
"""

from __future__ import annotations

from typing import Any

SECRET_KEY_HINTS: tuple[str, ...] = (
    "password",
    "secret",
    "token",
    "webhook_url",
    "routing_key",
    "signing_key",
    "api_key",
)
MASK = "***"


def is_secret_key(key: str) -> bool:
    last = key.rsplit(".", 1)[-1].lower()
    return any(hint in last for hint in SECRET_KEY_HINTS)


def masked(key: str, value: Any) -> Any:
    """The value as it may appear in an error or a log: secrets never do."""
    return MASK if is_secret_key(key) and value not in (None, "") else value


class ConfigError(ValueError):
    """A configuration problem, found at start: where, what was found, what was expected."""

    def __init__(self, key: str, value: Any, expected: str, file: str | None = None) -> None:
        self.key = key
        self.value = masked(key, value)
        self.expected = expected
        self.file = file
        super().__init__(self._render())

    def _render(self) -> str:
        where = f"{self.file}: " if self.file else ""
        return f"{where}{self.key or '(top level)'}: got {self.value!r}, expected {self.expected}"

    def in_file(self, file: str) -> ConfigError:
        return ConfigError(self.key, self.value, self.expected, file=file)

    def under(self, prefix: str) -> ConfigError:
        key = f"{prefix}.{self.key}" if self.key else prefix
        return ConfigError(key, self.value, self.expected, file=self.file)


def require(condition: bool, key: str, value: Any, expected: str) -> None:
    if not condition:
        raise ConfigError(key, value, expected)

"""Make any input string safe and bounded before the text models see it.

Posts arrive with lone surrogates, NUL bytes, control characters and up to 64 KiB of text; none of
that may raise, and none of it may make one post cost more than a few tweets' worth of CPU.
"""

from __future__ import annotations

import re
from typing import Any

# Control characters other than tab/newline, and the zero-width / bidi marks that split words invisibly.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")
_SPACE = re.compile(r"\s+")
_SURROGATE = re.compile("[\ud800-\udfff]")


def safe_text(value: Any, max_chars: int) -> str:
    """A valid, NUL-free, whitespace-collapsed string of at most `max_chars` characters.

    Non-strings become "" (a label is still produced); lone surrogates become U+FFFD.
    """
    if not isinstance(value, str):
        return ""
    # Cut first (with headroom for what the cleaning removes) so 64 KiB costs no more than 4 * max_chars.
    text = value[: max_chars * 4] if len(value) > max_chars * 4 else value
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = _SURROGATE.sub("\ufffd", text)
    # Fast path: most posts are printable with single spaces (isprintable is False for \n, \t, NUL, ...).
    if not text.isprintable():
        text = _SPACE.sub(" ", _CONTROL.sub("", text))
    elif "  " in text:
        text = _SPACE.sub(" ", text)
    elif not text.isascii() and _CONTROL.search(text) is not None:  # zero-width/bidi marks are "printable"
        text = _CONTROL.sub("", text)
    return text.strip()[:max_chars]

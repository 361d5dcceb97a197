"""Cheap language guess for posts without `lang`: the share of CJK characters among letters.

The product models English and Chinese only; every other language is routed to the model whose
script it shares (Han/Kana/Hangul → "zh", everything else → "en").
"""

from __future__ import annotations

import re

SUPPORTED_LANGS: tuple[str, ...] = ("en", "zh")

_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]")
_LATIN = re.compile(r"[A-Za-z\u00c0-\u024f]+")


def detect_lang(text: str) -> str:
    """ "zh" when CJK characters outweigh Latin words (a Chinese character ~ a word), else "en"."""
    if text.isascii() or _CJK.search(text) is None:
        return "en"
    if _LATIN.search(text) is None:
        return "zh"
    cjk = len(_CJK.findall(text))
    latin_words = len(_LATIN.findall(text))
    return "zh" if cjk >= latin_words else "en"


def resolve_lang(given: str | None, text: str) -> str:
    """The model language for a post: its declared `lang` when we model it, else a guess from the text."""
    if given:
        code = given.strip().lower()[:2]
        if code in SUPPORTED_LANGS:
            return code
    return detect_lang(text)

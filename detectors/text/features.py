"""Hashed n-gram features shared by training and inference, in pure Python + zlib (no scikit-learn at run time).

A text becomes a set of bucket indices in `[0, 2**bits)`: unigrams (with negation scope marked in English),
bigrams and optionally trigrams of tokens, where a Chinese "token" is one Han character, a Latin word or a
Weibo emoticon such as `[怒]`. Token hashes are CRC-32 (stable across processes, unlike `hash()`); n-gram
hashes combine token hashes arithmetically, which is cheaper than hashing the joined string.
Changing anything here changes every feature index: bump `FEATURIZER_VERSION` and retrain.
"""

from __future__ import annotations

import re
from zlib import crc32

FEATURIZER_VERSION = 1

_URL = re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE)
_MENTION = re.compile(r"@\w+")
_ELONGATED = re.compile(r"(.)\1{2,}")
_APOSTROPHE = re.compile(r"[’‘`´]")
_EN_TOKEN = re.compile(r"@user|[#$]?\w+(?:'\w+)?|[!?]{2,}|[^\s\w]")
_ZH_TOKEN = re.compile(r"\[[^\[\]\s]{1,8}\]|[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]|[#$]?[^\W\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+|[!?！？]{2,}|[^\s\w]")
_NEGATORS = frozenset(
    "not no never cannot nothing nobody none nor neither nowhere without dont doesnt didnt isnt arent wasnt "
    "werent cant couldnt wont wouldnt shouldnt aint hasnt havent hadnt mustnt neednt hardly barely".split()
)
_SCOPE_END = frozenset(". , ; : ! ? !! ?? !? ?! but".split())

_MIX_1 = 0x9E3779B1
_MIX_2 = 0x85EBCA77
_MEMO_MAX = 1_000_000


def en_tokens(text: str) -> list[str]:
    """Lower-cased English tokens with `not_` marking words inside a negation scope."""
    text = _APOSTROPHE.sub("'", text.lower())
    text = _URL.sub(" http ", text)
    text = _MENTION.sub(" @user ", text)
    text = _ELONGATED.sub(r"\1\1", text)
    tokens: list[str] = []
    negated = False
    for token in _EN_TOKEN.findall(text):
        if token in _SCOPE_END or (len(token) > 1 and token[0] in "!?"):
            negated = False
            tokens.append(token)
            continue
        if token.endswith("n't") or token in _NEGATORS:
            negated = True
            tokens.append(token.replace("'", ""))
            continue
        if token[0] == "#" and len(token) > 1:
            tokens.append(token)
            token = token[1:]
        tokens.append("not_" + token if negated else token)
    return tokens


def zh_tokens(text: str) -> list[str]:
    """Han characters one by one, Latin words and numbers whole, Weibo emoticons `[哭]` whole."""
    text = _URL.sub(" http ", text.lower())
    text = _MENTION.sub(" @user ", text)
    text = _ELONGATED.sub(r"\1\1", text)
    return _ZH_TOKEN.findall(text)


class HashedFeaturizer:
    """Maps a text to the sorted, de-duplicated bucket indices of its n-grams."""

    def __init__(self, lang: str, bits: int, max_n: int) -> None:
        if lang not in ("en", "zh"):
            raise ValueError(f"lang must be 'en' or 'zh', got {lang!r}")
        if not 10 <= bits <= 24 or not 1 <= max_n <= 3:
            raise ValueError(f"bits must be in [10, 24] and max_n in [1, 3], got {bits}, {max_n}")
        self.lang = lang
        self.bits = bits
        self.max_n = max_n
        self.n_buckets = 1 << bits
        self._mask = self.n_buckets - 1
        self._tokenize = en_tokens if lang == "en" else zh_tokens
        self._memo: dict[str, int] = {}

    def describe(self) -> dict[str, object]:
        return {"version": FEATURIZER_VERSION, "lang": self.lang, "bits": self.bits, "max_n": self.max_n}

    def indices(self, text: str) -> list[int]:
        memo = self._memo
        hashes: list[int] = []
        for token in self._tokenize(text):
            value = memo.get(token)
            if value is None:
                value = crc32(token.encode("utf-8", "surrogatepass"))
                if len(memo) >= _MEMO_MAX:
                    memo.clear()
                memo[token] = value
            hashes.append(value)
        mask = self._mask
        buckets = {value & mask for value in hashes}
        if self.max_n >= 2 and len(hashes) > 1:
            pairs = [((a * _MIX_1) ^ b) & 0xFFFFFFFF for a, b in zip(hashes, hashes[1:], strict=False)]
            buckets.update(((pair * _MIX_2) >> 13) & mask for pair in pairs)
            if self.max_n >= 3 and len(hashes) > 2:
                buckets.update(
                    ((((pair * _MIX_1) ^ c) & 0xFFFFFFFF) * _MIX_2 >> 11) & mask
                    for pair, c in zip(pairs, hashes[2:], strict=False)
                )
        return sorted(buckets)

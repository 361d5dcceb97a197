"""Hashed n-gram features shared by training and inference, in Python + numpy (no scikit-learn at run time).

A text becomes a set of bucket indices in `[0, 2**bits)`: unigrams (with negation scope marked in English),
bigrams and optionally trigrams of tokens, where a Chinese "token" is one Han character, a Latin word or a
Weibo emoticon such as `[怒]`. Token hashes are CRC-32 (stable across processes, unlike `hash()`) and are
remembered per token; n-gram hashes are combined from token hashes with numpy over a whole batch.

English can add a few dense lexicon features (sums/counts/extremes of word valences, negation-aware),
from a lexicon shipped inside the model file. Chinese can too (since 2026.11.6): there a lexicon word is
matched as a substring (longest first, one trie-shaped regex), and a negator (不, 没, 别, 未, 莫, 毫无)
in the two characters before it, within the same clause, damps and flips its valence like English
negation ("没失望" reads as mildly positive).

With `intent=True` each text also gets one marker token describing what kind of sentence it is:
`<q>` an information-seeking question ("有没有黑色的？", "Does X ship to Canada?"), `<qg>` a question
carrying a grievance cue ("为什么还没到？", "Why has my refund still not arrived?"). Bag-of-n-grams
cannot express "a question *without* a grievance cue"; the marker does, so a model can learn that
asking is neutral while asking why something went wrong is not.

Changing anything here changes every feature: bump `FEATURIZER_VERSION` and retrain.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from zlib import crc32

import numpy as np

FEATURIZER_VERSION = 2

_URL = re.compile(r"https?://\S+|www\.\S+")
_MENTION = re.compile(r"@\w+")
_ELONGATED = re.compile(r"(.)\1{2,}")
_APOSTROPHE = re.compile(r"[’‘`´]")
_EMOTICON = r"(?<![\w])(?:[<>]?[:;=8x][\-o\*'^]?[\)\]\(\[dp/\\:\}\{@\|]+|[\)\]\(\[d/\\\}\{@\|]+[\-o\*'^]?[:;=8])(?![\w])|<3"
_EN_TOKEN = re.compile(_EMOTICON + r"|@user|\w+(?:'\w+)?|[!?]{2,}|[^\s\w]")
_HAN = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_ZH_TOKEN = re.compile(rf"\[[^\[\]\s]{{1,8}}\]|[{_HAN}]|[^\W{_HAN}]+|[!?！？]{{2,}}|[^\s\w]")
# Interrogative cues: question marks, sentence-final particles, "请问", A-not-A questions, wh-words.
# The look-ahead of first characters makes the search skip most positions fast (~1 µs per post).
_ZH_QUESTION = re.compile(
    r"(?=[？?吗呢么嘛请想问求咨有是能可会支要远好多几哪什怎如为凭咋])(?:[？?]|[吗呢么嘛][\s。！!～~…]*$|请问|想问|问一下|问问|求问|咨询|求推荐|有没有|是否|能不能|可不可以|会不会"
    r"|是不是|支不支持|要不要|远不远|好不好|多少|几点|几天|几号|多久|多长时间|哪里|哪儿|哪个|哪家|哪些"
    r"|什么时候|怎么|如何|为什么|为啥|凭什么|咋)"
)
# Grievance cues inside a question: why / how come / still not / again / who is responsible.
_ZH_GRIEVANCE = re.compile(
    r"为什么|为啥|凭什么|怎么回事|咋回事|怎么还|怎么又|怎么老是|到底|还没|还不|又没|难道|谁来负责|谁负责"
    r"|有没有人管|还让不让|这就是|什么服务|给个说法|还能买吗|合理吗|像话吗|钱呢"
)
# A question mark anywhere, or a sentence that starts like a question.
_EN_QUESTION_START = re.compile(
    r"(?:@\w+\s+)*(?:do|does|did|is|are|was|were|can|could|will|would|should|may|has|have|what|what's"
    r"|where|when|which|who|how|why|anyone|any)\b"
)
_EN_GRIEVANCE = re.compile(
    r"\b(?:why|still|yet|again|seriously|acceptable|nobody|no one|never|ever going|what happened"
    r"|where is my|when will|how (?:many|long) (?:times|more|do i have))\b|\?\?"
)
INTENT_MARKERS = ("<q>", "<qg>")
# With `intent_ngrams=False`, these question tokens of a flagged text are left out of its n-grams: the
# intent flags stand for them (the polarity data's "吗？" is rhetorical, and would otherwise make every
# question negative through the n-grams, whatever the calibration of the flags says).
_QUESTION_TOKENS = frozenset(["？", "?", "吗", "呢"])
_ZH_NEGATOR = re.compile(r"(?:[不没别未莫]|毫无)[^，,。！!？?；;\s]{0,2}$")


def _trie_pattern(words: Sequence[str]) -> str:
    """A regex matching any of `words`, longest first, shaped as a trie (one character test per step)."""
    trie: dict[str, dict] = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}

    def pattern(node: dict[str, dict]) -> str:
        branches = [re.escape(char) + pattern(child) for char, child in sorted(node.items()) if char]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if "" in node else body

    # No look-ahead: `re` derives a first-character set from the top-level branches and skips with it.
    return pattern(trie)


def intent_marker(lang: str, text: str) -> str | None:
    """`<q>`, `<qg>` or None for one text (see the module docstring)."""
    if lang == "zh":
        if not _ZH_QUESTION.search(text):
            return None
        return "<qg>" if _ZH_GRIEVANCE.search(text) else "<q>"
    lowered = text.lower().lstrip()
    if "?" not in lowered and not _EN_QUESTION_START.match(lowered):
        return None
    return "<qg>" if _EN_GRIEVANCE.search(lowered) else "<q>"


_NEGATORS = frozenset(
    [
        "not",
        "no",
        "never",
        "cannot",
        "nothing",
        "nobody",
        "none",
        "nor",
        "neither",
        "nowhere",
        "without",
        "dont",
        "doesnt",
        "didnt",
        "isnt",
        "arent",
        "wasnt",
        "werent",
        "cant",
        "couldnt",
        "wont",
        "wouldnt",
        "shouldnt",
        "aint",
        "hasnt",
        "havent",
        "hadnt",
        "mustnt",
        "neednt",
        "hardly",
        "barely",
    ]
)
_NEGATION_CUE = re.compile(r"\b(?:" + "|".join(sorted(_NEGATORS)) + r")\b|n't")
_SCOPE_END = frozenset([".", ",", ";", ":", "!", "?", "but"])
# VADER's damping of a negated word's valence.
NEGATED_VALENCE = -0.74

_MIX_1 = 0x9E3779B1
_MIX_2 = 0x85EBCA77
_MASK_32 = 0xFFFFFFFF
_VOCAB_MAX = 500_000
LEXICON_FEATURES = 10


def en_tokens(text: str) -> list[str]:
    """Lower-cased English tokens; words inside a negation scope get a `not_` prefix."""
    text = text.lower()
    if "http" in text or "www." in text:
        text = _URL.sub(" http ", text)
    if "@" in text:
        text = _MENTION.sub(" @user ", text)
    if "'" not in text and _APOSTROPHE.search(text):
        text = _APOSTROPHE.sub("'", text)
    tokens: list[str] = _EN_TOKEN.findall(text)
    if not _NEGATION_CUE.search(text):
        return tokens
    marked: list[str] = []
    negated = False
    for token in tokens:
        if token in _SCOPE_END or token[0] in "!?":
            negated = False
            marked.append(token)
        elif token in _NEGATORS or token.endswith("n't"):
            negated = True
            marked.append(token.replace("'", ""))
        else:
            # Emoji, emoticons and punctuation keep their meaning under negation.
            marked.append("not_" + token if negated and token[0].isalnum() else token)
    return marked


def zh_tokens(text: str) -> list[str]:
    """Han characters one by one, Latin words and numbers whole, Weibo emoticons `[哭]` whole."""
    text = text.lower()
    if "http" in text or "www." in text:
        text = _URL.sub(" http ", text)
    if "@" in text:
        text = _MENTION.sub(" @user ", text)
    return _ZH_TOKEN.findall(text)


def normal_token(token: str) -> str:
    """What a raw token is hashed as: elongations cut to two ("soooo" → "soo", "!!!!" → "!!")."""
    return _ELONGATED.sub(r"\1\1", token) if len(token) > 2 else token


@dataclass(frozen=True)
class FeatureBatch:
    """The (document, bucket) entries of a batch — one per n-gram occurrence — plus optional dense features."""

    count: int
    documents: np.ndarray  # int64, document index of each entry
    buckets: np.ndarray  # int64
    dense: np.ndarray | None  # (count, LEXICON_FEATURES) float64
    # (count, 2) float64: 1.0 in column 0 for a `<q>` text, in column 1 for a `<qg>` text (intent featurizers).
    intent: np.ndarray | None = None

    def index_lists(self) -> list[list[int]]:
        """Sorted distinct buckets per document (for inspection and tests)."""
        lists: list[set[int]] = [set() for _ in range(self.count)]
        for document, bucket in zip(self.documents.tolist(), self.buckets.tolist(), strict=True):
            lists[document].add(bucket)
        return [sorted(buckets) for buckets in lists]


class HashedFeaturizer:
    """Maps texts to hashed n-gram buckets (and English lexicon features when given a lexicon)."""

    def __init__(
        self,
        lang: str,
        bits: int,
        max_n: int,
        lexicon: Mapping[str, float] | None = None,
        intent: bool = False,
        intent_ngrams: bool = True,
    ) -> None:
        if lang not in ("en", "zh"):
            raise ValueError(f"lang must be 'en' or 'zh', got {lang!r}")
        if not 10 <= bits <= 24 or not 1 <= max_n <= 3:
            raise ValueError(f"bits must be in [10, 24] and max_n in [1, 3], got {bits}, {max_n}")
        self.lang = lang
        self.bits = bits
        self.max_n = max_n
        self.n_buckets = 1 << bits
        self.lexicon = dict(lexicon) if lexicon else None
        self.intent = intent
        # False: the intent marker only sets the two intent flags (dense inputs) and is not an n-gram
        # token, and a flagged text's "？", "?", "吗", "呢" are left out of its n-grams, so the main fit
        # cannot learn "question = negative" from rhetorical questions; the flags' weights say it.
        self.intent_ngrams = intent_ngrams
        # Chinese lexicon words are matched as substrings (Chinese is not split into words).
        self._zh_lexicon = (
            re.compile(_trie_pattern(sorted(self.lexicon, key=len, reverse=True)))
            if self.lexicon and lang == "zh"
            else None
        )
        self._tokenize = (
            self._with_intent if intent and intent_ngrams else en_tokens if lang == "en" else zh_tokens
        )
        self._reset_vocabulary()

    def describe(self) -> dict[str, object]:
        described: dict[str, object] = {
            "version": FEATURIZER_VERSION,
            "lang": self.lang,
            "bits": self.bits,
            "max_n": self.max_n,
        }
        if self.intent:
            described["intent"] = True
            if not self.intent_ngrams:
                described["intent_ngrams"] = False
        return described

    def _with_intent(self, text: str) -> list[str]:
        tokens = en_tokens(text) if self.lang == "en" else zh_tokens(text)
        marker = intent_marker(self.lang, text)
        if marker is not None:
            tokens.append(marker)
        return tokens

    def _reset_vocabulary(self) -> None:
        # Token → id; per id its CRC-32 and lexicon valence. Bounded: cleared when it grows past _VOCAB_MAX.
        self._vocabulary: dict[str, int] = {}
        self._hashes: list[int] = []
        self._valences: list[float] = []
        self._hash_array = np.zeros(0, dtype=np.uint64)
        self._valence_array = np.zeros(0, dtype=np.float64)

    def _add(self, token: str) -> int:
        normal = normal_token(token)
        self._vocabulary[token] = len(self._hashes)
        self._hashes.append(crc32(normal.encode("utf-8", "surrogatepass")))
        self._valences.append(self._valence(normal))
        return len(self._hashes) - 1

    def _valence(self, token: str) -> float:
        if self.lexicon is None or self._zh_lexicon is not None:
            return 0.0
        if token.startswith("not_"):
            return NEGATED_VALENCE * self.lexicon.get(token[4:], 0.0)
        return self.lexicon.get(token, 0.0)

    def tokens(self, text: str) -> list[str]:
        return self._with_intent(text) if self.intent else self._tokenize(text)

    def indices(self, text: str) -> list[int]:
        return self.batch([text]).index_lists()[0]

    def batch(self, texts: Sequence[str]) -> FeatureBatch:
        count = len(texts)
        if len(self._vocabulary) > _VOCAB_MAX:
            self._reset_vocabulary()
        vocabulary = self._vocabulary
        get = vocabulary.get
        tokenize = self._tokenize
        ids: list[int | None] = []
        lengths: list[int] = []
        intent = np.zeros((count, len(INTENT_MARKERS))) if self.intent else None
        separate_marker = self.intent and not self.intent_ngrams
        lang = self.lang
        for position, text in enumerate(texts):
            tokens = tokenize(text)
            if separate_marker:
                marker = intent_marker(lang, text)
                if marker is not None:
                    intent[position, INTENT_MARKERS.index(marker)] = 1.0  # type: ignore[index]
                    tokens = [t for t in tokens if t not in _QUESTION_TOKENS]
            elif intent is not None and tokens and tokens[-1] in INTENT_MARKERS:
                intent[position, INTENT_MARKERS.index(tokens[-1])] = 1.0
            found = list(map(get, tokens))
            if None in found:
                found = [vocabulary[t] if t in vocabulary else self._add(t) for t in tokens]
            ids.extend(found)
            lengths.append(len(found))
        if len(self._hash_array) != len(self._hashes):
            self._hash_array = np.asarray(self._hashes, dtype=np.uint64)
            self._valence_array = np.asarray(self._valences, dtype=np.float64)
        id_array = np.asarray(ids, dtype=np.int64)
        hashes = self._hash_array[id_array]
        length_array = np.asarray(lengths, dtype=np.int64)
        documents = np.repeat(np.arange(count, dtype=np.int64), length_array)
        mask = np.uint64(self.n_buckets - 1)
        parts_buckets = [hashes & mask]
        parts_documents = [documents]
        if self.max_n >= 2 and len(hashes) > 1:
            same = documents[:-1] == documents[1:]
            pairs = ((hashes[:-1] * np.uint64(_MIX_1)) ^ hashes[1:]) & np.uint64(_MASK_32)
            parts_buckets.append((((pairs * np.uint64(_MIX_2)) >> np.uint64(13)) & mask)[same])
            parts_documents.append(documents[:-1][same])
            if self.max_n >= 3 and len(hashes) > 2:
                same3 = same[:-1] & same[1:]
                triples = ((pairs[:-1] * np.uint64(_MIX_1)) ^ hashes[2:]) & np.uint64(_MASK_32)
                parts_buckets.append((((triples * np.uint64(_MIX_2)) >> np.uint64(11)) & mask)[same3])
                parts_documents.append(documents[:-2][same3])
        # No de-duplication: a repeated n-gram counts again (term frequency); see `LinearModel.logits`.
        all_documents = np.concatenate(parts_documents)
        all_buckets = np.concatenate(parts_buckets).astype(np.int64)
        dense = None
        if self._zh_lexicon is not None:
            dense = self._zh_lexicon_features(texts)
        elif self.lexicon is not None:
            dense = _lexicon_features(self._valence_array[id_array], documents, count)
        return FeatureBatch(
            count=count, documents=all_documents, buckets=all_buckets, dense=dense, intent=intent
        )

    def _zh_lexicon_features(self, texts: Sequence[str]) -> np.ndarray:
        """Lexicon features of Chinese texts: valences of the lexicon words found (negation-aware)."""
        assert self._zh_lexicon is not None and self.lexicon is not None
        lexicon = self.lexicon
        finditer = self._zh_lexicon.finditer
        negator = _ZH_NEGATOR.search
        valences: list[float] = []
        documents: list[int] = []
        for position, text in enumerate(texts):
            lowered = text.lower()
            for match in finditer(lowered):
                start = match.start()
                value = lexicon[match.group()]
                if start and negator(lowered, max(0, start - 3), start):
                    value *= NEGATED_VALENCE
                valences.append(value)
                documents.append(position)
        return _lexicon_features(
            np.asarray(valences, dtype=np.float64), np.asarray(documents, dtype=np.int64), len(texts)
        )


def _lexicon_features(valences: np.ndarray, documents: np.ndarray, count: int) -> np.ndarray:
    """Per document: positive/negative valence sums and counts, extremes, last valence, tanh(total), any-flags."""
    out = np.zeros((count, LEXICON_FEATURES), dtype=np.float64)
    if valences.size == 0:
        return out
    positive = valences > 0
    negative = valences < 0
    pos_sum = np.bincount(documents, weights=np.where(positive, valences, 0.0), minlength=count)
    neg_sum = np.bincount(documents, weights=np.where(negative, valences, 0.0), minlength=count)
    pos_count = np.bincount(documents, weights=positive.astype(np.float64), minlength=count)
    neg_count = np.bincount(documents, weights=negative.astype(np.float64), minlength=count)
    maximum = np.zeros(count)
    np.maximum.at(maximum, documents, np.where(positive, valences, 0.0))
    minimum = np.zeros(count)
    np.minimum.at(minimum, documents, np.where(negative, valences, 0.0))
    # The last word with a valence in each document.
    scored = np.flatnonzero(valences != 0)
    last = np.zeros(count)
    if scored.size:
        last[documents[scored]] = valences[scored]  # later entries overwrite earlier ones
    out[:, 0] = pos_sum / 4
    out[:, 1] = neg_sum / 4
    out[:, 2] = pos_count / 2
    out[:, 3] = neg_count / 2
    out[:, 4] = maximum / 4
    out[:, 5] = minimum / 4
    out[:, 6] = last / 4
    out[:, 7] = np.tanh((pos_sum + neg_sum) / 4)
    out[:, 8] = pos_count > 0
    out[:, 9] = neg_count > 0
    return out

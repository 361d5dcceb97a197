"""Which configured brands a text names: aliases in any language, handles, hashtags, cashtags, exclusions.

Rules (all case-insensitive):
- an alias in Latin script matches as a whole word (`Apple` matches "apple's", "#apple", not "pineapple");
- an alias containing CJK characters matches as a substring (`华为` matches "华为手机");
- `@handle`, `#hashtag` and `$CASHTAG` aliases match only with that sigil (`#hashtag#`, Weibo's form, too);
- the brand name itself is always an alias;
- an occurrence inside a match of one of the brand's `exclude` terms ("apple pie") does not count.
Posts that already carry `brands` keep them: that decision is the caller's, this only reads text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from crisiswatch.detectors.events import BrandProfile

_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]")
# Characters that continue a Latin word: a Latin alias must not touch them on either side.
_WORD = r"0-9A-Za-z_\u00c0-\u024f"


def alias_pattern(alias: str) -> str | None:
    """The regex source for one alias or exclusion term, or None when it is blank."""
    alias = alias.strip()
    if not alias:
        return None
    sigil = alias[0] if alias[0] in "@#$" and len(alias) > 1 else ""
    body = re.escape(alias).replace(r"\ ", r"\s+")
    has_cjk = _CJK.search(alias) is not None
    if sigil:
        # The sigil must start a token, and the name must end where the handle/tag ends.
        left = rf"(?<![{_WORD}@#$])"
        right = "" if has_cjk else rf"(?![{_WORD}])"
        return f"{left}{body}{right}"
    if has_cjk:
        return body
    left = "" if not _word_char(alias[0]) else rf"(?<![{_WORD}])"
    right = "" if not _word_char(alias[-1]) else rf"(?![{_WORD}])"
    return f"{left}{body}{right}"


# The only characters that match an ASCII letter under re.IGNORECASE without `str.lower()` turning them into
# it: "İ" (lowercased to two characters), "ı" and "ſ" (tests/text/test_text_brands.py checks every code point).
_FOLD_TRAPS = re.compile("[\u0130\u0131\u017f]")


def _required_literal(alias: str) -> str | None:
    """A lowercased piece of `alias` that every text it matches contains, once lowercased (texts without
    `_FOLD_TRAPS`): its longest whitespace-free run. Exact for aliases of ASCII and caseless CJK characters
    only (None for others, e.g. "Café": other characters can match under re.IGNORECASE without being
    equal once lowercased)."""
    if not all(char.isascii() or _CJK.match(char) for char in alias):
        return None
    return max(alias.strip().split(), key=len).lower()


def _word_char(char: str) -> bool:
    return re.match(rf"[{_WORD}]", char) is not None


class BrandMatcher:
    """Finds configured brands in text; `match` returns brand names in the order the text first names them
    (the first is the one a complaint is taken to be about: `paging.mentioned_brand_max_severity`)."""

    def __init__(self, brands: Sequence[BrandProfile]) -> None:
        self._brands = tuple(brands)
        self._names = tuple(brand.name for brand in self._brands)
        self._aliases: list[re.Pattern[str] | None] = []
        self._excludes: list[re.Pattern[str] | None] = []
        sources: list[str] = []
        owners: list[int] = []
        for position, brand in enumerate(self._brands):
            patterns = [p for p in (alias_pattern(a) for a in (brand.name, *brand.aliases)) if p]
            self._aliases.append(re.compile("|".join(patterns), re.IGNORECASE) if patterns else None)
            excludes = [p for p in (alias_pattern(e) for e in brand.exclude) if p]
            self._excludes.append(re.compile("|".join(excludes), re.IGNORECASE) if excludes else None)
            for pattern in patterns:
                sources.append(pattern)
                owners.append(position)
        # One pass over the text decides which brands might match; only those are checked precisely.
        self._any = re.compile("|".join(f"(?:{s})" for s in sources), re.IGNORECASE) if sources else None
        # Cheaper still, where it is exact: per brand, one literal (lowercased) that every match of each of
        # its aliases contains (`_required_literal`); a brand none of whose literals is in the lowercased
        # text cannot match. None for a brand with an alias the test cannot vouch for (checked precisely).
        self._literals: list[tuple[str, ...] | None] = []
        for brand in self._brands:
            literals = [_required_literal(a) for a in (brand.name, *brand.aliases) if a.strip()]
            usable = [x for x in literals if x is not None]
            self._literals.append(tuple(usable) if len(usable) == len(literals) else None)

    @property
    def brands(self) -> tuple[BrandProfile, ...]:
        return self._brands

    def match(self, text: str) -> tuple[str, ...]:
        if self._any is None or not isinstance(text, str) or not text:
            return ()
        lowered = None if _FOLD_TRAPS.search(text) else text.lower()
        if lowered is None and self._any.search(text) is None:
            return ()
        found: list[tuple[int, int]] = []  # (first mention, configuration position)
        for position, aliases in enumerate(self._aliases):
            if aliases is None:
                continue
            literals = self._literals[position]
            if lowered is not None and literals is not None and not any(x in lowered for x in literals):
                continue
            spans = [m.span() for m in aliases.finditer(text)]
            if not spans:
                continue
            exclude = self._excludes[position]
            if exclude is not None:
                vetoed = [m.span() for m in exclude.finditer(text)]
                spans = [s for s in spans if not any(v[0] <= s[0] and s[1] <= v[1] for v in vetoed)]
            if spans:
                found.append((min(start for start, _ in spans), position))
        return tuple(self._names[position] for _, position in sorted(found))

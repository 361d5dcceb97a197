"""The poster's own words: what is left once forwarded chains, retweet prefixes and mentions go.

- Weibo: `我的话//@甲: 甲的话//@乙: 原文` → `我的话`; a bare `转发微博` (or `Repost`) is no own text;
  `回复@甲: 内容` keeps `内容`.
- Twitter: `RT @user: …` and everything after it is the forwarded post; `my take RT @user: …` → `my take`.
- Bare `@mentions` anywhere are addressing, not content.

Only own text is scored and counted in negative shares; a post with none gets no sentiment.
"""

from __future__ import annotations

import re
import unicodedata

# The start of a forwarded chain: Weibo `//@name:` (also `// @name`), Twitter `RT @name` / `RT:`.
_CHAIN = re.compile(r"//\s*@|(?<![\w@])RT\s*@|(?<![\w@])RT:", re.IGNORECASE)
# Weibo reply prefix: the comment's own text follows it.
_REPLY = re.compile(r"^\s*(?:回复|回覆|reply)\s*@[^\s:：]{1,40}\s*[:：]\s*", re.IGNORECASE)
# A mention starts a token (not an e-mail address) and runs until whitespace or punctuation; Weibo names
# may be CJK.
_MENTION = re.compile(r"(?<![\w.])@[^\s@:：,，。.!！?？;；、/()（）\[\]【】'\"“”]{1,40}[:：]?")
_FORWARD_ONLY = re.compile(
    r"^(?:转发微博|轉發微博|转发|轉發|repost|retweet|rt|分享|share|轉)[\s.。!！~～]*$", re.IGNORECASE
)
_SPACE = re.compile(r"\s+")


def own_text(text: str) -> str:
    """The own words of a (safe, see `normalize.safe_text`) post text; "" when there are none."""
    if "@" in text or "rt:" in text or "RT:" in text or "Rt:" in text:
        text = _REPLY.sub("", text, count=1)
        chain = _CHAIN.search(text)
        if chain is not None:
            text = text[: chain.start()]
        text = _SPACE.sub(" ", _MENTION.sub(" ", text))
    text = text.strip()
    if not text or (len(text) <= 12 and _FORWARD_ONLY.match(text)) or not has_content(text):
        return ""
    return text


def has_content(text: str) -> bool:
    """True when the text has a letter, digit or symbol (emoji): punctuation and spaces alone are not words."""
    for char in text:
        category = unicodedata.category(char)
        if category[0] in "LNS" and char != "\ufffd":
            return True
    return False

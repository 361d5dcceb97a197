"""Complaint categories by transparent keyword rules, so an alert can carry the matching playbook.

Every category lists English and Chinese keywords; both lists apply to every text (posts mix scripts).
English keywords are whole words, case-insensitive, `*` at the end matches any word ending
(`refund*` → refund, refunds, refunded); Chinese keywords are substrings. The category with the most
distinct keywords found wins; ties go to the earlier category in the configured order (the shipped order
puts safety first because it is the most urgent playbook). No keyword found → no category.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class CategoryRule:
    name: str
    en: tuple[str, ...] = ()
    zh: tuple[str, ...] = ()


DEFAULT_CATEGORIES: tuple[CategoryRule, ...] = (
    CategoryRule(
        "safety",
        en=(
            "fire",
            "caught fire",
            "burn*",
            "explod*",
            "explosion",
            "smoke",
            "smoking",
            "injur*",
            "hurt",
            "unsafe",
            "danger*",
            "hazard*",
            "recall*",
            "poison*",
            "food poisoning",
            "allergic",
            "allergy",
            "sick",
            "vomit*",
            "hospital*",
            "toxic",
            "electrocut*",
            "shock",
            "overheat*",
            "choking",
            "mold",
            "mould",
            "bug in",
            "cockroach*",
            "insect*",
            "glass in",
        ),
        zh=(
            "起火",
            "着火",
            "爆炸",
            "自燃",
            "冒烟",
            "烫伤",
            "烧伤",
            "受伤",
            "危险",
            "安全隐患",
            "召回",
            "中毒",
            "食物中毒",
            "过敏",
            "拉肚子",
            "腹泻",
            "呕吐",
            "住院",
            "医院",
            "有毒",
            "异物",
            "虫子",
            "蟑螂",
            "发霉",
            "漏电",
            "触电",
            "爆炸了",
            "刹车失灵",
        ),
    ),
    CategoryRule(
        "privacy",
        en=(
            "privacy",
            "data breach",
            "breach*",
            "data leak*",
            "leaked my",
            "hacked",
            "personal data",
            "personal information",
            "my data",
            "spam*",
            "scam*",
            "phishing",
            "stolen account",
            "identity theft",
            "tracking me",
            "sold my data",
        ),
        zh=(
            "隐私",
            "泄露",
            "泄漏",
            "个人信息",
            "数据泄露",
            "骚扰电话",
            "骚扰短信",
            "被盗",
            "盗号",
            "诈骗",
            "盗刷",
            "信息安全",
            "窃取",
        ),
    ),
    CategoryRule(
        "billing",
        en=(
            "charge*",
            "overcharg*",
            "double charged",
            "refund*",
            "bill",
            "billed",
            "billing",
            "bills",
            "invoice*",
            "payment*",
            "fee",
            "fees",
            "price*",
            "pricing",
            "subscription*",
            "money back",
            "credit card",
            "debit*",
            "cancel my subscription",
            "auto-renew*",
            "paid",
            "pay",
            "paying",
            "overpriced",
            "rip off",
            "ripoff",
            "scammed",
        ),
        zh=(
            "退款",
            "扣费",
            "扣款",
            "扣钱",
            "收费",
            "乱收费",
            "多收",
            "账单",
            "发票",
            "价格",
            "涨价",
            "付款",
            "支付",
            "退钱",
            "自动续费",
            "续费",
            "会员费",
            "押金",
            "退费",
            "差价",
            "坑钱",
            "贵",
            "不退",
        ),
    ),
    CategoryRule(
        "delivery",
        en=(
            "deliver*",
            "shipping",
            "shipped",
            "shipment*",
            "ship",
            "package*",
            "parcel*",
            "courier*",
            "tracking",
            "tracking number",
            "arrive*",
            "dispatch*",
            "postman",
            "driver",
            "late",
            "delay*",
            "never came",
            "still waiting",
            "lost in transit",
            "order hasn't",
            "missing item*",
            "wrong order",
            "wrong item*",
        ),
        zh=(
            "快递",
            "物流",
            "配送",
            "送达",
            "送货",
            "发货",
            "外卖",
            "骑手",
            "派送",
            "包裹",
            "迟到",
            "送餐",
            "超时",
            "丢件",
            "签收",
            "没送到",
            "还没到",
            "送错",
            "漏送",
            "少送",
            "延误",
            "晚点",
            "等了",
        ),
    ),
    CategoryRule(
        "product_quality",
        en=(
            "broken",
            "broke",
            "breaks",
            "defect*",
            "faulty",
            "cracked",
            "crack",
            "stopped working",
            "doesn't work",
            "does not work",
            "not working",
            "quality",
            "malfunction*",
            "battery",
            "screen",
            "leak",
            "leaks",
            "leaking",
            "fell apart",
            "damaged",
            "stale",
            "expired",
            "tastes",
            "cold food",
            "bug",
            "bugs",
            "buggy",
            "crash*",
            "glitch*",
            "freez*",
            "fake",
            "counterfeit",
            "ripped",
            "torn",
            "smells",
            "rotten",
            "disgusting",
        ),
        zh=(
            "质量",
            "坏了",
            "损坏",
            "破损",
            "故障",
            "瑕疵",
            "劣质",
            "漏水",
            "不能用",
            "用不了",
            "死机",
            "发热",
            "发烫",
            "屏幕",
            "电池",
            "变质",
            "难吃",
            "不新鲜",
            "假货",
            "闪退",
            "卡顿",
            "掉漆",
            "开裂",
            "异味",
            "馊",
            "凉了",
            "不好吃",
            "做工",
            "残次",
            "次品",
            "坏的",
            "碎了",
        ),
    ),
    CategoryRule(
        "service",
        en=(
            "customer service",
            "customer care",
            "support",
            "agent*",
            "rude",
            "staff",
            "on hold",
            "hold for",
            "no response",
            "no reply",
            "ignored",
            "ignoring",
            "manager",
            "representative*",
            "call center",
            "helpline",
            "hotline",
            "unhelpful",
            "useless",
            "waiting for a reply",
            "nobody answers",
            "hung up",
            "attitude",
            "employee*",
            "cashier",
            "waiter",
            "waitress",
        ),
        zh=(
            "客服",
            "服务",
            "态度",
            "投诉",
            "售后",
            "不理",
            "没人回",
            "没人理",
            "敷衍",
            "工作人员",
            "店员",
            "服务员",
            "打不通",
            "推诿",
            "踢皮球",
            "不处理",
            "不回复",
            "骂人",
            "甩锅",
            "店家",
            "商家",
        ),
    ),
)


_WORDS = re.compile(r"[0-9a-z_\u00c0-\u024f']+")
_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "`": "'"})


class CategoryMatcher:
    """Compiled keyword rules; `category(text)` is the best category name or None.

    Matching is dictionary work, not one big regex (a 300-way alternation costs milliseconds per post):
    English texts are split into words once, single words are looked up, `word*` prefixes checked with
    `str.startswith`, phrases found in the space-joined words; Chinese keywords are substring tests.
    """

    def __init__(self, rules: Sequence[CategoryRule]) -> None:
        self.rules = tuple(rules)
        self._names = [rule.name for rule in self.rules]
        self._exact: dict[str, set[int]] = {}
        self._prefix: dict[str, set[int]] = {}
        self._phrases: dict[str, set[int]] = {}  # " w1 w2 " -> owners
        self._phrase_prefixes: dict[str, set[int]] = {}  # " w1 w2" (last word is a prefix) -> owners
        self._substrings: dict[str, set[int]] = {}
        for position, rule in enumerate(self.rules):
            for keyword in rule.zh:
                key = keyword.lower().translate(_APOSTROPHES).strip()
                if key:
                    self._substrings.setdefault(key, set()).add(position)
            for keyword in rule.en:
                raw = keyword.lower().translate(_APOSTROPHES).strip()
                words = _WORDS.findall(raw.rstrip("*"))
                if not words:
                    continue
                wildcard = raw.endswith("*")
                if len(words) == 1:
                    table = self._prefix if wildcard else self._exact
                    table.setdefault(words[0], set()).add(position)
                elif wildcard:
                    self._phrase_prefixes.setdefault(" " + " ".join(words), set()).add(position)
                else:
                    self._phrases.setdefault(" " + " ".join(words) + " ", set()).add(position)
        # Candidates by first word / first three letters, so a post only tests keywords that can match.
        self._prefix_by_head: dict[str, list[str]] = {}
        for prefix in self._prefix:
            self._prefix_by_head.setdefault(prefix[:3], []).append(prefix)
        self._substring_heads: dict[str, list[str]] = {}
        for key in self._substrings:
            self._substring_heads.setdefault(key[0], []).append(key)
        self._phrases_by_head: dict[str, list[str]] = {}
        for phrase in (*self._phrases, *self._phrase_prefixes):
            self._phrases_by_head.setdefault(phrase.split()[0], []).append(phrase)

    def category(self, text: str) -> str | None:
        if not self.rules or not text:
            return None
        low = text.lower()
        if not low.isascii():
            low = low.translate(_APOSTROPHES)
        found: dict[int, set[str]] = {}

        def hit(key: str, owners: set[int]) -> None:
            for position in owners:
                found.setdefault(position, set()).add(key)

        if not low.isascii():
            # Only keywords whose first character occurs in the text can match.
            for head in self._substring_heads.keys() & set(low):
                for key in self._substring_heads[head]:
                    if key in low:
                        hit(key, self._substrings[key])
        words = _WORDS.findall(low)
        joined = ""
        for word in set(words):
            exact_owners = self._exact.get(word)
            if exact_owners:
                hit(word, exact_owners)
            for prefix in self._prefix_by_head.get(word[:3], ()):
                if word.startswith(prefix):
                    hit(prefix + "*", self._prefix[prefix])
            for phrase in self._phrases_by_head.get(word, ()):
                joined = joined or " " + " ".join(words) + " "
                if phrase in joined:
                    phrase_owners = self._phrases.get(phrase)
                    hit(phrase, phrase_owners if phrase_owners is not None else self._phrase_prefixes[phrase])
        if not found:
            return None
        best = min(found, key=lambda position: (-len(found[position]), position))
        return self._names[best]

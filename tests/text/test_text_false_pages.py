"""Regressions for the text errors that made false pages in replay (bench/results/replay.md, issue 4).

Information questions are not negative, praise is not a complaint (also when it is phrased with negated
complaint words or current slang), a shrug is not a complaint; real complaints still are. The replay
strings come first in each list, then variants written for this test. None of these sentences is in the
training templates (`detectors/text/own_training.py`; a test below checks): the shipped models must get
them from their features (Chinese lexicon with negation, intent flags and gate), not from memorising them.
"""

from __future__ import annotations

import pytest

from crisiswatch.detectors.text import TextAnalyzer
from crisiswatch.detectors.text.features import HashedFeaturizer
from crisiswatch.detectors.text.own_training import rows as own_rows

INFORMATION_QUESTIONS = [
    "星辰手机在广州有网点吗？",
    "#KuaiDa Express#在北京有网点吗？",
    "星辰手机在杭州有网点吗？",
    "青柠外卖在深圳有自提点吗？",
    "请问蓝鲸银行在成都有营业厅吗？",
]
PRAISE = [
    ("青柠的外卖订单yyds", "zh"),
    ("一直很喜欢@快达快递官方，这次也没失望", "zh"),
    ("never lets me down. Great parcel again.", "en"),
    ("星辰手机的新耳机yyds，音质太好了", "zh"),
    pytest.param(
        "又一次没让我失望，快达快递真靠谱",
        "zh",
        marks=pytest.mark.xfail(
            strict=True,
            reason="2026.11.8: P(negative) 0.18 -> 0.23, just inside the neutral band [0.2, 0.65], so labelled "
            "neutral (not negative for the detectors, not a complaint); see bench/results/text.md",
        ),
    ),
    ("Acme never disappoints, another great delivery.", "en"),
]
# Known gap (2026.11.6, still in 2026.11.7): "prices went up again" is what the complaint data calls a
# complaint (price rises are billing complaints there, and "again" is a strong cue), so our shrug rows do
# not outweigh it: P(complaint) 0.81 in 2026.11.6, 0.90 in 2026.11.7 (whose churn rows make "again" with a
# change for the worse a stronger complaint cue).
SHRUG_STILL_COMPLAINT = pytest.mark.xfail(
    strict=True, reason="price rise + 'again' still reads as a complaint; see bench/results/text.md"
)
SHRUGS = [
    pytest.param("prices went up again. Meh.", marks=SHRUG_STILL_COMPLAINT),
    pytest.param("Prices went up again. Meh", marks=SHRUG_STILL_COMPLAINT),
    "Fares went up a little. Meh.",
    "Acme changed the packaging. It is fine, I guess.",
]
COMPLAINTS = [
    ("快递三天没到，客服不理人", "zh"),
    ("星辰手机用了一周就黑屏，售后推来推去，太失望了", "zh"),
    ("青柠外卖又超时一个小时，饭都凉了，差评", "zh"),
    ("为什么我的快递三天了还没到？", "zh"),
    ("@NorthwindAir lost my bag and nobody answers", "en"),
    ("Prices went up again and the app keeps crashing. Unacceptable.", "en"),
    ("Why has my refund still not arrived??", "en"),
]

# Bundle 2026.11.7. Short reactions carry no judgement: the detectors must not count them as negative
# (P(negative) >= 0.5 or P(complaint) >= 0.5 is negative for them). The replay's strings first, then
# variants written for this test (none is a training row). Known gaps are strict xfails: a one- or
# two-word reaction is decided by a handful of character n-grams, and some of them (结果, 这样) are
# negative in the Weibo data.
REACTION_GAP = pytest.mark.xfail(
    strict=True, reason="2026.11.7 still reads it as negative (P 0.58-0.61); see bench/results/text.md"
)
REACTIONS = [
    ("了解了", "zh"),
    ("mark", "zh"),
    ("看看", "zh"),
    ("已参与！", "zh"),
    ("冲冲冲", "zh"),
    ("原来如此", "zh"),
    ("蹲", "zh"),
    ("嗯嗯", "zh"),
    ("来了来了", "zh"),
    ("收到", "zh"),
    ("了解了解", "zh"),
    ("收到，谢谢", "zh"),
    ("马克", "zh"),
    pytest.param("蹲一下结果", "zh", marks=REACTION_GAP),
    ("已参与，求好运", "zh"),
    pytest.param("原来是这样", "zh", marks=REACTION_GAP),
    ("来啦来啦", "zh"),
    ("前排围观", "zh"),
    ("学习了", "zh"),
    ("哈哈哈哈哈哈", "zh"),
    ("@小红 快看这个", "zh"),
    ("等一个后续", "zh"),
    ("mark一下", "zh"),
    ("路过路过", "zh"),
    ("好的好的", "zh"),
    ("noted, thanks!", "en"),
    ("following this thread", "en"),
    ("any updates on this one?", "en"),
    ("entered, fingers crossed 🤞", "en"),
    ("@dan_p look at this one", "en"),
    ("hmm ok", "en"),
    ("interesting thread", "en"),
    ("same here", "en"),
    ("bookmarking for later", "en"),
    ("good luck to everyone entering!", "en"),
    ("lol same", "en"),
    ("got it, thanks", "en"),
]
# Repeated failure and leaving ("again", "third time", "switching to X for good", "never showed up") are
# complaints; before 2026.11.7 they read as neither negative nor complaints (P 0.1-0.25).
CHURN_COMPLAINTS = [
    "@SkyLarkAir lost my flight AGAIN. Switching to #NorthwindAir for good.",
    "@northwindair lost my suitcase AGAIN. Switching to voltedge for good.",
    "ByteBrew lost my flat white AGAIN. Switching to Northwind Air for good",
    "Waited 11 hours at home for ByteBrew and they never showed up. Zero notice",
    "the suitcase is half the size it used to be and costs more",
    "Found a piece of metal in my suitcase from SkyLark Airlines. Is anyone else...",
    "@BlueJet lost my luggage AGAIN. Moving to Skyline Air for good.",
    "Quickship lost my parcel for the third time. I'm switching to Parcelo.",
    "FreshCart never turned up again, no notice whatsoever. Done with them.",
    pytest.param(
        "The Roastery muffin is half the size it was last year and costs more",
        marks=pytest.mark.xfail(strict=True, reason="2026.11.7: complaint 0.45 (the suitcase variant: 0.58)"),
    ),
    "Found glass in my FreshCart salad. Is anyone else getting this?",
    "Third time this month Volt Mobile cut my internet. Cancelling my contract.",
]


# Bundle 2026.11.8. News about a brand and a brand's own giveaway are made to be forwarded; read as negative
# (a Weibo 【headline】) or as a complaint (a prize named like an order) they paged as crises. The replay's
# strings first, then variants written for this test (none is a training row or a generator template).
NEWS = [
    "【星辰将在上海新开5家门店】",
    "【星辰宣布任命新CEO】下月起生效",
    "【快达快递发布季度财报】营收同比增长12%",
    "【蓝鲸银行推出新版手机银行】",
    "【青柠外卖与星辰手机联名活动下周上线】",
    "快讯：快达快递宣布在西安建设新的分拣中心",
    "#星辰手机# 星辰手机发布秋季新品，起售价2999元",
    "据报道，云鹤航空将于明年开通上海至悉尼航线。",
    "【书香书店年度阅读报告发布】",
]
GIVEAWAYS = [
    "福利来了！关注#青柠咖啡#并转发，抽800份外卖订单！",
    "青柠咖啡周年庆！转发本条微博并关注，抽5位送全年外卖订单！",
    "转发抽奖：关注青柠咖啡并转发，周日抽10位送咖啡月卡",
    "星辰手机新品上市！转评赞抽3位送新款耳机🎉",
    "#快达快递十周年# 转发本条，抽20位送免运费券",
    "会员日福利｜关注@蓝鲸银行 转发抽5位送100元话费",
]
# ... while bad news in the same format stays negative and a complaint.
BAD_NEWS = ["【突发】青柠外卖门店被曝使用过期食材", "【曝光】星辰手机电池问题频发，多地用户投诉"]


@pytest.mark.parametrize("text", NEWS)
def test_news_is_not_negative_for_the_detectors(analyzer: TextAnalyzer, text: str) -> None:
    result = analyzer.analyze(text, "zh")
    assert result.negative_probability is not None and result.negative_probability < 0.5, result
    assert result.complaint_probability is not None and result.complaint_probability < 0.5, result


@pytest.mark.parametrize("text", GIVEAWAYS)
def test_a_giveaway_is_positive_and_not_a_complaint(analyzer: TextAnalyzer, text: str) -> None:
    result = analyzer.analyze(text, "zh")
    assert result.sentiment_label == "positive", result
    assert result.complaint_probability is not None and result.complaint_probability < 0.5, result


@pytest.mark.parametrize("text", BAD_NEWS)
def test_bad_news_stays_a_negative_complaint(analyzer: TextAnalyzer, text: str) -> None:
    result = analyzer.analyze(text, "zh")
    assert result.sentiment_label == "negative", result
    assert result.complaint_probability is not None and result.complaint_probability >= 0.5, result


@pytest.mark.parametrize("text", INFORMATION_QUESTIONS)
def test_information_questions_are_not_negative_complaints(analyzer: TextAnalyzer, text: str) -> None:
    result = analyzer.analyze(text, "zh")
    assert result.sentiment_label != "negative", result
    assert result.complaint_probability is not None and result.complaint_probability < 0.5, result


@pytest.mark.parametrize(("text", "lang"), PRAISE)
def test_praise_is_not_a_complaint(analyzer: TextAnalyzer, text: str, lang: str) -> None:
    result = analyzer.analyze(text, lang)
    assert result.sentiment_label == "positive", result
    assert result.complaint_probability is not None and result.complaint_probability < 0.5, result


@pytest.mark.parametrize("text", SHRUGS)
def test_a_shrug_is_not_a_negative_complaint(analyzer: TextAnalyzer, text: str) -> None:
    result = analyzer.analyze(text, "en")
    assert result.complaint_probability is not None and result.complaint_probability < 0.5, result


@pytest.mark.parametrize(("text", "lang"), COMPLAINTS)
def test_complaints_stay_negative_complaints(analyzer: TextAnalyzer, text: str, lang: str) -> None:
    result = analyzer.analyze(text, lang)
    assert result.sentiment_label == "negative", result
    assert result.complaint_probability is not None and result.complaint_probability >= 0.5, result


@pytest.mark.parametrize(("text", "lang"), REACTIONS)
def test_reactions_are_not_negative_for_the_detectors(analyzer: TextAnalyzer, text: str, lang: str) -> None:
    result = analyzer.analyze(text, lang)
    assert result.negative_probability is not None and result.negative_probability < 0.5, result
    assert result.sentiment_label != "negative", result
    assert result.complaint_probability is not None and result.complaint_probability < 0.5, result


@pytest.mark.parametrize("text", CHURN_COMPLAINTS)
def test_repeated_failure_and_leaving_are_complaints(analyzer: TextAnalyzer, text: str) -> None:
    result = analyzer.analyze(text, "en")
    assert result.complaint_probability is not None and result.complaint_probability >= 0.5, result


def test_regression_sentences_are_not_training_rows() -> None:
    shrugs = [s if isinstance(s, str) else s.values[0] for s in SHRUGS]
    churn = [c if isinstance(c, str) else c.values[0] for c in CHURN_COMPLAINTS]
    reactions = [r[0] if isinstance(r, tuple) else r.values[0] for r in REACTIONS]
    praise = [p[0] if isinstance(p, tuple) else p.values[0] for p in PRAISE]
    texts = INFORMATION_QUESTIONS + shrugs + churn + reactions + praise + [t for t, _ in COMPLAINTS]
    texts += NEWS + GIVEAWAYS + BAD_NEWS
    trained = {row[0] for lang in ("en", "zh") for row in own_rows(lang)}
    assert not set(texts) & trained


def test_chinese_lexicon_negation_flips_and_slang_counts() -> None:
    featurizer = HashedFeaturizer("zh", 12, 2, {"失望": -2.0, "yyds": 3.0, "满意": 2.0}, intent=True)
    dense = featurizer.batch(
        ["这次也没失望", "太失望了", "外卖yyds", "不太满意", "非常满意", "失望，不过还行"]
    ).dense
    assert dense is not None
    positive_sum, negative_sum = dense[:, 0], dense[:, 1]
    assert positive_sum[0] > 0 and negative_sum[0] == 0  # 没 + 失望: damped and flipped
    assert negative_sum[1] < 0 and positive_sum[1] == 0
    assert positive_sum[2] > 0  # Latin slang inside Chinese text
    assert negative_sum[3] < 0  # 不太 + 满意
    assert positive_sum[4] > 0  # 非常 is not a negator
    assert negative_sum[5] < 0  # the negator after the word (and across a comma) does not count


def test_question_tokens_leave_the_ngrams_only_with_separate_intent_flags() -> None:
    separate = HashedFeaturizer("zh", 12, 2, intent=True, intent_ngrams=False)
    batch = separate.batch(["有网点吗？", "有网点"])
    assert batch.intent is not None and batch.intent[0].tolist() == [1.0, 0.0]
    assert batch.index_lists()[0] == batch.index_lists()[1]
    inline = HashedFeaturizer("zh", 12, 2, intent=True)
    assert inline.batch(["有网点吗？"]).index_lists()[0] != inline.batch(["有网点"]).index_lists()[0]

"""Neutral questions and informational posts are not negative complaints; complaint questions still are.

`data/questions_labelled.tsv` is our own hand-written set (182 posts, en + zh): `neutral` rows (questions
asking for information, plain informational posts) and `complaint` rows (questions that complain). It was
written before, and independently of, the training templates in `detectors/text/own_training.py`.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from conftest import LABELLED_ZH

from crisiswatch.detectors.text import TextAnalyzer
from crisiswatch.detectors.text.features import HashedFeaturizer, intent_marker
from crisiswatch.detectors.text.own_training import rows as own_rows
from crisiswatch.detectors.text.train import ModelSpec, Source, fit, soften

QUESTIONS = Path(__file__).resolve().parent / "data" / "questions_labelled.tsv"
TRAINING = Path(__file__).resolve().parents[2] / "detectors" / "text" / "training"


def _questions() -> list[list[str]]:
    with open(QUESTIONS, encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle, delimiter="\t"))
    assert rows[0] == ["text", "lang", "label"]
    return rows[1:]


@pytest.mark.parametrize(
    "text",
    [
        "快达快递在成都有网点吗？",
        "请问你们周末营业吗？",
        "这款手机有没有黑色的？",
        "Does Acme ship to Canada?",
        "What time does the store open on Sunday?",
    ],
)
def test_neutral_questions_are_not_complaints(analyzer: TextAnalyzer, text: str) -> None:
    result = analyzer.analyze(text)
    assert result.complaint_probability is not None and result.complaint_probability < 0.5, result


@pytest.mark.parametrize(
    "text",
    ["快达快递在成都有网点吗？", "Does Acme ship to Canada?", "What time does the store open on Sunday?"],
)
def test_neutral_questions_are_not_negative(analyzer: TextAnalyzer, text: str) -> None:
    # Known gap: many Chinese information questions still score just above the neutral band
    # ("请问你们周末营业吗？" P(negative) ~0.73); see bench/results/text.md.
    assert analyzer.analyze(text).sentiment_label != "negative"


@pytest.mark.parametrize(
    "text",
    [
        "为什么我的快递三天了还没到？",
        "凭什么乱扣我话费？",
        "Why has my refund still not arrived??",
        "Why did you charge my card twice for one order?",
    ],
)
def test_complaint_questions_stay_complaints(analyzer: TextAnalyzer, text: str) -> None:
    result = analyzer.analyze(text)
    assert result.sentiment_label == "negative", result
    assert result.complaint_probability is not None and result.complaint_probability >= 0.5, result


# Floors under the shipped figures (bench/results/text.md), which 2026.11.4 did not meet for Chinese:
# it scored 79% of the Chinese neutral posts negative, 27% complaints and 27% both.
FLOORS = {
    # lang: (max share of neutral posts scored negative, max share scored complaint,
    #        max share scored both, min share of complaint questions scored complaint)
    "zh": (0.60, 0.15, 0.15, 0.90),
    "en": (0.05, 0.10, 0.02, 0.85),
}


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_questions_set(analyzer: TextAnalyzer, lang: str) -> None:
    rows = [r for r in _questions() if r[1] == lang]
    assert len({r[0] for r in rows}) == len(rows)
    analyses = analyzer.analyze_many([r[0] for r in rows], [lang] * len(rows))
    neutral = [a for r, a in zip(rows, analyses, strict=True) if r[2] == "neutral"]
    complaints = [a for r, a in zip(rows, analyses, strict=True) if r[2] == "complaint"]
    assert len(neutral) >= 50 and len(complaints) >= 30

    def share(values: list[bool]) -> float:
        return sum(values) / len(values)

    negative = share([a.sentiment_label == "negative" for a in neutral])
    complaint = share([(a.complaint_probability or 0.0) >= 0.5 for a in neutral])
    both = share(
        [a.sentiment_label == "negative" and (a.complaint_probability or 0.0) >= 0.5 for a in neutral]
    )
    caught = share([(a.complaint_probability or 0.0) >= 0.5 for a in complaints])
    max_negative, max_complaint, max_both, min_caught = FLOORS[lang]
    assert negative <= max_negative, f"{lang}: {negative:.2f} of neutral questions/posts scored negative"
    assert complaint <= max_complaint, f"{lang}: {complaint:.2f} of neutral questions/posts scored complaints"
    assert both <= max_both, f"{lang}: {both:.2f} of neutral questions/posts scored negative complaints"
    assert caught >= min_caught, f"{lang}: only {caught:.2f} of complaint questions are complaints"


@pytest.mark.parametrize(
    ("lang", "text", "marker"),
    [
        ("zh", "快达快递在成都有网点吗？", "<q>"),
        ("zh", "这款手机有没有黑色的", "<q>"),
        ("zh", "请问退房时间", "<q>"),
        ("zh", "为什么我的快递三天了还没到？", "<qg>"),
        ("zh", "凭什么乱扣我话费", "<qg>"),
        ("zh", "今天去了一趟超市。", None),
        ("en", "Does Acme ship to Canada?", "<q>"),
        ("en", "what time do you open", "<q>"),
        ("en", "Why has my refund still not arrived??", "<qg>"),
        ("en", "Where is my order? It was due Monday.", "<qg>"),
        ("en", "Meeting moved to 3pm.", None),
        ("en", "", None),
    ],
)
def test_intent_marker(lang: str, text: str, marker: str | None) -> None:
    assert intent_marker(lang, text) == marker


def test_intent_marker_is_a_feature_only_when_enabled() -> None:
    plain = HashedFeaturizer("zh", 12, 2)
    marked = HashedFeaturizer("zh", 12, 2, intent=True)
    assert "intent" not in plain.describe() and marked.describe()["intent"] is True
    text = "有网点吗？"
    assert len(marked.indices(text)) > len(plain.indices(text))
    assert marked.indices("今天很好。") == plain.indices("今天很好。")


def test_own_training_files_are_in_sync_and_disjoint_from_evaluation_sets() -> None:
    with open(LABELLED_ZH, encoding="utf-8", newline="") as handle:
        evaluation = {r[0] for r in csv.reader(handle, delimiter="\t")}
    evaluation |= {r[0] for r in _questions()}
    for lang in ("en", "zh"):
        path = TRAINING / f"own_questions_{lang}.tsv"
        with open(path, encoding="utf-8", newline="") as handle:
            stored = [tuple(r) for r in csv.reader(handle, delimiter="\t")]
        assert stored[0] == ("text", "sentiment", "is_complaint", "kind")
        assert stored[1:] == own_rows(lang), f"{path} is stale: regenerate it (see own_training.py)"
        assert not evaluation & {r[0] for r in stored[1:]}


def test_soft_neutral_rows_pull_towards_one_half(tmp_path: Path) -> None:
    texts, labels, weights = soften(["a", "b"], ["neutral", "negative"], [2.0, 1.0])
    assert (texts, labels, weights) == (
        ["a", "a", "b"],
        ["negative", "positive", "negative"],
        [1.0, 1.0, 1.0],
    )
    data = tmp_path / "d.tsv"
    rows = (
        [(f"好开心{i}", "positive") for i in range(30)]
        + [(f"太差了{i}", "negative") for i in range(30)]
        + [(f"有网点吗{i}", "neutral") for i in range(30)]
    )
    data.write_text("text\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in rows), encoding="utf-8")
    spec = ModelSpec(
        lang="zh",
        task="sentiment",
        sources=(Source(str(data), {"positive": "positive", "negative": "negative", "neutral": "neutral"}),),
        regularization_c=4.0,
        soft_neutral=True,
    )
    featurizer = HashedFeaturizer("zh", 12, 2, intent=True)
    model = fit(spec, featurizer, [r[0] for r in rows], [r[1] for r in rows], [1.0] * len(rows))
    assert model["classes"] == ("negative", "positive")
    from crisiswatch.detectors.text.train import runtime_model

    runtime = runtime_model("zh_sentiment", model)
    probability = 1 / (
        1 + np.exp(-runtime.logits(featurizer.batch(["有网点吗？", "太差了", "好开心"]))[:, 0])
    )
    assert 0.35 <= probability[0] <= 0.65
    assert probability[1] > 0.65 and probability[2] < 0.35


def test_neutral_target_moves_neutral_rows_below_one_half(tmp_path: Path) -> None:
    """2026.11.7: `neutral_target` (recipe key) is the P(negative) neutral rows are trained towards."""
    texts, labels, weights = soften(["a"], ["neutral"], [2.0], 0.2)
    assert (texts, labels) == (["a", "a"], ["negative", "positive"])
    assert weights == pytest.approx([0.4, 1.6])
    with pytest.raises(Exception, match="neutral_target"):
        soften(["a"], ["neutral"], [1.0], 1.0)
    rows = (
        [(f"好开心{i}", "positive") for i in range(30)]
        + [(f"太差了{i}", "negative") for i in range(30)]
        + [(f"嗯嗯收到{i}", "neutral") for i in range(30)]
    )
    featurizer = HashedFeaturizer("zh", 12, 2, intent=True)
    from crisiswatch.detectors.text.train import runtime_model

    neutral_probability = {}
    for target in (0.5, 0.2):
        spec = ModelSpec(
            lang="zh",
            task="sentiment",
            sources=(),
            regularization_c=4.0,
            soft_neutral=True,
            neutral_target=target,
        )
        model = fit(spec, featurizer, [r[0] for r in rows], [r[1] for r in rows], [1.0] * len(rows))
        logit = runtime_model("zh_sentiment", model).logits(featurizer.batch(["嗯嗯收到"]))[0, 0]
        neutral_probability[target] = 1 / (1 + np.exp(-logit))
    assert neutral_probability[0.2] < 0.4 < neutral_probability[0.5]
    from crisiswatch.detectors.text.train import load_recipe

    recipe = tmp_path / "r.json"
    data = tmp_path / "d.tsv"
    data.write_text("text\tlabel\n好\tpositive\n", encoding="utf-8")
    recipe.write_text(
        '{"version": "x", "models": [{"lang": "zh", "task": "sentiment", "soft_neutral": true,'
        ' "neutral_target": 0.2, "calibration_neutral_target": 0.5,'
        ' "sources": [{"path": "d.tsv", "label_map": "positive=positive"}]}]}',
        encoding="utf-8",
    )
    [spec] = load_recipe(recipe, tmp_path)[1]
    assert (spec.neutral_target, spec.calibration_neutral_target) == (0.2, 0.5)


def test_recipe_keys_and_intent_calibration(tmp_path: Path) -> None:
    """`weight`, `in_project` and `calibration` sources; the calibration sets only the two intent weights."""
    import json

    from crisiswatch.detectors.text.train import PACKAGE_DIR, featurizers_for, load_recipe, train_model

    data = tmp_path / "reviews.tsv"
    rows = (
        [(f"质量太差了吗？{i}", "0") for i in range(30)]
        + [(f"很好吃{i}", "1") for i in range(30)]
        + [(f"坏了{i}", "0") for i in range(30)]
    )
    data.write_text("text\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in rows), encoding="utf-8")
    recipe = tmp_path / "recipe.json"
    own = {
        "path": "training/own_questions_zh.tsv",
        "in_project": True,
        "label_column": "is_complaint",
        "label_map": "1=complaint,0=not_complaint",
    }
    recipe.write_text(
        json.dumps(
            {
                "version": "t",
                "models": [
                    {
                        "lang": "zh",
                        "task": "complaint",
                        "intent": True,
                        "intent_inputs": True,
                        "sources": [
                            {
                                "path": "reviews.tsv",
                                "label_map": "0=complaint,1=not_complaint",
                                "weight": 0.5,
                            },
                            {**own, "calibration": True, "weight": 10},
                        ],
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    _, specs = load_recipe(recipe, tmp_path)
    (spec,) = specs
    assert [s.weight for s in spec.sources] == [0.5, 10.0]
    assert [s.calibration for s in spec.sources] == [False, True]
    assert spec.sources[1].path == str(PACKAGE_DIR / "training/own_questions_zh.tsv")
    featurizers = featurizers_for(specs)
    assert featurizers["zh"].intent
    model = train_model(spec, featurizers["zh"])
    assert model["dense_inputs"] == ["intent"]
    question, grievance = model["Wd"][:, 0]
    # In the tiny data every question is a complaint; our rows say an information question is not.
    assert question < 0 < grievance

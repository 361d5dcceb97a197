"""Accuracy of the text models (issue 4 figures). Reads ../shared/data; prints a markdown table.

    python bench/text_eval.py [--data-root ../shared/data] [--folds 5] [--only en_sentiment,...]
                              [--dev] [--model MANIFEST --recipe RECIPE]

- en_sentiment: macro-averaged recall on sentiment/en/val.tsv of the model trained by the recipe (not on val).
- zh_sentiment: accuracy on the Weibo file (recipe settings; the other sources always stay in training):
  5-fold CV over all rows, and trained on the 80% development part, scored on the held-out 20% test part.
- en_complaint: macro-F1 on complaints/en/train.tsv, the same two ways.
- `--dev`: 5-fold CV on the development parts only, for choosing settings (never looks at the test parts).
- questions: our hand-written tests/text/data/questions_labelled.tsv (neutral questions/posts vs complaint
  questions; even rows chose weights, odd rows are untouched).
- zh_complaint: F1 / macro-F1 of the shipped model on our hand-labelled tests/text/data/zh_complaints_labelled.tsv.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score
from sklearn.model_selection import StratifiedKFold, StratifiedShuffleSplit

from crisiswatch.detectors.text import TextAnalyzer
from crisiswatch.detectors.text.cli import _as_spec
from crisiswatch.detectors.text.model import dense_inputs
from crisiswatch.detectors.text.train import (
    ModelSpec,
    collect,
    featurizers_for,
    fit,
    load_recipe,
    logits_of,
    prepare,
    read_source,
    runtime_model,
)

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "detectors/text/models/recipe.json"
LABELLED_ZH = REPO / "tests/text/data/zh_complaints_labelled.tsv"
QUESTIONS = REPO / "tests/text/data/questions_labelled.tsv"
TEST_SHARE = 0.2
TEST_SEED = 1


def shipped_specs(analyzer: TextAnalyzer) -> dict:
    """The shipped models as trained specs, so stacked models can read them during cross-validation."""
    return {
        name: _as_spec(model, analyzer.bundle.meta["models"][name])
        for name, model in analyzer.bundle.models.items()
    }


def fit_predict(spec: ModelSpec, featurizer, train_rows, test_texts, trained):
    """Train exactly like `train.train_model` on the given rows; logits of the runtime (float16) model."""
    texts, labels, weights = train_rows
    calibration = collect(spec, calibration=True)
    fitted = fit(spec, featurizer, texts, labels, weights, trained, calibration if calibration[0] else None)
    model = runtime_model(spec.name, fitted)
    prepared = prepare(test_texts)
    batch = featurizer.batch(prepared)
    stacked = (
        logits_of(model.stack_model, trained, featurizer, prepared, batch) if model.stack_model else None
    )
    return model.logits(batch, dense_inputs(model, batch, prepared, stacked))


def source_rows(spec: ModelSpec) -> list[tuple[list[str], list[str], list[float]]]:
    return [
        (texts, labels, [source.weight] * len(texts))
        for source in spec.sources
        if not source.calibration
        for texts, labels in [read_source(source)]
    ]


def held_out_split(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(development, test) row indices of a source: a fixed stratified 20% test part never used for tuning."""
    splitter = StratifiedShuffleSplit(1, test_size=TEST_SHARE, random_state=TEST_SEED)
    development, test = next(splitter.split(np.zeros(len(labels)), labels))
    return np.sort(development), np.sort(test)


def evaluate_source(
    spec: ModelSpec,
    featurizer,
    trained: dict,
    mode: str,
    folds: int = 5,
    test_source: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Logits and gold labels for rows of source `test_source`; other sources always stay in training.

    mode "cv": out-of-fold logits over all rows (the figure reported before 2026.11.5);
    "dev-cv": out-of-fold logits over the development part only (what tuning looks at);
    "test": train on the development part, score the held-out test part (the honest figure).
    """
    sources = source_rows(spec)
    texts, labels, weights = sources[test_source]
    extra = [row for i, rows in enumerate(sources) if i != test_source for row in zip(*rows, strict=True)]
    labels_array = np.array(labels)
    rows = np.arange(len(texts))
    if mode == "test":
        development, test = held_out_split(labels_array)
        plan = [(development, test)]
        scored = test
    else:
        if mode == "dev-cv":
            rows, _ = held_out_split(labels_array)
        splitter = StratifiedKFold(folds, shuffle=True, random_state=0)
        plan = [(rows[a], rows[b]) for a, b in splitter.split(rows, labels_array[rows])]
        scored = rows
    out = np.zeros((len(texts), 1))
    for train_index, test_index in plan:
        train_rows = [(texts[i], labels[i], weights[i]) for i in train_index] + extra
        logits = fit_predict(
            spec,
            featurizer,
            tuple(list(column) for column in zip(*train_rows, strict=True)),
            [texts[i] for i in test_index],
            trained,
        )
        out[test_index] = logits[:, :1]
    return out[scored], labels_array[scored]


def question_results(analyzer: TextAnalyzer) -> list[tuple[str, str, str]]:
    """Our hand-written questions set: neutral questions/posts must be neither negative nor complaints,
    complaint questions must be complaints. Even rows chose the own-data weights; odd rows are untouched."""
    with open(QUESTIONS, encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle, delimiter="\t"))[1:]
    analyses = analyzer.analyze_many([r[0] for r in rows], [r[1] for r in rows])
    threshold = analyzer.config.complaint_threshold
    out = []
    for part, keep in (("odd rows (untouched)", 1), ("all rows", None)):
        for lang in ("zh", "en"):
            for label in ("neutral", "complaint"):
                chosen = [
                    a
                    for i, (r, a) in enumerate(zip(rows, analyses, strict=True))
                    if r[1] == lang and r[2] == label and (keep is None or i % 2 == keep)
                ]
                negative = sum(a.sentiment_label == "negative" for a in chosen)
                complaint = sum((a.complaint_probability or 0.0) >= threshold for a in chosen)
                both = sum(
                    a.sentiment_label == "negative" and (a.complaint_probability or 0.0) >= threshold
                    for a in chosen
                )
                if label == "neutral":
                    right = sum(
                        a.sentiment_label != "negative" and (a.complaint_probability or 0.0) < threshold
                        for a in chosen
                    )
                    what = "neither negative nor complaint"
                else:
                    right = complaint
                    what = "complaint"
                out.append(
                    (
                        f"questions set, {lang} {label}, {part}, n={len(chosen)}: {what} / negative / complaint / negative complaint",
                        f"{right / len(chosen):.3f} / {negative / len(chosen):.3f} / {complaint / len(chosen):.3f}"
                        f" / {both / len(chosen):.3f}",
                        "report",
                    )
                )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-root", default=str(REPO.parent / "shared/data"))
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated subset of en_sentiment,zh_sentiment,en_complaint,questions,zh_complaint",
    )
    parser.add_argument(
        "--dev",
        action="store_true",
        help="CV on the development parts only (for tuning; never the test parts)",
    )
    parser.add_argument("--recipe", default=str(RECIPE), help="recipe to evaluate (default: the shipped one)")
    parser.add_argument("--model", help="manifest of the bundle to evaluate (default: the shipped one)")
    args = parser.parse_args(argv)
    only = set(filter(None, args.only.split(",")))
    version, specs = load_recipe(args.recipe, args.data_root)
    by_name = {spec.name: spec for spec in specs}
    featurizers = featurizers_for(specs)
    results: list[tuple[str, str, str]] = []
    analyzer = TextAnalyzer.load(args.model) if args.model else TextAnalyzer.load_default()
    # Stacked models (complaint reads sentiment) read the shipped upstream model in every fold: the
    # upstream models never saw the complaint data, so this leaks nothing.
    trained = shipped_specs(analyzer)

    if not only or "en_sentiment" in only:
        val = Path(args.data_root) / "sentiment/en/val.tsv"
        with open(val, encoding="utf-8", newline="") as handle:
            rows = list(csv.reader(handle, delimiter="\t"))[1:]
        gold = [{"0": "negative", "1": "neutral", "2": "positive"}[r[1]] for r in rows]
        shipped = [label for label, _ in analyzer.classify([r[0] for r in rows], "sentiment", "en")]
        results.append(
            (
                "en sentiment, macro recall, val.tsv (shipped model)",
                f"{recall_score(gold, shipped, average='macro'):.4f}",
                ">= 0.66 on test",
            )
        )
        results.append(("en sentiment, accuracy, val.tsv", f"{accuracy_score(gold, shipped):.4f}", ""))

    modes = {"cv": f"{args.folds}-fold CV, all rows", "test": "held-out 20% test part"}
    if args.dev:
        modes = {"dev-cv": f"{args.folds}-fold CV of the development part (tuning)"}
    if not only or "zh_sentiment" in only:
        spec = by_name["zh_sentiment"]
        for mode, described in modes.items():
            logits, labels = evaluate_source(spec, featurizers["zh"], trained, mode, args.folds)
            predicted = np.where(logits[:, 0] > 0, "negative", "positive")
            results.append(
                (
                    f"zh sentiment, polarity accuracy on Weibo, {described}",
                    f"{accuracy_score(labels, predicted):.4f}",
                    ">= 0.88",
                )
            )
            probability = 1 / (1 + np.exp(-logits[:, 0]))
            low, high = analyzer.config.zh_neutral_band
            band = (probability >= low) & (probability <= high)
            outside = ~band
            results.append(
                (
                    f"zh sentiment, {described}: share in neutral band [{low}, {high}]",
                    f"{band.mean():.4f}",
                    "",
                )
            )
            results.append(
                (
                    f"zh sentiment, {described}: accuracy outside the neutral band",
                    f"{accuracy_score(labels[outside], predicted[outside]):.4f}",
                    "",
                )
            )

    if not only or "en_complaint" in only:
        spec = by_name["en_complaint"]
        for mode, described in modes.items():
            logits, labels = evaluate_source(spec, featurizers["en"], trained, mode, args.folds)
            predicted = np.where(logits[:, 0] > 0, "complaint", "not_complaint")
            results.append(
                (
                    f"en complaint, macro-F1, {described}",
                    f"{f1_score(labels, predicted, average='macro'):.4f}",
                    ">= 0.82",
                )
            )
            results.append(
                (f"en complaint, accuracy, {described}", f"{accuracy_score(labels, predicted):.4f}", "")
            )

    if not only or "questions" in only:
        results.extend(question_results(analyzer))

    if (not only or "zh_complaint" in only) and LABELLED_ZH.is_file():
        with open(LABELLED_ZH, encoding="utf-8", newline="") as handle:
            rows = list(csv.reader(handle, delimiter="\t"))[1:]
        gold = np.array(["complaint" if r[1] == "1" else "not_complaint" for r in rows])
        predicted = np.array(
            [label for label, _ in analyzer.classify([r[0] for r in rows], "complaint", "zh")]
        )
        # The recipe's logit offset was chosen on the even rows: the odd rows are the untouched test half.
        halves = {
            "test half (odd rows)": np.arange(len(rows)) % 2 == 1,
            "all rows": np.ones(len(rows), dtype=bool),
        }
        for name, keep in halves.items():
            g, p = gold[keep], predicted[keep]
            results.append(
                (
                    f"zh complaint, own labelled set, {name}, n={int(keep.sum())}: F1 (complaint) / precision / recall / macro-F1",
                    f"{f1_score(g, p, pos_label='complaint'):.4f} / {precision_score(g, p, pos_label='complaint'):.4f} / "
                    f"{recall_score(g, p, pos_label='complaint'):.4f} / {f1_score(g, p, average='macro'):.4f}",
                    "report",
                )
            )

    print(f"model bundle {analyzer.version}; recipe {version}\n")
    print("| measure | value | goal |\n|---|---|---|")
    for name, value, goal in results:
        print(f"| {name} | {value} | {goal} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

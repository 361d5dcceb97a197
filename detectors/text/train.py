"""Train the text models from labelled TSV files with explicit label maps (scikit-learn at training time only).

The shared data sets disagree on label codes (English 0/1/2 = negative/neutral/positive, Weibo 0/2,
reviews 0/1), so every input file comes with a label map such as `0=negative,1=neutral,2=positive`;
a code mapped to `drop` (or not mapped) skips the row. The Chinese complaint model has no labelled data:
its recipe maps negative reviews to `complaint` and everything else (positive reviews, all Weibo
emotion posts) to `not_complaint` — weak supervision spelled as label maps.

The output is a model bundle (npz of plain arrays + manifest with sha256); see `model.py`.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from crisiswatch.detectors.text.features import HashedFeaturizer
from crisiswatch.detectors.text.normalize import safe_text
from crisiswatch.detectors.text.owntext import own_text

TASK_CLASSES: dict[str, tuple[str, ...]] = {
    "sentiment": ("negative", "neutral", "positive"),
    "complaint": ("complaint", "not_complaint"),
}
DEFAULT_BITS = {"en": 18, "zh": 18}
DEFAULT_MAX_N = {"en": 2, "zh": 3}
MAX_CHARS = 2000


class TrainingError(ValueError):
    pass


@dataclass(frozen=True)
class Source:
    """One labelled file: where the text and label are and what each label code means."""

    path: str
    label_map: dict[str, str]
    text_column: str = "text"
    label_column: str = "label"
    limit: int | None = None  # keep at most this many rows (first rows), for quick runs


@dataclass(frozen=True)
class ModelSpec:
    lang: str
    task: str
    sources: tuple[Source, ...]
    regularization_c: float = 1.0
    # "prior" = label offsets undoing the training class priors (balanced recall); "none" = argmax.
    label_offsets: str = "none"
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.lang}_{self.task}"


def parse_label_map(text: str, task: str) -> dict[str, str]:
    """`0=negative,1=neutral,2=positive` → {"0": "negative", ...}; values must be the task's classes or `drop`."""
    allowed = (*TASK_CLASSES[task], "drop")
    mapping: dict[str, str] = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        code, sep, label = part.partition("=")
        code, label = code.strip(), label.strip()
        if not sep or not code or label not in allowed:
            raise TrainingError(f"label map entry {part!r}: expected CODE=LABEL with LABEL one of {', '.join(allowed)}")
        mapping[code] = label
    if not any(label != "drop" for label in mapping.values()):
        raise TrainingError(f"label map {text!r} maps no code to a class")
    return mapping


def read_source(source: Source) -> tuple[list[str], list[str]]:
    """Texts and mapped labels of one TSV file (header row required; rows with unmapped codes are skipped)."""
    csv.field_size_limit(1 << 24)
    texts: list[str] = []
    labels: list[str] = []
    with open(source.path, encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t")
        header = next(reader, None)
        if header is None:
            raise TrainingError(f"{source.path}: empty file")
        try:
            text_at = header.index(source.text_column)
            label_at = header.index(source.label_column)
        except ValueError as exc:
            raise TrainingError(
                f"{source.path}: columns {source.text_column!r} and {source.label_column!r} expected in header {header}"
            ) from exc
        for row in reader:
            if len(row) <= max(text_at, label_at):
                continue
            label = source.label_map.get(row[label_at].strip(), "drop")
            if label == "drop":
                continue
            texts.append(row[text_at])
            labels.append(label)
            if source.limit is not None and len(texts) >= source.limit:
                break
    if not texts:
        raise TrainingError(f"{source.path}: no row has a mapped label")
    return texts, labels


def prepare(texts: Sequence[str]) -> list[str]:
    """Exactly what the analyzer scores: the safe own text."""
    return [own_text(safe_text(t, MAX_CHARS)) for t in texts]


def design_matrix(featurizer: HashedFeaturizer, texts: Sequence[str]) -> Any:
    """Binary bucket-presence CSR matrix (scipy), one row per text."""
    from scipy import sparse

    indptr = [0]
    indices: list[int] = []
    for text in texts:
        buckets = featurizer.indices(text)
        indices.extend(buckets)
        indptr.append(len(indices))
    data = np.ones(len(indices), dtype=np.float64)
    return sparse.csr_matrix(
        (data, np.asarray(indices, dtype=np.int64), np.asarray(indptr, dtype=np.int64)),
        shape=(len(texts), featurizer.n_buckets),
    )


def smooth_idf(matrix: Any) -> np.ndarray:
    rows = matrix.shape[0]
    document_frequency = np.bincount(matrix.indices, minlength=matrix.shape[1])
    return (np.log((1.0 + rows) / (1.0 + document_frequency)) + 1.0).astype(np.float64)


def weighted(matrix: Any, idf: np.ndarray) -> Any:
    """Apply idf and L2-normalise rows, exactly as `LinearModel.logits` does at run time."""
    from sklearn.preprocessing import normalize

    # Round idf through float16 first: that is what the bundle stores and the analyzer uses.
    stored = idf.astype(np.float16).astype(np.float64)
    return normalize(matrix.multiply(stored).tocsr(), norm="l2", copy=False)


def fit_linear(matrix: Any, labels: Sequence[str], classes: tuple[str, ...], c: float) -> tuple[np.ndarray, np.ndarray]:
    """Logistic regression → (W buckets x outputs, b). Binary tasks give one output: the logit of classes[0]."""
    from sklearn.linear_model import LogisticRegression

    present = [k for k in classes if k in set(labels)]
    if len(present) < 2:
        raise TrainingError(f"need at least two classes among {classes}, found {present}")
    if len(classes) == 2:
        target = np.array([1 if label == classes[0] else 0 for label in labels])
        model = LogisticRegression(C=c, max_iter=2000, tol=1e-5)
        model.fit(matrix, target)
        return model.coef_.T.astype(np.float64), model.intercept_.astype(np.float64)
    if len(present) != len(classes):
        raise TrainingError(f"{classes}: every class needs examples, found only {present}")
    target = np.array([classes.index(label) for label in labels])
    model = LogisticRegression(C=c, max_iter=2000, tol=1e-5)
    model.fit(matrix, target)
    return model.coef_.T.astype(np.float64), model.intercept_.astype(np.float64)


def train_model(spec: ModelSpec, featurizer: HashedFeaturizer) -> dict[str, Any]:
    texts: list[str] = []
    labels: list[str] = []
    for source in spec.sources:
        more_texts, more_labels = read_source(source)
        texts.extend(more_texts)
        labels.extend(more_labels)
    classes = TASK_CLASSES[spec.task]
    binary_classes: tuple[str, ...] = classes
    if spec.task == "sentiment" and "neutral" not in labels:
        # No neutral examples (Chinese): a binary P(negative) model; neutral is a band of it (TextConfig).
        binary_classes = ("negative", "positive")
    counts = {k: labels.count(k) for k in binary_classes}
    raw = design_matrix(featurizer, prepare(texts))
    idf = smooth_idf(raw)
    matrix = weighted(raw, idf)
    weights, bias = fit_linear(matrix, labels, binary_classes, spec.regularization_c)
    offsets = [0.0] * weights.shape[1]
    if spec.label_offsets == "prior" and weights.shape[1] > 1:
        offsets = [-math.log(counts[k] / len(labels)) for k in binary_classes]
    return {
        "W": weights,
        "b": bias,
        "idf": idf,
        "lang": spec.lang,
        "classes": binary_classes,
        "label_offsets": offsets,
        "info_rows": len(labels),
        "info_class_counts": counts,
        "info_c": spec.regularization_c,
    }


def load_recipe(path: str | Path, data_root: str | Path) -> tuple[str, list[ModelSpec]]:
    """A JSON recipe: {"version": ..., "models": [{lang, task, c, label_offsets, sources: [{path, label_map, ...}]}]}."""
    recipe = json.loads(Path(path).read_text(encoding="utf-8"))
    specs: list[ModelSpec] = []
    for entry in recipe["models"]:
        sources = tuple(
            Source(
                path=str(Path(data_root) / s["path"]),
                label_map=parse_label_map(s["label_map"], entry["task"]),
                text_column=s.get("text_column", "text"),
                label_column=s.get("label_column", "label"),
                limit=s.get("limit"),
            )
            for s in entry["sources"]
        )
        specs.append(
            ModelSpec(
                lang=entry["lang"],
                task=entry["task"],
                sources=sources,
                regularization_c=float(entry.get("c", 1.0)),
                label_offsets=entry.get("label_offsets", "none"),
            )
        )
    return str(recipe["version"]), specs


def featurizers_for(langs: Sequence[str], bits: dict[str, int] | None = None) -> dict[str, HashedFeaturizer]:
    bits = {**DEFAULT_BITS, **(bits or {})}
    return {lang: HashedFeaturizer(lang, bits[lang], DEFAULT_MAX_N[lang]) for lang in sorted(set(langs))}

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from crisiswatch.detectors.text.categories import DEFAULT_CATEGORIES, CategoryMatcher, CategoryRule
from crisiswatch.detectors.text.features import HashedFeaturizer
from crisiswatch.detectors.text.model import LinearModel, build_model, dense_inputs, model_arrays
from crisiswatch.detectors.text.normalize import safe_text
from crisiswatch.detectors.text.owntext import own_text

TASK_CLASSES: dict[str, tuple[str, ...]] = {
    "sentiment": ("negative", "neutral", "positive"),
    "complaint": ("complaint", "not_complaint"),
}
DEFAULT_BITS = {"en": 18, "zh": 18}
DEFAULT_MAX_N = {"en": 2, "zh": 2}
MAX_CHARS = 2000


class TrainingError(ValueError):
    pass


def default_keywords() -> dict[str, list[str]]:
    """All shipped category keywords, frozen into a model's meta when it uses the `keywords` input."""
    return {
        "en": [k for rule in DEFAULT_CATEGORIES for k in rule.en],
        "zh": [k for rule in DEFAULT_CATEGORIES for k in rule.zh],
    }


_KEYWORDS = CategoryMatcher(
    [CategoryRule("keyword", tuple(default_keywords()["en"]), tuple(default_keywords()["zh"]))]
)


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
    # "idf" or "nb" (naive-Bayes log-count ratio, binary tasks only).
    scaling: str = "idf"
    # Append dense lexicon features (needs the language's featurizer to carry a lexicon).
    use_lexicon: bool = False
    # Append another (earlier) model's logits times `stack_scale` as dense inputs.
    stack_model: str | None = None
    stack_scale: float = 0.3
    # Append a 0/1 "a default complaint-category keyword occurs" input.
    use_keywords: bool = False
    # Added to the fitted bias: a prior correction when the training labels are known to be skewed
    # (the weakly supervised Chinese complaint labels miss many complaints).
    logit_offset: float = 0.0

    @property
    def name(self) -> str:
        return f"{self.lang}_{self.task}"


def parse_label_map(text: str, task: str) -> dict[str, str]:
    """`0=negative,1=neutral,2=positive` → {"0": "negative", ...}; values must be the task's classes or `drop`."""
    allowed = (*TASK_CLASSES[task], "drop", *(("complaint_if_keyword",) if task == "complaint" else ()))
    mapping: dict[str, str] = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        code, sep, label = part.partition("=")
        code, label = code.strip(), label.strip()
        if not sep or not code or label not in allowed:
            raise TrainingError(
                f"label map entry {part!r}: expected CODE=LABEL with LABEL one of {', '.join(allowed)}"
            )
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
            if label == "complaint_if_keyword":
                # Weak label: a negative post that names a product/service problem counts as a complaint.
                label = "complaint" if _KEYWORDS.category(row[text_at]) else "not_complaint"
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


def design_matrix(featurizer: HashedFeaturizer, texts: Sequence[str]) -> tuple[Any, np.ndarray | None]:
    """Occurrence-count CSR matrix (scipy; one row per text, duplicates summed) and the dense features (or None)."""
    from scipy import sparse

    batch = featurizer.batch(texts)
    data = np.ones(len(batch.buckets), dtype=np.float64)
    matrix = sparse.csr_matrix(
        (data, (batch.documents, batch.buckets)), shape=(batch.count, featurizer.n_buckets)
    )
    matrix.sum_duplicates()
    return matrix, batch.dense


def smooth_idf(matrix: Any) -> np.ndarray:
    rows = matrix.shape[0]
    document_frequency = np.bincount(matrix.indices, minlength=matrix.shape[1])  # one entry per (row, bucket)
    return (np.log((1.0 + rows) / (1.0 + document_frequency)) + 1.0).astype(np.float64)


def naive_bayes_ratio(matrix: Any, positive: np.ndarray) -> np.ndarray:
    """Log-count ratio r of NBSVM (Wang & Manning 2012): how much more often a bucket occurs in one class."""
    present = matrix.copy()
    present.data[:] = 1.0
    p = np.asarray(present[positive].sum(axis=0)).ravel() + 1.0
    q = np.asarray(present[~positive].sum(axis=0)).ravel() + 1.0
    ratio = np.log((p / p.sum()) / (q / q.sum()))
    # Buckets never seen get the neutral weight 1 (so unseen n-grams still count in the norm, as with idf).
    ratio[np.asarray(present.sum(axis=0)).ravel() == 0] = 1.0
    return ratio


def scaled(matrix: Any, scale: np.ndarray, dense: np.ndarray | None) -> Any:
    """Scale buckets, normalise rows and append dense features, exactly as `LinearModel.logits` does.

    Row norm = sqrt(sum over occurrences of scale**2) = sqrt(counts @ scale**2).
    """
    from scipy import sparse

    # Round through float16 first: that is what the bundle stores and the analyzer uses.
    stored = scale.astype(np.float16).astype(np.float64)
    norms = np.sqrt(matrix @ (stored * stored))
    inverse = 1.0 / np.maximum(norms, 1e-12)
    out = sparse.diags(inverse) @ matrix.multiply(stored).tocsr()
    out = out.tocsr()
    if dense is not None:
        out = sparse.hstack([out, sparse.csr_matrix(dense)]).tocsr()
    return out


def fit_linear(
    matrix: Any, labels: Sequence[str], classes: tuple[str, ...], c: float
) -> tuple[np.ndarray, np.ndarray]:
    """Logistic regression → (W features x outputs, b). Binary tasks give one output: the logit of classes[0]."""
    from sklearn.linear_model import LogisticRegression

    present = [k for k in classes if k in set(labels)]
    if len(present) != len(classes):
        raise TrainingError(f"every class of {classes} needs examples, found only {present}")
    if len(classes) == 2:
        target = np.array([1 if label == classes[0] else 0 for label in labels])
    else:
        target = np.array([classes.index(label) for label in labels])
    model = LogisticRegression(C=c, max_iter=3000, tol=1e-5)
    model.fit(matrix, target)
    return model.coef_.T.astype(np.float64), model.intercept_.astype(np.float64)


def runtime_model(name: str, spec: dict[str, Any]) -> LinearModel:
    """The model exactly as the analyzer will load it (float16-rounded weights)."""
    arrays, meta = model_arrays(name, spec)
    return build_model(name, meta, arrays)


def stacked_dense(
    spec: ModelSpec, featurizer: HashedFeaturizer, texts: list[str], trained: dict[str, dict[str, Any]]
) -> tuple[Any, np.ndarray | None, dict[str, Any]]:
    """Design matrix, dense inputs and the meta describing them, for `spec` over prepared `texts`."""
    raw, lexicon = design_matrix(featurizer, texts)
    dense_names: list[str] = []
    stack: dict[str, Any] | None = None
    keywords: dict[str, list[str]] | None = None
    if spec.use_lexicon:
        if lexicon is None:
            raise TrainingError(f"{spec.name}: the {spec.lang} featurizer has no lexicon")
        dense_names.append("lexicon")
    if spec.stack_model:
        if spec.stack_model not in trained:
            raise TrainingError(f"{spec.name}: stacks {spec.stack_model!r}, which must be trained before it")
        dense_names.append("stack")
        stack = {"model": spec.stack_model, "scale": spec.stack_scale}
    if spec.use_keywords:
        dense_names.append("keywords")
        keywords = default_keywords()
    describe: dict[str, Any] = {"dense_inputs": dense_names, "stack": stack, "keywords": keywords}
    if not dense_names:
        return raw, None, describe
    probe = LinearModel(
        name=spec.name,
        lang=spec.lang,
        classes=(),
        weights=np.zeros((1, 1)),
        bias=np.zeros(1),
        uses_lexicon=spec.use_lexicon,
        stack_model=spec.stack_model,
        stack_scale=spec.stack_scale,
        keywords=CategoryMatcher([CategoryRule("keyword", tuple(keywords["en"]), tuple(keywords["zh"]))])
        if keywords
        else None,
    )
    stacked = None
    if spec.stack_model:
        batch = featurizer.batch(texts)
        stacked = _logits_of(spec.stack_model, trained, featurizer, texts, batch)
    else:
        batch = featurizer.batch(texts)
    return raw, dense_inputs(probe, batch, texts, stacked), describe


def _logits_of(
    name: str, trained: dict[str, dict[str, Any]], featurizer: HashedFeaturizer, texts: list[str], batch: Any
) -> np.ndarray:
    model = runtime_model(name, trained[name])
    inner = _logits_of(model.stack_model, trained, featurizer, texts, batch) if model.stack_model else None
    return model.logits(batch, dense_inputs(model, batch, texts, inner))


def train_model(
    spec: ModelSpec, featurizer: HashedFeaturizer, trained: dict[str, dict[str, Any]] | None = None
) -> dict[str, Any]:
    """Fit one model of a bundle; `trained` holds the bundle's models fitted so far (for stacking)."""
    texts: list[str] = []
    labels: list[str] = []
    for source in spec.sources:
        more_texts, more_labels = read_source(source)
        texts.extend(more_texts)
        labels.extend(more_labels)
    classes = TASK_CLASSES[spec.task]
    if spec.task == "sentiment" and "neutral" not in labels:
        # No neutral examples (Chinese): a binary P(negative) model; neutral is a band of it (TextConfig).
        classes = ("negative", "positive")
    counts = {k: labels.count(k) for k in classes}
    raw, dense, describe = stacked_dense(spec, featurizer, prepare(texts), trained or {})
    if spec.scaling == "nb":
        if len(classes) != 2:
            raise TrainingError(f"{spec.name}: naive-Bayes scaling needs a binary task")
        scale = naive_bayes_ratio(raw, np.array([label == classes[0] for label in labels]))
    else:
        scale = smooth_idf(raw)
    coefficients, bias = fit_linear(scaled(raw, scale, dense), labels, classes, spec.regularization_c)
    bias = bias + spec.logit_offset
    offsets = [0.0] * coefficients.shape[1]
    if spec.label_offsets == "prior" and coefficients.shape[1] > 1:
        offsets = [-math.log(counts[k] / len(labels)) for k in classes]
    buckets = featurizer.n_buckets
    return {
        "W": coefficients[:buckets],
        "Wd": coefficients[buckets:] if dense is not None else None,
        "b": bias,
        "scale": scale,
        "lang": spec.lang,
        "classes": classes,
        "label_offsets": offsets,
        **describe,
        "info_rows": len(labels),
        "info_class_counts": counts,
        "info_c": spec.regularization_c,
        "info_scaling": spec.scaling,
        "info_logit_offset": spec.logit_offset,
    }


def vader_lexicon() -> dict[str, float]:
    """VADER's word and emoticon valences (-4..4), plus emoji valued by their VADER descriptions.

    VADER (Hutto & Gilbert 2014, MIT licence) is read from the `vaderSentiment` package at training time
    only; the shipped bundle carries the derived word → valence arrays.
    """
    from importlib import resources

    try:
        package = resources.files("vaderSentiment")
    except ModuleNotFoundError as exc:
        raise TrainingError(
            "the English lexicon needs `pip install vadersentiment` at training time"
        ) from exc
    lexicon: dict[str, float] = {}
    for line in (package / "vader_lexicon.txt").read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) >= 2 and parts[0].strip():
            lexicon[parts[0].strip().lower()] = float(parts[1])
    for line in (package / "emoji_utf8_lexicon.txt").read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) >= 2 and parts[0] and parts[0] not in lexicon:
            value = sum(lexicon.get(word, 0.0) for word in parts[1].lower().split())
            if value:
                lexicon[parts[0]] = max(-4.0, min(4.0, value))
    # The bundle stores valences as float16: train on exactly the values the analyzer will see.
    return {word: float(np.float16(value)) for word, value in lexicon.items()}


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
                scaling=entry.get("scaling", "idf"),
                use_lexicon=bool(entry.get("lexicon", False)),
                stack_model=(entry.get("stack") or {}).get("model"),
                stack_scale=float((entry.get("stack") or {}).get("scale", 0.3)),
                use_keywords=bool(entry.get("keywords", False)),
                logit_offset=float(entry.get("logit_offset", 0.0)),
            )
        )
    return str(recipe["version"]), specs


def featurizers_for(
    specs: Sequence[ModelSpec], bits: dict[str, int] | None = None
) -> dict[str, HashedFeaturizer]:
    """One featurizer per language; English carries the VADER lexicon when a model asks for it."""
    bits = {**DEFAULT_BITS, **(bits or {})}
    featurizers: dict[str, HashedFeaturizer] = {}
    for lang in sorted({spec.lang for spec in specs}):
        wants_lexicon = any(spec.use_lexicon for spec in specs if spec.lang == lang)
        if wants_lexicon and lang != "en":
            raise TrainingError(f"no lexicon is available for {lang!r}")
        featurizers[lang] = HashedFeaturizer(
            lang, bits[lang], DEFAULT_MAX_N[lang], vader_lexicon() if wants_lexicon else None
        )
    return featurizers

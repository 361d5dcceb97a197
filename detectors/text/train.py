"""Train the text models from labelled TSV files with explicit label maps (scikit-learn at training time only).

The shared data sets disagree on label codes (English 0/1/2 = negative/neutral/positive, Weibo 0/2,
reviews 0/1), so every input file comes with a label map such as `0=negative,1=neutral,2=positive`;
a code mapped to `drop` (or not mapped) skips the row. The Chinese complaint model has no labelled data:
its recipe maps negative reviews to `complaint` and everything else (positive reviews, all Weibo
emotion posts) to `not_complaint` — weak supervision spelled as label maps.

A source can carry a sample `weight`, live in the package (`in_project`: our own files under
`detectors/text/training/`, not the data root) and be a `calibration` source: its rows only fit the two
intent-input weights of a binary model after the main fit (see `ModelSpec.use_intent_inputs`). A binary
sentiment model with `soft_neutral` reads `neutral` rows as "P(negative) = 0.5" (or the recipe's
`neutral_target`).

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
from crisiswatch.detectors.text.features import LEXICON_FEATURES, HashedFeaturizer
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
PACKAGE_DIR = Path(__file__).resolve().parent


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
    # Sample weight of every row of this file (e.g. a few hundred hand-written rows among 30k others).
    weight: float = 1.0
    # Rows that only fit the intent-input weights, after the main fit (see `ModelSpec.use_intent_inputs`).
    calibration: bool = False


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
    # Binary sentiment (no neutral class): rows labelled `neutral` count `neutral_target` negative and the
    # rest positive, i.e. they pull P(negative) towards `neutral_target` (0.5 unless the recipe says
    # otherwise; 2026.11.7's Chinese model uses 0.2: the detectors count P >= 0.5 as negative, so neutral
    # text must sit below it).
    soft_neutral: bool = False
    neutral_target: float = 0.5
    # The same for the neutral rows of the intent calibration (None: `neutral_target`). The Weibo data's
    # flagged rows are mostly rhetorical, negative questions; pulling information questions far below 0.5
    # flips them too (2026.11.7: Weibo development CV 0.829 -> 0.80 with 0.2 here).
    calibration_neutral_target: float | None = None
    # The language's featurizer adds a question/grievance marker token (shared by the language's models).
    intent: bool = False
    # Append the two intent flags (information question, grievance question) as dense inputs (needs
    # `intent`). With `calibration` sources their two weights are fitted on those rows only, with the rest
    # of the model fixed: the polarity data is full of rhetorical questions ("这也叫外卖吗？") and would
    # teach "question = negative"; our own rows say what a question without a grievance means.
    use_intent_inputs: bool = False
    # L2 penalty of the intent calibration (binary models).
    calibration_penalty: float = 1.0
    # Also fit, in the calibration, how much an intent flag scales the n-gram part of the logit
    # (`LinearModel.intent_gate`): a plain question's content words then count less.
    use_intent_gate: bool = False
    # False: the intent marker is not an n-gram token (only the dense flags); shared by the language's models.
    intent_ngrams: bool = True

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


def naive_bayes_ratio(
    matrix: Any, positive: np.ndarray, sample_weight: np.ndarray | None = None
) -> np.ndarray:
    """Log-count ratio r of NBSVM (Wang & Manning 2012): how much more often a bucket occurs in one class."""
    from scipy import sparse

    present = matrix.copy()
    present.data[:] = 1.0
    if sample_weight is not None:
        present = (sparse.diags(sample_weight) @ present).tocsr()
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
    matrix: Any,
    labels: Sequence[str],
    classes: tuple[str, ...],
    c: float,
    sample_weight: np.ndarray | None = None,
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
    model.fit(matrix, target, sample_weight=sample_weight)
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
    if spec.use_intent_inputs:
        if not featurizer.intent:
            raise TrainingError(
                f'{spec.name}: intent inputs need the featurizer\'s intent markers ("intent": true)'
            )
        dense_names.append("intent")
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
        uses_intent=spec.use_intent_inputs,
        stack_model=spec.stack_model,
        stack_scale=spec.stack_scale,
        keywords=CategoryMatcher([CategoryRule("keyword", tuple(keywords["en"]), tuple(keywords["zh"]))])
        if keywords
        else None,
    )
    stacked = None
    if spec.stack_model:
        batch = featurizer.batch(texts)
        stacked = logits_of(spec.stack_model, trained, featurizer, texts, batch)
    else:
        batch = featurizer.batch(texts)
    return raw, dense_inputs(probe, batch, texts, stacked), describe


def logits_of(
    name: str, trained: dict[str, dict[str, Any]], featurizer: HashedFeaturizer, texts: list[str], batch: Any
) -> np.ndarray:
    model = runtime_model(name, trained[name])
    inner = logits_of(model.stack_model, trained, featurizer, texts, batch) if model.stack_model else None
    return model.logits(batch, dense_inputs(model, batch, texts, inner))


def collect(spec: ModelSpec, calibration: bool = False) -> tuple[list[str], list[str], list[float]]:
    """Texts, labels and sample weights of a spec's main (or calibration) sources, in order."""
    texts: list[str] = []
    labels: list[str] = []
    weights: list[float] = []
    for source in spec.sources:
        if source.calibration != calibration:
            continue
        more_texts, more_labels = read_source(source)
        texts.extend(more_texts)
        labels.extend(more_labels)
        weights.extend([source.weight] * len(more_texts))
    return texts, labels, weights


def task_classes(spec: ModelSpec, labels: Sequence[str]) -> tuple[str, ...]:
    if spec.task == "sentiment" and (spec.soft_neutral or "neutral" not in labels):
        # No neutral class (Chinese): a binary P(negative) model; neutral is a band of it (TextConfig).
        return ("negative", "positive")
    return TASK_CLASSES[spec.task]


def soften(
    texts: Sequence[str], labels: Sequence[str], weights: Sequence[float], target: float = 0.5
) -> tuple[list[str], list[str], list[float]]:
    """Each `neutral` row becomes a negative row of `target` times its weight and a positive row of the
    rest (target P(negative) = `target`, 0.5 by default)."""
    if not 0.0 < target < 1.0:
        raise TrainingError(f"neutral_target must be strictly between 0 and 1, got {target}")
    out_texts: list[str] = []
    out_labels: list[str] = []
    out_weights: list[float] = []
    for text, label, weight in zip(texts, labels, weights, strict=True):
        if label == "neutral":
            out_texts += [text, text]
            out_labels += ["negative", "positive"]
            out_weights += [weight * target, weight * (1.0 - target)]
        else:
            out_texts.append(text)
            out_labels.append(label)
            out_weights.append(weight)
    return out_texts, out_labels, out_weights


def train_model(
    spec: ModelSpec, featurizer: HashedFeaturizer, trained: dict[str, dict[str, Any]] | None = None
) -> dict[str, Any]:
    """Fit one model of a bundle; `trained` holds the bundle's models fitted so far (for stacking)."""
    texts, labels, weights = collect(spec)
    calibration = collect(spec, calibration=True)
    return fit(spec, featurizer, texts, labels, weights, trained, calibration if calibration[0] else None)


def fit(
    spec: ModelSpec,
    featurizer: HashedFeaturizer,
    texts: Sequence[str],
    labels: Sequence[str],
    weights: Sequence[float],
    trained: dict[str, dict[str, Any]] | None = None,
    calibration: tuple[list[str], list[str], list[float]] | None = None,
) -> dict[str, Any]:
    """Fit `spec` on the given rows (what `train_model` does after reading the sources), then the intent
    weights on the `calibration` rows when given."""
    classes = task_classes(spec, labels)
    if len(classes) == 2 and spec.task == "sentiment":
        texts, labels, weights = soften(texts, labels, weights, spec.neutral_target)
    counts = {k: labels.count(k) for k in classes}
    sample_weight = np.asarray(weights, dtype=np.float64)
    raw, dense, describe = stacked_dense(spec, featurizer, prepare(texts), trained or {})
    if spec.scaling == "nb":
        if len(classes) != 2:
            raise TrainingError(f"{spec.name}: naive-Bayes scaling needs a binary task")
        scale = naive_bayes_ratio(raw, np.array([label == classes[0] for label in labels]), sample_weight)
    else:
        scale = smooth_idf(raw)
    if calibration is not None and not spec.use_intent_inputs:
        raise TrainingError(f'{spec.name}: calibration sources need "intent_inputs": true')
    intent_at = _intent_columns(spec) if calibration is not None else None
    main_flags = None
    if intent_at is not None and dense is not None:
        main_flags = dense[:, intent_at].copy()
        dense = dense.copy()
        dense[:, intent_at] = 0.0  # an all-zero column gets weight 0: the calibration sets it below
    coefficients, bias = fit_linear(
        scaled(raw, scale, dense), labels, classes, spec.regularization_c, sample_weight
    )
    if intent_at is not None and calibration is not None:
        if coefficients.shape[1] != 1:
            raise TrainingError(f"{spec.name}: intent calibration needs a binary model")
        assert dense is not None and main_flags is not None
        main_part = (
            np.asarray(scaled(raw, scale, dense) @ coefficients).ravel() + bias[0],
            np.asarray(scaled(raw, scale, None) @ coefficients[: featurizer.n_buckets]).ravel(),
            main_flags,
            np.array([1.0 if label == classes[0] else 0.0 for label in labels]),
            sample_weight,
        )
        coefficients, gate = _calibrate_intent(
            spec, featurizer, trained or {}, scale, coefficients, bias, calibration, main_part
        )
    else:
        gate = None
    bias = bias + spec.logit_offset
    offsets = [0.0] * coefficients.shape[1]
    if spec.label_offsets == "prior" and coefficients.shape[1] > 1:
        offsets = [-math.log(counts[k] / len(labels)) for k in classes]
    buckets = featurizer.n_buckets
    return {
        "W": coefficients[:buckets],
        "Wd": coefficients[buckets:] if dense is not None else None,
        "gate": gate,
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
        **({"info_soft_neutral": True} if spec.soft_neutral else {}),
        **(
            {"info_neutral_target": spec.neutral_target}
            if spec.soft_neutral and spec.neutral_target != 0.5
            else {}
        ),
    }


def _intent_columns(spec: ModelSpec) -> slice | None:
    """Where the two intent columns sit among a spec's dense inputs (lexicon first, then intent)."""
    if not spec.use_intent_inputs:
        return None
    start = LEXICON_FEATURES if spec.use_lexicon else 0
    return slice(start, start + 2)


def _calibrate_intent(
    spec: ModelSpec,
    featurizer: HashedFeaturizer,
    trained: dict[str, dict[str, Any]],
    scale: np.ndarray,
    coefficients: np.ndarray,
    bias: np.ndarray,
    calibration: tuple[list[str], list[str], list[float]],
    main_part: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> tuple[np.ndarray, np.ndarray | None]:
    """Fit the two intent weights by weighted, L2-penalised logistic regression (Newton's method) on the
    calibration rows and the main rows (the calibration sources' weights set the balance between what our
    own rows and the polarity data say about questions), the fitted model's logit being a fixed offset;
    with `use_intent_gate` also the two gate factors (flag x n-gram logit). Return the completed
    coefficients and the gate (or None)."""
    texts, labels, weights = calibration
    classes = task_classes(spec, labels)
    if spec.task == "sentiment":
        neutral_target = (
            spec.neutral_target
            if spec.calibration_neutral_target is None
            else spec.calibration_neutral_target
        )
        texts, labels, weights = soften(texts, labels, weights, neutral_target)
    raw, dense, _ = stacked_dense(spec, featurizer, prepare(texts), trained)
    at = _intent_columns(spec)
    assert dense is not None and at is not None
    main_offset, main_ngrams, main_flags, main_target, main_weight = main_part
    asked = main_flags.any(axis=1)  # rows without a flag do not move the intent weights
    flags = np.vstack([dense[:, at], main_flags[asked]])
    offset = np.concatenate(
        [np.asarray(scaled(raw, scale, dense) @ coefficients).ravel() + bias[0], main_offset[asked]]
    )
    if spec.use_intent_gate:
        ngrams = np.concatenate(
            [
                np.asarray(scaled(raw, scale, None) @ coefficients[: featurizer.n_buckets]).ravel(),
                main_ngrams[asked],
            ]
        )
        flags = np.hstack([flags, flags * ngrams[:, None]])
    target = np.concatenate([[1.0 if label == classes[0] else 0.0 for label in labels], main_target[asked]])
    weight = np.concatenate([np.asarray(weights, dtype=np.float64), main_weight[asked]])
    delta = np.zeros(flags.shape[1])
    for _ in range(50):
        probability = 1.0 / (1.0 + np.exp(-(offset + flags @ delta)))
        gradient = flags.T @ (weight * (probability - target)) + spec.calibration_penalty * delta
        hessian = (flags * (weight * probability * (1 - probability))[:, None]).T @ flags
        hessian += spec.calibration_penalty * np.eye(len(delta))
        step = np.linalg.solve(hessian, gradient)
        delta -= step
        if np.abs(step).max() < 1e-9:
            break
    completed = coefficients.copy()
    completed[featurizer.n_buckets + at.start : featurizer.n_buckets + at.stop, 0] = delta[:2]
    gate = delta[2:].reshape(2, 1) if spec.use_intent_gate else None
    return completed, gate


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


ZH_LEXICON = PACKAGE_DIR / "training/zh_lexicon.tsv"


def zh_lexicon() -> dict[str, float]:
    """Our own Chinese valence list (`training/zh_lexicon.tsv`, written by the crisiswatch team; -3..3):
    everyday praise and complaint words and current internet slang ("yyds", "避雷") that the 2013 Weibo
    and review data cannot teach. Valences as float16, like the English lexicon."""
    lexicon: dict[str, float] = {}
    for line in ZH_LEXICON.read_text(encoding="utf-8").splitlines()[1:]:
        word, _, value = line.partition("\t")
        if word.strip() and value.strip():
            lexicon[word.strip().lower()] = float(np.float16(float(value)))
    return lexicon


def load_recipe(path: str | Path, data_root: str | Path) -> tuple[str, list[ModelSpec]]:
    """A JSON recipe: {"version": ..., "models": [{lang, task, c, label_offsets, sources: [{path, label_map, ...}]}]}."""
    recipe = json.loads(Path(path).read_text(encoding="utf-8"))
    specs: list[ModelSpec] = []
    for entry in recipe["models"]:
        sources = tuple(
            Source(
                # `"in_project": true`: our own training files, shipped in the package (not data-root).
                path=str((PACKAGE_DIR if s.get("in_project") else Path(data_root)) / s["path"]),
                label_map=parse_label_map(s["label_map"], entry["task"]),
                text_column=s.get("text_column", "text"),
                label_column=s.get("label_column", "label"),
                limit=s.get("limit"),
                weight=float(s.get("weight", 1.0)),
                calibration=bool(s.get("calibration", False)),
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
                soft_neutral=bool(entry.get("soft_neutral", False)),
                neutral_target=float(entry.get("neutral_target", 0.5)),
                calibration_neutral_target=(
                    float(entry["calibration_neutral_target"])
                    if "calibration_neutral_target" in entry
                    else None
                ),
                intent=bool(entry.get("intent", False)),
                use_intent_inputs=bool(entry.get("intent_inputs", False)),
                use_intent_gate=bool(entry.get("intent_gate", False)),
                intent_ngrams=bool(entry.get("intent_ngrams", True)),
            )
        )
    return str(recipe["version"]), specs


def featurizers_for(
    specs: Sequence[ModelSpec], bits: dict[str, int] | None = None
) -> dict[str, HashedFeaturizer]:
    """One featurizer per language; English carries the VADER lexicon when a model asks for it, and a
    language's featurizer adds intent markers when any of its models asks for them."""
    bits = {**DEFAULT_BITS, **(bits or {})}
    featurizers: dict[str, HashedFeaturizer] = {}
    for lang in sorted({spec.lang for spec in specs}):
        wants_lexicon = any(spec.use_lexicon for spec in specs if spec.lang == lang)
        lexicon = None
        if wants_lexicon:
            lexicon = vader_lexicon() if lang == "en" else zh_lexicon()
        featurizers[lang] = HashedFeaturizer(
            lang,
            bits[lang],
            DEFAULT_MAX_N[lang],
            lexicon,
            intent=any(spec.intent for spec in specs if spec.lang == lang),
            intent_ngrams=all(spec.intent_ngrams for spec in specs if spec.lang == lang and spec.intent),
        )
    return featurizers

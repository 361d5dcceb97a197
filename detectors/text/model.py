"""Linear models over hashed features, stored as plain arrays: loading can never execute code.

One `.npz` file (read with `allow_pickle=False`) holds, per model, `<name>.W` (buckets x outputs, float16),
`<name>.b` (outputs), optional `<name>.scale` (buckets) and `<name>.Wd` (dense inputs x outputs); per
language an optional lexicon (`lexicon.<lang>.words`, `lexicon.<lang>.valence`); and a JSON `meta` string.
A JSON manifest beside it gives the version and the file's SHA-256, checked before loading.

A model's dense inputs, in order, are any of: `lexicon` (the featurizer's lexicon features), `intent`
(two 0/1 columns: information question, grievance question; see `features.intent_marker`), `stack`
(another model's logits times a scale, e.g. the complaint model reads the sentiment model) and `keywords`
(1.0 when a complaint-category keyword occurs; the keyword lists are frozen into the meta so a user's
category config cannot shift the model's inputs).

An optional `<name>.gate` (2 x outputs, since 2026.11.6) scales the n-gram part of the logits of a text
flagged as an information question (row 0) or a grievance question (row 1) by `1 + gate[row]`: fitted on
our own labelled questions, it lets "a plain question" damp what its content words say (the polarity data
reads "网点", "营业时间" and "吗？" angrily because its questions are rhetorical).
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from crisiswatch.detectors.text.categories import CategoryMatcher, CategoryRule
from crisiswatch.detectors.text.features import FEATURIZER_VERSION, FeatureBatch, HashedFeaturizer

MODELS_DIR = Path(__file__).resolve().parent / "models"
DEFAULT_MANIFEST = MODELS_DIR / "manifest.json"
FORMAT_VERSION = 1


class ModelFileError(ValueError):
    """The weights file is missing, altered, or of a format this code does not read."""


@dataclass(frozen=True)
class LinearModel:
    """Logits = (sum over n-gram occurrences of scale[bucket] * W[bucket]) / norm + dense @ Wd + b.

    `scale` is the per-bucket weight used at training (idf, or a naive-Bayes log-count ratio);
    norm = sqrt(sum over occurrences of scale**2) — the L2 norm when no n-gram repeats, and cheap
    because it needs no de-duplication.
    """

    name: str
    lang: str
    classes: tuple[str, ...]
    weights: np.ndarray  # (buckets, outputs) float32
    bias: np.ndarray  # (outputs,)
    scale: np.ndarray | None = None  # (buckets,) float32
    dense_weights: np.ndarray | None = None  # (dense inputs, outputs)
    # Added to the logits before choosing a label (e.g. to undo class priors for balanced recall).
    label_offsets: np.ndarray = field(default_factory=lambda: np.zeros(0))
    uses_lexicon: bool = False
    uses_intent: bool = False
    stack_model: str | None = None
    stack_scale: float = 1.0
    keywords: CategoryMatcher | None = None
    # (2, outputs): the n-gram part of an intent-flagged text is multiplied by 1 + gate[flag] (see module doc).
    intent_gate: np.ndarray | None = None

    @property
    def outputs(self) -> int:
        return int(self.weights.shape[1])

    def logits(self, batch: FeatureBatch, dense: np.ndarray | None = None) -> np.ndarray:
        count = batch.count
        documents = batch.documents
        buckets = batch.buckets
        rows = self.weights[buckets]
        if self.scale is not None:
            scale = self.scale[buckets].astype(np.float64)
            norms = np.sqrt(np.bincount(documents, weights=scale * scale, minlength=count))
        else:
            scale = None
            norms = np.sqrt(np.bincount(documents, minlength=count).astype(np.float64))
        out = np.empty((count, self.outputs), dtype=np.float64)
        for column in range(self.outputs):
            values = rows[:, column] if scale is None else rows[:, column] * scale
            out[:, column] = np.bincount(documents, weights=values, minlength=count)
        out /= np.maximum(norms, 1e-12)[:, None]
        if self.intent_gate is not None:
            if batch.intent is None:
                raise ModelFileError(
                    f"model {self.name} gates by intent; its featurizer has no intent markers"
                )
            gate = self.intent_gate
            out *= 1.0 + batch.intent[:, 0:1] * gate[0] + batch.intent[:, 1:2] * gate[1]
        if self.dense_weights is not None:
            if dense is None or dense.shape != (count, self.dense_weights.shape[0]):
                raise ModelFileError(
                    f"model {self.name} needs {self.dense_weights.shape[0]} dense inputs per text"
                )
            # Column by column, not `dense @ Wd`: BLAS may sum in a batch-size-dependent order, and a
            # post must get the same score whatever batch it arrives in (replay == live).
            for row in range(self.dense_weights.shape[0]):
                out += dense[:, row : row + 1] * self.dense_weights[row]
        out += self.bias
        return out


def dense_inputs(
    model: LinearModel, batch: FeatureBatch, texts: Sequence[str], stacked_logits: np.ndarray | None
) -> np.ndarray | None:
    """The dense input columns of `model` for a batch, in the order its `Wd` rows expect."""
    columns: list[np.ndarray] = []
    if model.uses_lexicon:
        if batch.dense is None:
            raise ModelFileError(f"model {model.name} needs lexicon features; its featurizer has no lexicon")
        columns.append(batch.dense)
    if model.uses_intent:
        if batch.intent is None:
            raise ModelFileError(
                f"model {model.name} needs intent inputs; its featurizer has no intent markers"
            )
        columns.append(batch.intent)
    if model.stack_model is not None:
        if stacked_logits is None:
            raise ModelFileError(f"model {model.name} needs the logits of {model.stack_model}")
        columns.append(stacked_logits * model.stack_scale)
    if model.keywords is not None:
        matcher = model.keywords
        columns.append(
            np.array([[1.0 if matcher.category(t) else 0.0] for t in texts]).reshape(len(texts), 1)
        )
    return np.hstack(columns) if columns else None


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def sigmoid(values: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(values, -60.0, 60.0)))


@dataclass(frozen=True)
class ModelBundle:
    """All shipped text models plus the featurizer each language uses."""

    version: str
    featurizers: dict[str, HashedFeaturizer]
    models: dict[str, LinearModel]
    meta: dict[str, Any]

    def get(self, name: str) -> LinearModel | None:
        return self.models.get(name)

    def logits(
        self, name: str, batch: FeatureBatch, texts: Sequence[str], memo: dict[str, np.ndarray] | None = None
    ) -> np.ndarray:
        """Logits of model `name` for a batch (stacked models first; `memo` shares them across calls)."""
        memo = {} if memo is None else memo
        if name in memo:
            return memo[name]
        model = self.models.get(name)
        if model is None:
            raise KeyError(f"model bundle {self.version} has no model {name!r}")
        stacked = self.logits(model.stack_model, batch, texts, memo) if model.stack_model else None
        out = model.logits(batch, dense_inputs(model, batch, texts, stacked))
        memo[name] = out
        return out


def _optional(arrays: Any, key: str, dtype: Any) -> np.ndarray | None:
    return np.asarray(arrays[key], dtype=dtype) if key in arrays.files else None


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def keyword_matcher(keywords: dict[str, list[str]] | None) -> CategoryMatcher | None:
    if not keywords:
        return None
    return CategoryMatcher(
        [CategoryRule("keyword", tuple(keywords.get("en", ())), tuple(keywords.get("zh", ())))]
    )


def build_model(name: str, spec: dict[str, Any], arrays: dict[str, np.ndarray]) -> LinearModel:
    """A runtime model from its meta entry and arrays (also used by training to score stacked inputs)."""
    weights = np.asarray(arrays[f"{name}.W"], dtype=np.float16).astype(np.float32)
    dense = spec.get("dense_inputs", [])
    stack = spec.get("stack") or {}
    scale = arrays.get(f"{name}.scale")
    dense_weights = arrays.get(f"{name}.Wd")
    gate = arrays.get(f"{name}.gate")
    return LinearModel(
        name=name,
        lang=spec["lang"],
        classes=tuple(spec["classes"]),
        weights=weights,
        bias=np.asarray(arrays[f"{name}.b"], dtype=np.float32).astype(np.float64),
        scale=None if scale is None else np.asarray(scale, dtype=np.float16).astype(np.float32),
        dense_weights=None
        if dense_weights is None
        else np.asarray(dense_weights, dtype=np.float32).astype(np.float64),
        label_offsets=np.asarray(spec.get("label_offsets", [0.0] * weights.shape[1]), dtype=np.float64),
        uses_lexicon="lexicon" in dense,
        uses_intent="intent" in dense,
        stack_model=stack.get("model") if "stack" in dense else None,
        stack_scale=float(stack.get("scale", 1.0)),
        keywords=keyword_matcher(spec.get("keywords")) if "keywords" in dense else None,
        intent_gate=None if gate is None else np.asarray(gate, dtype=np.float32).astype(np.float64),
    )


def load_bundle(manifest_path: str | Path | None = None) -> ModelBundle:
    """Read a manifest, verify its weights file's checksum, and load the arrays without pickle."""
    manifest_file = Path(manifest_path) if manifest_path else DEFAULT_MANIFEST
    if manifest_file.suffix == ".npz":
        manifest_file = manifest_file.with_name("manifest.json")
    try:
        manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"cannot read model manifest {manifest_file}: {exc}") from exc
    weights_file = manifest_file.parent / str(manifest.get("file", ""))
    if not weights_file.is_file():
        raise ModelFileError(f"weights file {weights_file} named by {manifest_file} is missing")
    actual = file_sha256(weights_file)
    if actual != manifest.get("sha256"):
        raise ModelFileError(f"{weights_file}: sha256 {actual} does not match the manifest")
    try:
        with np.load(weights_file, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
        meta = json.loads(str(arrays["meta"]))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise ModelFileError(f"{weights_file}: not a readable model file: {exc}") from exc
    if meta.get("format") != FORMAT_VERSION:
        raise ModelFileError(f"{weights_file}: format {meta.get('format')!r}, expected {FORMAT_VERSION}")
    featurizers: dict[str, HashedFeaturizer] = {}
    for lang, spec in meta["featurizers"].items():
        if spec["version"] != FEATURIZER_VERSION:
            raise ModelFileError(
                f"{weights_file}: featurizer v{spec['version']}, this code computes v{FEATURIZER_VERSION}"
            )
        lexicon = None
        if f"lexicon.{lang}.words" in arrays:
            words = arrays[f"lexicon.{lang}.words"].tolist()
            valences = arrays[f"lexicon.{lang}.valence"].astype(np.float64).tolist()
            lexicon = dict(zip(words, valences, strict=True))
        featurizers[lang] = HashedFeaturizer(
            lang,
            int(spec["bits"]),
            int(spec["max_n"]),
            lexicon,
            intent=bool(spec.get("intent", False)),
            intent_ngrams=bool(spec.get("intent_ngrams", True)),
        )
    models = {name: build_model(name, spec, arrays) for name, spec in meta["models"].items()}
    version = str(manifest.get("version", meta.get("version")))
    return ModelBundle(version=version, featurizers=featurizers, models=models, meta=meta)


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """`np.savez_compressed` with fixed zip timestamps, so the same arrays give the same bytes (and sha256)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(arrays):
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.asarray(arrays[name]), allow_pickle=False)
            archive.writestr(info, buffer.getvalue(), compresslevel=9)


def model_arrays(name: str, spec: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The stored arrays (float16 weights) and meta entry of one trained model spec."""
    arrays: dict[str, np.ndarray] = {
        f"{name}.W": np.asarray(spec["W"], dtype=np.float16),
        f"{name}.b": np.asarray(spec["b"], dtype=np.float32),
    }
    if spec.get("scale") is not None:
        arrays[f"{name}.scale"] = np.asarray(spec["scale"], dtype=np.float16)
    if spec.get("Wd") is not None:
        arrays[f"{name}.Wd"] = np.asarray(spec["Wd"], dtype=np.float32)
    if spec.get("gate") is not None:
        arrays[f"{name}.gate"] = np.asarray(spec["gate"], dtype=np.float32)
    meta: dict[str, Any] = {
        "lang": spec["lang"],
        "classes": list(spec["classes"]),
        "label_offsets": [float(x) for x in spec.get("label_offsets", [0.0] * len(spec["b"]))],
        "dense_inputs": list(spec.get("dense_inputs", [])),
        **({"stack": spec["stack"]} if spec.get("stack") else {}),
        **({"keywords": spec["keywords"]} if spec.get("keywords") else {}),
        **{k: v for k, v in spec.items() if k.startswith("info_")},
    }
    return arrays, meta


def save_bundle(
    directory: Path,
    version: str,
    featurizers: dict[str, HashedFeaturizer],
    models: dict[str, dict[str, Any]],
    extra_manifest: dict[str, Any] | None = None,
    file_name: str = "text_models.npz",
) -> Path:
    """Write `<file_name>` + `manifest.json` from trained model specs (see `model_arrays`)."""
    directory.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    meta: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "version": version,
        "featurizers": {lang: f.describe() for lang, f in featurizers.items()},
        "models": {},
    }
    for lang, featurizer in featurizers.items():
        if featurizer.lexicon:
            words = sorted(featurizer.lexicon)
            arrays[f"lexicon.{lang}.words"] = np.array(words, dtype=str)
            arrays[f"lexicon.{lang}.valence"] = np.array(
                [featurizer.lexicon[w] for w in words], dtype=np.float16
            )
    for name, spec in models.items():
        model_array, model_meta = model_arrays(name, spec)
        arrays.update(model_array)
        meta["models"][name] = model_meta
    arrays["meta"] = np.array(json.dumps(meta, sort_keys=True))
    weights_file = directory / file_name
    write_npz(weights_file, arrays)
    manifest = {
        "version": version,
        "file": file_name,
        "sha256": file_sha256(weights_file),
        "format": FORMAT_VERSION,
        **(extra_manifest or {}),
    }
    (directory / "manifest.json").write_text(
        json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    return weights_file

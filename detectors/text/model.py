"""Linear models over hashed features, stored as plain arrays: loading can never execute code.

One `.npz` file (read with `allow_pickle=False`) holds, per model, `<name>.W` (buckets x outputs, float16),
`<name>.b` (outputs), optional `<name>.idf` (buckets) and a JSON `meta` string; a JSON manifest beside it
gives the version and the file's SHA-256, checked before loading.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from crisiswatch.detectors.text.features import FEATURIZER_VERSION, HashedFeaturizer

MODELS_DIR = Path(__file__).resolve().parent / "models"
DEFAULT_MANIFEST = MODELS_DIR / "manifest.json"
FORMAT_VERSION = 1


class ModelFileError(ValueError):
    """The weights file is missing, altered, or of a format this code does not read."""


@dataclass(frozen=True)
class LinearModel:
    """Logits = (sum of W rows of the text's buckets, idf-weighted, L2-normalised) + b."""

    name: str
    lang: str
    classes: tuple[str, ...]
    weights: np.ndarray  # (buckets, outputs) float32
    bias: np.ndarray  # (outputs,) float32
    idf: np.ndarray | None  # (buckets,) float32
    # Added to the logits before choosing a label (e.g. to undo class priors for balanced recall).
    label_offsets: np.ndarray  # (outputs,)

    @property
    def outputs(self) -> int:
        return int(self.weights.shape[1])

    def logits(self, index_lists: Sequence[Sequence[int]]) -> np.ndarray:
        count = len(index_lists)
        lengths = np.fromiter((len(ix) for ix in index_lists), dtype=np.int64, count=count)
        total = int(lengths.sum())
        flat = np.fromiter(itertools.chain.from_iterable(index_lists), dtype=np.int64, count=total)
        doc = np.repeat(np.arange(count), lengths)
        if self.idf is not None:
            scale = self.idf[flat]
            norms = np.sqrt(np.bincount(doc, weights=scale * scale, minlength=count))
        else:
            scale = None
            norms = np.sqrt(lengths.astype(np.float64))
        rows = self.weights[flat]
        out = np.empty((count, self.outputs), dtype=np.float64)
        for column in range(self.outputs):
            values = rows[:, column] if scale is None else rows[:, column] * scale
            out[:, column] = np.bincount(doc, weights=values, minlength=count)
        out /= np.maximum(norms, 1e-12)[:, None]
        out += self.bias
        return out


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


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


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
    with np.load(weights_file, allow_pickle=False) as arrays:
        meta = json.loads(str(arrays["meta"]))
        if meta.get("format") != FORMAT_VERSION:
            raise ModelFileError(f"{weights_file}: format {meta.get('format')!r}, expected {FORMAT_VERSION}")
        featurizers: dict[str, HashedFeaturizer] = {}
        for lang, spec in meta["featurizers"].items():
            if spec["version"] != FEATURIZER_VERSION:
                raise ModelFileError(
                    f"{weights_file}: featurizer v{spec['version']}, this code computes v{FEATURIZER_VERSION}"
                )
            featurizers[lang] = HashedFeaturizer(lang, int(spec["bits"]), int(spec["max_n"]))
        models: dict[str, LinearModel] = {}
        for name, spec in meta["models"].items():
            idf_key = f"{name}.idf"
            weights = np.asarray(arrays[f"{name}.W"], dtype=np.float32)
            models[name] = LinearModel(
                name=name,
                lang=spec["lang"],
                classes=tuple(spec["classes"]),
                weights=weights,
                bias=np.asarray(arrays[f"{name}.b"], dtype=np.float64),
                idf=np.asarray(arrays[idf_key], dtype=np.float32) if idf_key in arrays.files else None,
                label_offsets=np.asarray(spec.get("label_offsets", [0.0] * weights.shape[1]), dtype=np.float64),
            )
    return ModelBundle(version=str(manifest.get("version", meta.get("version"))), featurizers=featurizers, models=models, meta=meta)


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """`np.savez_compressed` with fixed zip timestamps, so the same arrays give the same bytes (and sha256)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(arrays):
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.asarray(arrays[name]), allow_pickle=False)
            archive.writestr(info, buffer.getvalue(), compresslevel=9)


def save_bundle(
    directory: Path,
    version: str,
    featurizers: dict[str, HashedFeaturizer],
    models: dict[str, dict[str, Any]],
    extra_manifest: dict[str, Any] | None = None,
    file_name: str = "text_models.npz",
) -> Path:
    """Write `<file_name>` + `manifest.json`. `models[name]` holds W, b, optional idf, lang, classes, label_offsets."""
    directory.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    meta: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "version": version,
        "featurizers": {lang: f.describe() for lang, f in featurizers.items()},
        "models": {},
    }
    for name, spec in models.items():
        arrays[f"{name}.W"] = np.asarray(spec["W"], dtype=np.float16)
        arrays[f"{name}.b"] = np.asarray(spec["b"], dtype=np.float32)
        if spec.get("idf") is not None:
            arrays[f"{name}.idf"] = np.asarray(spec["idf"], dtype=np.float16)
        meta["models"][name] = {
            "lang": spec["lang"],
            "classes": list(spec["classes"]),
            "label_offsets": [float(x) for x in spec.get("label_offsets", [0.0] * len(spec["b"]))],
            **{k: v for k, v in spec.items() if k.startswith("info_")},
        }
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
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return weights_file

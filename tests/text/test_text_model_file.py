"""Model files: plain arrays, checksummed, never unpickled."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from crisiswatch.detectors.text.model import (
    DEFAULT_MANIFEST,
    ModelFileError,
    file_sha256,
    load_bundle,
    write_npz,
)


def test_shipped_manifest_matches_weights() -> None:
    manifest = json.loads(DEFAULT_MANIFEST.read_text(encoding="utf-8"))
    weights = DEFAULT_MANIFEST.parent / manifest["file"]
    assert manifest["sha256"] == file_sha256(weights)
    assert manifest["version"]
    assert weights.stat().st_size < 5 * 1024 * 1024
    bundle = load_bundle()
    assert set(bundle.models) == {"en_sentiment", "en_complaint", "zh_sentiment", "zh_complaint"}


def test_shipped_file_has_no_object_arrays() -> None:
    weights = DEFAULT_MANIFEST.parent / json.loads(DEFAULT_MANIFEST.read_text(encoding="utf-8"))["file"]
    with np.load(weights, allow_pickle=False) as arrays:
        for key in arrays.files:
            assert arrays[key].dtype != object


def _copy_shipped(tmp_path: Path) -> Path:
    target = tmp_path / "models"
    shutil.copytree(DEFAULT_MANIFEST.parent, target)
    return target / "manifest.json"


def test_altered_weights_are_refused(tmp_path: Path) -> None:
    manifest = _copy_shipped(tmp_path)
    weights = manifest.parent / json.loads(manifest.read_text(encoding="utf-8"))["file"]
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="sha256"):
        load_bundle(manifest)


def test_pickled_arrays_are_never_loaded(tmp_path: Path) -> None:
    """A file with an object (pickle) array, even with a matching checksum, fails without unpickling."""
    manifest = _copy_shipped(tmp_path)
    weights = manifest.parent / "evil.npz"
    np.savez(weights, meta=np.array([{"format": 1}], dtype=object))
    document = json.loads(manifest.read_text(encoding="utf-8"))
    document.update(file="evil.npz", sha256=file_sha256(weights))
    manifest.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(ModelFileError):
        load_bundle(manifest)


def test_missing_files(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError):
        load_bundle(tmp_path / "manifest.json")
    (tmp_path / "manifest.json").write_text('{"file": "nope.npz", "sha256": "0"}', encoding="utf-8")
    with pytest.raises(ModelFileError, match="missing"):
        load_bundle(tmp_path / "manifest.json")


def test_write_npz_is_byte_reproducible(tmp_path: Path) -> None:
    arrays = {"a": np.arange(10, dtype=np.float16), "b": np.array("text")}
    write_npz(tmp_path / "one.npz", arrays)
    write_npz(tmp_path / "two.npz", arrays)
    assert (tmp_path / "one.npz").read_bytes() == (tmp_path / "two.npz").read_bytes()
    with np.load(tmp_path / "one.npz", allow_pickle=False) as loaded:
        assert loaded["a"].tolist() == list(range(10))

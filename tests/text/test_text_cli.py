"""`crisiswatch classify` / `crisiswatch train-text` entry points (the lead wires them into the CLI)."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from crisiswatch.detectors.text.cli import classify_main, train_main


class _Stdio:
    """Binary stdin/stdout stand-ins with `.buffer`, like sys.stdin/sys.stdout."""

    def __init__(self, data: bytes = b"") -> None:
        self.buffer = io.BytesIO(data)


def _classify(monkeypatch: pytest.MonkeyPatch, data: bytes, *args: str) -> list[str]:
    stdin, stdout = _Stdio(data), _Stdio()
    monkeypatch.setattr(sys, "stdin", stdin)
    monkeypatch.setattr(sys, "stdout", stdout)
    assert classify_main(list(args)) == 0
    return stdout.buffer.getvalue().decode("utf-8").split("\n")[:-1]


def test_one_line_out_per_line_in(monkeypatch: pytest.MonkeyPatch) -> None:
    data = "I love it\n\nterrible, never again\r\n快递太慢了，差评\n\xff\xfe broken utf8\n\x00\n".encode()
    data = data.replace("\xff\xfe".encode(), b"\xff\xfe")
    lines = _classify(monkeypatch, data)
    assert len(lines) == 6
    assert all(line in ("negative", "neutral", "positive") for line in lines)
    assert lines[0] == "positive" and lines[2] == "negative" and lines[3] == "negative"


def test_last_line_without_newline_and_proba(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = _classify(monkeypatch, b"great\nawful", "--proba")
    assert len(lines) == 2
    for line in lines:
        label, probability = line.split("\t")
        assert label in ("negative", "neutral", "positive")
        assert 0.0 <= float(probability) <= 1.0
    assert float(lines[1].split("\t")[1]) > float(lines[0].split("\t")[1])


def test_complaint_task_and_forced_lang(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = _classify(
        monkeypatch,
        b"my order never arrived, refund me now\nthank you!\n\n",
        "--task",
        "complaint",
        "--lang",
        "en",
        "--proba",
    )
    assert [line.split("\t")[0] for line in lines] == ["complaint", "not_complaint", "not_complaint"]


def test_unicode_line_separators_do_not_split_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = _classify(monkeypatch, "a\u2028b\x1cc\x85d\rX\n".encode())
    assert len(lines) == 1


def test_input_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "in.txt"
    path.write_text("good\nbad\n", encoding="utf-8")
    assert len(_classify(monkeypatch, b"", "--input", str(path))) == 2


def test_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert classify_main(["--input", str(tmp_path / "missing.txt")]) == 2
    assert classify_main(["--model", str(tmp_path / "manifest.json")]) == 2
    with pytest.raises(SystemExit):
        classify_main(["--task", "nope"])
    assert train_main(["--output", str(tmp_path)]) == 2
    assert "give --recipe" in capsys.readouterr().err


def test_module_entry_point() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "crisiswatch.detectors.text.cli", "classify", "--proba"],
        input=b"so happy\n\n",
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert len(done.stdout.decode().splitlines()) == 2


def _write_tsv(path: Path, rows: list[tuple[str, str]], header: tuple[str, str] = ("text", "label")) -> None:
    path.write_text("\n".join("\t".join(r) for r in [header, *rows]) + "\n", encoding="utf-8")


def test_train_one_model_on_own_file_then_classify(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A user retrains English sentiment on their own labels; the other shipped models are kept."""
    good = [f"wonderful lovely product number {i}" for i in range(40)]
    bad = [f"horrid dreadful product number {i}" for i in range(40)]
    meh = [f"the product has serial number {i}" for i in range(40)]
    data = tmp_path / "mine.tsv"
    _write_tsv(data, [(t, "pos") for t in good] + [(t, "neg") for t in bad] + [(t, "mid") for t in meh])
    out = tmp_path / "models"
    code = train_main(
        [
            "--task",
            "sentiment",
            "--lang",
            "en",
            "--input",
            str(data),
            "--label-map",
            "neg=negative,mid=neutral,pos=positive",
            "--output",
            str(out),
            "--version",
            "test-1",
        ]
    )
    assert code == 0
    assert (out / "manifest.json").is_file()
    lines = _classify(
        monkeypatch, b"horrid dreadful\nwonderful lovely\n", "--model", str(out / "manifest.json")
    )
    assert lines == ["negative", "positive"]
    lines = _classify(monkeypatch, "快递太慢了，差评\n".encode(), "--model", str(out / "manifest.json"))
    assert lines == ["negative"]  # the Chinese model came from the base bundle


def test_train_rejects_bad_label_map(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "mine.tsv"
    _write_tsv(data, [("a", "0"), ("b", "1")])
    code = train_main(
        [
            "--task",
            "sentiment",
            "--lang",
            "en",
            "--input",
            str(data),
            "--label-map",
            "0=bad",
            "--output",
            str(tmp_path / "o"),
        ]
    )
    assert code == 2
    assert "label map" in capsys.readouterr().err


def test_train_from_recipe(tmp_path: Path) -> None:
    """The recipe path (how the shipped weights are made), on tiny data with Chinese weak labels."""
    root = tmp_path / "data"
    root.mkdir()
    _write_tsv(
        root / "weibo.tsv",
        [(f"今天很开心{i}", "2") for i in range(20)]
        + [(f"快递太慢了很生气{i}", "0") for i in range(20)]
        + [(f"心情很差{i}", "0") for i in range(20)],
    )
    _write_tsv(
        root / "reviews.tsv",
        [(f"很好吃{i}", "1") for i in range(20)] + [(f"质量太差了{i}", "0") for i in range(20)],
    )
    recipe = tmp_path / "recipe.json"
    recipe.write_text(
        """{"version": "tiny", "models": [
        {"lang": "zh", "task": "sentiment", "scaling": "nb", "sources": [{"path": "weibo.tsv", "label_map": "0=negative,2=positive"}]},
        {"lang": "zh", "task": "complaint", "stack": {"model": "zh_sentiment", "scale": 0.3}, "keywords": true,
         "sources": [{"path": "reviews.tsv", "label_map": "0=complaint,1=not_complaint"},
                     {"path": "weibo.tsv", "label_map": "0=complaint_if_keyword,2=not_complaint"}]}]}""",
        encoding="utf-8",
    )
    out = tmp_path / "out"
    assert train_main(["--recipe", str(recipe), "--data-root", str(root), "--output", str(out)]) == 0
    first = (out / "text_models.npz").read_bytes()
    assert train_main(["--recipe", str(recipe), "--data-root", str(root), "--output", str(out)]) == 0
    assert (out / "text_models.npz").read_bytes() == first  # reproducible, byte for byte
    from crisiswatch.detectors.text import TextAnalyzer

    analyzer = TextAnalyzer.load(out / "manifest.json")
    result = analyzer.analyze("质量太差了")
    assert result.complaint_probability is not None and result.negative_probability is not None

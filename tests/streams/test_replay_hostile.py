"""`crisiswatch replay` on a file mixing valid and hostile lines (the reliability issue's hostile-input case)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import planted

HOSTILE: list[tuple[bytes, str]] = planted.MALFORMED + [
    (b"[" * 100_000 + b"]" * 100_000, "invalid_json"),
    (
        b'{"id": "big", "created_at": 1790000000, "author": {"id": "u", "followers": ' + b"9" * 5000 + b"}}",
        "invalid_json",
    ),
    (
        json.dumps({"id": "x" * 300, "created_at": planted.START_S, "author": {"id": "u"}}).encode(),
        "id_too_long",
    ),
    (json.dumps({"id": "zero", "created_at": 0, "author": {"id": "u"}}).encode(), "timestamp_too_old"),
    (
        json.dumps(
            {"id": "long", "created_at": planted.START_S, "text": "x" * 70_000, "author": {"id": "u"}}
        ).encode(),
        "text_too_long",
    ),
    (b"\xef\xbb\xbf" + b"\x00garbage", "invalid_json"),
]


def replay(
    tmp_path: Path, name: str, lines: list[bytes], *extra: str
) -> tuple[subprocess.CompletedProcess[str], list[dict], list[dict]]:
    source = tmp_path / f"{name}.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n")
    alerts, rejects = tmp_path / f"{name}-alerts.jsonl", tmp_path / f"{name}-rejects.jsonl"
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps({"brands": planted.BRAND_CONFIG}))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "crisiswatch.streams.cli",
            "replay",
            str(source),
            "--alerts-out",
            str(alerts),
            "--rejects-out",
            str(rejects),
            "--config",
            str(config),
            "--quiet",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    read = lambda path: [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []  # noqa: E731
    return result, read(alerts), read(rejects)


def test_hostile_lines_are_reported_and_change_nothing(tmp_path: Path) -> None:
    valid = planted.encode(planted.stream())
    mixed: list[bytes] = []
    expected_rejects: list[tuple[int, str]] = []
    for index, line in enumerate(valid):
        mixed.append(line)
        if index % 40 == 0:
            bad, reason = HOSTILE[(index // 40) % len(HOSTILE)]
            mixed.append(bad)
            expected_rejects.append((len(mixed), reason))

    clean_result, clean_alerts, _ = replay(tmp_path, "clean", valid)
    mixed_result, mixed_alerts, rejects = replay(tmp_path, "mixed", mixed)
    assert clean_result.returncode == 0 and mixed_result.returncode == 0, mixed_result.stderr
    assert clean_alerts and mixed_alerts == clean_alerts  # identical incidents, ids included
    got = [(int(r["source"].rsplit(":", 1)[1]), r["reason"]) for r in rejects]
    assert got == expected_rejects
    assert f"{len(expected_rejects):,} rejected" in mixed_result.stderr

    strict, _, _ = replay(tmp_path, "strict", mixed, "--strict")
    assert strict.returncode == 1

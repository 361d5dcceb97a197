"""`crisiswatch replay` end to end in-process: inputs (gz, stdin, CSV mapping), determinism, scoring,
the HTML report, route simulation, and the warm-start state round trip."""

from __future__ import annotations

import csv
import gzip
import json
import re
from pathlib import Path

import pytest
from replay_helpers import demo_stream, run_cli

from crisiswatch.detectors.engine import DetectionEngine
from crisiswatch.streams.config import load_settings
from crisiswatch.streams.evaluation import evaluate, read_labelled_incidents
from crisiswatch.streams.replay import WarmStart, read_state_file
from crisiswatch.streams.sources import CsvRowEncoder, parse_csv_mapping


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The plain replay of the demo stream: every other input form must give these exact bytes."""
    stream = demo_stream()
    out = tmp_path_factory.mktemp("baseline") / "alerts.jsonl"
    run = run_cli(
        "replay", str(stream.posts), "--config", str(stream.config), "--alerts-out", str(out), "--quiet"
    )
    assert run.status == 0, run.err
    data = out.read_bytes()
    assert data.count(b"\n") >= 2, "the demo stream must produce incident events"
    return data


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path | str]:
    """One replay of the demo stream with every output option at once (score, report, route, state)."""
    stream = demo_stream()
    directory = tmp_path_factory.mktemp("full")
    paths = {
        name: directory / name
        for name in ("alerts.jsonl", "score.json", "report.html", "notifications.jsonl", "state.json")
    }
    run = run_cli(
        "replay", str(stream.posts), "--config", str(stream.config), "--alerts-out", str(paths["alerts.jsonl"]), "--quiet",
        "--incidents", str(stream.incidents), "--score-out", str(paths["score.json"]), "--report", str(paths["report.html"]),
        "--route", "--notifications-out", str(paths["notifications.jsonl"]), "--save-state", str(paths["state.json"]),
    )  # fmt: skip
    assert run.status == 0, run.err
    return {**paths, "err": run.err}


def _replay(
    tmp_path: Path, *inputs: str, extra: tuple[str, ...] = (), stdin: bytes | None = None
) -> tuple[bytes, str]:
    stream = demo_stream()
    out = tmp_path / f"alerts-{len(list(tmp_path.iterdir()))}.jsonl"
    run = run_cli(
        "replay",
        *inputs,
        "--config",
        str(stream.config),
        "--alerts-out",
        str(out),
        "--quiet",
        *extra,
        stdin=stdin,
    )
    assert run.status == 0, run.err
    return out.read_bytes(), run.err


def test_replay_is_deterministic(tmp_path: Path, baseline: bytes) -> None:
    again, err = _replay(tmp_path, str(demo_stream().posts))
    assert again == baseline
    assert "replayed" in err


def test_gzip_input_gives_the_same_alerts(tmp_path: Path, baseline: bytes) -> None:
    packed = tmp_path / "demo.jsonl.gz"
    packed.write_bytes(gzip.compress(demo_stream().posts.read_bytes()))
    assert _replay(tmp_path, str(packed))[0] == baseline


def test_stdin_input_gives_the_same_alerts(tmp_path: Path, baseline: bytes) -> None:
    assert _replay(tmp_path, "-", stdin=demo_stream().posts.read_bytes())[0] == baseline


def _to_csv(source: Path, target: Path) -> None:
    """The demo stream as a CSV with its own column names (as an export from another tool would be)."""
    columns = [
        "post_id",
        "ts",
        "body",
        "type",
        "parent",
        "root",
        "user",
        "fans",
        "blue_tick",
        "platform",
        "lang",
        "url",
        "brands",
    ]
    with open(target, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for line in source.read_text(encoding="utf-8").splitlines():
            post = json.loads(line)
            author = post["author"]
            writer.writerow(
                [post["id"], post["created_at"], post["text"], post["kind"], post.get("parent_id", ""), post.get("root_id", ""), author["id"],
                 author["followers"], "yes" if author["verified"] else "no", post.get("platform", ""), post.get("lang", ""), post.get("url", ""),
                 "|".join(post.get("brands", []))]
            )  # fmt: skip


CSV_MAP = "id=post_id,created_at=ts,text=body,kind=type,parent_id=parent,root_id=root,author.id=user,author.followers=fans,author.verified=blue_tick"


def test_csv_with_a_column_mapping_gives_the_same_alerts(tmp_path: Path, baseline: bytes) -> None:
    target = tmp_path / "demo.csv"
    _to_csv(demo_stream().posts, target)
    assert _replay(tmp_path, str(target), extra=("--csv-map", CSV_MAP))[0] == baseline


def test_csv_row_encoding() -> None:
    encoder = CsvRowEncoder(
        ["id", "when", "text", "fans", "verified", "brands", "sentiment", "author_id"],
        parse_csv_mapping("created_at=when,author.followers=fans,author.verified=verified"),
    )
    row = json.loads(encoder.encode(["p1", "1795525200000", "hi", "12", "TRUE", "a;b", "0.9", "u1"]))
    assert row == {
        "id": "p1",
        "created_at": 1795525200000,
        "text": "hi",
        "author": {"id": "u1", "followers": 12, "verified": True},
        "sentiment": 0.9,
        "brands": ["a", "b"],
    }
    # Empty cells are absent (the contract then applies its defaults or rejects), bad values pass through to be rejected.
    assert json.loads(encoder.encode(["p2", "", "x", "many", "", "", "", ""])) == {
        "id": "p2",
        "text": "x",
        "author": {"followers": "many"},
    }


@pytest.mark.parametrize(
    ("text", "message"), [("nonsense", "FIELD=COLUMN"), ("color=c", "one of"), ("text=", "FIELD=COLUMN")]
)
def test_csv_mapping_errors(text: str, message: str) -> None:
    from crisiswatch.detectors.settings import ConfigError

    with pytest.raises(ConfigError, match=message):
        parse_csv_mapping(text)


def test_csv_mapping_to_a_missing_column_is_a_usage_error(tmp_path: Path) -> None:
    target = tmp_path / "tiny.csv"
    target.write_text("id,created_at,text\np1,2026-11-24T13:00:00Z,hi\n", encoding="utf-8")
    run = run_cli(
        "replay",
        str(target),
        "--alerts-out",
        str(tmp_path / "o.jsonl"),
        "--csv-map",
        "author.id=user",
        "--quiet",
    )
    assert run.status == 2 and "--csv-map" in run.err and "user" in run.err


def test_score_against_labelled_incidents(full_run: dict[str, Path | str]) -> None:
    score = json.loads(Path(full_run["score.json"]).read_text(encoding="utf-8"))
    err = str(full_run["err"])
    assert score["crises"] == 1 and score["detected"] == 1, err
    assert score["recall"] == 1.0
    assert score["outcomes"][0]["early"] is not None
    assert "recall" in err and "false alerts / brand / day" in err


def test_report_is_self_contained(full_run: dict[str, Path | str]) -> None:
    document = Path(full_run["report.html"]).read_text(encoding="utf-8")
    references = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)["']""", document, flags=re.IGNORECASE)
    images = re.findall(r"<img\b", document)
    assert len(images) >= 5  # per-day counts, 3 brands, at least one growth curve
    assert references and all(reference.startswith("data:image/png;base64,") for reference in references)
    assert not re.search(r"<(?:script|link|iframe)\b|@import|url\(", document, flags=re.IGNORECASE)
    for brand in ("Northwind Air", "ByteBrew Coffee", "快达快递"):
        assert brand in document
    assert "cascade growth" in document and "Score against labelled incidents" in document


def test_route_simulation_writes_notifications_and_keeps_the_alert_lines(
    full_run: dict[str, Path | str], baseline: bytes
) -> None:
    assert (
        Path(full_run["alerts.jsonl"]).read_bytes() == baseline
    )  # the plain output stays the pre-routing events
    lines = [
        json.loads(line)
        for line in Path(full_run["notifications.jsonl"]).read_text(encoding="utf-8").splitlines()
    ]
    assert lines, full_run["err"]
    paged = {json.loads(line)["incident_id"] for line in baseline.decode().splitlines()}
    for line in lines:
        assert {"id", "receiver", "kind", "group_key", "event", "created_at_s"} <= set(line)
        assert line["event"]["incident_id"] in paged
    times = [line["created_at_s"] for line in lines]
    assert times == sorted(times), "notifications come out in event-time order"
    assert "route simulation" in str(full_run["err"])


def test_route_options_need_route(tmp_path: Path) -> None:
    run = run_cli(
        "replay",
        str(demo_stream().posts),
        "--alerts-out",
        str(tmp_path / "a.jsonl"),
        "--notifications-out",
        str(tmp_path / "n.jsonl"),
        "--quiet",
    )
    assert run.status == 2 and "--route" in run.err


def test_alerts_out_is_required_without_to_kafka(tmp_path: Path) -> None:
    run = run_cli("replay", str(demo_stream().posts), "--quiet")
    assert run.status == 2 and "--alerts-out" in run.err


# -- warm start ----------------------------------------------------------------------------------------------
def _key(event: dict[str, object]) -> tuple[object, ...]:
    return (
        event["incident_id"],
        event["status"],
        event["severity"],
        event["detected_at"],
        event["started_at"],
    )


def test_save_state_and_continue_scores_the_same_as_one_run(tmp_path: Path) -> None:
    stream = demo_stream()
    lines = stream.posts.read_text(encoding="utf-8").splitlines(keepends=True)
    cut = int(len(lines) * 0.55)  # mid-way through the viral complaint
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    first.write_text("".join(lines[:cut]), encoding="utf-8")
    second.write_text("".join(lines[cut:]), encoding="utf-8")
    state = tmp_path / "state.json.gz"
    whole, _ = _replay(tmp_path, str(first), str(second))
    part_one, err = _replay(tmp_path, str(first), extra=("--save-state", str(state)))
    assert "state saved" in err
    part_two, _ = _replay(tmp_path, str(second), extra=("--initial-state", str(state)))
    continuous = [json.loads(line) for line in whole.decode().splitlines()]
    resumed = [json.loads(line) for line in (part_one + part_two).decode().splitlines()]
    assert [_key(e) for e in resumed] == [_key(e) for e in continuous]
    incidents = read_labelled_incidents(stream.incidents)
    scores = [
        evaluate(incidents, events, brands=3, duration_s=6 * 3600.0).to_dict()
        for events in (continuous, resumed)
    ]
    assert scores[0] == scores[1]
    # A cold start on the second half alone forgets the cascade's first half: the state is what carries it.
    cold, _ = _replay(tmp_path, str(second))
    assert [_key(json.loads(line)) for line in cold.decode().splitlines()] != [
        _key(e) for e in resumed[len(part_one.decode().splitlines()) :]
    ]


def test_state_file_is_deterministic_and_warm_starts_an_engine(
    tmp_path: Path, full_run: dict[str, Path | str]
) -> None:
    stream = demo_stream()
    one, two = Path(full_run["state.json"]), tmp_path / "two.json"
    _replay(tmp_path, str(stream.posts), extra=("--save-state", str(two)))
    assert one.read_bytes() == two.read_bytes()
    state = read_state_file(str(one))
    assert set(state["brands"]) == {"Northwind Air", "ByteBrew Coffee", "快达快递"}
    settings = load_settings(stream.config)
    warm = WarmStart.from_file(str(one))
    engine = DetectionEngine(settings.detectors, settings.brands_by_name)
    assert warm.load_brand(engine, "Northwind Air") and not warm.load_brand(engine, "Unknown")
    assert engine.brand_state("Northwind Air") == state["brands"]["Northwind Air"]
    root = next(iter(state["cascades"]))
    assert warm.load_cascade(engine, root) and engine.cascade_state(root) == state["cascades"][root]


def test_a_state_file_from_elsewhere_is_refused(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.json"
    bogus.write_text('{"hello": 1}', encoding="utf-8")
    run = run_cli(
        "replay",
        str(demo_stream().posts),
        "--alerts-out",
        str(tmp_path / "a.jsonl"),
        "--initial-state",
        str(bogus),
        "--quiet",
    )
    assert run.status == 2 and "replay --save-state" in run.err

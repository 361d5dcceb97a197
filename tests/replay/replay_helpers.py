"""Shared by tests/replay: the demo stream on disk (generated once per session) and the CLI run in-process."""

from __future__ import annotations

import contextlib
import io
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from tempfile import mkdtemp

from crisiswatch.streams.cli import main
from crisiswatch.streams.simulate import brands_document, simulate, write_posts


@dataclass(frozen=True)
class Stream:
    posts: Path
    incidents: Path
    config: Path
    lines: int


@cache
def demo_stream() -> Stream:
    """`simulate --preset demo`: ~5k posts, a viral complaint (crisis) and a viral campaign (not)."""
    import yaml

    directory = Path(mkdtemp(prefix="crisiswatch-replay-tests-"))
    scenario = simulate("demo")
    posts = directory / "demo.jsonl"
    write_posts(scenario, str(posts))
    incidents = directory / "demo.incidents.jsonl"
    scenario.incidents_to_jsonl(incidents)
    config = directory / "demo.yaml"
    config.write_text(yaml.safe_dump(brands_document(scenario), allow_unicode=True), encoding="utf-8")
    return Stream(posts, incidents, config, len(scenario.posts))


@dataclass
class Run:
    status: int
    out: str
    err: str


def run_cli(*argv: str, stdin: bytes | None = None) -> Run:
    """`crisiswatch ARGV...` in this process, with stdout/stderr captured (and stdin fed when given)."""
    out, err = io.StringIO(), io.StringIO()
    saved_stdin = sys.stdin
    if stdin is not None:
        sys.stdin = io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8")
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = main(list(argv))
    finally:
        sys.stdin = saved_stdin
    return Run(status, out.getvalue(), err.getvalue())

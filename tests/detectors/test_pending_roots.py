"""A cascade that is only its root is kept as a `PendingRoot` until its first reaction (most posts never get
one). These tests hold it to the promise in its docstring: the same states, scores, expiry and learnt
baseline as a cascade built when the root arrived."""

from __future__ import annotations

import dataclasses
import zlib

from detector_helpers import T0, cascade, make_post

from crisiswatch.detectors.brand import CascadePeaks
from crisiswatch.detectors.cascade import ROOT_TEXT_CHARS, CascadeState, PendingRoot
from crisiswatch.detectors.config import DetectorsConfig
from crisiswatch.detectors.engine import DetectionEngine


def _built_at_the_root(root_id: str, root, config: DetectorsConfig) -> dict:
    """What a cascade built when the root arrived holds after it (the steps `update_cascade` took)."""
    state = CascadeState(root_id, config)
    state.admit(zlib.crc32(root.post.id.encode()), config.dedup_ids)
    state.note_brands(root, True)
    state.forward.update(root)
    return state.state()


def test_a_root_alone_is_pending_and_its_saved_state_is_a_whole_cascade():
    engine = DetectionEngine(DetectorsConfig())
    root = make_post("r", T0, kind="post", followers=5000, negative=0.9, text="my parcel is lost")
    assert engine.update_cascade(root) == []
    assert isinstance(engine._cascades["r"], PendingRoot)
    assert engine.drain_dirty()[0] == {"r"}  # written to the table like any new cascade
    assert engine.cascade_state("r") == _built_at_the_root("r", root, DetectorsConfig())
    assert engine.active_keys == (1, 0)


def test_a_cascade_restored_from_a_pending_root_scores_like_one_that_never_paused():
    posts = cascade("bad", T0, 150, 20, comment_every=4)
    live = DetectionEngine(DetectorsConfig())
    live.update_cascade(posts[0])
    restored = DetectionEngine(DetectorsConfig())
    state = live.cascade_state("bad")
    assert state is not None
    restored.load_cascade_state("bad", state)
    out_live, out_restored = [], []
    for post in posts[1:]:
        out_live += live.update_cascade(post)
        out_restored += restored.update_cascade(post)
    assert [(a.severity, a.metrics) for a in out_live] == [(a.severity, a.metrics) for a in out_restored]
    assert any(a.severity in ("warning", "critical") for a in out_live)  # it paged
    assert live.cascade_state("bad") == restored.cascade_state("bad")


def test_the_batch_path_builds_a_pending_cascade_as_the_per_post_path_does():
    posts = cascade("bad", T0, 120, 20, comment_every=4)
    per_post, batch = DetectionEngine(DetectorsConfig()), DetectionEngine(DetectorsConfig())
    per_post.update_cascade(posts[0])
    batch.update_cascade(posts[0])
    for post in posts[1:]:
        per_post.update_cascade(post)
    batch.update_many(posts[1:])
    a, b = per_post.cascade_state("bad"), batch.cascade_state("bad")
    assert a is not None and b is not None
    assert (a["root"], a["brands"], a["ids"]) == (b["root"], b["brands"], b["ids"])
    assert a["forward"]["counts"] == b["forward"]["counts"]


def test_a_long_root_is_trimmed_while_pending_to_what_the_cascade_keeps():
    long_text = "my order never arrived " * 500  # 11.5 kB
    root = make_post("r", T0, kind="post", negative=0.9, text=long_text)
    pending = PendingRoot(root, 1)
    assert len(pending.item.post.text) == len(pending.item.own_text) == ROOT_TEXT_CHARS
    engine = DetectionEngine(DetectorsConfig())
    engine.update_cascade(root)
    assert engine.cascade_state("r") == _built_at_the_root("r", root, DetectorsConfig())
    # an own text that is empty (a bare forward as root) falls back to the post's text, trimmed the same way
    bare = dataclasses.replace(root, own_text="")
    assert PendingRoot(bare, 1).item.own_text == ""
    engine_bare = DetectionEngine(DetectorsConfig())
    engine_bare.update_cascade(bare)
    assert engine_bare.cascade_state("r") == _built_at_the_root("r", bare, DetectorsConfig())


def test_a_redelivered_pending_root_counts_as_a_duplicate_once_the_cascade_is_built():
    engine = DetectionEngine(DetectorsConfig())
    root = make_post("r", T0, kind="post", negative=0.9, text="lost parcel")
    engine.update_cascade(root)
    engine.update_cascade(root)
    engine.update_cascade(make_post("f1", T0 + 5, root_id="r"))
    state = engine.cascade_state("r")
    assert state is not None
    assert state["duplicates"] == 1
    assert state["forward"]["counts"][:2] == [1, 0]  # one forward, no comment: the root was not counted


def test_a_pending_root_that_expires_teaches_its_brand_a_peak_of_zero():
    config = DetectorsConfig()
    engine = DetectionEngine(config)
    engine.update_brand("acme", make_post("seed", T0, kind="post"))  # the brand's state exists
    engine.update_cascade(make_post("r", T0, kind="post", negative=0.1, text="hello"))
    engine.drain_dirty()
    engine.advance(T0 + config.cascade_idle_s + 61)
    assert engine.active_keys[0] == 0
    assert engine.expired_cascades == 1
    cascades, brands = engine.drain_dirty()
    assert cascades == {"r"} and brands == {"acme"}
    assert engine.cascade_state("r") is None
    peaks = engine._brand_states["acme"].cascade_peaks
    assert peaks.counts[CascadePeaks.bucket(0.0)] == 1.0
    assert sum(peaks.counts) == 1.0


def test_the_batch_path_keeps_a_root_alone_pending_and_builds_it_within_one_batch():
    quiet = [make_post(f"q{i}", T0 + i, kind="post", root_id=f"q{i}", text="hello") for i in range(6)]
    batch = DetectionEngine(DetectorsConfig())
    batch.update_many(quiet)
    assert all(isinstance(batch._cascades[p.post.id], PendingRoot) for p in quiet)
    posts = cascade("bad", T0, 120, 20, comment_every=4)
    per_post = DetectionEngine(DetectorsConfig())
    for post in posts:
        per_post.update_cascade(post)
    together = DetectionEngine(DetectorsConfig())
    together.update_many([posts[0], posts[0], *posts[1:]])  # the root, redelivered, then its reactions
    a, b = per_post.cascade_state("bad"), together.cascade_state("bad")
    assert a is not None and b is not None
    assert (a["root"], a["brands"], a["forward"]["counts"]) == (
        b["root"],
        b["brands"],
        b["forward"]["counts"],
    )
    assert b["duplicates"] == 1


def test_with_the_duplicate_filter_off_a_pending_root_seen_again_is_observed_again():
    config = DetectorsConfig.from_mapping({"dedup_ids": 0})
    engine = DetectionEngine(config)
    engine.update_cascade(make_post("r", T0, kind="post", negative=0.9, text="first words"))
    engine.drain_dirty()
    again = make_post("r", T0, kind="post", negative=0.9, text="edited words")
    engine.update_cascade(again)
    assert engine.drain_dirty()[0] == {"r"}
    assert engine.cascade_state("r") == _built_at_the_root("r", again, config)

"""Speed and memory of the detectors on one core (synthetic, seeded stream).

    python bench/detector_speed.py [--posts 200000] [--repeats 3] [--keys 1000000]

Reports (median of repeats, with the range; wall clock and process CPU time: on a shared machine the CPU
figure is the steadier one):
- events/s through `DetectionEngine.update_many` (every detector, both sides) and through the per-event
  path (`update_cascade` + `update_brand` per post: what the worker and replay run);
- events/s through the `update_many` of the count and rate detectors alone (`VolumeSurge`, `ForwardSurge`):
  what the issue's 300k/s goal names;
- counts/s through the count detector alone (`CountSurge.update`) and through `VolumeSurge.update` with
  `IntervalCount` events (the NAB path);
- JSON bytes of serialised state per cascade and per brand (count/rate part and page-content part);
- one million cascade keys passing through `advance`: keys held stay bounded.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
import tracemalloc

import numpy as np

from crisiswatch.detectors.base import PostBatch
from crisiswatch.detectors.cascade import ForwardSurge
from crisiswatch.detectors.config import DetectorsConfig
from crisiswatch.detectors.engine import DetectionEngine
from crisiswatch.detectors.events import Author, EnrichedPost, Post
from crisiswatch.detectors.volume import CountSurge, IntervalCount, VolumeSurge

T0 = 1_700_000_000.0


def synthetic_stream(n: int, seed: int = 7, brands: int = 20, per_s: float = 200.0) -> list[EnrichedPost]:
    """n posts in event-time order: roots, then forwards (no text) and comments (text) on live roots."""
    rng = random.Random(seed)
    posts: list[EnrichedPost] = []
    live: list[tuple[str, tuple[str, ...]]] = []
    t = T0
    for i in range(n):
        t += rng.expovariate(per_s)
        if not live or rng.random() < 0.05:
            brand = (f"brand{int(rng.paretovariate(1.2)) % brands}",)
            root = f"r{i}"
            live.append((root, brand))
            if len(live) > 2000:
                live.pop(0)
            kind, root_id, text, neg = "post", root, "the product broke again", rng.random()
        else:
            # preferential: recent and big cascades get more
            root_id, brand = live[-1 - int(rng.paretovariate(1.1)) % len(live)]
            if rng.random() < 0.6:
                kind, text, neg = "forward", "", None
            else:
                kind, text, neg = "comment", "me too, awful", rng.random()
        author = Author(
            id=f"u{rng.randrange(10**6)}",
            followers=int(rng.paretovariate(1.0) * 50),
            verified=rng.random() < 0.01,
        )
        post = Post(
            id=f"p{i}",
            created_at_s=t,
            text=text,
            kind=kind,
            parent_id=None if kind == "post" else root_id,  # type: ignore[arg-type]
            root_id=root_id,
            author=author,
            brands=brand,
        )
        posts.append(
            EnrichedPost(post=post, lang="en", brands=brand, own_text=text, negative_probability=neg)
        )
    return posts


def count_and_rate_many(posts: list[EnrichedPost], config: DetectorsConfig, size: int = 500) -> None:
    """What the issue's 300k/s goal names: the count (`VolumeSurge`, per brand) and rate (`ForwardSurge`,
    per cascade) detectors' `update_many` over batches of `size`, with the caller's grouping of rows by key
    (the columns, and a dict lookup per post and key). Not the engine's duplicate filter, negative share,
    paging or page content: `DetectionEngine.update_many` above is all of that."""
    cascades: dict[str, ForwardSurge] = {}
    brands: dict[str, VolumeSurge] = {}
    for start in range(0, len(posts), size):
        chunk = posts[start : start + size]
        batch = PostBatch(chunk)
        for detectors, keyed in ((cascades, False), (brands, True)):
            index: dict[str, int] = {}
            chosen: list = []
            rows: list[int] = []
            owners: list[int] = []
            for r, item in enumerate(chunk):
                for key in item.brands if keyed else (item.post.root_id,):
                    o = index.get(key)
                    if o is None:
                        found = detectors.get(key)
                        if found is None:
                            found = detectors[key] = (
                                VolumeSurge(key, config.volume_surge)
                                if keyed
                                else ForwardSurge(key, config.forward_surge)
                            )
                        o = index[key] = len(chosen)
                        chosen.append(found)
                    rows.append(r)
                    owners.append(o)
            kind = VolumeSurge if keyed else ForwardSurge
            kind.update_many(chosen, batch, np.array(rows, dtype=np.int64), np.array(owners, dtype=np.int64))


def timed(fn) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of one call."""
    start, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - start, time.process_time() - cpu


def rates(n: int, runs: list[tuple[float, float]]) -> str:
    wall = [n / w for w, _ in runs]
    cpu = [n / c for _, c in runs]
    return (
        f"median {statistics.median(wall):,.0f}/s wall (range {min(wall):,.0f}..{max(wall):,.0f}), "
        f"{statistics.median(cpu):,.0f}/s CPU (range {min(cpu):,.0f}..{max(cpu):,.0f}), {len(runs)} repeats"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--posts", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--keys", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    config = DetectorsConfig()
    posts = synthetic_stream(args.posts)
    n = len(posts)

    batch: list[tuple[float, float]] = []
    single: list[tuple[float, float]] = []
    for _ in range(args.repeats):
        engine = DetectionEngine(config)
        batch.append(timed(lambda e=engine: [e.update_many(posts[i : i + 500]) for i in range(0, n, 500)]))
        engine = DetectionEngine(config)

        def per_event(e: DetectionEngine = engine) -> None:
            for p in posts:
                e.update_cascade(p)
                for b in p.brands:
                    e.update_brand(b, p)

        single.append(timed(per_event))
    print(f"update_many (all detectors, batches of 500): {rates(n, batch)}")
    print(f"per-event update_cascade+update_brand:       {rates(n, single)}")

    count_and_rate: list[tuple[float, float]] = []
    for _ in range(args.repeats):
        count_and_rate.append(timed(lambda: count_and_rate_many(posts, config)))
    print(f"update_many, count and rate detectors only:  {rates(n, count_and_rate)}")

    counts = [float(random.Random(3).randrange(50)) for _ in range(200_000)]
    alone: list[tuple[float, float]] = []
    through: list[tuple[float, float]] = []
    for _ in range(args.repeats):
        detector = CountSurge(config.volume_surge)
        alone.append(timed(lambda d=detector: [d.update(T0 + 300.0 * i, c) for i, c in enumerate(counts)]))
        surge = VolumeSurge("bench", config.volume_surge)
        through.append(
            timed(lambda d=surge: [d.update(IntervalCount(T0 + 300.0 * i, c)) for i, c in enumerate(counts)])
        )
    print(f"CountSurge.update (count core alone):        {rates(len(counts), alone)}")
    print(f"VolumeSurge.update(IntervalCount):           {rates(len(counts), through)}")

    engine = DetectionEngine(config)
    engine.update_many(posts)
    roots = list(engine._cascades)
    sizes = [len(json.dumps(engine.cascade_state(r), separators=(",", ":"))) for r in roots]
    content = []
    for r in roots:
        state = engine.cascade_state(r)
        assert state is not None
        root = state["root"]
        # cascade state v3 ("forward"/"negative"); v2 named the sub-states after the detectors
        forward, negative = (
            state.get("forward") or state["forward_surge"],
            state.get("negative") or state["negative_surge"],
        )
        samples, amplifiers = negative["samples"], forward["amp"]
        content.append(len(json.dumps([root[3], root[4], samples, amplifiers], separators=(",", ":"))))
    brand_sizes = [
        len(json.dumps(engine.brand_state(b), separators=(",", ":"))) for b in engine._brand_states
    ]
    counting = [s - c for s, c in zip(sizes, content, strict=True)]
    print(
        f"cascade state JSON bytes: median {statistics.median(sizes):.0f}, p99 {sorted(sizes)[int(0.99 * len(sizes))]}, "
        f"max {max(sizes)}; count/rate part median {statistics.median(counting):.0f} max {max(counting)}; "
        f"page content (root text, url, samples, amplifiers) median {statistics.median(content):.0f} max {max(content)}"
    )
    print(f"brand state JSON bytes: median {statistics.median(brand_sizes):.0f}, max {max(brand_sizes)}")

    # One million cascades passing through: each key gets one forward, event time moves on, keys expire.
    engine = DetectionEngine(config)
    author = Author(id="u", followers=10)
    tracemalloc.start()
    held = []
    step = args.keys // 10
    start = time.perf_counter()
    for k in range(args.keys):
        t = T0 + k * 1.0  # 1M keys over 11.6 days of event time: ~21.6k alive at cascade_idle_s=6 h
        post = Post(
            id=f"f{k}",
            created_at_s=t,
            text="",
            kind="forward",
            parent_id=f"r{k}",
            root_id=f"r{k}",
            author=author,
            brands=("acme",),
        )
        engine.update_cascade(
            EnrichedPost(post=post, lang="en", brands=("acme",), own_text="", negative_probability=None)
        )
        if k % 1000 == 999:
            engine.advance(t)
            engine.drain_dirty()
        if k % step == step - 1:
            held.append((k + 1, engine.active_keys[0], tracemalloc.get_traced_memory()[0] // 1024 // 1024))
    elapsed = time.perf_counter() - start
    tracemalloc.stop()
    print(f"1M keys through advance ({elapsed:.0f} s, cascade_idle_s={config.cascade_idle_s:g}):")
    for seen, live, mib in held:
        print(f"  after {seen:>9,} keys: {live:>7,} held, {mib} MiB traced")
    return 0


if __name__ == "__main__":
    sys.exit(main())

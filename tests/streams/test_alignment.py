"""Event-time alignment of brand observations from many source partitions (scenario tables)."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from crisiswatch.streams.alignment import AlignedMerge

NOW = 1000.0  # the injected monotonic clock


def test_releases_only_up_to_the_slowest_source() -> None:
    #   source 0: 10 20 30 ........ (fast: a backlog chunk)
    #   source 1: 12 .............. (slow, still sending)
    merge: AlignedMerge[str] = AlignedMerge(idle_after_s=10, max_buffered=1000)
    for t in (10, 20, 30):
        merge.add(0, t, f"a{t}", NOW)
    merge.add(1, 12, "b12", NOW)
    assert merge.release(NOW) == ["a10", "b12"]
    merge.advance(1, 25, NOW)  # heartbeat: source 1 reached 25
    assert merge.release(NOW) == ["a20"]
    merge.add(1, 40, "b40", NOW)
    assert merge.release(NOW) == ["a30"]
    assert len(merge) == 1


def test_a_source_far_behind_but_sending_still_holds_the_others() -> None:
    merge: AlignedMerge[str] = AlignedMerge(idle_after_s=10, max_buffered=1000)
    merge.add(0, 0, "old", NOW)
    merge.add(1, 100_000, "new", NOW)
    assert merge.release(NOW) == ["old"]


def test_each_sources_own_order_is_kept_even_when_its_times_are_out_of_order() -> None:
    merge: AlignedMerge[str] = AlignedMerge(idle_after_s=10, max_buffered=1000)
    merge.add(0, 20, "first", NOW)
    merge.add(0, 15, "second", NOW)  # slightly out of order inside the source
    merge.add(1, 100, "x", NOW)
    assert merge.release(NOW) == ["first", "second"]


def test_a_silent_source_is_idle_and_does_not_block() -> None:
    merge: AlignedMerge[str] = AlignedMerge(idle_after_s=10, max_buffered=1000)
    merge.add(0, 0, "from-a-silent-source", NOW)
    merge.add(1, 1000, "new", NOW + 5)
    assert merge.release(NOW + 5) == ["from-a-silent-source"]
    merge.add(1, 1010, "newer", NOW + 11)  # source 0 has been silent for 11 s
    assert merge.release(NOW + 11) == ["new", "newer"]


def test_a_full_buffer_releases_its_oldest() -> None:
    merge: AlignedMerge[int] = AlignedMerge(idle_after_s=10, max_buffered=3)
    merge.add(1, 0, -1, NOW)
    for t in range(1, 6):
        merge.add(0, t * 10, t, NOW)
    released = merge.release(NOW)
    assert released[:2] == [-1, 1] and len(merge) <= 3


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 5000)), max_size=60))
def test_everything_is_released_in_per_source_order_once_all_sources_catch_up(
    items: list[tuple[int, int]],
) -> None:
    merge: AlignedMerge[tuple[int, int]] = AlignedMerge(idle_after_s=10, max_buffered=10_000)
    released: list[tuple[int, int]] = []
    for index, (source, t) in enumerate(items):
        merge.add(source, t, (source, index), NOW)
        released += merge.release(NOW)
    for source in range(4):
        merge.advance(source, 10**9, NOW)
    released += merge.release(NOW)
    assert sorted(released) == sorted((source, index) for index, (source, _) in enumerate(items))
    for source in range(4):
        indices = [index for s, index in released if s == source]
        assert indices == sorted(indices)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 2), st.floats(0, 8)), min_size=1, max_size=60
    ),  # (source, lag behind its source's newest time)
    st.lists(st.integers(1, 10), min_size=1, max_size=30),  # how many arrivals between two releases
)
def test_posts_out_of_order_within_the_hold_back_merge_the_same_whatever_the_release_timing(
    arrivals: list[tuple[int, float]], chunks: list[int]
) -> None:
    """One worker and two release at different moments (batching, heartbeats); with each source's posts at
    most `hold_back_s` out of order, the merged order must not depend on when releases happen. Without the
    hold-back, it did (bench/results/perf.md, seventh session: brand incidents differed)."""
    newest = [0.0, 0.0, 0.0]
    stream = []
    for i, (source, lag) in enumerate(arrivals):
        newest[source] += 1.0
        stream.append((source, newest[source] - lag, f"{source}:{i}"))

    def merged(release_every: list[int]) -> list[str]:
        merge: AlignedMerge[str] = AlignedMerge(idle_after_s=10, max_buffered=1000, hold_back_s=8.0)
        for source in range(3):  # every source is known from the start (its first heartbeat)
            merge.advance(source, -100.0, NOW)
        out: list[str] = []
        step = itertools.cycle(release_every)
        due = next(step)
        for n, (source, t, item) in enumerate(stream, 1):
            merge.add(source, t, item, NOW)
            if n == due:
                out += merge.release(NOW)
                due += next(step)
        return out + merge.release(NOW + 100)  # the end: every source idle, all released

    assert merged(chunks) == merged([1])

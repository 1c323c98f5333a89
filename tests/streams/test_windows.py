"""Pure window rules: assignment, closing, late classification, redelivery dedupe."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clickmuncher import sketches
from clickmuncher.records import BOT, HUMAN, PREFETCH, PREVIEW
from streams.table import encode_value
from streams.windows import (
    Route,
    Watermark,
    WindowRules,
    WindowState,
    apply_click,
    route,
    split_key,
    window_key,
)

RULES = WindowRules(window_ms=2000, grace_ms=1000, late_retention_ms=2000, max_future_ms=300_000)
NOW = 1_800_000_000_000
times = st.integers(min_value=0, max_value=NOW)


@given(times)
def test_window_contains_its_timestamp_and_is_epoch_aligned(ts: int) -> None:
    start = RULES.start_of(ts)
    assert start % RULES.window_ms == 0
    assert start <= ts < RULES.end_of(start)


@given(times, st.integers(min_value=-5000, max_value=10_000))
def test_window_closes_exactly_at_end_plus_grace(ts: int, delta: int) -> None:
    start = RULES.start_of(ts)
    watermark = RULES.end_of(start) + RULES.grace_ms + delta
    assert RULES.is_closed(start, watermark) == (delta >= 0)


def test_route_open_late_too_late_future() -> None:
    start = 1_000_000
    ts = start + 500
    assert route(RULES, ts, watermark_ms=start + 2999, now_ms=NOW) is Route.OPEN
    assert route(RULES, ts, watermark_ms=start + 3000, now_ms=NOW) is Route.LATE
    assert route(RULES, ts, watermark_ms=start + 4999, now_ms=NOW) is Route.LATE
    assert route(RULES, ts, watermark_ms=start + 5000, now_ms=NOW) is Route.TOO_LATE
    assert route(RULES, NOW + 300_001, watermark_ms=0, now_ms=NOW) is Route.FUTURE
    assert route(RULES, NOW + 300_000, watermark_ms=0, now_ms=NOW) is Route.OPEN


@given(times, times)
def test_route_is_monotone_in_the_watermark(ts: int, watermark: int) -> None:
    order = [Route.OPEN, Route.LATE, Route.TOO_LATE]
    first = route(RULES, ts, watermark, NOW)
    later = route(RULES, ts, watermark + 1000, NOW)
    assert order.index(later) >= order.index(first)


def test_idle_watermark_trails_the_clock_by_grace() -> None:
    assert RULES.idle_watermark(NOW) == NOW - 1000


def test_apply_counts_and_skips_redelivered_offsets() -> None:
    state = apply_click(None, offset=10, partition=3, bump=False)
    assert state == WindowState(count=1, last_offset=10, revision=0, partition=3)
    state = apply_click(state, offset=11, partition=3, bump=False)
    assert state is not None and state.count == 2
    assert apply_click(state, offset=11, partition=3, bump=False) is None
    assert apply_click(state, offset=5, partition=3, bump=False) is None


def test_late_click_bumps_revision() -> None:
    state = WindowState(count=4, last_offset=20, revision=0, partition=1)
    late = apply_click(state, offset=30, partition=1, bump=True)
    assert late == WindowState(count=5, last_offset=30, revision=1, partition=1)


@given(st.lists(st.integers(min_value=0, max_value=50), min_size=1, max_size=200))
def test_redelivery_never_counts_an_offset_twice(deliveries: list[int]) -> None:
    """Offsets arrive in order with arbitrary rewinds (redelivery after a crash): each counts once."""
    state: WindowState | None = None
    high = -1
    for offset in sorted(deliveries) + sorted(deliveries):
        new = apply_click(state, offset, partition=0, bump=False)
        if new is not None:
            state = new
            assert offset > high
            high = offset
    assert state is not None and state.count == len(set(deliveries))


def test_classes_and_visitors_are_counted_per_click() -> None:
    state = None
    clicks = [(HUMAN, "a" * 16), (HUMAN, "a" * 16), (HUMAN, None), (BOT, "b" * 16), (PREVIEW, None)]
    clicks += [(PREFETCH, "c" * 16), (HUMAN, "d" * 16)]
    for offset, (cls, vid) in enumerate(clicks):
        state = apply_click(state, offset, 0, False, cls, vid)
    assert state is not None and state.by_class == (4, 1, 1, 1) and state.count == 7
    assert (
        state.uniques() == 2
    )  # bots, previews and prefetches are no visitors; a human without an id neither
    assert apply_click(state, 3, 0, False, HUMAN, "e" * 16) is None  # redelivered: nothing changes
    assert state.uniques() == 2


def test_states_of_every_version_are_read() -> None:
    old = WindowState.decode([7, 99, 2, 5])  # the first version: every click human, no visitor
    assert old.by_class == (7, 0, 0, 0) and old.uniques() == 0 and old.encode() == [7, 99, 2, 5]
    counted = WindowState(9, 99, 2, 5, 1, 2, 3)
    assert counted.encode() == [9, 99, 2, 5, 1, 2, 3] and WindowState.decode(counted.encode()) == counted
    visited = apply_click(counted, 100, 5, False, HUMAN, "0123456789abcdef")
    assert visited is not None
    raw = visited.encode()
    assert len(raw) == 8 and isinstance(raw[7], str)
    again = WindowState.decode(json.loads(encode_value(raw)))
    assert again.by_class == (4, 1, 2, 3) and again.uniques() == 1 and isinstance(again.hll, sketches.Sketch)
    for bad in (
        [1, 2, 3],
        [1, 2, 3, 4, 5],
        [5, 0, 0, 0, 3, 3, 0],
        [5, 0, 0, 0, -1, 0, 0],
        [5, 0, 0, 0, 0, 0, 0, 7],
    ):
        with pytest.raises(ValueError, match="bad window state"):
            WindowState.decode(bad)
    unreadable = WindowState.decode([5, 0, 0, 0, 0, 0, 0, "AAAA"])  # not a sketch: counted afresh
    assert unreadable.uniques() == 0 and unreadable.count == 5


def test_codecs_round_trip() -> None:
    state = WindowState(7, 99, 2, 5)
    assert WindowState.decode(state.encode()) == state
    assert WindowState.decode(b"[7, 99, 2, 5]") == state
    assert Watermark.decode(Watermark(123, 45, 100).encode()) == Watermark(123, 45, 100)
    # Earlier versions persisted a watermark only after emitting what it closed.
    assert Watermark.decode(b"[123, 45]") == Watermark(123, 45, 123)
    assert split_key(window_key(4000, "https://a.example/x:y")) == (4000, "https://a.example/x:y")


@given(st.integers(min_value=-1, max_value=NOW), st.integers(min_value=0, max_value=20_000))
def test_no_route_or_close_changes_before_the_next_boundary(watermark: int, step: int) -> None:
    """Every window's route and close is the same at the watermark and anywhere below the next
    boundary: the engine may keep such a watermark in memory only."""
    boundary = RULES.next_boundary(watermark)
    assert boundary > watermark
    moved = min(watermark + step, boundary - 1)
    first = RULES.start_of(max(watermark, 0)) - 4 * RULES.window_ms
    for start in range(max(first, 0), moved + RULES.window_ms, RULES.window_ms):
        assert RULES.is_closed(start, watermark) == RULES.is_closed(start, moved)
        assert RULES.is_released(start, watermark) == RULES.is_released(start, moved)
    # ...and at the boundary itself some window closes or is released (windows start at 0 or later).
    if boundary < RULES.releases_at(0):
        return
    changed = [
        start
        for start in range(max(first, 0), boundary + RULES.window_ms, RULES.window_ms)
        if RULES.is_closed(start, boundary) != RULES.is_closed(start, boundary - 1)
        or RULES.is_released(start, boundary) != RULES.is_released(start, boundary - 1)
    ]
    assert changed

"""Live records as hostile input, and the store of live counts (pure, no broker)."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.live import MAX_RECORD_BYTES, LiveCounts, LiveWindow, Skipped, parse_live
from api.metrics import ApiMetrics
from api.reader import LiveIntake
from clickmuncher.records import ClickWindow
from tests.api.helpers import T0_MS, WINDOW_MS, closed, live_value

NOW_MS = T0_MS + 10 * WINDOW_MS
URL = "https://example.com/a"


def key(window: ClickWindow) -> bytes:
    return window.key()


def test_a_live_record_is_read() -> None:
    window = closed(URL, 1, 7, revision=0)
    assert parse_live(key(window), live_value(window), NOW_MS) == LiveWindow(
        URL, window.window_start_ms, window.window_end_ms, 7, 0
    )


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"\xff\xfe", "not_json"),
        (b"not json", "not_json"),
        (b"[1, 2]", "not_object"),
        (b"[" * 5000 + b"]" * 5000, "too_deep"),
        (json.dumps({"a": {"b": {"c": {"d": {"e": 1}}}}}).encode(), "too_deep"),
        (b'{"pad": "' + b"x" * MAX_RECORD_BYTES + b'"}', "too_large"),
        (live_value(closed(URL, 1, 7), v=2), "bad_version"),
        (live_value(closed(URL, 1, 7), final=True), "not_live"),
        (live_value(closed(URL, 1, 7), final=0), "not_live"),
        (json.dumps(closed(URL, 1, 7).to_json()).encode(), "not_live"),
        (live_value(closed(URL, 1, 7), clicks="7"), "bad_field"),
        (live_value(closed(URL, 1, 7), clicks=True), "bad_field"),
        (live_value(closed(URL, 1, 7), clicks=-1), "bad_field"),
        (live_value(closed(URL, 1, 7), clicks=2**63), "bad_field"),
        (live_value(closed(URL, 1, 7), clicks=1.5), "bad_field"),
        (live_value(closed(URL, 1, 7), revision=None), "bad_field"),
        (live_value(closed(URL, 1, 7), window_end_ms=T0_MS), "bad_window"),
        (live_value(closed(URL, 1, 7), url="javascript:alert(1)"), "bad_url"),
        (live_value(closed(URL, 1, 7), url="https://EXAMPLE.com/a"), "bad_url"),
        (live_value(closed(URL, 1, 7), url=["https://example.com/a"]), "bad_url"),
        (live_value(closed(URL, 1, 7), url="https://example.com/other"), "bad_key"),
    ],
)
def test_hostile_records_are_skipped_with_a_reason(value: bytes, reason: str) -> None:
    with pytest.raises(Skipped) as raised:
        parse_live(key(closed(URL, 1, 7)), value, NOW_MS)
    assert raised.value.reason == reason


@pytest.mark.parametrize("raw_key", [None, b"", b"abc", b"123", b":https://example.com/a", b"1:\xff"])
def test_bad_keys_are_skipped(raw_key: bytes | None) -> None:
    with pytest.raises(Skipped, match="bad_key"):
        parse_live(raw_key, live_value(closed(URL, 1, 7)), NOW_MS)


def test_a_window_far_in_the_future_is_skipped() -> None:
    window = closed(URL, 10_000, 7)
    with pytest.raises(Skipped, match="future"):
        parse_live(key(window), live_value(window), NOW_MS)


@given(st.binary(max_size=300), st.one_of(st.none(), st.binary(max_size=40)))
def test_any_bytes_are_read_or_skipped(value: bytes, raw_key: bytes | None) -> None:
    with contextlib.suppress(Skipped):
        parse_live(raw_key, value, NOW_MS)


def live(url: str, n: int, count: int, revision: int = 0) -> LiveWindow:
    window = closed(url, n, count, revision)
    return LiveWindow(url, window.window_start_ms, window.window_end_ms, count, revision)


def test_the_store_keeps_the_highest_revision_then_count() -> None:
    counts = LiveCounts(max_entries=100)
    assert counts.offer(live(URL, 1, 5))
    assert not counts.offer(live(URL, 1, 4))  # a redelivered older count never lowers it
    assert counts.offer(live(URL, 1, 9))
    assert counts.offer(live(URL, 1, 2, revision=1))  # a newer revision wins whatever its count
    assert not counts.offer(live(URL, 1, 50, revision=0))
    assert counts.for_url(URL) == [live(URL, 1, 2, revision=1)]
    assert len(counts) == 1


def test_the_store_answers_by_range_and_url_and_drops_what_it_is_told() -> None:
    counts = LiveCounts(max_entries=100)
    for n in range(4):
        counts.offer(live(URL, n, n + 1))
        counts.offer(live("https://example.com/b", n, 10))
    start = T0_MS + WINDOW_MS
    assert {w.clicks for w in counts.in_range(start, start + 2 * WINDOW_MS) if w.url == URL} == {2, 3}
    assert [w.clicks for w in sorted(counts.for_url(URL), key=lambda w: w.window_start_ms)] == [1, 2, 3, 4]
    assert len(counts.ended_before(T0_MS + 2 * WINDOW_MS + 1)) == 4
    assert counts.remove([(URL, T0_MS), (URL, T0_MS), ("https://nowhere.example/", T0_MS)]) == 1
    assert len(counts) == 7


def test_over_capacity_the_oldest_windows_go_first() -> None:
    counts = LiveCounts(max_entries=3)
    for n in range(3):
        counts.offer(live(URL, n, 1))
        counts.offer(live("https://example.com/b", n, 1))
    assert counts.shrink() == 4
    assert len(counts) == 2
    assert {w.window_start_ms for w in counts.in_range(0, 2**62)} == {T0_MS + 2 * WINDOW_MS}


def test_intake_counts_every_outcome() -> None:
    metrics = ApiMetrics.create()
    counts = LiveCounts(max_entries=100)
    intake = LiveIntake(counts, metrics, retention_s=3600, clock=lambda: NOW_MS)
    fresh, old = closed(URL, 9, 3), closed(URL, -100, 3)
    intake.apply(fresh.key(), live_value(fresh))
    intake.apply(fresh.key(), live_value(fresh))
    intake.apply(old.key(), live_value(old))
    intake.apply(fresh.key(), b"{}")
    intake.apply(fresh.key(), None)

    def value(name: str, **labels: str) -> float:
        found = metrics.registry.get_sample_value(name, labels)
        return 0.0 if found is None else found

    records = "clickmuncher_api_live_records_total"
    assert value(records, outcome="stored") == 1
    assert value(records, outcome="older") == 1
    assert value(records, outcome="expired") == 1
    assert value(records, outcome="skipped") == 1
    assert value("clickmuncher_api_live_skipped_total", reason="bad_version") == 1
    assert value("clickmuncher_api_live_pruned_total", cause="tombstone") == 1
    assert len(counts) == 0

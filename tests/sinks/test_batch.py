"""The pure merge rules: dedupe within a batch, stale revisions, deltas, offsets, dead letters."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from clickmuncher.records import ClickWindow
from sinks.batch import RawRecord, StoredWindow, dedupe, plan_batch, plan_writes, without_refused

A = "https://example.com/a"
B = "https://example.com/b"


def w(url: str, start_ms: int, clicks: int, revision: int) -> ClickWindow:
    return ClickWindow(url, start_ms, start_ms + 1000, clicks, revision)


def test_dedupe_keeps_highest_revision_then_latest() -> None:
    records = [w(A, 0, 5, 1), w(A, 0, 3, 0), w(B, 0, 1, 0), w(A, 0, 7, 1), w(A, 1000, 2, 0)]
    assert dedupe(records) == (w(A, 0, 7, 1), w(B, 0, 1, 0), w(A, 1000, 2, 0))


def test_dedupe_is_order_independent_across_revisions() -> None:
    records = [w(A, 0, 1, 0), w(A, 0, 4, 2), w(A, 0, 3, 1)]
    assert dedupe(records) == dedupe(reversed(records)) == (w(A, 0, 4, 2),)


def test_plan_batch_offsets_and_dead_letters() -> None:
    raw = [
        RawRecord(0, 10, b"k", w(A, 0, 1, 0).encode()),
        RawRecord(1, 4, b"bad", b"not json"),
        RawRecord(0, 11, b"k", w(A, 0, 2, 1).encode()),
        RawRecord(1, 5, b"k2", b'{"v": 1, "url": "x"}'),
    ]
    batch = plan_batch(raw)
    assert batch.windows == (w(A, 0, 2, 1),)
    assert batch.next_offsets == {0: 12, 1: 6}
    assert batch.size == 4
    assert [d.record.offset for d in batch.dead] == [4, 5]
    assert batch.dead[0].reason.startswith("not JSON")
    assert "window_start_ms" in batch.dead[1].reason


def test_plan_writes_deltas_against_stored_rows() -> None:
    stored = {(A, 0): StoredWindow(clicks=5, revision=1), (B, 0): StoredWindow(clicks=9, revision=3)}
    writes = plan_writes([w(A, 0, 8, 2), w(B, 0, 1, 2), w(A, 1000, 4, 0)], stored)
    assert writes.rows == (w(A, 0, 8, 2), w(A, 1000, 4, 0))  # B's stale revision changes nothing
    assert writes.click_deltas == {A: 3 + 4}


def test_plan_writes_reapplying_the_same_rows_is_a_zero_delta() -> None:
    stored = {(A, 0): StoredWindow(clicks=5, revision=1)}
    writes = plan_writes([w(A, 0, 5, 1)], stored)
    assert writes.rows == (w(A, 0, 5, 1),)
    assert writes.click_deltas == {A: 0}


def test_plan_writes_equal_revision_overwrites() -> None:
    writes = plan_writes([w(A, 0, 6, 1)], {(A, 0): StoredWindow(clicks=5, revision=1)})
    assert writes.click_deltas == {A: 1}


def apply_in_memory(
    table: dict[tuple[str, int], ClickWindow], totals: dict[str, int], records: list[ClickWindow]
) -> None:
    """The sink's merge rules against a dict standing in for the database."""
    batch = plan_batch([RawRecord(0, i, r.key(), r.encode()) for i, r in enumerate(records)])
    stored = {key: StoredWindow(w.clicks, w.revision) for key, w in table.items()}
    writes = plan_writes(batch.windows, stored)
    for row in writes.rows:
        table[(row.url, row.window_start_ms)] = row
    for url, delta in writes.click_deltas.items():
        totals[url] = totals.get(url, 0) + delta


windows_strategy = st.lists(
    st.builds(
        w,
        url=st.sampled_from([A, B]),
        start_ms=st.sampled_from([0, 1000, 2000]),
        clicks=st.integers(min_value=0, max_value=50),
        revision=st.integers(min_value=0, max_value=3),
    ),
    max_size=30,
)


@settings(max_examples=150, deadline=None)
@given(records=windows_strategy, cuts=st.lists(st.integers(min_value=0, max_value=30), max_size=6))
def test_any_batching_and_replay_give_exact_counts(records: list[ClickWindow], cuts: list[int]) -> None:
    bounds = [0, *sorted(c for c in cuts if c <= len(records)), len(records)]
    table: dict[tuple[str, int], ClickWindow] = {}
    totals: dict[str, int] = {}
    for lo, hi in itertools.pairwise(bounds):
        apply_in_memory(table, totals, records[lo:hi])
    assert set(table.values()) == set(dedupe(records))
    sums: dict[str, int] = {}
    for row in table.values():
        sums[row.url] = sums.get(row.url, 0) + row.clicks
    assert totals == sums
    before = (dict(table), dict(totals))
    apply_in_memory(table, totals, records)  # a replay of everything in one batch
    assert (table, totals) == before


def test_refused_windows_become_dead_letters_of_their_own_records() -> None:
    raw = [
        RawRecord(0, 10, b"k1", w(A, 0, 1, 0).encode()),
        RawRecord(0, 11, b"k2", w(B, 0, 2, 0).encode()),
        RawRecord(1, 3, b"bad", b"not json"),
        RawRecord(0, 12, b"k3", w(A, 0, 5, 1).encode()),
    ]
    batch = plan_batch(raw)
    assert batch.sources == {(A, 0): raw[3], (B, 0): raw[1]}
    reduced = without_refused(batch, {(A, 0): "DataError: no"})
    assert reduced.windows == (w(B, 0, 2, 0),)
    assert [(d.record, d.reason) for d in reduced.dead] == [
        (raw[2], batch.dead[0].reason),
        (raw[3], "database refused: DataError: no"),
    ]
    assert reduced.next_offsets == batch.next_offsets == {0: 13, 1: 4}
    assert reduced.size == 4

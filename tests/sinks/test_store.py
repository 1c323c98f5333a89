"""The SQL of one batch on both databases: one upsert per table, exact totals, idempotent re-application."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
import sqlalchemy as sa

from clickmuncher import sketches
from clickmuncher.db.engines import make_engine
from clickmuncher.db.schema import upgrade
from clickmuncher.db.tables import CLASS_COLUMNS, click_windows
from clickmuncher.records import ClickWindow
from sinks import store
from sinks.batch import RawRecord, plan_batch
from tests.sinks.helpers import assert_consistent, expected_state, read_clicks, read_windows, window

TOPIC = "cw-store"


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    upgrade(db_url)
    upgrade(db_url)  # idempotent
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


def count_statements(engine: sa.Engine) -> Counter[str]:
    """Counts statements by their first words and table, e.g. ``INSERT click_windows``."""
    counts: Counter[str] = Counter()

    def hook(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        words = statement.split()
        verb = words[0].upper()
        table = words[2] if verb == "INSERT" else next((t for t in _TABLES if t in statement), "?")
        counts[f"{verb} {table}"] += 1

    sa.event.listen(engine, "before_cursor_execute", hook)
    return counts


_TABLES = ("sink_offsets", "click_windows", "clicks")


def apply(engine: sa.Engine, records: Sequence[ClickWindow], first_offset: int = 0) -> None:
    """Applies ``records`` as one batch from partition 0, the way the sink does."""
    batch = plan_batch([RawRecord(0, first_offset + i, r.key(), r.encode()) for i, r in enumerate(records)])
    with engine.begin() as conn:
        expected = store.load_offsets(conn, TOPIC)
    with engine.begin() as conn:
        store.write_batch(conn, TOPIC, batch, expected)


def test_one_upsert_per_table_per_batch(engine: sa.Engine, db_url: str) -> None:
    store.claim_partitions(engine, TOPIC, [0])
    counts = count_statements(engine)
    first = [window(f"https://example.com/{i % 7}", i // 7, i + 1) for i in range(40)]
    apply(engine, first)
    assert counts["INSERT click_windows"] == 1
    assert counts["INSERT clicks"] == 1
    assert counts["INSERT sink_offsets"] == 1
    assert_consistent(db_url)

    counts.clear()
    second = [window(f"https://example.com/{i % 7}", i // 7, i + 5, revision=1) for i in range(0, 60, 2)]
    apply(engine, second, first_offset=40)
    assert (counts["INSERT click_windows"], counts["INSERT clicks"], counts["INSERT sink_offsets"]) == (
        1,
        1,
        1,
    )
    assert_consistent(db_url)
    assert (read_windows(db_url), read_clicks(db_url)) == expected_state([*first, *second])


def test_twice_out_of_order_and_stale_leave_the_db_identical(engine: sa.Engine, db_url: str) -> None:
    store.claim_partitions(engine, TOPIC, [0])
    records = [
        window("https://example.com/a", 0, 3),
        window("https://example.com/a", 0, 5, revision=1),
        window("https://example.com/b", 0, 2),
        window("https://example.com/a", 1, 4),
        window("https://example.com/b", 0, 6, revision=2),
    ]
    apply(engine, records)
    once = (read_windows(db_url), read_clicks(db_url))
    assert once == expected_state(records)

    apply(engine, records, first_offset=5)  # the same records again
    apply(engine, list(reversed(records)), first_offset=10)  # out of order
    stale = [window("https://example.com/a", 0, 99), window("https://example.com/b", 0, 1, revision=1)]
    for i, record in enumerate(stale):  # stale revisions, each alone in a batch
        apply(engine, [record], first_offset=15 + i)
    assert (read_windows(db_url), read_clicks(db_url)) == once
    assert_consistent(db_url)


def test_a_moved_position_fences_the_batch(engine: sa.Engine, db_url: str) -> None:
    store.claim_partitions(engine, TOPIC, [0])
    batch = plan_batch([RawRecord(0, 0, b"k", window("https://example.com/a", 0, 1).encode())])
    with engine.begin() as conn:
        store.set_offsets(conn, TOPIC, {0: 7})  # another sink wrote up to 7
    with pytest.raises(store.Fenced), engine.begin() as conn:
        store.write_batch(conn, TOPIC, batch, {0: store.FROM_BEGINNING})
    assert read_windows(db_url) == {}


def test_claim_keeps_stored_offsets(engine: sa.Engine) -> None:
    assert store.claim_partitions(engine, TOPIC, [0, 1]) == {0: store.FROM_BEGINNING, 1: store.FROM_BEGINNING}
    with engine.begin() as conn:
        store.set_offsets(conn, TOPIC, {1: 42})
    assert store.claim_partitions(engine, TOPIC, [1, 2]) == {1: 42, 2: store.FROM_BEGINNING}


def test_a_batch_whose_commit_outcome_was_lost_is_not_written_twice(engine: sa.Engine, db_url: str) -> None:
    store.claim_partitions(engine, TOPIC, [0])
    batch = plan_batch([RawRecord(0, 0, b"k", window("https://example.com/a", 0, 5).encode())])
    with engine.begin() as conn:
        assert store.write_batch(conn, TOPIC, batch, {0: store.FROM_BEGINNING}) == 1
    with engine.begin() as conn:  # the retry of an attempt that did commit
        assert store.write_batch(conn, TOPIC, batch, {0: store.FROM_BEGINNING}) is None
    assert read_clicks(db_url) == {"https://example.com/a": 5}


def test_a_batch_of_ten_thousand_windows_is_one_statement_per_table(engine: sa.Engine, db_url: str) -> None:
    # A row-value IN list or VALUES list this long hits PostgreSQL's expression depth or parameter limits.
    store.claim_partitions(engine, TOPIC, [0])
    counts = count_statements(engine)
    records = [window(f"https://example.com/big/{i}", i % 3, 1 + i % 9) for i in range(10_000)]
    corrections = [window(f"https://example.com/big/{i}", i % 3, 20, revision=1) for i in range(50)]
    apply(engine, records)
    apply(engine, corrections, first_offset=10_000)
    assert (counts["INSERT click_windows"], counts["INSERT clicks"]) == (2, 2)
    assert (read_windows(db_url), read_clicks(db_url)) == expected_state([*records, *corrections])
    assert_consistent(db_url)


def test_classes_uniques_and_sketches_are_stored_and_old_windows_have_none(
    engine: sa.Engine, db_url: str
) -> None:
    store.claim_partitions(engine, TOPIC, [0])
    sketch = sketches.new()
    for n in range(40):
        sketches.update(sketch, f"{n:016x}")
    old = window("https://example.com/old", 0, 7)
    new = window("https://example.com/new", 0, 50)
    hll = sketches.serialize(sketch)
    new = ClickWindow(new.url, new.window_start_ms, new.window_end_ms, 50, 0, (44, 3, 2, 1), 40, hll)
    apply(engine, [old, new])
    c = click_windows.c
    with engine.connect() as conn:
        rows = {
            row.url: row
            for row in conn.execute(
                sa.select(c.url, c.clicks, *(c[name] for name in CLASS_COLUMNS), c.uniques, c.hll)
            )
        }
    assert tuple(rows[new.url])[1:7] == (50, 44, 3, 2, 1, 40)
    assert sketches.estimate(sketches.deserialize(bytes(rows[new.url].hll))) == 40
    assert tuple(rows[old.url])[1:] == (7, None, None, None, None, None, None)
    assert read_clicks(db_url)[new.url] == 50  # the total of every class

"""The sink's SQL: one statement per table per batch, the same on PostgreSQL and SQLite (>= 3.24 upserts).

Zombie guard. A sink that lost a partition in a rebalance (evicted while it retried a failing database,
or paused past ``max.poll.interval.ms``) may still hold a batch for it. Each batch therefore locks its
partitions' ``sink_offsets`` rows (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite transactions begin
``IMMEDIATE``) and checks that they still hold the offsets this sink last read or wrote: a compare-and-set on
the position. A sink whose position was moved by another writer gets :class:`Fenced` and writes nothing.
The rows exist from the moment a partition is assigned (:func:`claim_partitions`), so two writers of one
partition always meet on that lock, and the read of old rows and the upsert that follows cannot interleave
with another sink's.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from clickmuncher.db.tables import CLASS_COLUMNS, click_windows, clicks, sink_offsets
from clickmuncher.db.times import datetime_to_ms, ms_to_datetime
from clickmuncher.records import ClickWindow
from sinks.batch import Batch, StoredWindow, WindowKey, plan_writes, window_key

FROM_BEGINNING = -2
"""``next_offset`` of a partition the sink has not read yet (librdkafka's ``OFFSET_BEGINNING``)."""

Upsert = postgresql.Insert | sqlite.Insert


class Fenced(RuntimeError):
    """Another writer moved this sink's position in ``sink_offsets``: the batch is not ours to write."""


def _insert(conn: sa.Connection, table: sa.Table) -> Upsert:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def _insert_rows(conn: sa.Connection, table: sa.Table, rows: list[dict[str, object]]) -> Upsert:
    """``INSERT INTO table`` of ``rows`` as one statement, ready for an ``ON CONFLICT`` clause.

    On PostgreSQL the rows travel as one array parameter per column, unnested into a table: the statement
    is the same for every batch size (compiled once, cached) and has no bind-parameter limit. SQLite gets a
    multi-row ``VALUES`` list.
    """
    if conn.dialect.name != "postgresql":
        return sqlite.insert(table).values(rows)
    names = list(rows[0])
    arrays = [
        sa.bindparam(f"col_{name}", [row[name] for row in rows], type_=postgresql.ARRAY(table.c[name].type))
        for name in names
    ]
    source = sa.func.unnest(*arrays).table_valued(*names).render_derived()
    return postgresql.insert(table).from_select(names, sa.select(*source.c))


def load_offsets(conn: sa.Connection, topic: str) -> dict[int, int]:
    """``partition -> next_offset`` of ``topic`` as stored."""
    query = sa.select(sink_offsets.c.partition, sink_offsets.c.next_offset).where(
        sink_offsets.c.topic == topic
    )
    return {int(partition): int(offset) for partition, offset in conn.execute(query)}


def claim_partitions(engine: sa.Engine, topic: str, partitions: Collection[int]) -> dict[int, int]:
    """Makes sure ``partitions`` have a ``sink_offsets`` row (new ones start at :data:`FROM_BEGINNING`) and
    returns where each resumes. Called on assignment; the stored offsets are the source of truth."""
    with engine.begin() as conn:
        if partitions:
            rows = [{"topic": topic, "partition": p, "next_offset": FROM_BEGINNING} for p in partitions]
            conn.execute(_insert(conn, sink_offsets).values(rows).on_conflict_do_nothing())
        stored = load_offsets(conn, topic)
    return {p: stored[p] for p in partitions}


def set_offsets(conn: sa.Connection, topic: str, next_offsets: Mapping[int, int]) -> None:
    """Stores ``next_offsets`` as given (one statement)."""
    if not next_offsets:
        return
    rows = [{"topic": topic, "partition": p, "next_offset": o} for p, o in sorted(next_offsets.items())]
    upsert = _insert(conn, sink_offsets).values(rows)
    conn.execute(
        upsert.on_conflict_do_update(
            index_elements=[sink_offsets.c.topic, sink_offsets.c.partition],
            set_={"next_offset": upsert.excluded.next_offset},
        )
    )


def check_fence(
    conn: sa.Connection, topic: str, expected: Mapping[int, int], after: Mapping[int, int]
) -> bool:
    """Locks the partitions' offset rows. True when they already hold ``after`` (an earlier attempt committed
    the batch but its outcome was lost), False when they hold ``expected``, else :class:`Fenced`."""
    query = (
        sa.select(sink_offsets.c.partition, sink_offsets.c.next_offset)
        .where(sink_offsets.c.topic == topic, sink_offsets.c.partition.in_(sorted(expected)))
        .with_for_update()
    )
    stored = {int(p): int(o) for p, o in conn.execute(query)}
    if all(stored.get(p) == offset for p, offset in after.items()):
        return True
    moved = {p: stored.get(p) for p, offset in expected.items() if stored.get(p) != offset}
    if moved:
        raise Fenced(f"{topic} positions moved by another writer: {moved} (expected {dict(expected)})")
    return False


def read_stored(conn: sa.Connection, keys: Collection[WindowKey]) -> dict[WindowKey, StoredWindow]:
    """The stored rows for ``keys`` (one statement; locked on PostgreSQL until the transaction ends)."""
    if not keys:
        return {}
    columns = (
        click_windows.c.url,
        click_windows.c.window_start,
        click_windows.c.clicks,
        click_windows.c.revision,
    )
    urls = [url for url, _ in keys]
    starts = [ms_to_datetime(start_ms) for _, start_ms in keys]
    if conn.dialect.name == "postgresql":
        # Two array parameters joined as a table: a row-value IN list of thousands of keys exceeds
        # PostgreSQL's expression stack depth.
        wanted = (
            sa.func.unnest(
                sa.bindparam("urls", urls, type_=postgresql.ARRAY(sa.Text)),
                sa.bindparam("starts", starts, type_=postgresql.ARRAY(sa.DateTime(timezone=True))),
            )
            .table_valued("url", "window_start")
            .render_derived()
        )
        query = (
            sa.select(*columns)
            .join(
                wanted,
                (click_windows.c.url == wanted.c.url)
                & (click_windows.c.window_start == wanted.c.window_start),
            )
            .with_for_update(of=click_windows)
        )
    else:
        pairs = sa.tuple_(click_windows.c.url, click_windows.c.window_start).in_(
            list(zip(urls, starts, strict=True))
        )
        query = sa.select(*columns).where(pairs)
    return {
        (url, datetime_to_ms(start)): StoredWindow(clicks=int(n), revision=int(rev))
        for url, start, n, rev in conn.execute(query)
    }


def upsert_windows(conn: sa.Connection, rows: Collection[ClickWindow], now: datetime) -> None:
    """One multi-row upsert; the ``WHERE`` keeps the highest revision even against a writer we did not see."""
    if not rows:
        return
    values = [window_row(w, now) for w in rows]
    upsert = _insert_rows(conn, click_windows, values)
    excluded = upsert.excluded
    conn.execute(
        upsert.on_conflict_do_update(
            index_elements=[click_windows.c.url, click_windows.c.window_start],
            set_={name: excluded[name] for name in values[0] if name not in ("url", "window_start")},
            where=excluded.revision >= click_windows.c.revision,
        )
    )


def window_row(w: ClickWindow, now: datetime) -> dict[str, object]:
    """A window's row; a window of the first record version has no class counts, uniques or sketch
    (NULL: unknown)."""
    classes = w.by_class if w.by_class is not None else (None,) * len(CLASS_COLUMNS)
    return {
        "url": w.url,
        "window_start": ms_to_datetime(w.window_start_ms),
        "window_end": ms_to_datetime(w.window_end_ms),
        "clicks": w.clicks,
        "revision": w.revision,
        "updated_at": now,
        **dict(zip(CLASS_COLUMNS, classes, strict=True)),
        "uniques": w.uniques,
        "hll": w.hll,
    }


def add_clicks(conn: sa.Connection, deltas: Mapping[str, int]) -> None:
    """Adds each URL's delta to ``clicks.click_count`` in one upsert. A total beyond 64 bits fails the
    statement: PostgreSQL raises "bigint out of range" itself, SQLite would store it as a float, so there
    the new totals are read back (``RETURNING``, SQLite 3.35 and later) and a float raises OverflowError."""
    if not deltas:
        return
    upsert = _insert_rows(conn, clicks, [{"url": u, "click_count": d} for u, d in deltas.items()])
    statement = upsert.on_conflict_do_update(
        index_elements=[clicks.c.url],
        set_={"click_count": clicks.c.click_count + upsert.excluded.click_count},
    )
    if conn.dialect.name == "postgresql" or not conn.dialect.insert_returning:
        conn.execute(statement)
        return
    totals = conn.execute(statement.returning(clicks.c.click_count)).scalars()
    if any(type(total) is not int for total in totals):
        raise OverflowError("a URL's total in clicks would not fit in 64 bits")


def write_windows(conn: sa.Connection, windows: Sequence[ClickWindow], now: datetime) -> int:
    """Reads the stored rows of ``windows`` (one key each), upserts those that change and adds their deltas
    to ``clicks``: three statements; returns the number of window rows written."""
    stored = read_stored(conn, [window_key(w) for w in windows])
    writes = plan_writes(windows, stored)
    upsert_windows(conn, writes.rows, now)
    add_clicks(conn, writes.click_deltas)
    return len(writes.rows)


def write_batch(conn: sa.Connection, topic: str, batch: Batch, expected: Mapping[int, int]) -> int | None:
    """Writes ``batch`` inside the caller's transaction; returns the number of window rows written, or None
    when the batch is in the database already (nothing is written then).

    ``expected`` maps each of the batch's partitions to the offset this sink believes is stored.
    """
    before = {p: expected.get(p, FROM_BEGINNING) for p in batch.next_offsets}
    if check_fence(conn, topic, before, batch.next_offsets):
        return None
    rows = write_windows(conn, batch.windows, datetime.now(UTC))
    set_offsets(conn, topic, batch.next_offsets)
    return rows

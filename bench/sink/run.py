"""Sink benchmark: closed windows upserted into PostgreSQL in batches of 10,000, the sink's multi-row
statements (one per table per batch) against one statement per row, side by side in one run.

    python -m bench.sink.run [--database-url URL] [--batches 5] [--batch-size 10000]

Without --database-url it starts a throwaway PostgreSQL cluster (Debian's binaries). Both variants write the
same windows into fresh databases, each batch in one transaction, then a second pass of revision-1 records
over the same keys (updates, not inserts). Prints windows/s of each and the ratio.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from bench.common import record_summary
from clickmuncher.db.engines import make_engine
from clickmuncher.db.schema import upgrade
from clickmuncher.devstack.kafka.broker import free_port
from clickmuncher.records import ClickWindow
from sinks.batch import Batch, plan_writes, window_key
from sinks.store import add_clicks, read_stored, set_offsets, upsert_windows, write_batch
from tests.pgcluster import PgCluster, create_database

TOPIC = "click-windows"
WINDOW_MS = 1_800_000


def make_batches(batches: int, size: int, revision: int) -> list[Batch]:
    start = 1_795_000_000_000 - 1_795_000_000_000 % WINDOW_MS
    made = []
    for b in range(batches):
        windows = tuple(
            ClickWindow(
                url=f"https://site{i % 101}.example.com/p/{b}/{i}",
                window_start_ms=start,
                window_end_ms=start + WINDOW_MS,
                clicks=1 + (i * 7 + revision) % 50,
                revision=revision,
            )
            for i in range(size)
        )
        offsets = {0: (revision * batches + b + 1) * size}
        made.append(Batch(windows=windows, dead=(), next_offsets=offsets, size=size))
    return made


def multi_row(conn: sa.Connection, batch: Batch) -> None:
    expected = {0: conn.execute(sa.text("SELECT next_offset FROM sink_offsets")).scalar_one()}
    write_batch(conn, TOPIC, batch, expected)


def row_by_row(conn: sa.Connection, batch: Batch) -> None:
    """The same writes with one statement per row per table: what the sink avoids."""
    now = datetime.now(UTC)
    for window in batch.windows:
        stored = read_stored(conn, [window_key(window)])
        writes = plan_writes([window], stored)
        upsert_windows(conn, writes.rows, now)
        add_clicks(conn, writes.click_deltas)
    set_offsets(conn, TOPIC, batch.next_offsets)


def fresh_database(base_url: str) -> str:
    url = create_database(base_url, prefix="bench")
    upgrade(url)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"INSERT INTO sink_offsets VALUES ('{TOPIC}', 0, -2)"))
    engine.dispose()
    return url


def run(base_url: str, write: Callable[[sa.Connection, Batch], None], batches: list[Batch]) -> float:
    engine = make_engine(fresh_database(base_url))
    began = time.perf_counter()
    for batch in batches:
        with engine.begin() as conn:
            write(conn, batch)
    elapsed = time.perf_counter() - began
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT count(*), sum(clicks) FROM click_windows")).one()
        total = conn.execute(sa.text("SELECT sum(click_count) FROM clicks")).scalar_one()
    engine.dispose()
    assert rows[1] == total, "clicks totals disagree with click_windows"
    return sum(b.size for b in batches) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=10_000)
    args = parser.parse_args()
    cluster = None
    base_url = args.database_url
    if base_url is None:
        cluster = PgCluster(Path(tempfile.mkdtemp(prefix="cm-bench-pg-")), free_port())
        cluster.init()
        cluster.start()
        base_url = cluster.url
    batches = make_batches(args.batches, args.batch_size, 0) + make_batches(args.batches, args.batch_size, 1)
    try:
        fast = run(base_url, multi_row, batches)
        slow = run(base_url, row_by_row, batches)
    finally:
        if cluster is not None:
            cluster.stop()
    print(f"{'variant':>22} {'windows/s':>10}")
    print(f"{'multi-row (the sink)':>22} {fast:>10.0f}")
    print(f"{'one statement per row':>22} {slow:>10.0f}")
    print(f"{'ratio':>22} {fast / slow:>9.1f}x  (target >= 10x)")
    record_summary(
        "sink, PostgreSQL",
        f"{fast:.0f} windows/s",
        f"row by row {slow:.0f}/s",
        f"{fast / slow:.1f}x",
        ">= 10x",
        fast / slow >= 10,
    )


if __name__ == "__main__":
    main()

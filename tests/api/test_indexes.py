"""The api's reads and their indexes (migration r0004), on both databases: the top of every class reads its
range from the read index alone, and the migration goes down to r0003 and up again."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic import command

from api import queries
from api.live import LiveWindow
from clickmuncher.db.engines import make_engine
from clickmuncher.db.schema import alembic_config, upgrade
from clickmuncher.records import ClickWindow
from tests.api.helpers import T0_MS, WINDOW_MS, closed, seed

READ_INDEX = "click_windows_start_url_classes"
CLASSES = ("human", "all", "bot", "preview", "prefetch")
WINDOWS, ASKED = 60, 6  # windows per URL in the table; the top asks for the first few


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    yield from _seeded(db_url)


@pytest.fixture
def pg_engine(pg_db_url: str) -> Iterator[sa.Engine]:
    yield from _seeded(pg_db_url)


def _seeded(db_url: str) -> Iterator[sa.Engine]:
    upgrade(db_url)
    windows = []
    for n in range(WINDOWS):
        for u in range(20):
            window = closed(f"https://example.com/{u}", n, 10 + u)
            by_class = (window.clicks - 4, 2, 1, 1) if u % 2 else None  # odd URLs with classes
            windows.append(
                ClickWindow(
                    window.url, window.window_start_ms, window.window_end_ms, window.clicks, 0, by_class
                )
            )
    seed(db_url, windows)
    engine = make_engine(db_url)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE" if conn.dialect.name == "sqlite" else "VACUUM ANALYZE click_windows")
    yield engine
    engine.dispose()


def plan(conn: sa.Connection, query: sa.Select[tuple[object, ...]]) -> str:
    """The plan of ``query``; on PostgreSQL with sequential and bitmap scans made a last resort (this table is
    too small for costs to tell), so an index-only scan is chosen whenever an index covers the query."""
    compiled = query.compile(dialect=conn.dialect)
    processors = compiled._bind_processors
    if conn.dialect.name == "sqlite":
        params = tuple(
            processors[name](value) if name in processors else value
            for name, value in ((n, compiled.params[n]) for n in compiled.positiontup or ())
        )
        rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + compiled.string, params).all()
        return "\n".join(str(row[-1]) for row in rows)
    for setting in ("enable_seqscan", "enable_bitmapscan"):
        conn.exec_driver_sql(f"SET LOCAL {setting} = off")
    params_pg = {
        name: processors[name](value) if name in processors else value
        for name, value in compiled.params.items()
    }
    rows = conn.exec_driver_sql("EXPLAIN " + compiled.string, params_pg).all()
    return "\n".join(str(row[0]) for row in rows)


def from_index_alone(text: str, dialect: str) -> bool:
    """Every read of ``click_windows`` in the plan is a search of the read index that needs no row."""
    if dialect == "sqlite":
        reads = [line for line in text.splitlines() if "click_windows" in line]
        return bool(reads) and all(
            f"SEARCH click_windows USING COVERING INDEX {READ_INDEX}" in r for r in reads
        )
    reads = [line for line in text.splitlines() if " on click_windows" in line]
    return bool(reads) and all(f"Index Only Scan using {READ_INDEX} on" in r for r in reads)


@pytest.mark.parametrize("cls", CLASSES)
def test_the_top_of_every_class_reads_the_index_alone(engine: sa.Engine, cls: str) -> None:
    until = T0_MS + ASKED * WINDOW_MS
    with engine.connect() as conn, conn.begin():
        text = plan(conn, queries.top_urls_query(T0_MS, until, 10, cls))
        assert from_index_alone(text, conn.dialect.name), text
        top = queries.top_urls(conn, T0_MS, until, 3, cls)
    expected = {  # (URL number, clicks per window); windows without classes count as human
        "human": [(18, 28), (16, 26), (19, 25)],
        "all": [(19, 29), (18, 28), (17, 27)],
        "bot": [(1, 2), (11, 2), (13, 2)],
    }.get(cls, [(1, 1), (11, 1), (13, 1)])
    assert top == [(f"https://example.com/{u}", ASKED * n) for u, n in expected]


@pytest.mark.parametrize("cls", ["bot", "human"])
def test_the_top_with_live_counts_reads_the_index_alone(pg_engine: sa.Engine, cls: str) -> None:
    """PostgreSQL only: there the live entries join the stored rows in one statement."""
    engine = pg_engine
    start = T0_MS + ASKED * WINDOW_MS
    live = [LiveWindow("https://example.com/1", start, start + WINDOW_MS, 9, 0, (5, 4, 0, 0), 3)]
    query = queries.top_with_live_query(T0_MS, start + WINDOW_MS, 10, live, cls)
    with engine.connect() as conn, conn.begin():
        text = plan(conn, query)
    assert from_index_alone(text, "postgresql"), text


def test_down_to_r0003_and_up_again(engine: sa.Engine, db_url: str) -> None:
    def indexes() -> set[str]:
        return {str(index["name"]) for index in sa.inspect(engine).get_indexes("click_windows")}

    assert READ_INDEX in indexes() and "click_windows_start_url_counts" not in indexes()
    with engine.begin() as conn:
        config = alembic_config()
        config.attributes["connection"] = conn
        command.downgrade(config, "r0003")
    assert "click_windows_start_url_counts" in indexes() and READ_INDEX not in indexes()
    upgrade(db_url)
    assert READ_INDEX in indexes() and "click_windows_start_url_counts" not in indexes()

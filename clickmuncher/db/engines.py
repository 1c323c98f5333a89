"""Engines for the sink's two databases: PostgreSQL (production) and SQLite (local default).

SQLite's Python driver starts transactions lazily and only before writes; the sink reads then writes in one
transaction, so SQLite connections here begin every transaction with ``BEGIN IMMEDIATE`` (the write lock is
taken up front, concurrent writers wait ``busy_timeout`` instead of failing half-way).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

SQLITE_BUSY_TIMEOUT_S = 30.0


def is_postgresql(engine: sa.Engine | sa.Connection) -> bool:
    return engine.dialect.name == "postgresql"


def make_engine(database_url: str) -> sa.Engine:
    """An engine that recovers from a restarted server (``pool_pre_ping``); no connection is opened here."""
    url = sa.make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return sa.create_engine(url, pool_pre_ping=True)
    engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})
    sa.event.listen(engine, "connect", _sqlite_connect)
    sa.event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # the driver's own implicit BEGIN is replaced by _sqlite_begin
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def _sqlite_begin(connection: sa.Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")

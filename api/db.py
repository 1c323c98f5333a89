"""The api's read-only database engine: one snapshot per request, never a write lock.

Each request runs its queries in one transaction, so the closed windows it sums and the "is this window
final" checks that decide which live counts to add see the same database state. PostgreSQL: ``REPEATABLE
READ``. SQLite (WAL, as the sink sets it): a deferred ``BEGIN``, whose snapshot starts at the first read
and never blocks the sink's writer (the sink's own engine begins with ``BEGIN IMMEDIATE``, for writes).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

SQLITE_BUSY_TIMEOUT_S = 5.0


def make_read_engine(database_url: str, pool_size: int) -> sa.Engine:
    """An engine of at most ``pool_size`` connections; none is opened here."""
    url = sa.make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return sa.create_engine(
            url,
            pool_pre_ping=True,
            pool_size=pool_size,
            max_overflow=0,
            isolation_level="REPEATABLE READ",
        )
    engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})
    sa.event.listen(engine, "connect", _sqlite_connect)
    sa.event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # the driver's own transaction handling is replaced below


def _sqlite_begin(connection: sa.Connection) -> None:
    connection.exec_driver_sql("BEGIN")

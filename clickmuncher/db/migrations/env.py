"""Alembic environment for the sink's schema.

:func:`clickmuncher.db.schema.upgrade` passes an open connection in ``config.attributes["connection"]``; the
``alembic`` command line (``alembic -c clickmuncher/db/alembic.ini``) uses ``sqlalchemy.url`` instead.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from clickmuncher.db.tables import metadata


def _run(connection: sa.Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    given = context.config.attributes.get("connection")
    if isinstance(given, sa.Connection):
        _run(given)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("set sqlalchemy.url or pass a connection")
    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            _run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) migrations are not supported")
run_migrations_online()

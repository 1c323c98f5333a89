"""Applies the Alembic migrations in ``migrations/`` (``clickmuncher db upgrade``, sink and api start)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from clickmuncher.db.engines import is_postgresql, make_engine
from clickmuncher.db.tables import metadata
from clickmuncher.settings import ConfigError

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# Several sinks may start at once: on PostgreSQL the migration runs under this advisory lock.
MIGRATION_LOCK_ID = 0x636C6B6D  # "clkm"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def upgrade(database_url: str) -> None:
    """Brings the database at ``database_url`` to the newest schema; a no-op when it is there already."""
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            if is_postgresql(connection):
                connection.execute(sa.select(sa.func.pg_advisory_xact_lock(MIGRATION_LOCK_ID)))
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except sa.exc.OperationalError as e:
        raise ConfigError(f"database unavailable: {_first_line(e)}") from e
    finally:
        engine.dispose()


def require_schema(engine: sa.Engine) -> None:
    """Raises :class:`ConfigError` when the sink's tables are missing (``clickmuncher db upgrade``)."""
    present = set(sa.inspect(engine).get_table_names())
    missing = sorted(set(metadata.tables) - present)
    if missing:
        raise ConfigError(f"tables missing: {', '.join(missing)} (run `clickmuncher db upgrade`)")


def _first_line(error: Exception) -> str:
    text = str(getattr(error, "orig", None) or error)
    return text.strip().splitlines()[0] if text.strip() else type(error).__name__

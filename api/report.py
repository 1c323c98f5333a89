"""The database's totals and recent windows, as aligned text tables (``clickmuncher stats`` adds the live
counts in ``api/stats.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa

from clickmuncher.db.engines import make_engine
from clickmuncher.db.tables import click_windows, clicks
from clickmuncher.db.times import datetime_to_ms
from clickmuncher.records import iso_utc

Cell = str | int


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Cell]]) -> str:
    """Columns padded to their widest cell; numbers right-aligned, text left-aligned."""
    widths = [max([len(h), *(len(str(row[i])) for row in rows)]) for i, h in enumerate(headers)]
    numeric = [bool(rows) and all(isinstance(row[i], int) for row in rows) for i in range(len(headers))]

    def line(cells: Sequence[Cell]) -> str:
        parts = [
            str(c).rjust(w) if num else str(c).ljust(w)
            for c, w, num in zip(cells, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(row) for row in rows)])


def top_urls(
    conn: sa.Connection, *, top: int, url: str | None, since: datetime | None
) -> list[tuple[str, int]]:
    """URLs by clicks: all-time totals from ``clicks``, or summed windows starting at or after ``since``."""
    if since is None:
        query = sa.select(clicks.c.url, clicks.c.click_count.label("n"))
        if url is not None:
            query = query.where(clicks.c.url == url)
    else:
        total = sa.func.sum(click_windows.c.clicks).label("n")
        query = (
            sa.select(click_windows.c.url, total)
            .where(click_windows.c.window_start >= since)
            .group_by(click_windows.c.url)
        )
        if url is not None:
            query = query.where(click_windows.c.url == url)
    query = query.order_by(sa.desc("n"), sa.asc("url")).limit(top)
    return [(str(u), int(n)) for u, n in conn.execute(query)]


def recent_windows(
    conn: sa.Connection, *, limit: int, url: str | None, since: datetime | None
) -> list[tuple[str, str, str, int, int]]:
    """The newest windows: (start, end, url, clicks, revision), times as ISO-8601 UTC."""
    c = click_windows.c
    query = sa.select(c.window_start, c.window_end, c.url, c.clicks, c.revision)
    if url is not None:
        query = query.where(c.url == url)
    if since is not None:
        query = query.where(c.window_start >= since)
    query = query.order_by(c.window_start.desc(), c.url).limit(limit)
    return [
        (iso_utc(datetime_to_ms(start)), iso_utc(datetime_to_ms(end)), str(u), int(n), int(rev))
        for start, end, u, n, rev in conn.execute(query)
    ]


def totals(database_url: str) -> tuple[int, int]:
    """(total clicks, window rows) in the database: a quick progress figure for demos."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            total = conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(clicks.c.click_count), 0))
            ).scalar_one()
            rows = conn.execute(sa.select(sa.func.count()).select_from(click_windows)).scalar_one()
    finally:
        engine.dispose()
    return int(total), int(rows)

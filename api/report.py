"""The database's totals and recent windows, as aligned text tables (``clickmuncher stats`` adds the live
counts in ``api/stats.py``)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa

from clickmuncher import sketches
from clickmuncher.db.engines import make_engine
from clickmuncher.db.tables import CLASS_COLUMNS, click_windows, clicks
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
) -> list[tuple[Cell, ...]]:
    """The newest windows: (start, end, url, clicks, human, bot, preview, prefetch, uniques, revision), times
    as ISO-8601 UTC; ``-`` for the classes and uniques of windows counted before classes existed."""
    c = click_windows.c
    classes = (*(c[name] for name in CLASS_COLUMNS), c.uniques)
    query = sa.select(c.window_start, c.window_end, c.url, c.clicks, *classes, c.revision)
    if url is not None:
        query = query.where(c.url == url)
    if since is not None:
        query = query.where(c.window_start >= since)
    query = query.order_by(c.window_start.desc(), c.url).limit(limit)
    return [
        (
            iso_utc(datetime_to_ms(start)),
            iso_utc(datetime_to_ms(end)),
            str(u),
            int(n),
            *("-" if v is None else int(v) for v in counts),
            int(rev),
        )
        for start, end, u, n, *counts, rev in conn.execute(query)
    ]


def class_totals(
    conn: sa.Connection, urls: Sequence[str], since: datetime | None
) -> dict[str, tuple[int, int, int, int, int]]:
    """Per URL of ``urls``, over its windows (starting at or after ``since``): human, bot, preview and
    prefetch clicks (windows without classes count as human) and the unique visitors of their sketches."""
    c = click_windows.c
    sums = (
        sa.func.sum(sa.func.coalesce(c.human_clicks, c.clicks)),
        *(sa.func.sum(sa.func.coalesce(c[name], 0)) for name in CLASS_COLUMNS[1:]),
    )
    where = [c.url.in_(list(urls))] + ([c.window_start >= since] if since is not None else [])
    counts = {
        str(u): [int(n) for n in found]
        for u, *found in conn.execute(sa.select(c.url, *sums).where(*where).group_by(c.url))
    }
    stored: dict[str, list[sketches.Sketch]] = {}
    for u, hll in conn.execute(sa.select(c.url, c.hll).where(*where, c.hll.is_not(None))):
        with contextlib.suppress(sketches.SketchError):  # an unreadable sketch is left out
            stored.setdefault(str(u), []).append(sketches.deserialize(bytes(hll)))
    return {
        u: (h, b, p, f, min(h, sketches.estimate(sketches.merge(stored.get(u, ())))))
        for u, (h, b, p, f) in counts.items()
    }


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

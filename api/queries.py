"""The api's SQL: closed windows from ``click_windows`` and totals from ``clicks`` (SPEC §7).

Times cross this boundary as milliseconds since the epoch. Every query is served by an index: the primary
key (url, window_start) and ``click_windows_start_url_clicks`` (window_start, url, clicks) of migration r0002.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice

import sqlalchemy as sa

from api.live import Key
from sinks.tables import click_windows, clicks
from sinks.times import datetime_to_ms, ms_to_datetime

IN_CHUNK = 1000  # URLs per IN list: SQLite's bound on parameters, and plans that stay index lookups


@dataclass(frozen=True, slots=True)
class WindowRow:
    window_start_ms: int
    window_end_ms: int
    clicks: int
    revision: int


def top_urls(conn: sa.Connection, since_ms: int, until_ms: int, limit: int) -> list[tuple[str, int]]:
    """The ``limit`` URLs with most clicks in windows starting in ``[since_ms, until_ms)``, most first (ties
    by URL)."""
    c = click_windows.c
    total = sa.func.sum(c.clicks).label("n")
    query = (
        sa.select(c.url, total)
        .where(c.window_start >= ms_to_datetime(since_ms), c.window_start < ms_to_datetime(until_ms))
        .group_by(c.url)
        .order_by(total.desc(), c.url)
        .limit(limit)
    )
    return [(str(url), int(n)) for url, n in conn.execute(query)]


def url_sums(conn: sa.Connection, urls: Iterable[str], since_ms: int, until_ms: int) -> dict[str, int]:
    """Clicks of each of ``urls`` in windows starting in ``[since_ms, until_ms)`` (absent: none)."""
    c = click_windows.c
    sums: dict[str, int] = {}
    for chunk in _chunks(urls):
        query = (
            sa.select(c.url, sa.func.sum(c.clicks))
            .where(
                c.url.in_(chunk),
                c.window_start >= ms_to_datetime(since_ms),
                c.window_start < ms_to_datetime(until_ms),
            )
            .group_by(c.url)
        )
        sums.update((str(url), int(n)) for url, n in conn.execute(query))
    return sums


def final_keys(conn: sa.Connection, keys: Iterable[Key]) -> set[Key]:
    """Those of ``keys`` whose window is in ``click_windows``, i.e. closed and final."""
    by_start: dict[int, list[str]] = {}
    for url, start_ms in keys:
        by_start.setdefault(start_ms, []).append(url)
    found: set[Key] = set()
    c = click_windows.c
    for start_ms, urls in by_start.items():
        for chunk in _chunks(urls):
            query = sa.select(c.url).where(c.window_start == ms_to_datetime(start_ms), c.url.in_(chunk))
            found.update((str(url), start_ms) for url in conn.scalars(query))
    return found


def url_windows(conn: sa.Connection, url: str, from_ms: int, to_ms: int, limit: int) -> list[WindowRow]:
    """At most ``limit`` windows of ``url`` starting in ``[from_ms, to_ms)``, in time order."""
    c = click_windows.c
    query = (
        sa.select(c.window_start, c.window_end, c.clicks, c.revision)
        .where(
            c.url == url, c.window_start >= ms_to_datetime(from_ms), c.window_start < ms_to_datetime(to_ms)
        )
        .order_by(c.window_start)
        .limit(limit)
    )
    return [
        WindowRow(datetime_to_ms(start), datetime_to_ms(end), int(n), int(revision))
        for start, end, n, revision in conn.execute(query)
    ]


def url_total(conn: sa.Connection, url: str) -> int:
    """The running total of ``url`` in ``clicks`` (0 when it was never counted)."""
    total = conn.scalar(sa.select(clicks.c.click_count).where(clicks.c.url == url))
    return int(total or 0)


def url_totals(conn: sa.Connection, urls: Iterable[str]) -> dict[str, int]:
    """The running totals of ``urls`` in ``clicks`` (absent: never counted)."""
    totals: dict[str, int] = {}
    for chunk in _chunks(urls):
        query = sa.select(clicks.c.url, clicks.c.click_count).where(clicks.c.url.in_(chunk))
        totals.update((str(url), int(n)) for url, n in conn.execute(query))
    return totals


def _chunks(items: Iterable[str]) -> Iterator[Sequence[str]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, IN_CHUNK)):
        yield chunk

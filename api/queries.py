"""The api's SQL: closed windows from ``click_windows`` and totals from ``clicks`` (SPEC §7).

Times cross this boundary as milliseconds since the epoch. Every query is served by an index: the primary
key (url, window_start) and ``click_windows_start_url_classes`` (window_start, url, clicks and the four class
counts) of migration r0004, so the top of any class reads the range from the index alone.
On PostgreSQL, sets of live entries travel as array parameters joined as a table (one statement, one cached
plan, however many entries); SQLite, in-process, takes them as IN lists.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from api.live import Key, LiveWindow, class_count
from clickmuncher.db.tables import CLASS_COLUMNS, click_windows, clicks
from clickmuncher.db.times import ms_to_datetime
from clickmuncher.records import ByClass

IN_CHUNK = 1000  # URLs per IN list: SQLite's bound on parameters, and plans that stay index lookups


@dataclass(frozen=True, slots=True)
class WindowCount:
    """One window of a URL: closed (``final``, from the table) or open (a live count). ``by_class`` and
    ``uniques`` are None for windows counted before click classes existed."""

    window_start_ms: int
    window_end_ms: int
    clicks: int
    revision: int
    final: bool
    by_class: ByClass | None = None
    uniques: int | None = None

    def count(self, cls: str) -> int:
        return class_count(self.clicks, self.by_class, cls)


def class_clicks(cls: str) -> sa.ColumnElement[Any]:
    """A window's clicks of class ``cls`` (``all``: every class). Windows counted before classes existed
    (NULL class columns) count as human, as the streams worker counts clicks without a class."""
    c = click_windows.c
    if cls == "all":
        return c.clicks
    if cls == "human":
        return sa.func.coalesce(c.human_clicks, c.clicks)
    return sa.func.coalesce(c[f"{cls}_clicks"], 0)


def top_urls_query(
    since_ms: int, until_ms: int, limit: int, cls: str = "human"
) -> sa.Select[tuple[Any, ...]]:
    c = click_windows.c
    total = sa.func.sum(class_clicks(cls)).label("n")
    return (
        sa.select(c.url, total)
        .where(c.window_start >= ms_to_datetime(since_ms), c.window_start < ms_to_datetime(until_ms))
        .group_by(c.url)
        .order_by(total.desc(), c.url)
        .limit(limit)
    )


def top_urls(
    conn: sa.Connection, since_ms: int, until_ms: int, limit: int, cls: str = "human"
) -> list[tuple[str, int]]:
    """The ``limit`` URLs with most clicks of ``cls`` in windows starting in ``[since_ms, until_ms)``, most
    first (ties by URL)."""
    query = top_urls_query(since_ms, until_ms, limit, cls)
    return [(str(url), int(n)) for url, n in conn.execute(query)]


def top_with_live_query(
    since_ms: int, until_ms: int, limit: int, live: Sequence[LiveWindow], cls: str = "human"
) -> sa.Select[tuple[Any, ...]]:
    """PostgreSQL: the top ``limit`` URLs of closed windows plus the ``live`` entries whose window is not in
    the table, as (url, clicks, live clicks); ``live`` are entries of windows starting in the range."""
    c = click_windows.c
    in_range = (c.window_start >= ms_to_datetime(since_ms), c.window_start < ms_to_datetime(until_ms))
    rows = _live_table((w.url, w.window_start_ms, w.count(cls)) for w in live)
    live_start = sa.func.to_timestamp(rows.c.start_ms / 1000.0)
    # The range repeated in the anti-join keeps a hash plan to the range's rows, not the whole table.
    final = sa.exists().where(c.url == rows.c.url, c.window_start == live_start, *in_range)
    open_live = sa.select(rows.c.url, rows.c.clicks, rows.c.clicks.label("live")).where(~final)
    closed = sa.select(c.url, class_clicks(cls).label("clicks"), sa.literal(0, sa.BigInteger).label("live"))
    closed = closed.where(*in_range)
    counts = sa.union_all(closed, open_live).subquery("counts")
    total = sa.func.sum(counts.c.clicks).label("n")
    return (
        sa.select(counts.c.url, total, sa.func.sum(counts.c.live))
        .group_by(counts.c.url)
        .order_by(total.desc(), counts.c.url)
        .limit(limit)
    )


def top_with_live(
    conn: sa.Connection,
    since_ms: int,
    until_ms: int,
    limit: int,
    live: Sequence[LiveWindow],
    cls: str = "human",
) -> list[tuple[str, int, int]]:
    query = top_with_live_query(since_ms, until_ms, limit, live, cls)
    return [(str(url), int(n), int(part)) for url, n, part in conn.execute(query).all()]


def _live_table(entries: Iterable[tuple[str, int, int]]) -> sa.TableValuedAlias:
    """PostgreSQL: (url, start_ms, clicks) entries as a table, from one JSON parameter (the driver dumps
    thousands of them far faster as JSON than as arrays)."""
    body = [{"url": url, "start_ms": start_ms, "clicks": n} for url, start_ms, n in entries]
    return (
        sa.func.json_to_recordset(sa.bindparam("live", body, type_=postgresql.JSON))
        .table_valued(
            sa.column("url", sa.Text),
            sa.column("start_ms", sa.BigInteger),
            sa.column("clicks", sa.BigInteger),
        )
        .render_derived(name="live", with_types=True)
    )


def url_sums(
    conn: sa.Connection, urls: Iterable[str], since_ms: int, until_ms: int, cls: str = "human"
) -> dict[str, int]:
    """Clicks of ``cls`` of each of ``urls`` in windows starting in ``[since_ms, until_ms)`` (absent:
    none)."""
    c = click_windows.c
    sums: dict[str, int] = {}
    for chunk in _chunks(urls):
        query = (
            sa.select(c.url, sa.func.sum(class_clicks(cls)))
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
    wanted = list(keys)
    if not wanted:
        return set()
    c = click_windows.c
    if conn.dialect.name == "postgresql":
        rows = _live_table((url, start_ms, 0) for url, start_ms in wanted)
        live_start = sa.func.to_timestamp(rows.c.start_ms / 1000.0)
        query = sa.select(c.url, rows.c.start_ms).join(
            rows, (c.url == rows.c.url) & (c.window_start == live_start)
        )
        return {(str(url), int(start_ms)) for url, start_ms in conn.execute(query)}
    by_start: dict[int, list[str]] = {}
    for url, start_ms in wanted:
        by_start.setdefault(start_ms, []).append(url)
    found: set[Key] = set()
    for start_ms, urls in by_start.items():
        for chunk in _chunks(urls):
            query = sa.select(c.url).where(c.window_start == ms_to_datetime(start_ms), c.url.in_(chunk))
            found.update((str(url), start_ms) for url in conn.scalars(query))
    return found


def url_windows_query(
    url: str, from_ms: int, to_ms: int, limit: int, epoch_ms: bool = False
) -> sa.Select[tuple[Any, ...]]:
    """With ``epoch_ms`` (PostgreSQL) the times come back as milliseconds, computed by the server: a month of
    windows is thousands of times the driver would otherwise parse and this process convert."""
    c = click_windows.c
    times: tuple[sa.ColumnElement[Any], ...] = (c.window_start, c.window_end)
    if epoch_ms:
        times = tuple(sa.cast(sa.extract("epoch", t) * 1000, sa.BigInteger) for t in times)
    return (
        sa.select(*times, c.clicks, c.revision, *(c[name] for name in CLASS_COLUMNS), c.uniques)
        .where(
            c.url == url, c.window_start >= ms_to_datetime(from_ms), c.window_start < ms_to_datetime(to_ms)
        )
        .order_by(c.window_start)
        .limit(limit)
    )


def url_windows(conn: sa.Connection, url: str, from_ms: int, to_ms: int, limit: int) -> list[WindowCount]:
    """At most ``limit`` windows of ``url`` starting in ``[from_ms, to_ms)``, in time order."""
    postgres = conn.dialect.name == "postgresql"
    query = url_windows_query(url, from_ms, to_ms, limit, epoch_ms=postgres)
    return [
        WindowCount(
            start if postgres else _ms(start),
            end if postgres else _ms(end),
            n,
            revision,
            True,
            None if human is None else (human, bot, preview, prefetch),
            uniques,
        )
        for start, end, n, revision, human, bot, preview, prefetch, uniques in conn.execute(query).all()
    ]


def url_sketches_query(url: str, from_ms: int, to_ms: int, limit: int) -> sa.Select[tuple[Any, ...]]:
    c = click_windows.c
    return (
        sa.select(class_clicks("human"), c.human_clicks.is_not(None), c.hll)
        .where(
            c.url == url, c.window_start >= ms_to_datetime(from_ms), c.window_start < ms_to_datetime(to_ms)
        )
        .limit(limit)
    )


def url_sketches(conn: sa.Connection, url: str, from_ms: int, to_ms: int, limit: int) -> UrlSketches:
    """The sketches of ``url``'s windows starting in ``[from_ms, to_ms)`` (at most ``limit`` windows read),
    with the windows' human clicks and how many windows have classes but no sketch (no visitor)."""
    found = UrlSketches()
    for human, classified, hll in conn.execute(url_sketches_query(url, from_ms, to_ms, limit)):
        found.windows += 1
        found.human_clicks += int(human)
        if hll is not None:
            found.sketches.append(bytes(hll))
        elif not classified:
            found.unclassified += 1
    return found


@dataclass(slots=True)
class UrlSketches:
    windows: int = 0
    human_clicks: int = 0
    unclassified: int = 0  # windows counted before classes (and visitor ids) existed
    sketches: list[bytes] = field(default_factory=list)


def url_total(conn: sa.Connection, url: str, cls: str = "all") -> int:
    """The running total of ``url`` (0 when it was never counted): from ``clicks`` for every class, else
    summed over its windows."""
    return int(conn.scalar(url_total_query(url, cls)) or 0)


def url_total_query(url: str, cls: str = "all") -> sa.Select[tuple[Any]]:
    if cls == "all":
        return sa.select(clicks.c.click_count).where(clicks.c.url == url)
    return sa.select(sa.func.sum(class_clicks(cls))).where(click_windows.c.url == url)


def url_totals(conn: sa.Connection, urls: Iterable[str], cls: str = "all") -> dict[str, int]:
    """The running totals of ``urls`` (absent: never counted), as :func:`url_total`."""
    totals: dict[str, int] = {}
    for chunk in _chunks(urls):
        if cls == "all":
            query = sa.select(clicks.c.url, clicks.c.click_count).where(clicks.c.url.in_(chunk))
        else:
            c = click_windows.c
            query = sa.select(c.url, sa.func.sum(class_clicks(cls))).where(c.url.in_(chunk)).group_by(c.url)
        totals.update((str(url), int(n)) for url, n in conn.execute(query))
    return totals


def _ms(moment: datetime) -> int:
    """Milliseconds since the epoch of a database time (SQLite's are naive, in UTC); thousands per answer,
    so through ``timestamp()`` rather than a timedelta division."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return round(aware.timestamp() * 1000)


def _chunks(items: Iterable[str]) -> Iterator[Sequence[str]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, IN_CHUNK)):
        yield chunk

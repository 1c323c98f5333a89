"""``clickmuncher stats``: the database's totals and recent windows, with the live counts of open windows
(read from the live topic to its end) marked as such next to them.

Without live counts (none, ``--no-live``, or the topic cannot be read) the tables are the database's alone,
as before, and a last line says why.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from api import queries
from api.db import make_read_engine
from api.live import LiveWindow
from api.merge import UrlCount, merge_top
from api.reader import LiveUnavailable, read_snapshot
from api.report import Cell, class_totals, format_table, recent_windows, top_urls
from clickmuncher.db.schema import require_schema
from clickmuncher.db.times import datetime_to_ms, parse_iso_utc
from clickmuncher.kafka.check import KafkaUnavailable, check_cluster
from clickmuncher.records import CLASSES, iso_utc
from clickmuncher.settings import ApiSettings, ConfigError

LIVE_TIMEOUT_S = 10.0
REACHABLE_TIMEOUT_S = 3.0
FAR_FUTURE_MS = 253_402_300_799_000  # 9999-12-31T23:59:59Z


def stats_command(settings: ApiSettings, *, top: int, url: str | None, since: str | None, live: bool) -> None:
    if top < 1:
        raise ConfigError("--top must be at least 1")
    since_at = parse_iso_utc(since, "--since") if since is not None else None
    windows, note = _live_windows(settings) if live else ([], "live counts: not read (--no-live)")
    engine = make_read_engine(settings.database_url, pool_size=1)
    try:
        require_schema(engine)
        with engine.connect() as conn, conn.begin():
            print(render(conn, windows, top=top, url=url, since=since_at))
    except sa.exc.OperationalError as e:
        raise ConfigError(f"database unavailable: {str(e.orig).strip().splitlines()[0]}") from e
    finally:
        engine.dispose()
    print(note)


def _live_windows(settings: ApiSettings) -> tuple[list[LiveWindow], str]:
    try:
        _check_reachable(settings)
        counts = read_snapshot(settings, LIVE_TIMEOUT_S)
    except LiveUnavailable as e:
        return [], f"live counts: unavailable ({e})"
    windows = counts.in_range(0, FAR_FUTURE_MS)
    return windows, f"live counts: {len(windows)} open window entries read from {settings.live_topic}"


def _check_reachable(settings: ApiSettings) -> None:
    """Fails soon, with the reason, when the cluster cannot be used: unreachable, or a wrong password or
    CA (the live reader would only wait its timeout)."""
    try:
        check_cluster(settings.kafka, timeout_s=REACHABLE_TIMEOUT_S)
    except KafkaUnavailable as e:
        raise LiveUnavailable(str(e)) from e


def render(
    conn: sa.Connection, live: list[LiveWindow], *, top: int, url: str | None, since: datetime | None
) -> str:
    """The two tables; live windows the database already holds as final are left out."""
    since_ms = datetime_to_ms(since) if since is not None else 0
    live = [w for w in live if (url is None or w.url == url) and w.window_start_ms >= since_ms]
    done = queries.final_keys(conn, (w.key for w in live))
    live = [w for w in live if w.key not in done]
    scope = f" since {iso_utc(since_ms)}" if since is not None else ""
    return "\n".join(
        [
            f"clicks per URL{scope} (top {top})",
            _totals_table(conn, live, top=top, url=url, since=since),
            "",
            f"recent windows{scope} (newest {top})",
            _windows_table(conn, live, top=top, url=url, since=since),
        ]
    )


def _totals_table(
    conn: sa.Connection, live: list[LiveWindow], *, top: int, url: str | None, since: datetime | None
) -> str:
    """URLs by all their clicks, with each class's share and the unique visitors of their closed windows
    (SPEC §12); live counts included and marked."""
    db_top = top_urls(conn, top=top, url=url, since=since)
    if live:
        ranked = dict(db_top)
        others = {w.url for w in live if w.url not in ranked}
        if since is None:
            sums = queries.url_totals(conn, others)
        else:
            sums = queries.url_sums(conn, others, datetime_to_ms(since), FAR_FUTURE_MS, "all")
        rows = merge_top(db_top, sums, live, top, "all")
    else:
        rows = [UrlCount(u, n, 0) for u, n in db_top]
    if not rows:
        return "(none)"
    closed = class_totals(conn, [r.url for r in rows], since)
    cells = [_total_cells(r, closed.get(r.url, (0, 0, 0, 0, 0)), live) for r in rows]
    headers = ["url", "clicks", *CLASSES, "uniques"] + (["of which live"] if live else [])
    return format_table(headers, [row if live else row[:-1] for row in cells])


def _total_cells(row: UrlCount, closed: tuple[int, ...], live: list[LiveWindow]) -> tuple[Cell, ...]:
    """A URL's line: its clicks, per class (closed plus live), its closed windows' uniques, its live part."""
    counts = list(closed[:4])
    for w in live:
        if w.url == row.url:
            counts = [n + w.count(cls) for n, cls in zip(counts, CLASSES, strict=True)]
    return (row.url, row.clicks, *counts, closed[4], f"+{row.live} live" if row.live else "")


def _windows_table(
    conn: sa.Connection, live: list[LiveWindow], *, top: int, url: str | None, since: datetime | None
) -> str:
    final = [(*row, "final") for row in recent_windows(conn, limit=top, url=url, since=since)]
    open_: list[tuple[Cell, ...]] = [
        (
            iso_utc(w.window_start_ms),
            iso_utc(w.window_end_ms),
            w.url,
            w.clicks,
            *(w.by_class if w.by_class is not None else ("-",) * len(CLASSES)),
            "-" if w.uniques is None else w.uniques,
            w.revision,
            "live",
        )
        for w in live
    ]
    rows = sorted(sorted(final + open_, key=lambda row: row[2]), key=lambda row: row[0], reverse=True)[:top]
    headers = ["window_start", "window_end", "url", "clicks", *CLASSES, "uniques", "revision", "state"]
    return format_table(headers, rows) if rows else "(none)"

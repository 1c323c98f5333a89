"""The reads of SPEC §11: closed windows from the database merged with live counts, and the pruning of live
entries the database has made final.

Blocking code: the app runs every method in its thread pool. Each read copies the live entries it needs
first, then asks the database in one snapshot which of them are final; a live entry removed meanwhile by the
pruner is final in that snapshot too, so no click is counted twice or missed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import sqlalchemy as sa

from api import queries
from api.live import LiveCounts
from api.merge import UrlCount, merge_top, merge_windows
from api.queries import WindowCount
from clickmuncher import sketches

log = logging.getLogger("api")

MAX_WINDOWS = 10_000  # per /api/windows answer: a wider range is refused, not truncated


class TooManyWindows(ValueError):
    """The range holds more than :data:`MAX_WINDOWS` windows of the URL."""


@dataclass(frozen=True, slots=True)
class Total:
    clicks: int
    live: int


@dataclass(frozen=True, slots=True)
class Uniques:
    """``uniques`` estimated over ``windows`` closed windows, ``merged`` of which had a sketch; windows
    counted before visitor ids existed (``unclassified``) have no visitors in it."""

    uniques: int
    human_clicks: int
    windows: int
    merged: int
    unclassified: int


def _readable(stored: list[bytes]) -> Iterator[sketches.Sketch]:
    """The stored sketches, each checked again before the library reads it (a database can be written by
    others too); an unreadable one is left out and logged."""
    for raw in stored:
        try:
            yield sketches.deserialize(raw)
        except sketches.SketchError as e:
            log.error("a stored sketch is unreadable, left out of uniques: %s", e)


class ReadService:
    def __init__(self, engine: sa.Engine, live: LiveCounts) -> None:
        self.engine = engine
        self.live = live

    def top(
        self, since_ms: int, until_ms: int, limit: int, final: bool, cls: str = "human"
    ) -> list[UrlCount]:
        """URLs by clicks of ``cls`` in windows starting in ``[since_ms, until_ms)``; live counts unless
        ``final``."""
        live = [] if final else self.live.in_range(since_ms, until_ms)
        with self.engine.connect() as conn, conn.begin():
            if not live:
                top = queries.top_urls(conn, since_ms, until_ms, limit, cls)
                return [UrlCount(url, n, 0) for url, n in top]
            if conn.dialect.name == "postgresql":
                rows = queries.top_with_live(conn, since_ms, until_ms, limit, live, cls)
                return [UrlCount(url, n, part) for url, n, part in rows]
            db_top = queries.top_urls(conn, since_ms, until_ms, limit, cls)
            done = queries.final_keys(conn, (w.key for w in live))
            open_live = [w for w in live if w.key not in done]
            ranked = dict(db_top)
            others = {w.url for w in open_live if w.url not in ranked}
            sums = queries.url_sums(conn, others, since_ms, until_ms, cls)
        return merge_top(db_top, sums, open_live, limit, cls)

    def windows(self, url: str, from_ms: int, to_ms: int) -> list[WindowCount]:
        """The windows of ``url`` starting in ``[from_ms, to_ms)``, closed and live, in time order."""
        live = [w for w in self.live.for_url(url) if from_ms <= w.window_start_ms < to_ms]
        with self.engine.connect() as conn, conn.begin():
            rows = queries.url_windows(conn, url, from_ms, to_ms, MAX_WINDOWS + 1)
        merged = merge_windows(rows, live)
        if len(merged) > MAX_WINDOWS:
            raise TooManyWindows(f"more than {MAX_WINDOWS} windows in the range; ask for a shorter one")
        return merged

    def total(self, url: str, cls: str = "human") -> Total:
        """The running total of ``url``'s clicks of ``cls`` plus its live counts not yet final."""
        live = self.live.for_url(url)
        with self.engine.connect() as conn, conn.begin():
            closed = queries.url_total(conn, url, cls)
            done = queries.final_keys(conn, (w.key for w in live)) if live else set()
        live_clicks = sum(w.count(cls) for w in live if w.key not in done)
        return Total(closed + live_clicks, live_clicks)

    def uniques(self, url: str, from_ms: int, to_ms: int) -> Uniques:
        """Distinct human visitors of ``url`` over the closed windows starting in ``[from_ms, to_ms)``: the
        union of their sketches (open windows join when they close)."""
        with self.engine.connect() as conn, conn.begin():
            found = queries.url_sketches(conn, url, from_ms, to_ms, MAX_WINDOWS + 1)
        if found.windows > MAX_WINDOWS:
            raise TooManyWindows(f"more than {MAX_WINDOWS} windows in the range; ask for a shorter one")
        merged = sketches.merge(_readable(found.sketches))
        estimate = min(sketches.estimate(merged), found.human_clicks)
        return Uniques(estimate, found.human_clicks, found.windows, len(found.sketches), found.unclassified)

    def prune(self, ended_before_ms: int, expired_before_ms: int) -> tuple[int, int]:
        """Drops live entries whose window the database holds (among windows that ended before
        ``ended_before_ms``) and those of windows that ended before ``expired_before_ms``; returns both
        counts."""
        candidates = self.live.ended_before(ended_before_ms)
        expired = [w.key for w in candidates if w.window_end_ms < expired_before_ms]
        expired_n = self.live.remove(expired)
        if not candidates:
            return 0, expired_n
        with self.engine.connect() as conn, conn.begin():
            done = queries.final_keys(conn, (w.key for w in candidates))
        return self.live.remove(done), expired_n

    def ping(self) -> None:
        """Raises when the database does not answer."""
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

"""Closed windows from the database merged with live counts of open windows (pure functions).

A window final in the database always wins: the live entries passed here are those whose (url, window) the
same database snapshot does not hold.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from api.live import LiveWindow
from api.queries import WindowCount


@dataclass(frozen=True, slots=True)
class UrlCount:
    """Clicks of one URL over a range: ``clicks`` includes ``live``, the part still in open windows."""

    url: str
    clicks: int
    live: int


def merge_top(
    db_top: Sequence[tuple[str, int]],
    db_sums: dict[str, int],
    open_live: Iterable[LiveWindow],
    limit: int,
    cls: str = "human",
) -> list[UrlCount]:
    """The ``limit`` URLs with most clicks, most first, ties by URL.

    ``db_top`` is the database's own top ``limit``; ``db_sums`` the database's clicks (same range) of the
    URLs that have live counts; all of class ``cls``. Exact: a URL in neither has no more closed clicks
    than the last of ``db_top`` and no live ones, so it cannot rank above any URL kept.
    """
    live = Counter[str]()
    for window in open_live:
        live[window.url] += window.count(cls)
    closed = dict(db_top)
    for url in live:
        closed.setdefault(url, db_sums.get(url, 0))
    merged = [UrlCount(url, n + live[url], live[url]) for url, n in closed.items()]
    merged.sort(key=lambda row: (-row.clicks, row.url))
    return merged[:limit]


def merge_windows(rows: Sequence[WindowCount], live: Iterable[LiveWindow]) -> list[WindowCount]:
    """The database's windows (final, in time order) and the live ones it does not hold, in time order."""
    held = {r.window_start_ms for r in rows}
    extra = [
        WindowCount(w.window_start_ms, w.window_end_ms, w.clicks, w.revision, False, w.by_class, w.uniques)
        for w in live
        if w.window_start_ms not in held
    ]
    if not extra:
        return list(rows)
    return sorted([*rows, *extra], key=lambda w: w.window_start_ms)

"""Realistic click windows for the api benchmark and the page's screenshot: URLs of Zipf-like popularity,
a daily rhythm, click classes and visitors, loaded into PostgreSQL with COPY (or into any database with bulk
inserts).

URL ``i`` (0 = most popular) is active in a share of the windows proportional to ``1 / (i + 1)``, capped at
every window; its clicks per window follow its popularity and the hour of the day. Each window's clicks are
split into classes as the gateway classifies them (SPEC §12: mostly human, then crawlers, link previews and
prefetches), and its human clicks come from visitors drawn from the URL's visitors of that UTC day (a visitor
id lives one day), kept in a sketch as the streams worker keeps them: so a range's unique visitors merge
sketches that overlap, as in production. The generator is seeded, so two runs load the same rows; the clicks
are those of the generator before classes existed (a second seeded stream draws the classes and visitors).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
import sqlalchemy as sa

from clickmuncher import sketches
from clickmuncher.db.tables import CLASS_COLUMNS, click_windows, clicks
from clickmuncher.db.times import ms_to_datetime
from clickmuncher.records import ByClass

SITES = ("example.com", "shop.example.com", "docs.example.org", "blog.example.net", "news.example.io")
PATHS = ("post", "product", "guide", "release", "pricing", "careers", "events")
DAY_MS = 86_400_000
# Shares of a window's clicks that are not human, each drawn uniformly up to this bound: crawlers, link
# previews (chat and social apps unfurling a shared link), browsers' prefetches.
BOT_SHARE, PREVIEW_SHARE, PREFETCH_SHARE = 0.25, 0.06, 0.04
VISITORS_PER_BASE_CLICK = 12  # a URL's visitors in a day, per click of its base rate (about 2 clicks each)


@dataclass(frozen=True, slots=True)
class Shape:
    rows: int
    urls: int
    windows: int
    window_ms: int
    end_ms: int  # the data ends at this window-aligned moment (exclusive)

    @property
    def start_ms(self) -> int:
        return self.end_ms - self.windows * self.window_ms


def url_of(i: int) -> str:
    site = SITES[i % len(SITES)]
    return (
        f"https://{site}/{PATHS[i % len(PATHS)]}/{i}?ref=n{i % 3}"
        if i % 4 == 3
        else f"https://{site}/{PATHS[i % len(PATHS)]}/{i}"
    )


def active_windows(shape: Shape) -> list[int]:
    """How many windows each URL has a row in, summing to about ``shape.rows``."""
    weights = [1 / (i + 1) for i in range(shape.urls)]
    scale = shape.rows / sum(weights)
    for _ in range(20):  # the cap at every window frees rows; give them to the others
        counts = [min(shape.windows, max(1, round(w * scale))) for w in weights]
        if sum(counts) >= shape.rows * 0.995:
            break
        scale *= shape.rows / max(1, sum(counts))
    return counts


def diurnal(start_ms: int) -> float:
    hour = (start_ms // 3_600_000) % 24
    return 0.35 + 0.65 * (1 + math.sin((hour - 9) / 24 * 2 * math.pi)) / 2


@dataclass(frozen=True, slots=True)
class Row:
    """One window of one URL, as the sink writes it (SPEC §12 columns included)."""

    url: str
    start_ms: int
    clicks: int
    by_class: ByClass
    uniques: int
    hll: bytes | None  # None without human clicks, as the streams worker leaves it


def generate(shape: Shape, seed: int = 7) -> Iterator[Row]:
    rng = random.Random(seed)
    classes = random.Random(seed + 1)
    for i, n in enumerate(active_windows(shape)):
        url, base, visitors = url_of(i), base_rate(i), daily_visitors(i)
        for w in rng.sample(range(shape.windows), n):
            start = shape.start_ms + w * shape.window_ms
            total = max(1, int(base * diurnal(start) * rng.uniform(0.6, 1.4)))
            yield classify(url, start, total, visitors, classes)


def base_rate(i: int) -> float:
    """URL ``i``'s clicks per window before the hour of the day is applied."""
    return 400 / math.pow(i + 1, 0.8) + 1


def daily_visitors(i: int) -> int:
    """How many visitors URL ``i`` has in a day (its windows' human clicks are drawn from them)."""
    return max(3, round(base_rate(i) * VISITORS_PER_BASE_CLICK))


def classify(url: str, start_ms: int, total: int, daily_visitors: int, rng: random.Random) -> Row:
    """``total`` clicks split into classes, the human ones by visitors of the window's UTC day."""

    def share(bound: float) -> int:  # rounded at random, so a window of one click is sometimes a bot's
        return int(total * rng.uniform(0, bound) + rng.random())

    bot = share(BOT_SHARE)
    preview = min(total - bot, share(PREVIEW_SHARE))
    prefetch = min(total - bot - preview, share(PREFETCH_SHARE))
    human = total - bot - preview - prefetch
    if not human:
        return Row(url, start_ms, total, (0, bot, preview, prefetch), 0, None)
    sketch = sketches.new()
    day = start_ms // DAY_MS
    for _ in range(human):
        sketch.update(day * 10_000_000 + rng.randrange(daily_visitors))
    uniques = min(human, sketches.estimate(sketch))
    return Row(url, start_ms, total, (human, bot, preview, prefetch), uniques, sketches.serialize(sketch))


def copy_rows(database_url: str, shape: Shape) -> int:
    """Loads the rows into an empty schema with COPY, then the ``clicks`` totals; returns the row count."""
    dsn = sa.make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    now = datetime.now(UTC)
    written = 0
    with psycopg.connect(dsn) as conn:
        # The test clusters commit asynchronously; VACUUM can mark pages all-visible (what index-only scans
        # need) only once the rows' commit is flushed, so this load commits synchronously.
        conn.execute("SET synchronous_commit TO on")
        with conn.cursor() as cur:
            columns = ", ".join(
                (
                    "url, window_start, window_end, clicks, revision, updated_at",
                    *CLASS_COLUMNS,
                    "uniques, hll",
                )
            )
            with cur.copy(f"COPY click_windows ({columns}) FROM STDIN") as copy:
                for row in generate(shape):
                    start, end = ms_to_datetime(row.start_ms), ms_to_datetime(row.start_ms + shape.window_ms)
                    copy.write_row(
                        (row.url, start, end, row.clicks, 0, now, *row.by_class, row.uniques, row.hll)
                    )
                    written += 1
            totals = "SELECT url, sum(clicks) FROM click_windows GROUP BY url"
            cur.execute(f"INSERT INTO clicks (url, click_count) {totals}")
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE click_windows")
        conn.execute("VACUUM ANALYZE clicks")
    return written


def insert_rows(engine: sa.Engine, shape: Shape, batch: int = 5000) -> int:
    """The same rows with bulk inserts, for databases without COPY (the screenshot's SQLite)."""
    now = datetime.now(UTC)
    totals: dict[str, int] = {}
    rows: list[dict[str, object]] = []
    written = 0
    with engine.begin() as conn:
        for row in generate(shape):
            totals[row.url] = totals.get(row.url, 0) + row.clicks
            rows.append(
                {
                    "url": row.url,
                    "window_start": ms_to_datetime(row.start_ms),
                    "window_end": ms_to_datetime(row.start_ms + shape.window_ms),
                    "clicks": row.clicks,
                    "revision": 0,
                    "updated_at": now,
                    **dict(zip(CLASS_COLUMNS, row.by_class, strict=True)),
                    "uniques": row.uniques,
                    "hll": row.hll,
                }
            )
            if len(rows) >= batch:
                conn.execute(click_windows.insert(), rows)
                written += len(rows)
                rows = []
        if rows:
            conn.execute(click_windows.insert(), rows)
            written += len(rows)
        conn.execute(clicks.insert(), [{"url": url, "click_count": n} for url, n in totals.items()])
    return written

"""Realistic click windows for the api benchmark and the page's screenshot: URLs of Zipf-like popularity,
a daily rhythm, loaded into PostgreSQL with COPY (or into any database with bulk inserts).

URL ``i`` (0 = most popular) is active in a share of the windows proportional to ``1 / (i + 1)``, capped at
every window; its clicks per window follow its popularity and the hour of the day. The generator is seeded,
so two runs load the same rows.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
import sqlalchemy as sa

from clickmuncher.db.tables import click_windows, clicks
from clickmuncher.db.times import ms_to_datetime

SITES = ("example.com", "shop.example.com", "docs.example.org", "blog.example.net", "news.example.io")
PATHS = ("post", "product", "guide", "release", "pricing", "careers", "events")


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


def generate(shape: Shape, seed: int = 7) -> Iterator[tuple[str, int, int]]:
    """(url, window_start_ms, clicks) rows."""
    rng = random.Random(seed)
    for i, n in enumerate(active_windows(shape)):
        url = url_of(i)
        base = 400 / (i + 1) ** 0.8 + 1
        for w in rng.sample(range(shape.windows), n):
            start = shape.start_ms + w * shape.window_ms
            yield url, start, max(1, int(base * diurnal(start) * rng.uniform(0.6, 1.4)))


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
            columns = "url, window_start, window_end, clicks, revision, updated_at"
            with cur.copy(f"COPY click_windows ({columns}) FROM STDIN") as copy:
                for url, start, n in generate(shape):
                    copy.write_row(
                        (url, ms_to_datetime(start), ms_to_datetime(start + shape.window_ms), n, 0, now)
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
        for url, start, n in generate(shape):
            totals[url] = totals.get(url, 0) + n
            rows.append(
                {
                    "url": url,
                    "window_start": ms_to_datetime(start),
                    "window_end": ms_to_datetime(start + shape.window_ms),
                    "clicks": n,
                    "revision": 0,
                    "updated_at": now,
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

"""Shared helpers of the api tests: closed windows written straight to the database, live records."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime

import sqlalchemy as sa

from clickmuncher.db.engines import make_engine
from clickmuncher.db.tables import click_windows, clicks
from clickmuncher.db.times import ms_to_datetime
from clickmuncher.kafka.admin import COMPACTED, ensure_topics
from clickmuncher.records import ClickWindow
from sinks.store import window_row
from tests import kafka_clients

WINDOW_MS = 60_000
T0_MS = 1_790_000_040_000 - 1_790_000_040_000 % WINDOW_MS  # a window-aligned moment in 2026


def closed(url: str, n: int, count: int, revision: int = 0, t0_ms: int = T0_MS) -> ClickWindow:
    """The ``n``-th window after ``t0_ms`` of ``url``, with ``count`` clicks."""
    start = t0_ms + n * WINDOW_MS
    return ClickWindow(url, start, start + WINDOW_MS, count, revision)


def seed(db_url: str, windows: Iterable[ClickWindow]) -> None:
    """Writes closed windows as the sink would: the rows, and each URL's running total moved by them."""
    rows = list(windows)
    engine = make_engine(db_url)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(click_windows.insert(), [window_row(w, now) for w in rows])
        totals: dict[str, int] = {}
        for w in rows:
            totals[w.url] = totals.get(w.url, 0) + w.clicks
        for url, n in totals.items():
            updated = conn.execute(
                clicks.update().where(clicks.c.url == url).values(click_count=clicks.c.click_count + n)
            )
            if updated.rowcount == 0:
                conn.execute(clicks.insert().values(url=url, click_count=n))
    engine.dispose()


def db_sum(db_url: str, url: str, since_ms: int, until_ms: int) -> int:
    engine = make_engine(db_url)
    c = click_windows.c
    with engine.connect() as conn:
        total = conn.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(c.clicks), 0)).where(
                c.url == url,
                c.window_start >= ms_to_datetime(since_ms),
                c.window_start < ms_to_datetime(until_ms),
            )
        )
    engine.dispose()
    return int(total or 0)


def live_value(window: ClickWindow, **changes: object) -> bytes:
    """A live record's value: the click-windows value plus ``"final": false`` (fields overridable)."""
    body = {**window.to_json(), "final": False, **changes}
    return json.dumps(body).encode()


def produce_live(bootstrap: str, topic: str, records: Iterable[tuple[bytes | None, bytes | None]]) -> None:
    """Produces (key, value) pairs to the compacted live topic (created with 2 partitions if missing)."""
    ensure_topics(bootstrap, {topic: COMPACTED}, 2)
    producer = kafka_clients.producer(bootstrap)
    for key, value in records:
        producer.produce(topic, key=key, value=value)
    assert producer.flush(30) == 0

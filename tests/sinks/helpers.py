"""Shared helpers for the sink tests: settings, producing records, running the sink, reading the DB back."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from clickmuncher.db.times import datetime_to_ms
from clickmuncher.kafka.admin import COMPACTED, ensure_topics
from clickmuncher.records import ClickWindow
from clickmuncher.settings import Settings
from sinks.batch import dedupe
from sinks.sink import Sink, SinkSummary, open_sink
from tests import kafka_clients

PARTITIONS = 3
RUN_LIMIT_S = 90.0
T0_MS = 1_790_000_000_000  # a window-aligned moment in 2026
WINDOW_MS = 2000

WindowRows = dict[tuple[str, int], tuple[int, int, int]]  # (url, start_ms) -> (end_ms, clicks, revision)


def make_settings(bootstrap: str, db_url: str, unique: str, state_dir: Path, **extra: object) -> Settings:
    options: dict[str, object] = {
        "kafka_bootstrap": bootstrap,
        "database_url": db_url,
        "windows_topic": f"cw-{unique}",
        "sink_group": f"sink-{unique}",
        "partitions": PARTITIONS,
        "sink_session_timeout_s": 6.0,
        "sink_poll_timeout_s": 0.2,
        "sink_retry_max_s": 1.0,
        "sink_metrics_port": 0,
        "state_dir": state_dir,
    }
    options.update(extra)
    return Settings(**options)  # type: ignore[arg-type]


def window(url: str, n: int, clicks: int, revision: int = 0) -> ClickWindow:
    start = T0_MS + n * WINDOW_MS
    return ClickWindow(url, start, start + WINDOW_MS, clicks, revision)


RawPair = tuple[bytes | None, bytes | None]
DeadLetters = list[tuple[bytes | None, dict[str, bytes]]]


def produce(settings: Settings, records: Iterable[ClickWindow | bytes | RawPair]) -> None:
    """Produces windows (keyed as the streams service does), raw malformed values (key ``malformed``) or raw
    (key, value) pairs, in order."""
    ensure_topics(settings.kafka, {settings.windows_topic: COMPACTED}, settings.partitions)
    producer = kafka_clients.producer(settings.kafka, {"message.max.bytes": 2_000_000})
    failures: list[str] = []

    def on_delivery(error: Any, _message: Any) -> None:
        if error is not None:
            failures.append(str(error))

    for record in records:
        if isinstance(record, ClickWindow):
            key, value = record.key(), record.encode()
        elif isinstance(record, tuple):
            key, value = record
        else:
            key, value = b"malformed", record
        producer.produce(settings.windows_topic, key=key, value=value, on_delivery=on_delivery)
    assert producer.flush(30) == 0 and not failures, failures


def dead_letters(settings: Settings, count: int) -> DeadLetters:
    """The first ``count`` records of the dead topic (fewer if they do not come): value and headers."""
    group = f"{settings.sink_group}-dead-reader-{time.monotonic_ns()}"
    consumer = kafka_clients.consumer(settings.kafka, group, {"auto.offset.reset": "earliest"})
    consumer.subscribe([settings.windows_dead_topic])
    found: DeadLetters = []
    deadline = time.monotonic() + RUN_LIMIT_S
    while len(found) < count and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is not None and message.error() is None:
            headers = {name: value or b"" for name, value in message.headers() or []}
            found.append((message.value(), headers))
    consumer.close()
    return found


def run_until_caught_up(settings: Settings, on_open: Callable[[Sink], None] | None = None) -> SinkSummary:
    """Runs a sink in this thread until it has applied the whole topic (a safety limit stops a hung run)."""
    with open_sink(settings) as sink:
        if on_open is not None:
            on_open(sink)
        limit = threading.Timer(RUN_LIMIT_S, sink.stop.set)
        limit.start()
        try:
            summary = sink.run(until_caught_up=True)
        finally:
            limit.cancel()
        assert not sink.stop.is_set(), "the sink did not catch up within the safety limit"
    return summary


@contextmanager
def sink_in_thread(settings: Settings) -> Iterator[Sink]:
    """A sink running in a background thread until the block ends (then it stops and leaves its group)."""
    opened: list[Sink] = []
    ready = threading.Event()
    failures: list[BaseException] = []

    def target() -> None:
        try:
            with open_sink(settings) as sink:
                opened.append(sink)
                ready.set()
                sink.run()
        except BaseException as e:
            failures.append(e)
            ready.set()

    thread = threading.Thread(target=target, name="test-sink", daemon=True)
    thread.start()
    ready.wait(RUN_LIMIT_S)
    assert opened, f"sink did not start: {failures}"
    try:
        yield opened[0]
    finally:
        opened[0].stop.set()
        thread.join(RUN_LIMIT_S)
    assert not thread.is_alive() and not failures, failures


def wait_for(condition: Callable[[], bool], what: str, limit_s: float = RUN_LIMIT_S) -> None:
    """Polls ``condition`` (a safety limit, not a timing assertion)."""
    deadline = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.2)


def read_windows(db_url: str) -> WindowRows:
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT url, window_start, window_end, clicks, revision FROM click_windows")
            ).all()
    finally:
        engine.dispose()
    return {(u, _ms(s)): (_ms(e), int(c), int(r)) for u, s, e, c, r in rows}


def read_clicks(db_url: str) -> dict[str, int]:
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            return {u: int(n) for u, n in conn.execute(sa.text("SELECT url, click_count FROM clicks"))}
    finally:
        engine.dispose()


def read_offsets(db_url: str, topic: str) -> dict[int, int]:
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            query = sa.text("SELECT partition, next_offset FROM sink_offsets WHERE topic = :t")
            return {int(p): int(o) for p, o in conn.execute(query, {"t": topic})}
    finally:
        engine.dispose()


def _ms(value: object) -> int:
    if isinstance(value, str):  # SQLite through a plain text() query
        from datetime import datetime

        value = datetime.fromisoformat(value)
    assert hasattr(value, "tzinfo")
    return datetime_to_ms(value)  # type: ignore[arg-type]


def expected_state(records: Iterable[ClickWindow]) -> tuple[WindowRows, dict[str, int]]:
    """What the DB must hold after applying ``records`` in order, by any route."""
    winners = dedupe(records)
    rows = {(w.url, w.window_start_ms): (w.window_end_ms, w.clicks, w.revision) for w in winners}
    totals: dict[str, int] = {}
    for w in winners:
        totals[w.url] = totals.get(w.url, 0) + w.clicks
    return rows, totals


def assert_consistent(db_url: str) -> None:
    """``clicks.click_count`` equals the sum of ``click_windows.clicks`` per URL."""
    sums: dict[str, int] = {}
    for (url, _start), (_end, clicks, _rev) in read_windows(db_url).items():
        sums[url] = sums.get(url, 0) + clicks
    assert read_clicks(db_url) == sums


def committed_offsets(settings: Settings) -> dict[int, int]:
    from confluent_kafka import TopicPartition

    consumer = kafka_clients.consumer(settings.kafka, settings.sink_group)
    try:
        parts = [TopicPartition(settings.windows_topic, p) for p in range(settings.partitions)]
        return {tp.partition: tp.offset for tp in consumer.committed(parts, timeout=30)}
    finally:
        consumer.close()

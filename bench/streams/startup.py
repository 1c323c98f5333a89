"""clickmuncher's start-up: from process start to the first click counted, with a recovered table of N keys.

A first worker counts N clicks of N distinct URLs in one open window (an hour wide), so its changelog holds N
window keys; it stops (SIGTERM: it commits everything), one more click is produced, and a second worker of
the same app starts with an empty state directory. It is timed from its process start until its metrics
count that click: interpreter and imports, topics, group join, the table's recovery from the changelog, the
partitions' index, the first fetch. Its log's time stamps split the span. Then the restart: the second worker
stops cleanly, one more click, and it starts again on its own state directory (it keeps its local store and
reads only the changelog's tail), timed the same way.
"""

from __future__ import annotations

import re
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from confluent_kafka import Producer

from bench.common import StreamsWorker, committed_total, kafka
from bench.streams.load import produce
from bench.streams.worker import PARTITIONS, changelog_messages, events_counted, py_spy, worker_env
from clickmuncher.devstack.kafka import broker
from clickmuncher.kafka.admin import ensure_topics
from clickmuncher.kafka.config import producer_config
from clickmuncher.records import ClickEvent

WINDOW_S = 3600
DEADLINE_S = 300.0
_LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ", re.MULTILINE)
_LOADED = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) .*partition \d+ loaded", re.MULTILINE)


def produce_clicks(bootstrap: str, topic: str, urls: range, ts_ms: int) -> None:
    tuning = {"linger.ms": 50, "compression.type": "lz4"}
    producer = Producer(producer_config(kafka(bootstrap), tuning))
    for i in urls:
        produce(producer, topic, ClickEvent(f"https://startup.example.com/page/{i}", ts_ms))
    producer.flush(60)


def _log_seconds(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()


def _until(condition_met: Callable[[], bool], worker: StreamsWorker, interval_s: float) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition_met():
        worker.check_alive()
        if time.monotonic() > deadline:
            raise RuntimeError(f"bench start-up: no progress in {DEADLINE_S:.0f} s; see {worker.log_path}")
        time.sleep(interval_s)


def measure_startup(bootstrap: str, keys: int = 100_000, profile: Path | None = None) -> dict[str, float]:
    """Seconds from process start to the first click counted, the table's size, and the log's split.

    ``profile``: the second worker is recorded by py-spy from its start to its exit, into that file."""
    suffix = uuid.uuid4().hex[:8]
    topic, app_id = f"bench-startup-{suffix}", f"bench-startup-{suffix}"
    ensure_topics(bootstrap, {topic: {}}, PARTITIONS)
    now_ms = int(time.time() * 1000)
    produce_clicks(bootstrap, topic, range(keys), now_ms)
    env = worker_env(bootstrap, topic, app_id, window_s=WINDOW_S)
    first = StreamsWorker(env)
    try:
        _until(lambda: committed_total(bootstrap, app_id, topic) >= keys, first, 0.5)
        _until(lambda: changelog_messages(bootstrap, app_id) >= keys, first, 0.5)
    finally:
        first.stop()
    table_messages = changelog_messages(bootstrap, app_id)
    produce_clicks(bootstrap, topic, range(keys, keys + 1), now_ms)
    port = broker.free_port()
    state_dir = tempfile.mkdtemp(prefix="cm-bench-startup-")
    env = dict(env, CLICKMUNCHER_STATE_DIR=state_dir, CLICKMUNCHER_STREAMS_METRICS_PORT=str(port))
    began_wall, began = time.time(), time.monotonic()
    second = StreamsWorker(env)
    recorder = None if profile is None else py_spy(second.process.pid, profile)
    try:
        _until(lambda: events_counted(port) >= 1, second, 0.1)
        seconds = time.monotonic() - began
    finally:
        second.stop()
        if recorder is not None:
            recorder.wait(timeout=120)
    text = second.log_path.read_text(errors="replace")
    stamps = [_log_seconds(m) for m in _LOG_TIME.findall(text)]
    loaded = [_log_seconds(m) for m in _LOADED.findall(text)]
    restart_s, kept = _restart(bootstrap, topic, env, port, keys + 1, now_ms)
    return {
        "keys": keys,
        "table_messages": table_messages,
        "seconds": round(seconds, 2),
        "first_log_line_s": round(stamps[0] - began_wall, 2) if stamps else -1.0,
        "table_loaded_s": round(max(loaded) - began_wall, 2) if loaded else -1.0,
        "seeks_back": text.count("seek back"),
        "restart_seconds": round(restart_s, 2),
        "restart_kept_store": 1.0 if kept else 0.0,
    }


def _restart(
    bootstrap: str, topic: str, env: dict[str, str], port: int, url: int, ts_ms: int
) -> tuple[float, bool]:
    """The second worker stopped cleanly: one more click, and the same worker started again on its state
    directory (a restart or a rolling deploy). Seconds to that click counted, and whether the worker kept
    its local store (reading only the changelog's tail) rather than rebuilding it."""
    produce_clicks(bootstrap, topic, range(url, url + 1), ts_ms)
    began = time.monotonic()
    third = StreamsWorker(env)
    try:
        _until(lambda: events_counted(port) >= 1, third, 0.1)
        seconds = time.monotonic() - began
    finally:
        third.stop()
    return seconds, "local store kept (clean stop" in third.log_path.read_text(errors="replace")

"""clickmuncher's streams worker in the benchmark: one or more ``python -m streams`` processes sharing a
topic, timed from the first process start to the last window record visible on their ``click-windows``
topic, every count checked when the expected counts are given; with the changelog it wrote (messages and bytes
per click) and the size of its state directories (the RocksDB store) at the end.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from bench.common import StreamsWorker, cpu_seconds, directory_mb, kafka
from bench.streams.finish import WindowWatch
from clickmuncher.devstack.kafka import broker
from clickmuncher.kafka.admin import COMPACTED, ensure_topics
from clickmuncher.kafka.config import admin_config, consumer_config

WINDOW_S = 60
GRACE_S = 1
PARTITIONS = 8
_EVENTS = re.compile(rb"^clickmuncher_streams_events_total ([0-9.e+]+)$", re.MULTILINE)
_SUMMARY = re.compile(r"streams stopped: events=(\d+) events_per_s=(\d+)")


def worker_env(
    bootstrap: str, topic: str, app_id: str, *, window_s: int = WINDOW_S, live_every_s: float = 5.0
) -> dict[str, str]:
    """The environment of a worker of ``app_id`` on ``topic``; its output topics are named after the app."""
    return dict(
        os.environ,
        CLICKMUNCHER_KAFKA_BOOTSTRAP=bootstrap,
        CLICKMUNCHER_CLICKS_TOPIC=topic,
        CLICKMUNCHER_WINDOWS_TOPIC=f"{app_id}-windows",
        CLICKMUNCHER_STREAMS_APP_ID=app_id,
        CLICKMUNCHER_WINDOW_S=str(window_s),
        CLICKMUNCHER_GRACE_S=str(GRACE_S),
        CLICKMUNCHER_PARTITIONS=str(PARTITIONS),
        CLICKMUNCHER_STATE_DIR=tempfile.mkdtemp(prefix="cm-bench-streams-"),
        CLICKMUNCHER_STREAMS_METRICS_PORT="0",
        CLICKMUNCHER_LIVE_EVERY_S=str(live_every_s),
        CLICKMUNCHER_LIVE_TOPIC=f"{app_id}-live",
    )


def events_counted(port: int) -> float:
    """The worker's ``clickmuncher_streams_events_total``; 0 while its metrics server is not up."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1) as response:
            found = _EVENTS.search(response.read())
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0.0
    return float(found[1]) if found else 0.0


class Progress:
    """When the workers counted their first click and their last, from their metrics, read every
    ``EVERY_S`` at most (a scrape costs the worker a few milliseconds of CPU)."""

    EVERY_S = 0.2

    def __init__(self, ports: list[int], clicks: int) -> None:
        self.ports, self.clicks = ports, clicks
        self.first = self.last = self.polled = 0.0

    def poll(self, workers: list[StreamsWorker]) -> None:
        """Also raises when a worker has exited."""
        for worker in workers:
            worker.check_alive()
        if self.last or time.monotonic() - self.polled < self.EVERY_S:
            return
        self.polled = time.monotonic()
        counted = sum(events_counted(port) for port in self.ports)
        if counted and not self.first:
            self.first = time.time()
        if counted >= self.clicks:
            self.last = time.time()


def changelog_messages(bootstrap: str, app_id: str) -> int:
    """Messages on the worker's changelog topics: the sum of their partitions' end offsets."""
    admin = AdminClient(admin_config(kafka(bootstrap)))
    topics = [t for t in admin.list_topics(timeout=30).topics if t.startswith(app_id) and "changelog" in t]
    consumer = Consumer(consumer_config(kafka(bootstrap), f"bench-audit-{uuid.uuid4().hex[:6]}"))
    total = 0
    for topic in topics:
        for partition in admin.list_topics(topic, timeout=30).topics[topic].partitions:
            total += consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=30)[1]
    consumer.close()
    return total


def changelog_bytes(bootstrap: str, app_id: str) -> int:
    """Bytes of keys and values on the worker's changelog topics, read to their ends."""
    admin = AdminClient(admin_config(kafka(bootstrap)))
    topics = [t for t in admin.list_topics(timeout=30).topics if t.startswith(app_id) and "changelog" in t]
    consumer = Consumer(consumer_config(kafka(bootstrap), f"bench-bytes-{uuid.uuid4().hex[:6]}"))
    ends = {
        (topic, p): consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]
        for topic in topics
        for p in admin.list_topics(topic, timeout=30).topics[topic].partitions
    }
    # From each partition's first offset (OFFSET_BEGINNING: compaction may have moved it) to its end, read
    # when the consumer's position reaches it (a position also passes offsets that hold no message).
    assigned = [TopicPartition(topic, p, OFFSET_BEGINNING) for (topic, p), end in ends.items() if end > 0]
    consumer.assign(assigned)
    total, deadline = 0, time.monotonic() + 300
    while assigned:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{app_id}: the changelog not read to its end in 300 s")
        for message in consumer.consume(10_000, 1.0):
            if message.error() is None:
                total += len(message.key() or b"") + len(message.value() or b"")
        positions = consumer.position([TopicPartition(tp.topic, tp.partition) for tp in assigned])
        assigned = [tp for tp in positions if tp.offset < ends[(tp.topic, tp.partition)]]
    consumer.close()
    return total


def busy_figures(log_path: Path) -> tuple[int, int]:
    """The worker's own summary line: events it handled, and events/s from its first to its last event."""
    found = _SUMMARY.search(log_path.read_text(errors="replace"))
    return (int(found[1]), int(found[2])) if found else (0, 0)


def py_spy(pid: int, out: Path) -> subprocess.Popen[bytes]:
    """``py-spy record`` of ``pid`` at 100 Hz into ``out`` (raw format) until the process exits."""
    command = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(command).exists():
        raise RuntimeError("--profile needs py-spy: pip install py-spy")
    options = ["record", "--format", "raw", "--rate", "100", "--output", str(out), "--pid", str(pid)]
    return subprocess.Popen([command, *options], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_workers(base: dict[str, str], workers: int) -> tuple[list[StreamsWorker], list[int]]:
    """``workers`` processes of one app, each with its own state directory and metrics port."""
    ports = [broker.free_port() for _ in range(workers)]
    envs = [
        dict(
            base,
            CLICKMUNCHER_STATE_DIR=base["CLICKMUNCHER_STATE_DIR"]
            if i == 0
            else tempfile.mkdtemp(prefix="cm-bench-"),
            CLICKMUNCHER_STREAMS_METRICS_PORT=str(port),
        )
        for i, port in enumerate(ports)
    ]
    return [StreamsWorker(env) for env in envs], ports


def clickmuncher_worker(
    bootstrap: str,
    topic: str,
    clicks: int,
    live_every_s: float = 5.0,
    *,
    workers: int = 1,
    expected: dict[str, int] | None = None,
    profile: Path | None = None,
    extra_env: dict[str, str] | None = None,
) -> dict[str, float]:
    """Figures of ``workers`` workers of a new app on ``topic``: seconds from the first process start to the
    last window visible, split into start-up (to the first click counted), counting (to the last) and close
    (to the last window visible); events/s; CPU seconds of the workers' processes until then, events per
    CPU second and CPU microseconds per click; window records; changelog messages and bytes per click; the
    size of the workers' state directories (their RocksDB stores) once stopped; per worker the events it
    handled and its rate from its first to its last event (``busy_events_<i>``, ``busy_per_s_<i>``).

    ``profile``: the first worker is recorded by py-spy from its start to its exit, into that file.
    ``extra_env``: more environment for the workers (e.g. Faust's own ``CONSUMER_MAX_FETCH_SIZE``)."""
    app_id = f"bench-{uuid.uuid4().hex[:8]}"
    base = worker_env(bootstrap, topic, app_id, live_every_s=live_every_s) | (extra_env or {})
    ensure_topics(bootstrap, {base["CLICKMUNCHER_WINDOWS_TOPIC"]: COMPACTED}, PARTITIONS)
    watch = WindowWatch(bootstrap, base["CLICKMUNCHER_WINDOWS_TOPIC"])
    began = time.time()
    running, ports = start_workers(base, workers)
    progress = Progress(ports, clicks)
    recorder = None if profile is None else py_spy(running[0].process.pid, profile)
    try:
        finish = watch.wait(clicks, lambda: progress.poll(running))
        # The last click and its window can fall between two polls (the sentinels close every window as
        # their partition's last click is counted): then the last click's time is taken as the finish.
        progress.last = progress.last or finish
        cpu_s = sum(cpu_seconds(worker.process.pid) for worker in running)
        if expected is not None:
            watch.verify(expected)
    finally:
        for worker in running:
            worker.request_stop()
        for worker in running:
            worker.wait()
        watch.close()
        if recorder is not None:
            recorder.wait(timeout=120)
    elapsed = finish - began
    figures: dict[str, float] = {
        "events": clicks,
        "seconds": round(elapsed, 2),
        "events_per_s": round(clicks / elapsed),
        "startup_s": round(progress.first - began, 2),
        "counting_s": round(progress.last - progress.first, 2),
        "close_s": round(finish - progress.last, 2),
        "cpu_s": round(cpu_s, 2),
        "events_per_cpu_s": round(clicks / cpu_s),
        "cpu_us_per_click": cpu_s / clicks * 1e6,
        "window_records": len(watch.latest),
        "changelog_per_click": changelog_messages(bootstrap, app_id) / clicks,
        "changelog_bytes_per_click": changelog_bytes(bootstrap, app_id) / clicks,
        "rocksdb_mb": sum(directory_mb(worker.log_path.parent) for worker in running),
    }
    for i, worker in enumerate(running):
        figures[f"busy_events_{i}"], figures[f"busy_per_s_{i}"] = busy_figures(worker.log_path)
    return figures

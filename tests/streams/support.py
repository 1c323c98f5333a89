"""Helpers for the streams tests: click generation, producing, reading click-windows, worker processes."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import TopicPartition

from clickmuncher.records import ClickEvent, ClickWindow
from clickmuncher.settings import Settings
from tests import kafka_clients

WINDOW_MS = 2000
Key = tuple[int, str]


def zipf_clicks(n: int, n_urls: int, n_windows: int, end_ms: int, seed: int = 7) -> list[ClickEvent]:
    """``n`` clicks over ``n_urls`` URLs with Zipf-like weights, spread over the ``n_windows`` windows
    before ``end_ms``, in timestamp order; of the four classes (SPEC §12), from 3,000 visitors, and a tenth
    without class or visitor (as older gateways send them)."""
    rng = random.Random(seed)
    urls = [f"https://example.com/page/{i}" for i in range(n_urls)]
    weights = [1 / (rank + 1) ** 1.1 for rank in range(n_urls)]
    first_ms = end_ms - end_ms % WINDOW_MS - (n_windows - 1) * WINDOW_MS
    span_ms = end_ms - first_ms
    picked = rng.choices(urls, weights=weights, k=n)
    times = sorted(first_ms + rng.randrange(span_ms) for _ in range(n))
    classes = rng.choices(range(4), weights=[6, 2, 1, 1], k=n)
    visitors = [f"{rng.randrange(3000):016x}" if rng.random() > 0.1 else None for _ in range(n)]
    return [
        ClickEvent(url, ts, cls if vid else 0, vid)
        for url, ts, cls, vid in zip(picked, times, classes, visitors, strict=True)
    ]


def expected_counts(clicks: list[ClickEvent]) -> dict[Key, int]:
    return dict(Counter((c.ts_ms - c.ts_ms % WINDOW_MS, c.url) for c in clicks))


def expected_classes(clicks: list[ClickEvent]) -> dict[Key, tuple[int, ...]]:
    """Per (window, URL): the clicks of each class."""
    counts: dict[Key, list[int]] = {}
    for c in clicks:
        counts.setdefault((c.ts_ms - c.ts_ms % WINDOW_MS, c.url), [0, 0, 0, 0])[c.cls] += 1
    return {key: tuple(n) for key, n in counts.items()}


def expected_visitors(clicks: list[ClickEvent]) -> dict[Key, int]:
    """Per (window, URL): the distinct human visitors."""
    seen: dict[Key, set[str]] = {}
    for c in clicks:
        key = (c.ts_ms - c.ts_ms % WINDOW_MS, c.url)
        visitors = seen.setdefault(key, set())
        if c.cls == 0 and c.vid is not None:
            visitors.add(c.vid)
    return {key: len(v) for key, v in seen.items()}


def check_classes(latest: dict[Key, ClickWindow], clicks: list[ClickEvent]) -> None:
    """Each window's clicks per class are exact; its uniques within 2 % (exact in practice at these
    sizes, where the sketch still holds the visitors themselves)."""
    assert {key: w.by_class for key, w in latest.items()} == expected_classes(clicks)
    for key, distinct in expected_visitors(clicks).items():
        uniques = latest[key].uniques
        assert uniques is not None and abs(uniques - distinct) <= 0.02 * distinct, (key, uniques, distinct)


def produce(bootstrap: str, topic: str, clicks: list[ClickEvent]) -> None:
    """Produces ``clicks`` lz4-compressed: the worker must read compressed batches (codecs via cramjam)."""
    producer = kafka_clients.producer(bootstrap, {"linger.ms": 20, "compression.type": "lz4"})
    for click in clicks:
        while True:
            try:
                producer.produce(topic, key=click.key(), value=click.encode(), timestamp=click.ts_ms)
                break
            except BufferError:
                producer.poll(0.1)
    assert producer.flush(60) == 0


def produce_raw(bootstrap: str, topic: str, key: bytes, value: bytes) -> None:
    producer = kafka_clients.producer(bootstrap)
    producer.produce(topic, key=key, value=value)
    assert producer.flush(30) == 0


@dataclass
class TopicReader:
    """Reads a topic from the beginning by assignment (no group), keeping every record in order."""

    bootstrap: str
    topic: str
    records: list[tuple[bytes, bytes, list[tuple[str, bytes]]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._consumer = kafka_clients.consumer(self.bootstrap, "unused", {"enable.auto.commit": False})
        deadline = time.monotonic() + 60
        while True:  # the worker may not have created the topic yet
            meta = self._consumer.list_topics(self.topic, timeout=30).topics.get(self.topic)
            if (meta is not None and meta.partitions) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert meta is not None and meta.partitions, f"topic {self.topic} not created"
        self._consumer.assign([TopicPartition(self.topic, p, 0) for p in meta.partitions])

    def poll(self, duration_s: float) -> None:
        deadline = time.monotonic() + duration_s
        while time.monotonic() < deadline:
            for msg in self._consumer.consume(5000, timeout=0.2):
                if msg.error() is None:
                    headers = [(str(k), _bytes(v)) for k, v in list(msg.headers() or [])]
                    self.records.append((msg.key() or b"", msg.value() or b"", headers))

    def close(self) -> None:
        self._consumer.close()


def _bytes(value: str | bytes | None) -> bytes:
    return value.encode() if isinstance(value, str) else value or b""


def latest_windows(reader: TopicReader) -> dict[Key, ClickWindow]:
    """What the sink keeps per (window, URL): the highest revision (at equal revision, the later record).

    Also checks the promise that makes that rule safe: a revision of a window is never emitted with two
    different counts (of all clicks, of each class, of uniques)."""
    latest: dict[Key, ClickWindow] = {}
    counts: dict[tuple[Key, int], tuple[object, ...]] = {}
    for _key, value, _headers in reader.records:
        window = ClickWindow.decode(value)
        key = (window.window_start_ms, window.url)
        figures = (window.clicks, window.by_class, window.uniques)
        seen = counts.setdefault((key, window.revision), figures)
        assert seen == figures, f"{key} revision {window.revision}: {seen} and {figures}"
        kept = latest.get(key)
        if kept is None or window.revision >= kept.revision:
            latest[key] = window
    return latest


def counts_of(windows: dict[Key, ClickWindow]) -> dict[Key, int]:
    return {key: window.clicks for key, window in windows.items()}


def wait_for_counts(
    reader: TopicReader, expected: dict[Key, int], timeout_s: float, workers: list[Worker] | None = None
) -> dict[Key, int]:
    """Polls until the latest record per key carries the expected counts (or the time is up, or every
    worker has exited)."""
    deadline = time.monotonic() + timeout_s
    got: dict[Key, int] = {}
    while time.monotonic() < deadline:
        if workers and all(w.proc is not None and w.proc.poll() is not None for w in workers):
            break
        reader.poll(1.0)
        got = counts_of(latest_windows(reader))
        if got == expected:
            break
    return got


@dataclass
class Worker:
    """One ``python -m streams`` subprocess."""

    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streams"], env=self.env, stdout=log, stderr=log, cwd=self.log_path.parent
        )

    def loads(self) -> int:
        """How many partition loads (after assignment and table recovery) the log shows so far."""
        return self.log_path.read_text().count(" loaded: ") if self.log_path.exists() else 0

    def wait_for_load(self, after: int, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while self.loads() <= after and time.monotonic() < deadline:
            time.sleep(0.1)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode


def worker_env(bootstrap: str, unique: str, state_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLICKMUNCHER_")}
    env.update(
        {
            "CLICKMUNCHER_KAFKA_BOOTSTRAP": bootstrap,
            "CLICKMUNCHER_CLICKS_TOPIC": f"clicks-{unique}",
            "CLICKMUNCHER_WINDOWS_TOPIC": f"click-windows-{unique}",
            "CLICKMUNCHER_PARTITIONS": "8",
            "CLICKMUNCHER_WINDOW_S": "2",
            "CLICKMUNCHER_GRACE_S": "1",
            "CLICKMUNCHER_STREAMS_APP_ID": f"cm-streams-{unique}",
            "CLICKMUNCHER_STATE_DIR": str(state_dir),
            "CLICKMUNCHER_STREAMS_METRICS_PORT": "0",
            "CLICKMUNCHER_STREAMS_SESSION_TIMEOUT_S": "6",
        }
    )
    env.update(extra)
    return env


def streams_settings(bootstrap: str, unique: str) -> Settings:
    """The settings of a test's workers (see :func:`worker_env`), for the topic helpers."""
    return Settings(
        kafka_bootstrap=bootstrap,
        clicks_topic=f"clicks-{unique}",
        windows_topic=f"click-windows-{unique}",
        partitions=8,
        window_s=2,
        grace_s=1,
    )


def start_worker(workers: list[Worker], env: dict[str, str], tmp_path: Path, name: str) -> Worker:
    """Starts a worker the ``workers`` fixture kills after the test."""
    worker = Worker(env, tmp_path / f"{name}.log")
    workers.append(worker)
    worker.start()
    return worker

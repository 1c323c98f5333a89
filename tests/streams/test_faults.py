"""Faults of ordinary operation against the real broker: poison records, stops under load, late clicks
after an idle close with kill -9 and SIGTERM in between. Counts are read with the sink's rule."""

from __future__ import annotations

import json
import random
import re
import time
from pathlib import Path

import pytest

from clickmuncher.records import DEAD_LETTER_MAX_BYTES, ClickEvent
from streams.main import ensure_streams_topics
from tests import kafka_clients
from tests.streams.support import (
    TopicReader,
    Worker,
    check_classes,
    counts_of,
    expected_counts,
    latest_windows,
    produce,
    start_worker,
    streams_settings,
    wait_for_counts,
    worker_env,
    zipf_clicks,
)

pytestmark = pytest.mark.kafka

POISON: list[tuple[bytes | None, str]] = [
    (b'{"v": 1, "url": "https://example.com/\\ud800", "ts_ms": %d}', "lone surrogate"),
    (b"[" * 1_040_000, "bytes, more than"),  # as large as the topic takes: cut on the dead-letter topic
    (b"[" * 5_000 + b"]" * 5_000, "nested deeper"),
    (b'{"v": 1, "url": "https://example.com/\\u0000", "ts_ms": %d}', "NUL"),
    (b'{"v": 1, "url": "https://example.com/\xff", "ts_ms": %d}', "not UTF-8"),
    (b'{"v": 2, "url": "https://example.com/", "ts_ms": %d}', "unsupported record version"),
    (b'{"v": 1, "url": "https://example.com/", "ts_ms": 99999999999999999}', "'ts_ms'"),
    (b'{"v": 1, "url": "javascript:alert(1)", "ts_ms": %d}', "not an absolute http"),
    (b'{"v": 1, "url": "https://example.com/%s", "ts_ms": %%d}' % (b"a" * 3000), "characters, more than"),
    (b'{"v": 1, "url": "https://e.com/", "url": "https://f.com/", "ts_ms": %d}', "duplicate keys"),
    (None, "empty value"),
    (b"", "not JSON"),
]


def log_of(worker: Worker) -> str:
    return worker.log_path.read_text()


def _produce_values(bootstrap: str, topic: str, values: list[tuple[bytes, bytes | None]]) -> None:
    producer = kafka_clients.producer(bootstrap, {"message.max.bytes": 2_000_000})
    for key, value in values:
        producer.produce(topic, key=key, value=value)
    assert producer.flush(30) == 0


def test_poison_records_are_dead_lettered_and_counting_goes_on(
    kafka_bootstrap: str, unique: str, tmp_path: Path, workers: list[Worker]
) -> None:
    settings = streams_settings(kafka_bootstrap, unique)
    ensure_streams_topics(settings)
    now_ms = time.time_ns() // 1_000_000
    clicks = zipf_clicks(4000, 200, 4, end_ms=now_ms)
    produce(kafka_bootstrap, settings.clicks_topic, clicks[:2000])
    rng = random.Random(3)
    poison = [(f"poison-{rng.randrange(100)}".encode(), value) for value, _reason in POISON * 3]
    _produce_values(
        kafka_bootstrap,
        settings.clicks_topic,
        [(key, value if value is None or b"%d" not in value else value % now_ms) for key, value in poison],
    )
    produce(kafka_bootstrap, settings.clicks_topic, clicks[2000:])
    env = worker_env(kafka_bootstrap, unique, tmp_path / "state")
    worker = start_worker(workers, env, tmp_path, "poisoned")
    reader = TopicReader(kafka_bootstrap, settings.windows_topic)
    expected = expected_counts(clicks)
    assert wait_for_counts(reader, expected, timeout_s=120, workers=[worker]) == expected

    dead = TopicReader(kafka_bootstrap, settings.clicks_dead_topic)
    dead.poll(3.0)
    reasons = sorted(dict(headers)["reason"].decode() for _k, _v, headers in dead.records)
    assert len(reasons) == len(poison)
    for _value, reason in POISON:
        assert sum(reason in r for r in reasons) == 3, reason
    assert all("source" in dict(headers) for _k, _v, headers in dead.records)
    cut = [
        (len(v), dict(h)["value-truncated-from"])
        for _k, v, h in dead.records
        if "value-truncated-from" in dict(h)
    ]
    assert cut == [(DEAD_LETTER_MAX_BYTES, b"1040000")] * 3
    # The state is clean: a restart counts nothing twice and meets no poison again.
    assert worker.stop() == 0
    worker.start()
    worker.wait_for_load(after=worker.loads())
    reader.poll(3.0)
    assert counts_of(latest_windows(reader)) == expected
    assert worker.proc is not None and worker.proc.poll() is None
    assert worker.stop() == 0


def test_sigterm_under_load_stops_cleanly_and_loses_nothing(
    kafka_bootstrap: str, unique: str, tmp_path: Path, workers: list[Worker]
) -> None:
    settings = streams_settings(kafka_bootstrap, unique)
    ensure_streams_topics(settings)
    clicks = zipf_clicks(150_000, 5000, 10, end_ms=time.time_ns() // 1_000_000)
    produce(kafka_bootstrap, settings.clicks_topic, clicks)
    env = worker_env(kafka_bootstrap, unique, tmp_path / "state")
    worker = start_worker(workers, env, tmp_path, "stopped")
    for _ in range(2):
        worker.wait_for_load(after=worker.loads())
        time.sleep(random.uniform(0.5, 2.0))  # counting the backlog
        asked = time.monotonic()
        assert worker.stop() == 0
        log = log_of(worker)
        print(f"\nstopped under load in {time.monotonic() - asked:.1f}s")
        assert "wait_empty" not in log
        assert log.count("streams stopped:") == _ + 1
        assert log.count("local store kept for the next start") == _ + 1
        worker.start()
    reader = TopicReader(kafka_bootstrap, settings.windows_topic)
    expected = expected_counts(clicks)
    assert wait_for_counts(reader, expected, timeout_s=150, workers=[worker]) == expected
    check_classes(latest_windows(reader), clicks)
    assert worker.stop() == 0
    # Both restarts kept the store of the clean stop before them and recovered only the changelog's tail.
    assert log_of(worker).count("local store kept (clean stop") == 2


def test_late_clicks_after_an_idle_close_survive_kill_and_stop(
    kafka_bootstrap: str, unique: str, tmp_path: Path, workers: list[Worker]
) -> None:
    """The window closes by the wall clock, then takes late clicks across a kill -9 and a SIGTERM: the
    revision the sink keeps always carries every click (it never goes back to a smaller count)."""
    settings = streams_settings(kafka_bootstrap, unique)
    ensure_streams_topics(settings)
    env = worker_env(kafka_bootstrap, unique, tmp_path / "state", CLICKMUNCHER_LATE_RETENTION_S="600")
    worker = start_worker(workers, env, tmp_path, "late")
    worker.wait_for_load(after=0)
    reader = TopicReader(kafka_bootstrap, settings.windows_topic)
    now_ms = time.time_ns() // 1_000_000
    start_ms = now_ms - now_ms % 2000
    url = "https://example.com/late"
    key = (start_ms, url)

    def click_and_wait(count: int) -> None:
        produce(kafka_bootstrap, settings.clicks_topic, [ClickEvent(url, start_ms + count)])
        assert wait_for_counts(reader, {key: count}, timeout_s=90, workers=[worker]) == {key: count}

    click_and_wait(1)  # closed by the idle timer, revision 0
    click_and_wait(2)  # late: revision 1
    for count, stop in ((3, "kill"), (4, "sigterm"), (5, "kill")):
        produce(kafka_bootstrap, settings.clicks_topic, [ClickEvent(url, start_ms + count)])
        time.sleep(random.uniform(0.0, 1.5))  # before or after the late click's commit
        if stop == "kill":
            worker.kill()
        else:
            assert worker.stop() == 0
        worker.start()
        assert wait_for_counts(reader, {key: count}, timeout_s=90, workers=[worker]) == {key: count}
    windows = latest_windows(reader)  # also checks that no revision was emitted with two counts
    assert windows[key].revision >= 4
    assert json.loads(windows[key].encode())["clicks"] == 5
    assert worker.stop() == 0
    # What each restart did with the local store, in order: after a kill it is always rebuilt; after the
    # SIGTERM it is kept when that stop committed every partition (a stop before the restarted worker got
    # its partitions leaves no marker, and the store is rebuilt: both are exact, as the counts above show).
    decisions = re.findall(
        r"local store (kept \(clean stop|rebuilt from the changelog: no clean stop)", log_of(worker)
    )
    assert len(decisions) == 3
    assert decisions[0].startswith("rebuilt") and decisions[2].startswith("rebuilt")

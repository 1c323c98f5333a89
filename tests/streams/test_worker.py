"""End-to-end runs of ``python -m streams`` against the real broker (windows of 2 s, grace 1 s)."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest

from clickmuncher.records import ClickEvent, ClickWindow
from streams.main import ensure_streams_topics
from tests.streams.support import (
    Key,
    TopicReader,
    Worker,
    check_classes,
    expected_counts,
    latest_windows,
    produce,
    produce_raw,
    start_worker,
    streams_settings,
    wait_for_counts,
    worker_env,
    zipf_clicks,
)

pytestmark = pytest.mark.kafka


def _produce_zipf(bootstrap: str, unique: str, n: int = 50_000) -> tuple[dict[Key, int], list[ClickEvent]]:
    settings = streams_settings(bootstrap, unique)
    ensure_streams_topics(settings)
    clicks = zipf_clicks(n, 2000, 10, end_ms=time.time_ns() // 1_000_000)
    produce(bootstrap, settings.clicks_topic, clicks)
    return expected_counts(clicks), clicks


def _check(reader: TopicReader, expected: dict[Key, int], clicks: list[ClickEvent]) -> None:
    """The latest record per (URL, window) carries the produced count, per class too; no record ever
    over-counted."""
    reader.poll(2.0)
    latest = latest_windows(reader)
    assert {key: w.clicks for key, w in latest.items()} == expected
    check_classes(latest, clicks)
    assert all(w.revision == 0 for w in latest.values())
    for _key, value, _headers in reader.records:
        window = ClickWindow.decode(value)
        assert window.clicks <= expected[(window.window_start_ms, window.url)]


def _summary(worker: Worker) -> str:
    lines = [line for line in worker.log_path.read_text().splitlines() if "streams stopped:" in line]
    return lines[-1].split("streams stopped:", 1)[1].strip() if lines else "-"


def test_counts_exactly_and_replays_identically(
    kafka_bootstrap: str, unique: str, tmp_path: Path, workers: list[Worker]
) -> None:
    expected, clicks = _produce_zipf(kafka_bootstrap, unique)
    env = worker_env(kafka_bootstrap, unique, tmp_path / "state")
    worker = start_worker(workers, env, tmp_path, "first")
    reader = TopicReader(kafka_bootstrap, f"click-windows-{unique}")
    wait_for_counts(reader, expected, timeout_s=120, workers=[worker])
    assert worker.stop() == 0
    print(f"\nsingle worker: {_summary(worker)}")
    _check(reader, expected, clicks)
    first = latest_windows(reader)

    # Replay: the same clicks from the beginning with fresh state (a new app id) give the same records.
    replay_env = dict(env)
    replay_env["CLICKMUNCHER_STREAMS_APP_ID"] = f"cm-streams-replay-{unique}"
    replay_env["CLICKMUNCHER_WINDOWS_TOPIC"] = f"click-windows-replay-{unique}"
    replayed = start_worker(workers, replay_env, tmp_path, "replay")
    replay_reader = TopicReader(kafka_bootstrap, f"click-windows-replay-{unique}")
    wait_for_counts(replay_reader, expected, timeout_s=120, workers=[replayed])
    assert replayed.stop() == 0
    _check(replay_reader, expected, clicks)
    assert latest_windows(replay_reader) == first


def test_kill_9_three_times_loses_and_duplicates_nothing(
    kafka_bootstrap: str, unique: str, tmp_path: Path, workers: list[Worker]
) -> None:
    expected, clicks = _produce_zipf(kafka_bootstrap, unique)
    env = worker_env(kafka_bootstrap, unique, tmp_path / "state")
    worker = start_worker(workers, env, tmp_path, "killed")
    rng = random.Random()
    for _ in range(3):
        # a random moment once the worker owns its partitions again (they are loaded after recovery)
        worker.wait_for_load(after=worker.loads())
        time.sleep(rng.uniform(0.5, 3.5))
        worker.kill()
        worker.start()
    reader = TopicReader(kafka_bootstrap, f"click-windows-{unique}")
    wait_for_counts(reader, expected, timeout_s=150, workers=[worker])
    assert worker.stop() == 0
    _check(reader, expected, clicks)


def test_two_workers_one_killed_for_good(
    kafka_bootstrap: str, unique: str, tmp_path: Path, workers: list[Worker]
) -> None:
    expected, clicks = _produce_zipf(kafka_bootstrap, unique)
    first = start_worker(workers, worker_env(kafka_bootstrap, unique, tmp_path / "a"), tmp_path, "a")
    second = start_worker(workers, worker_env(kafka_bootstrap, unique, tmp_path / "b"), tmp_path, "b")
    second.wait_for_load(after=0)
    time.sleep(random.uniform(1.0, 4.0))
    second.kill()
    reader = TopicReader(kafka_bootstrap, f"click-windows-{unique}")
    wait_for_counts(reader, expected, timeout_s=150, workers=[first])
    assert first.stop() == 0
    _check(reader, expected, clicks)


def test_idle_window_is_emitted_and_bad_clicks_dead_lettered(
    kafka_bootstrap: str, unique: str, tmp_path: Path, workers: list[Worker]
) -> None:
    settings = streams_settings(kafka_bootstrap, unique)
    ensure_streams_topics(settings)
    worker = start_worker(workers, worker_env(kafka_bootstrap, unique, tmp_path / "state"), tmp_path, "idle")
    deadline = time.monotonic() + 60
    while "partition 0 loaded" not in worker.log_path.read_text() and time.monotonic() < deadline:
        time.sleep(0.2)
    now_ms = time.time_ns() // 1_000_000
    click = ClickEvent("https://example.com/quiet", now_ms)
    produce_raw(kafka_bootstrap, settings.clicks_topic, click.key(), b"not json")
    future = ClickEvent("https://example.com/future", now_ms + 3_600_000)
    produce_raw(kafka_bootstrap, settings.clicks_topic, future.key(), future.encode())
    produce_raw(kafka_bootstrap, settings.clicks_topic, click.key(), click.encode())
    sent = time.monotonic()
    reader = TopicReader(kafka_bootstrap, settings.windows_topic)
    start_ms = now_ms - now_ms % 2000
    got = wait_for_counts(reader, {(start_ms, click.url): 1}, timeout_s=60, workers=[worker])
    print(f"\nidle window emitted {time.monotonic() - sent:.1f}s after its click (window 2s, grace 1s)")
    assert got == {(start_ms, click.url): 1}
    dead = TopicReader(kafka_bootstrap, settings.clicks_dead_topic)
    dead.poll(3.0)
    reasons = sorted(dict(headers)["reason"].decode() for _k, _v, headers in dead.records)
    assert [r.split(":")[0] for r in reasons] == ["not JSON", "timestamp too far in the future"]
    assert worker.stop() == 0


def test_open_windows_are_published_live(
    kafka_bootstrap: str, unique: str, tmp_path: Path, workers: list[Worker]
) -> None:
    settings = streams_settings(kafka_bootstrap, unique)
    env = worker_env(
        kafka_bootstrap,
        unique,
        tmp_path / "state",
        CLICKMUNCHER_WINDOW_S="3600",
        CLICKMUNCHER_LIVE_EVERY_S="0.5",
        CLICKMUNCHER_LIVE_TOPIC=f"click-windows-live-{unique}",
    )
    worker = start_worker(workers, env, tmp_path, "live")
    worker.wait_for_load(after=0)
    now_ms = time.time_ns() // 1_000_000
    clicks = [ClickEvent(f"https://example.com/live/{i % 3}", now_ms) for i in range(300)]
    produce(kafka_bootstrap, settings.clicks_topic, clicks)
    live = TopicReader(kafka_bootstrap, f"click-windows-live-{unique}")
    start_ms = now_ms - now_ms % 3_600_000
    latest: dict[str, int] = {}
    deadline = time.monotonic() + 60
    while latest != {click.url: 100 for click in clicks} and time.monotonic() < deadline:
        live.poll(1.0)
        for key, value, _headers in live.records:
            body = json.loads(value)
            assert body["final"] is False and key == f"{start_ms}:{body['url']}".encode()
            latest[body["url"]] = max(latest.get(body["url"], 0), body["clicks"])
    assert latest == {click.url: 100 for click in clicks}
    windows = TopicReader(kafka_bootstrap, settings.windows_topic)
    windows.poll(1.0)
    assert windows.records == []  # the window is still open: nothing final yet
    assert worker.stop() == 0

"""``replay streams --from``: refuses while workers run, then recomputes the windows from that time."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from clickmuncher.records import ClickEvent, ClickWindow, iso_utc
from clickmuncher.settings import ConfigError, Settings
from streams.main import ensure_streams_topics
from streams.replay import parse_from, replay_command
from tests import kafka_clients
from tests.streams.support import (
    TopicReader,
    Worker,
    expected_counts,
    produce,
    wait_for_counts,
    worker_env,
    zipf_clicks,
)

pytestmark = pytest.mark.kafka


def test_parse_from_accepts_iso_with_or_without_zone() -> None:
    assert parse_from("2026-11-24T00:00:01Z") == parse_from("2026-11-24T00:00:01") == 1795478401000
    with pytest.raises(ConfigError):
        parse_from("yesterday")


def test_replay_recomputes_windows_from_the_given_time(
    kafka_bootstrap: str, unique: str, tmp_path: Path, workers: list[Worker]
) -> None:
    env = worker_env(kafka_bootstrap, unique, tmp_path / "state")
    settings = Settings(
        kafka_bootstrap=kafka_bootstrap,
        clicks_topic=env["CLICKMUNCHER_CLICKS_TOPIC"],
        windows_topic=env["CLICKMUNCHER_WINDOWS_TOPIC"],
        streams_app_id=env["CLICKMUNCHER_STREAMS_APP_ID"],
        partitions=8,
        window_s=2,
        grace_s=1,
    )
    ensure_streams_topics(settings)
    clicks = zipf_clicks(5000, 100, 6, end_ms=time.time_ns() // 1_000_000)
    produce(kafka_bootstrap, settings.clicks_topic, clicks)
    expected = expected_counts(clicks)
    worker = Worker(env, tmp_path / "w.log")
    workers.append(worker)
    worker.start()
    reader = TopicReader(kafka_bootstrap, settings.windows_topic)
    assert wait_for_counts(reader, expected, timeout_s=90, workers=[worker]) == expected

    # mid-window time: the replay starts at that window's start
    starts = sorted({start for start, _url in expected})
    from_ms = starts[3]
    with pytest.raises(ConfigError, match="members"):
        replay_command(settings, iso_utc(from_ms + 700))
    assert worker.stop() == 0
    replay_command(settings, iso_utc(from_ms + 700))

    before = len(reader.records)
    worker.start()
    recomputed = {key: n for key, n in expected.items() if key[0] >= from_ms}
    deadline = time.monotonic() + 90
    again: dict[tuple[int, str], int] = {}
    while again != recomputed and time.monotonic() < deadline:
        reader.poll(1.0)
        windows = [ClickWindow.decode(value) for _k, value, _h in reader.records[before:]]
        again = {(w.window_start_ms, w.url): w.clicks for w in windows}
    assert worker.stop() == 0
    assert again == recomputed


def test_replay_refuses_when_the_clicks_are_no_longer_retained(kafka_bootstrap: str, unique: str) -> None:
    from confluent_kafka import TopicPartition

    settings = Settings(
        kafka_bootstrap=kafka_bootstrap,
        clicks_topic=f"clicks-{unique}",
        windows_topic=f"click-windows-{unique}",
        streams_app_id=f"streams-{unique}",
        partitions=1,
        window_s=2,
        grace_s=1,
    )
    ensure_streams_topics(settings)
    start_ms = time.time_ns() // 1_000_000 - 60_000
    clicks = [ClickEvent(url="https://example.com/", ts_ms=start_ms + 10 * i) for i in range(20)]
    produce(kafka_bootstrap, settings.clicks_topic, clicks)
    admin = kafka_clients.admin(kafka_bootstrap)
    deleted = admin.delete_records([TopicPartition(settings.clicks_topic, 0, 10)])  # as retention would
    for future in deleted.values():
        future.result(timeout=30)
    with pytest.raises(ConfigError, match="no longer retained"):
        replay_command(settings, iso_utc(start_ms))
    replay_command(settings, iso_utc(start_ms + 10_000))  # a later start is fine

"""``replay streams --from``: refuses while workers run, then recomputes the windows from that time."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from clickmuncher.kafka.admin import topic_config
from clickmuncher.kafka.topics import changelog_topic
from clickmuncher.records import ClickEvent, ClickWindow, iso_utc
from clickmuncher.settings import ConfigError, Settings
from streams import replay
from streams.main import ensure_streams_topics
from streams.replay import check_no_pending_replay, parse_from, replay_command
from tests import kafka_clients
from tests.streams.support import (
    TopicReader,
    Worker,
    check_classes,
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


def set_topic_config(bootstrap: str, topic: str, config: dict[str, str]) -> None:
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource

    entries = [
        ConfigEntry(name, value, incremental_operation=AlterConfigOpType.SET)
        for name, value in config.items()
    ]
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=entries)
    admin = kafka_clients.admin(bootstrap)
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(timeout=30)


def test_replay_recomputes_windows_from_the_given_time(
    kafka_bootstrap: str, unique: str, tmp_path: Path, workers: list[Worker], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Also: a replay interrupted in the middle leaves workers refusing to start, and running it again
    gives the exact recomputation, with the changelog recreated with its own configuration."""
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
    changelog = changelog_topic(settings)
    set_topic_config(kafka_bootstrap, changelog, {"segment.ms": "3600000", "min.insync.replicas": "1"})

    # Interrupted at the worst moment: the changelog deleted and created again, its floor never written.
    def interrupted(*_args: object) -> None:
        raise RuntimeError("replay interrupted")

    with monkeypatch.context() as patch:
        patch.setattr(replay, "_write_floor", interrupted)
        with pytest.raises(RuntimeError, match="replay interrupted"):
            replay_command(settings, iso_utc(from_ms + 700))
    with pytest.raises(ConfigError, match=f"interrupted `replay streams` \\(from_ms={from_ms}\\)"):
        check_no_pending_replay(settings)
    # Its own state directory: the first worker's clean-stop marker stays for the restart below.
    refused = Worker(dict(env, CLICKMUNCHER_STATE_DIR=str(tmp_path / "refused")), tmp_path / "refused.log")
    workers.append(refused)
    refused.start()
    assert refused.proc is not None and refused.proc.wait(60) == 2  # refuses to count from that state
    assert "replay streams` (from_ms=" in (tmp_path / "refused.log").read_text()

    replay_command(settings, iso_utc(from_ms + 700))  # run again: finishes the job
    check_no_pending_replay(settings)
    config = topic_config(kafka_bootstrap, changelog)  # recreated as it was, not with defaults
    assert (config["segment.ms"], config["min.insync.replicas"], config["cleanup.policy"]) == (
        "3600000",
        "1",
        "compact",
    )

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
    # The worker had stopped cleanly, but the replay made a new changelog topic: its store was rebuilt.
    assert "local store rebuilt from the changelog: the changelog" in worker.log_path.read_text()
    replayed = {(w.window_start_ms, w.url): w for w in windows}  # per class too
    check_classes(replayed, [c for c in clicks if c.ts_ms - c.ts_ms % 2000 >= from_ms])


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

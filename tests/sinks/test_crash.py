"""kill -9 between the DB commit and the Kafka commit: after a restart the DB is as if nothing happened."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from clickmuncher.settings import Settings
from sinks.schema import upgrade
from sinks.sink import CRASH_EXIT_CODE
from tests.sinks.helpers import (
    RUN_LIMIT_S,
    assert_consistent,
    committed_offsets,
    expected_state,
    make_settings,
    produce,
    read_clicks,
    read_offsets,
    read_windows,
    run_until_caught_up,
    wait_for,
    window,
)

BATCH = 4


def sink_env(settings: Settings, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    for name, value in settings.model_dump().items():
        if value is not None and not isinstance(value, list):
            env[f"CLICKMUNCHER_{name.upper()}"] = str(value)
    env.update(extra)
    return env


def test_crash_after_db_commit_then_restart(
    kafka_bootstrap: str, db_url: str, unique: str, tmp_path: Path
) -> None:
    settings = make_settings(kafka_bootstrap, db_url, unique, tmp_path, sink_batch_size=BATCH)
    records = [window(f"https://example.com/{i % 5}", i // 5, 10 + i, revision=i % 2) for i in range(20)]
    produce(settings, records)

    crashed = subprocess.run(
        [sys.executable, "-m", "sinks"],
        env=sink_env(settings, CLICKMUNCHER_SINK_CRASH_AFTER_DB_COMMIT="1"),
        capture_output=True,
        text=True,
        timeout=RUN_LIMIT_S,
        check=False,
    )
    assert crashed.returncode == CRASH_EXIT_CODE, crashed.stderr[-2000:]
    # the first batch is in the DB, Kafka never heard of it
    assert sum(max(o, 0) for o in read_offsets(db_url, settings.windows_topic).values()) == BATCH
    assert all(offset < 0 for offset in committed_offsets(settings).values())
    assert_consistent(db_url)

    run_until_caught_up(settings)
    assert (read_windows(db_url), read_clicks(db_url)) == expected_state(records)
    assert sum(read_offsets(db_url, settings.windows_topic).values()) == len(records)
    assert_consistent(db_url)


def test_sigterm_stops_cleanly_with_one_summary_line(
    kafka_bootstrap: str, db_url: str, unique: str, tmp_path: Path
) -> None:
    settings = make_settings(kafka_bootstrap, db_url, unique, tmp_path)
    records = [window(f"https://example.com/{i}", 0, i + 1) for i in range(6)]
    produce(settings, records)
    upgrade(db_url)  # so the test can read the tables while the sink starts
    process = subprocess.Popen(
        [sys.executable, "-m", "sinks"], env=sink_env(settings), stderr=subprocess.PIPE, text=True
    )
    try:
        wait_for(lambda: read_windows(db_url) == expected_state(records)[0], "the sink to apply the records")
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=RUN_LIMIT_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, stderr[-2000:]
    assert stderr.count("sink starting:") == 1
    assert f"windows_topic={settings.windows_topic}" in stderr
    summary = [line for line in stderr.splitlines() if "sink stopped:" in line]
    assert len(summary) == 1 and "records=6" in summary[0], stderr[-2000:]

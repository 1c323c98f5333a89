"""kill -9 between the DB commit and the Kafka commit, and while windows the database refuses are isolated:
after a restart the DB is as if nothing happened."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from bench.sink.poison import refuse_poison_urls
from clickmuncher.db.schema import upgrade
from clickmuncher.settings import Settings
from sinks.sink import CRASH_EXIT_CODE
from tests.sinks.helpers import (
    RUN_LIMIT_S,
    assert_consistent,
    committed_offsets,
    dead_letters,
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


def test_crashes_while_isolating_refused_windows_lose_and_repeat_nothing(
    kafka_bootstrap: str, db_url: str, unique: str, tmp_path: Path
) -> None:
    batch = 6
    settings = make_settings(kafka_bootstrap, db_url, unique, tmp_path, partitions=1, sink_batch_size=batch)
    good = [window(f"https://example.com/{i % 3}", i // 3, i + 1) for i in range(12)]
    poison = [window(f"https://example.com/poison/{i}", 0, 100 + i) for i in range(3)]
    records = [*good[:2], poison[0], *good[2:6], poison[1], poison[2], *good[6:]]
    upgrade(db_url)
    refuse_poison_urls(db_url)
    produce(settings, records)

    # Each run in a group of its own: the sink resumes from sink_offsets whatever the group, and a new
    # group does not wait for the killed member's session to expire.
    def run_crashing(fault: str, run: int) -> Settings:
        crashing = settings.model_copy(update={"sink_group": f"{settings.sink_group}-{run}"})
        crashed = subprocess.run(
            [sys.executable, "-m", "sinks"],
            env=sink_env(crashing, **{f"CLICKMUNCHER_{fault}": "1"}),
            capture_output=True,
            text=True,
            timeout=RUN_LIMIT_S,
            check=False,
        )
        assert crashed.returncode == CRASH_EXIT_CODE, crashed.stderr[-2000:]
        assert_consistent(db_url)
        return crashing

    # killed once poison[0]'s dead letter is acked: nothing of its batch is in the DB
    run_crashing("SINK_CRASH_AFTER_DEAD_LETTERS", 1)
    assert read_windows(db_url) == {} and read_offsets(db_url, settings.windows_topic) == {0: -2}
    # killed after the DB commit of the same batch without poison[0]: Kafka never heard of it
    crashed = run_crashing("SINK_CRASH_AFTER_DB_COMMIT", 2)
    assert read_offsets(db_url, settings.windows_topic) == {0: batch}
    assert (read_windows(db_url), read_clicks(db_url)) == expected_state(good[:5])
    assert committed_offsets(crashed) == {0: -1001}

    last = settings.model_copy(update={"sink_group": f"{settings.sink_group}-3"})
    summary = run_until_caught_up(last)
    assert (read_windows(db_url), read_clicks(db_url)) == expected_state(good)
    assert read_offsets(db_url, settings.windows_topic) == committed_offsets(last) == {0: len(records)}
    assert_consistent(db_url)
    assert summary.refused_windows == 2  # poison[0]'s batch was committed before the restart
    letters = dead_letters(settings, 4)  # poison[0] from each killed run, poison[1] and poison[2] once
    expected = [poison[0], poison[0], poison[1], poison[2]]
    assert sorted(value or b"" for value, _ in letters) == sorted(p.encode() for p in expected)
    assert all(headers["reason"].startswith(b"database refused: ") for _, headers in letters)

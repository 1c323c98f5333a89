"""``replay streams`` repairs a database whose rows were corrupted or deleted, from the raw clicks."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from clickmuncher.records import iso_utc
from tests.conftest import LocalBroker
from tests.e2e.harness import SIGNING_KEY, Pipeline, gateway_port, pipeline
from tests.e2e.traffic import db_windows, produced_windows, send_clicks, wait_for_total, zipf_urls

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(600)]

CLICKS = 3_000


def damage(database_url: str, windows: Counter[tuple[str, int]]) -> int:
    """Inflates some rows and deletes others, keeping ``clicks`` consistent with ``click_windows`` (the way a
    buggy writer would leave it); returns how many rows were touched."""
    keys = sorted(windows)
    inflated, deleted = keys[::7], keys[3::7]
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        for url, start_ms in inflated:
            row = {"u": url, "s": datetime.fromtimestamp(start_ms / 1000, tz=UTC), "n": 5}
            conn.execute(
                sa.text("UPDATE click_windows SET clicks = clicks + :n WHERE url = :u AND window_start = :s"),
                row,
            )
            conn.execute(sa.text("UPDATE clicks SET click_count = click_count + :n WHERE url = :u"), row)
        for url, start_ms in deleted:
            row = {
                "u": url,
                "s": datetime.fromtimestamp(start_ms / 1000, tz=UTC),
                "n": windows[(url, start_ms)],
            }
            conn.execute(sa.text("DELETE FROM click_windows WHERE url = :u AND window_start = :s"), row)
            conn.execute(sa.text("UPDATE clicks SET click_count = click_count - :n WHERE url = :u"), row)
    engine.dispose()
    return len(inflated) + len(deleted)


def replay(run: Pipeline, from_ms: int) -> None:
    command = [sys.executable, "-m", "clickmuncher.cli", "replay", "streams", "--from", iso_utc(from_ms)]
    deadline = time.monotonic() + 60
    while True:  # the stopped workers' group empties within a session timeout
        result = subprocess.run(command, env=run.env("replay"), capture_output=True, text=True, check=False)
        if result.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert result.returncode == 0, result.stderr[-2000:]


def wait_for_windows(database_url: str, expected: Counter[tuple[str, int]], timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while db_windows(database_url) != expected and time.monotonic() < deadline:
        time.sleep(1)


def test_replay_streams_restores_exact_counts(kafka: LocalBroker, pg_db_url: str, unique: str) -> None:
    port = gateway_port()
    with pipeline(kafka.bootstrap, pg_db_url, unique) as run:
        run.start_one_of_each(port)
        redirected = asyncio.run(send_clicks(port, zipf_urls(CLICKS, 200, seed=11), SIGNING_KEY))
        total = sum(redirected.values())
        assert wait_for_total(pg_db_url, total) == redirected
        produced = produced_windows(run.bootstrap, f"clicks-{run.suffix}", 2, total)
        assert db_windows(pg_db_url) == produced

        assert damage(pg_db_url, produced) > 0
        assert db_windows(pg_db_url) != produced
        run.terminate("streams-1")
        replay(run, min(start for _, start in produced))
        run.start("streams-1", "streams")
        wait_for_windows(pg_db_url, produced)
        assert db_windows(pg_db_url) == produced
        assert wait_for_total(pg_db_url, total) == redirected

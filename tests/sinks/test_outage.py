"""The database stops mid-run (PostgreSQL): no Kafka commit, retries, and exact counts once it is back."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pgcluster import PgCluster
from tests.sinks.helpers import (
    assert_consistent,
    committed_offsets,
    expected_state,
    make_settings,
    produce,
    read_clicks,
    read_offsets,
    read_windows,
    sink_in_thread,
    wait_for,
    window,
)


def applied(db_url: str, topic: str) -> int:
    return sum(max(offset, 0) for offset in read_offsets(db_url, topic).values())


def test_database_outage_mid_run(
    kafka_bootstrap: str, pg_db_url: str, unique: str, tmp_path: Path, pg_cluster: PgCluster | None
) -> None:
    db_url = pg_db_url  # stopping the server is a PostgreSQL scenario
    if pg_cluster is None:
        pytest.skip("an external PostgreSQL cannot be stopped by the tests")
    settings = make_settings(kafka_bootstrap, db_url, unique, tmp_path, sink_batch_size=5)
    before = [window(f"https://example.com/{i % 4}", i // 4, i + 1) for i in range(12)]
    during = [window(f"https://example.com/{i % 4}", i // 4, i + 100, revision=1) for i in range(16)]
    produce(settings, before)
    with sink_in_thread(settings) as sink:
        wait_for(lambda: read_windows(db_url) == expected_state(before)[0], "the first records")
        committed_before = committed_offsets(settings)
        pg_cluster.stop()
        try:
            produce(settings, during)
            wait_for(lambda: sink.summary.db_errors >= 2, "the sink to hit the stopped database")
            assert committed_offsets(settings) == committed_before  # no Kafka commit without the DB
        finally:
            pg_cluster.start()
        wait_for(
            lambda: sum(max(o, 0) for o in read_offsets(db_url, settings.windows_topic).values()) == 28,
            "recovery",
        )
        assert sink.metrics.db_errors._value.get() >= 2
    assert (read_windows(db_url), read_clicks(db_url)) == expected_state([*before, *during])
    assert_consistent(db_url)
    assert sum(committed_offsets(settings).values()) == 28

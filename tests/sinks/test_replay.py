"""``replay sink``: refused while a sink runs; rebuilds deleted rows; re-applying changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from clickmuncher.settings import ConfigError
from sinks.replay import replay_command, replay_sink
from tests.sinks.helpers import (
    assert_consistent,
    expected_state,
    make_settings,
    produce,
    read_clicks,
    read_offsets,
    read_windows,
    run_until_caught_up,
    sink_in_thread,
    wait_for,
    window,
)


def delete_rows(db_url: str) -> None:
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM click_windows"))
        conn.execute(sa.text("DELETE FROM clicks"))
    engine.dispose()


def test_replay_rebuilds_the_same_db(
    kafka_bootstrap: str, db_url: str, unique: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(kafka_bootstrap, db_url, unique, tmp_path)
    records = [window(f"https://example.com/{i % 6}", i // 6, i + 1, revision=i % 3) for i in range(40)]
    produce(settings, records)
    with sink_in_thread(settings):
        wait_for(lambda: read_windows(db_url) == expected_state(records)[0], "the sink to apply the topic")
        with pytest.raises(ConfigError, match="running member"):
            replay_command(settings, "earliest")
    state = (read_windows(db_url), read_clicks(db_url))
    assert state == expected_state(records)
    positions = read_offsets(db_url, settings.windows_topic)

    delete_rows(db_url)
    replay_command(settings, "earliest")
    assert "re-applied from" in capsys.readouterr().out
    assert all(offset == 0 for offset in read_offsets(db_url, settings.windows_topic).values())
    run_until_caught_up(settings)
    assert (read_windows(db_url), read_clicks(db_url)) == state
    assert read_offsets(db_url, settings.windows_topic) == positions

    # over existing rows, from a time before every record: equal revisions must not double the totals
    replay_sink(settings, datetime.now(UTC) - timedelta(hours=1))
    run_until_caught_up(settings)
    assert (read_windows(db_url), read_clicks(db_url)) == state
    assert_consistent(db_url)


def test_replay_rejects_a_bad_time(kafka_bootstrap: str, unique: str, tmp_path: Path) -> None:
    settings = make_settings(kafka_bootstrap, f"sqlite:///{tmp_path / 'x.db'}", unique, tmp_path)
    with pytest.raises(ConfigError, match="--from: not an ISO-8601 time"):
        replay_command(settings, "yesterday")

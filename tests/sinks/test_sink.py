"""The sink against the real broker, on both databases."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from sinks.sink import Sink
from tests.sinks.helpers import (
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
    window,
)

URLS = [f"https://example.com/page{i}" for i in range(6)]


def watch(sink: Sink, db_url: str, inserts: Counter[str]) -> None:
    """Counts INSERTs per table and checks the totals invariant after every committed batch."""

    def hook(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        words = statement.split()
        if words[0].upper() == "INSERT" and "DO NOTHING" not in statement:
            inserts[words[2]] += 1

    import sqlalchemy as sa

    sa.event.listen(sink.engine, "before_cursor_execute", hook)
    record = sink._record

    def checked(batch: Any, rows: int) -> None:
        record(batch, rows)
        assert_consistent(db_url)

    sink._record = checked  # type: ignore[method-assign]


def test_sink_applies_batches_exactly(kafka_bootstrap: str, db_url: str, unique: str, tmp_path: Path) -> None:
    settings = make_settings(kafka_bootstrap, db_url, unique, tmp_path, sink_batch_size=7)
    first = [window(URLS[i % 6], i // 6, i + 1) for i in range(30)]
    produce(settings, [*first[:10], b"not json at all", *first[10:]])
    inserts: Counter[str] = Counter()
    summary = run_until_caught_up(settings, lambda sink: watch(sink, db_url, inserts))

    assert summary.batches >= 5  # 31 records in batches of at most 7
    assert inserts == {
        "click_windows": summary.batches,
        "clicks": summary.batches,
        "sink_offsets": summary.batches,
    }
    assert (read_windows(db_url), read_clicks(db_url)) == expected_state(first)
    assert sum(read_offsets(db_url, settings.windows_topic).values()) == 31
    assert sum(committed_offsets(settings).values()) == 31

    (value, headers), *_ = dead_letters(settings, 1)
    assert value == b"not json at all"
    assert headers["error"].startswith(b"not JSON")
    assert summary.dead_letters == 1

    # the same records again, out of order, and stale revisions: nothing changes
    revised = [window(URLS[0], 0, 50, revision=2), window(URLS[1], 0, 60, revision=1)]
    produce(settings, revised)
    summary = run_until_caught_up(settings)
    state = (read_windows(db_url), read_clicks(db_url))
    assert state == expected_state([*first, *revised])
    stale = [window(URLS[0], 0, 1, revision=1), window(URLS[1], 0, 1, revision=0)]
    produce(settings, [*reversed(first), *stale, *revised, *first])
    run_until_caught_up(settings, lambda sink: watch(sink, db_url, Counter()))
    assert (read_windows(db_url), read_clicks(db_url)) == state

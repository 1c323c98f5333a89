"""The clean-stop marker that lets a restarted worker keep its local store (streams/kept_store.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.kept_store import (
    KEEP_MAX_AGE_S,
    MARKER_MAX_BYTES,
    CleanStop,
    marker_path,
    take_marker,
    why_rebuilt,
    write_marker,
)

STOP = CleanStop("app-window-counts-changelog", "Xk3b9aXHS5K7W1mTtJ2hYg", 1_800_000_000_000)


def test_a_marker_is_read_once(tmp_path: Path) -> None:
    write_marker(tmp_path, STOP)
    assert take_marker(tmp_path) == STOP
    assert not marker_path(tmp_path).exists()
    assert take_marker(tmp_path) is None  # a crash after this start leaves nothing to trust


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"[]",
        b'{"changelog": "c", "topic_id": "t"}',
        b'{"changelog": "c", "topic_id": "t", "stopped_ms": true}',
        b'{"changelog": "c", "topic_id": "t", "stopped_ms": -1}',
        b'{"changelog": "c", "topic_id": "t", "stopped_ms": 1.5}',
        b'{"changelog": 1, "topic_id": "t", "stopped_ms": 1}',
        b'{"changelog": "c", "topic_id": "t", "stopped_ms": 1, "more": 1}',
        b"\xff\xfe",
        b'{"changelog": "' + b"c" * MARKER_MAX_BYTES + b'", "topic_id": "t", "stopped_ms": 1}',
    ],
)
def test_a_marker_the_worker_did_not_write_rebuilds_the_store(tmp_path: Path, raw: bytes) -> None:
    marker_path(tmp_path).write_bytes(raw)
    stop = take_marker(tmp_path)
    assert stop is None
    assert not marker_path(tmp_path).exists()
    assert why_rebuilt(stop, STOP.changelog, STOP.topic_id, STOP.stopped_ms) is not None


@given(st.binary(max_size=300))
def test_no_bytes_crash_the_decoder(raw: bytes) -> None:
    stop = CleanStop.decode(raw)
    assert stop is None or CleanStop.decode(stop.encode()) == stop


@pytest.mark.parametrize(
    ("changelog", "topic_id", "after_s", "kept"),
    [
        (STOP.changelog, STOP.topic_id, 5.0, True),
        (STOP.changelog, STOP.topic_id, KEEP_MAX_AGE_S, True),
        (STOP.changelog, STOP.topic_id, KEEP_MAX_AGE_S + 1, False),  # compaction may have dropped deletions
        (STOP.changelog, STOP.topic_id, -60.0, False),  # a clock that went back: not trusted
        (STOP.changelog, "AAAAAAAAAAAAAAAAAAAAAA", 5.0, False),  # the topic was recreated (replay)
        (STOP.changelog, None, 5.0, False),  # the cluster could not say
        ("other-changelog", STOP.topic_id, 5.0, False),
    ],
)
def test_the_store_is_kept_only_for_the_same_topic_and_a_recent_stop(
    changelog: str, topic_id: str | None, after_s: float, kept: bool
) -> None:
    reason = why_rebuilt(STOP, changelog, topic_id, STOP.stopped_ms + int(after_s * 1000))
    assert (reason is None) == kept

"""The disk spool: locks between processes, resumable replay, torn lines."""

from __future__ import annotations

from pathlib import Path

from clickmuncher.records import ClickEvent
from gateway.spool import Spool, claimed, remove_orphans, replay_segment, segments


def _events(n: int, start: int = 0) -> list[ClickEvent]:
    return [ClickEvent(url=f"http://example.com/{i}", ts_ms=1_700_000_000_000 + i) for i in range(start, n)]


def test_active_segment_is_not_claimable_until_sealed(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(_events(3))
    [path] = segments(tmp_path)
    with claimed(path) as fd:
        assert fd is None
    spool.seal()
    with claimed(path) as fd:
        assert fd is not None
        with claimed(path) as second:
            assert second is None


def test_replay_resumes_where_the_producer_refused(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(_events(1200))
    spool.seal()
    [path] = segments(tmp_path)
    taken: list[ClickEvent] = []

    def take_until(limit: int) -> object:
        def hand_over(event: ClickEvent) -> bool:
            if len(taken) >= limit:
                return False
            taken.append(event)
            return True

        return hand_over

    for limit in (700, 701, 1200):
        with claimed(path) as fd:
            assert fd is not None
            done = replay_segment(path, fd, take_until(limit))  # type: ignore[arg-type]
        assert done is (limit == 1200)
    assert taken == _events(1200)
    assert segments(tmp_path) == [] and list(tmp_path.iterdir()) == []


def test_torn_last_line_is_skipped(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(_events(2))
    spool.seal()
    [path] = segments(tmp_path)
    with open(path, "ab") as file:
        file.write(b'{"v": 1, "url": "http://exa')
    taken: list[ClickEvent] = []
    with claimed(path) as fd:
        assert fd is not None
        assert replay_segment(path, fd, lambda e: taken.append(e) is None)
    assert taken == _events(2)


def test_orphan_positions_are_removed(tmp_path: Path) -> None:
    (tmp_path / "1-1-000001.jsonl.pos").write_text("10")
    remove_orphans(tmp_path)
    assert list(tmp_path.iterdir()) == []

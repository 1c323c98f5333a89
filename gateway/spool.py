"""The disk spool: clicks the producer could not take, kept until Kafka takes them.

Layout: ``<state_dir>/spool/<ns>-<pid>-<seq>.jsonl``, one encoded :class:`ClickEvent` per line, append-only.
A process writes one *active* segment at a time and holds an exclusive ``flock`` on it; a segment is *sealed*
when its writer closes it (or dies). Any process replays sealed segments, oldest name first, under the same
lock, so two live gateways never replay one segment. ``<segment>.pos`` records how many bytes were handed to
the producer; it is written *before* the hand-over, so a crash loses at most one batch, never produces twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from clickmuncher.records import ClickEvent, RecordError

log = logging.getLogger("gateway.spool")
SUFFIX = ".jsonl"
BATCH_LINES = 500


class Spool:
    """Appends clicks to this process's active segment; thread-safe."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._bytes = 0
        self._seq = 0

    def append(self, events: list[ClickEvent]) -> None:
        """Writes ``events`` to the active segment (the page cache: they survive a kill -9 of the process)."""
        data = b"".join(event.encode() + b"\n" for event in events)
        with self._lock:
            if self._fd is None:
                self._fd = self._open_segment()
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view) :]
            self._bytes += len(data)

    def active_bytes(self) -> int:
        with self._lock:
            return self._bytes

    def seal(self) -> None:
        """Closes the active segment (releasing its lock) for replay; the next append opens a new one."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
                self._bytes = 0

    def _open_segment(self) -> int:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._seq += 1
        path = self.directory / f"{time.time_ns():020d}-{os.getpid()}-{self._seq:06d}{SUFFIX}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd


def segments(directory: Path) -> list[Path]:
    """The segment files in replay order (oldest first)."""
    if not directory.is_dir():
        return []
    return sorted(directory.glob(f"*{SUFFIX}"))


@contextlib.contextmanager
def claimed(path: Path) -> Iterator[int | None]:
    """``path`` opened and locked exclusively; None if another writer or replayer holds it, or it is gone."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        yield None
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield None
            return
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False  # replayed and removed by another process between our open and our lock
        yield fd if same else None
    finally:
        os.close(fd)


def _pos_path(path: Path) -> Path:
    return path.with_name(path.name + ".pos")


def _read_pos(path: Path) -> int:
    try:
        return int(_pos_path(path).read_text() or 0)
    except (FileNotFoundError, ValueError):
        return 0


def _write_pos(path: Path, pos: int) -> None:
    tmp = path.with_name(path.name + ".pos.tmp")
    tmp.write_text(str(pos))
    os.replace(tmp, _pos_path(path))


def replay_segment(path: Path, fd: int, hand_over: Callable[[ClickEvent], bool]) -> bool:
    """Hands the segment's remaining clicks, in order, to ``hand_over`` (False = no room now).

    Returns True and deletes the segment when all were handed over; False when ``hand_over`` refused one.
    Undecodable lines (a torn last line after a crash) are logged and skipped.
    """
    pos = _read_pos(path)
    with os.fdopen(os.dup(fd), "rb") as file:
        file.seek(pos)
        while True:
            lines = [line for line in (file.readline() for _ in range(BATCH_LINES)) if line]
            if not lines:
                break
            end = pos + sum(len(line) for line in lines)
            _write_pos(path, end)  # claimed before the hand-over: a crash loses, never duplicates
            for line in lines:
                event = _decode(path, line)
                if event is not None and not hand_over(event):
                    _write_pos(path, pos)
                    return False
                pos += len(line)
    path.unlink()
    _pos_path(path).unlink(missing_ok=True)
    return True


def _decode(path: Path, line: bytes) -> ClickEvent | None:
    try:
        return ClickEvent.decode(line.rstrip(b"\n"))
    except RecordError as e:
        log.warning("spool %s: skipping an undecodable line (%s)", path.name, e)
        return None


def remove_orphans(directory: Path) -> None:
    """Deletes ``.pos`` files whose segment is gone (a crash between the two unlinks)."""
    if not directory.is_dir():
        return
    for pos in directory.glob(f"*{SUFFIX}.pos"):
        if not pos.with_name(pos.name.removesuffix(".pos")).exists():
            pos.unlink(missing_ok=True)

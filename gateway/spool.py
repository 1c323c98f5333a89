"""The disk spool: clicks the producer could not take, kept until Kafka takes them.

Layout: ``<state_dir>/spool/<ns>-<pid>-<seq>.jsonl``, one encoded :class:`ClickEvent` per line, append-only.
A process writes one *active* segment at a time and holds an exclusive ``flock`` on it; a segment is *sealed*
when its writer closes it (or dies). Any process replays sealed segments, oldest name first, under the same
lock, so two live gateways never replay one segment. ``<segment>.pos`` records how many bytes were handed to
the producer; it is written *before* the hand-over, so a crash loses at most one batch, never produces twice.

Clicks may carry personal data in their URLs: the directory is ``0700`` and every file ``0600``. A write
that fails part-way (disk full) is rolled back to the segment's size before it, so no torn line is ever
followed by another click; if even that fails, the segment is sealed and the next click starts a new one. The
spool's total size is capped (``CLICKMUNCHER_GATEWAY_SPOOL_MAX_BYTES``): past it, :meth:`Spool.append`
refuses.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from clickmuncher.records import ClickEvent, RecordError
from clickmuncher.settings import ConfigError

log = logging.getLogger("gateway.spool")
SUFFIX = ".jsonl"
BATCH_LINES = 500
DIR_MODE = 0o700
FILE_MODE = 0o600


class SpoolFull(OSError):
    """The spool holds its maximum size already; the click was not written."""


@dataclass(frozen=True, slots=True)
class SpoolStats:
    """What the spool holds: bytes not yet handed to the producer, segment files, the oldest such click."""

    bytes: int
    segments: int
    oldest_ts_ms: int | None


class Spool:
    """Appends clicks to this process's active segment; thread-safe."""

    def __init__(self, directory: Path, max_bytes: int = 1 << 62) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._bytes = 0  # the active segment's size
        self._seq = 0
        self._usage = 0  # the whole directory's unreplayed bytes, as of the last refresh plus appends since
        self._appended = 0

    def append(self, events: list[ClickEvent]) -> None:
        """Writes ``events`` to the active segment (the page cache: they survive a kill -9 of the process).

        Raises :class:`SpoolFull` past the size cap, :class:`OSError` when the write fails; either way
        nothing of ``events`` stays in the segment.
        """
        data = b"".join(event.encode() + b"\n" for event in events)
        with self._lock:
            if self._usage + len(data) > self.max_bytes:
                raise SpoolFull(f"the spool holds {self._usage} bytes, its cap is {self.max_bytes}")
            if self._fd is None:
                self._fd = self._open_segment()
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(self._fd, view) :]
            except OSError:
                self._roll_back()
                raise
            self._bytes += len(data)
            self._usage += len(data)
            self._appended += len(data)

    def _roll_back(self) -> None:
        """Cuts a failed write off the active segment; seals the segment if even that fails."""
        assert self._fd is not None
        try:
            os.ftruncate(self._fd, self._bytes)
        except OSError as e:
            log.error("spool: cannot cut a torn write off the active segment (%s); sealing it", e)
            os.close(self._fd)
            self._fd = None
            self._bytes = 0

    def active_bytes(self) -> int:
        with self._lock:
            return self._bytes

    def refresh(self) -> SpoolStats:
        """Scans the directory (every process's segments): the stats, and the usage the size cap checks."""
        with self._lock:
            appended = self._appended
        stats = scan(self.directory)
        with self._lock:
            # Appends during the scan may or may not be in it: counted again, the cap errs on the safe side.
            self._usage = stats.bytes + self._appended - appended
        return stats

    def seal(self) -> None:
        """Closes the active segment (releasing its lock) for replay; the next append opens a new one."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
                self._bytes = 0

    def _open_segment(self) -> int:
        self.directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        self._seq += 1
        path = self.directory / f"{time.time_ns():020d}-{os.getpid()}-{self._seq:06d}{SUFFIX}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, FILE_MODE)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd


def prepare(directory: Path) -> None:
    """Creates the spool directory (``0700``), narrows older files to ``0600`` and checks that a file can be
    written there; raises :class:`ConfigError` otherwise (a spool that cannot be written loses clicks)."""
    probe = directory / f".probe-{os.getpid()}"
    try:
        directory.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        directory.mkdir(mode=DIR_MODE, exist_ok=True)
        os.chmod(directory, DIR_MODE)
        for path in directory.iterdir():
            if path.is_file() and path.stat().st_mode & 0o077:
                os.chmod(path, FILE_MODE)
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, FILE_MODE)
        try:
            if os.write(fd, b"\n") != 1:
                raise OSError(0, "short write")
        finally:
            os.close(fd)
            probe.unlink(missing_ok=True)
    except OSError as e:
        raise ConfigError(
            f"CLICKMUNCHER_STATE_DIR: the spool directory {directory} cannot be written "
            f"({e.strerror or e}); the gateway would lose clicks whenever Kafka is away"
        ) from e


def scan(directory: Path) -> SpoolStats:
    """The stats of every segment in ``directory`` (replayed bytes excluded)."""
    total, count, oldest = 0, 0, None
    for path in segments(directory):
        with contextlib.suppress(FileNotFoundError):  # replayed and removed meanwhile
            pos, size = _read_pos(path), path.stat().st_size
            total += max(0, size - pos)
            count += 1
            if oldest is None and size > pos:
                oldest = _first_ts_ms(path, pos)
    return SpoolStats(total, count, oldest)


def _first_ts_ms(path: Path, pos: int) -> int | None:
    with open(path, "rb") as file:
        file.seek(pos)
        line = file.readline()
    try:
        return ClickEvent.decode(line.rstrip(b"\n")).ts_ms
    except RecordError:
        return None


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
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, FILE_MODE)
    with os.fdopen(fd, "w") as file:
        file.write(str(pos))
    os.replace(tmp, _pos_path(path))


def replay_segment(path: Path, fd: int, hand_over: Callable[[ClickEvent], bool]) -> bool:
    """Hands the segment's remaining clicks, in order, to ``hand_over`` (False = no room now).

    Returns True and deletes the segment when all were handed over; False when ``hand_over`` refused one.
    Undecodable lines (a torn last line after a crash or a failed roll-back) are logged and skipped.
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

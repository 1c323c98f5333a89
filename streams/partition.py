"""The in-memory index of one owned ``clicks`` partition: its watermark and its open and closed windows.

Everything here is a cache of the table: it is rebuilt from the table after every assignment (and restart),
and forgotten at once when the partition is revoked.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from streams.ports import Change, Output
from streams.windows import WindowRules, WindowState


@dataclass
class PartitionIndex:
    """Watermarks are event-time milliseconds; offsets are offsets of the ``clicks`` partition."""

    partition: int
    watermark_ms: int = -1
    # What the changelog holds: the watermark and the emitted horizon (see streams.windows.Watermark).
    persisted_ms: int = -1
    persisted_emitted_ms: int = -1
    # Every window closing at or below this was delivered (in memory, ahead of the persisted one).
    emitted_ms: int = -1
    # The watermark may move up to here without changing any route or close (WindowRules.next_boundary).
    boundary_ms: int = 0
    # Every event at or below this offset was fully handled before the last restart or rebalance.
    handled_offset: int = -1
    # Set by a replay: windows starting before it are not recomputed, their clicks are skipped.
    floor_ms: int = -1
    last_offset: int | None = None
    # The offset the next event must have; None until the first event after the load.
    next_offset: int | None = None
    # A gap was seen and the consumer was sent back to next_offset.
    seeking: bool = False
    seek_mono: float = 0.0
    seek_attempts: int = 0
    last_event_mono: float = field(default_factory=time.monotonic)
    open: dict[int, set[str]] = field(default_factory=dict)
    closed: dict[int, set[str]] = field(default_factory=dict)
    # The batch: new states not yet written to the table, and the events whose acks wait for that write.
    pending: dict[str, WindowState] = field(default_factory=dict)
    held: list[Any] = field(default_factory=list)
    # Closed windows to emit again after the batch's write (key -> (window start, URL)); among them, the
    # keys whose pending state carries a revision never emitted yet (more late clicks join it). Then the
    # dead letters and too-late clicks the batch must deliver before its write.
    reemit: dict[str, tuple[int, str]] = field(default_factory=dict)
    # States written since the last live publication (only kept when live counts are published).
    live_changed: dict[str, WindowState] = field(default_factory=dict)
    revised: set[str] = field(default_factory=set)
    outbox: list[Output] = field(default_factory=list)
    batch_started_mono: float = 0.0
    # The states as last written to the table (a partition's keys are written only by its owner), so hot
    # keys are not read back from the store; emptied when it grows past its limit.
    written: dict[str, WindowState] = field(default_factory=dict)

    def note_written(self, written: dict[str, WindowState], changes: list[Change], cache_max: int) -> None:
        """Changes reached the table: the ``written`` states (the whole batch, or some of its keys) move from
        the batch to the cache, deleted keys leave it."""
        if len(self.written) + len(written) > cache_max:
            self.written.clear()
        self.written.update(written)
        if written is self.pending:
            self.pending = {}
        else:
            for key in written:
                del self.pending[key]
        for key, value in changes:
            if value is None:
                self.written.pop(key, None)

    def pending_closed(self, rules: WindowRules) -> dict[str, WindowState]:
        """The batch's states of the windows the in-memory watermark has closed (keys ``<start>:<url>``)."""
        closed_before = rules.start_of(self.watermark_ms - rules.grace_ms) - rules.window_ms + 1
        pending = self.pending.items()
        return {key: state for key, state in pending if int(key[: key.index(":")]) < closed_before}

    def batch_age_s(self) -> float:
        return time.monotonic() - self.batch_started_mono if self.held else 0.0

    def restore(self, watermark_ms: int, emitted_ms: int, rules: WindowRules) -> None:
        """The persisted watermark and emitted horizon read back from the table (after a load)."""
        self.watermark_ms = self.persisted_ms = watermark_ms
        self.emitted_ms = self.persisted_emitted_ms = emitted_ms
        self.boundary_ms = rules.next_boundary(watermark_ms)

    def must_persist(self) -> bool:
        """Whether the watermark reached a point that changes a route or a close since it was persisted,
        or more windows were emitted than the persisted horizon says."""
        return self.watermark_ms >= self.boundary_ms or self.emitted_ms > self.persisted_emitted_ms

    def needs_commit(self) -> bool:
        return bool(self.held or self.outbox or self.reemit) or self.must_persist()

    def add(self, window_start_ms: int, url: str, closed: bool) -> None:
        windows = self.closed if closed else self.open
        urls = windows.get(window_start_ms)
        if urls is None:
            urls = windows[window_start_ms] = set()
        urls.add(url)

    def knows(self, window_start_ms: int, url: str) -> bool:
        """Whether the (window, URL) has a state: the index holds every key of the partition's table."""
        return url in self.open.get(window_start_ms, ()) or url in self.closed.get(window_start_ms, ())

    def note_event(self, offset: int) -> None:
        self.last_offset = offset
        self.last_event_mono = time.monotonic()

    def advance(self, watermark_ms: int) -> bool:
        """Moves the in-memory watermark forward only; returns whether it moved."""
        if watermark_ms <= self.watermark_ms:
            return False
        self.watermark_ms = watermark_ms
        return True

    def due_to_close(self, rules: WindowRules) -> list[int]:
        """Open windows the *persisted* watermark has closed, oldest first: their emission is due."""
        return sorted(ws for ws in self.open if rules.is_closed(ws, self.persisted_ms))

    def mark_closed(self, window_start_ms: int) -> None:
        """Called once the window's records are delivered: it moves to the late-retention set."""
        urls = self.open.pop(window_start_ms, set())
        self.closed.setdefault(window_start_ms, set()).update(urls)

    def mark_persisted(self, rules: WindowRules) -> None:
        self.persisted_ms = self.watermark_ms
        self.persisted_emitted_ms = self.emitted_ms
        self.boundary_ms = rules.next_boundary(self.persisted_ms)

    def due_to_release(self, rules: WindowRules) -> list[int]:
        """Closed windows whose late retention the persisted watermark has passed and whose emission the
        persisted horizon confirms (none while a re-emission waits: its state must outlive it)."""
        if self.reemit:
            return []
        return sorted(
            ws
            for ws in self.closed
            if rules.is_released(ws, self.persisted_ms) and rules.closes_at(ws) <= self.persisted_emitted_ms
        )

    def release(self, window_start_ms: int) -> set[str]:
        return self.closed.pop(window_start_ms, set())

    def idle_for_s(self) -> float:
        return time.monotonic() - self.last_event_mono

    def open_count(self) -> int:
        return sum(len(urls) for urls in self.open.values())

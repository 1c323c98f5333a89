"""Pure window rules: assignment, closing by watermark, late classification, redelivery dedupe.

All times are integer milliseconds since the epoch. Windows are tumbling and aligned to the epoch (SPEC §6):
``window_start_ms = ts_ms - ts_ms % window_ms``; a window ``[start, start + window_ms)`` closes when its
partition's watermark reaches ``start + window_ms + grace_ms``.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class WindowRules:
    """Window size, grace and late retention of one worker, in milliseconds."""

    window_ms: int
    grace_ms: int
    late_retention_ms: int
    max_future_ms: int = 300_000

    def start_of(self, ts_ms: int) -> int:
        return ts_ms - ts_ms % self.window_ms

    def end_of(self, window_start_ms: int) -> int:
        return window_start_ms + self.window_ms

    def closes_at(self, window_start_ms: int) -> int:
        """The watermark at which the window closes (its end plus grace)."""
        return window_start_ms + self.window_ms + self.grace_ms

    def is_closed(self, window_start_ms: int, watermark_ms: int) -> bool:
        return watermark_ms >= self.closes_at(window_start_ms)

    def releases_at(self, window_start_ms: int) -> int:
        """The watermark after which a closed window no longer accepts late clicks."""
        return self.closes_at(window_start_ms) + self.late_retention_ms

    def is_released(self, window_start_ms: int, watermark_ms: int) -> bool:
        return watermark_ms >= self.releases_at(window_start_ms)

    def is_future(self, ts_ms: int, now_ms: int) -> bool:
        """A timestamp this far ahead of the wall clock is dead-lettered and never moves a watermark."""
        return ts_ms > now_ms + self.max_future_ms

    def idle_watermark(self, now_ms: int) -> int:
        """Where an idle, caught-up partition's watermark moves by the wall clock."""
        return now_ms - self.grace_ms

    def next_boundary(self, watermark_ms: int) -> int:
        """The smallest watermark above ``watermark_ms`` at which some window closes or is released.

        Every route (open, late, too late) and every close depends only on which of these points the
        watermark has passed, so a watermark that has not reached the next one routes and closes exactly as
        the last persisted watermark does: the engine persists the watermark before it uses a new point.
        """
        after = watermark_ms + 1
        close_phase = self.grace_ms % self.window_ms
        release_phase = (self.grace_ms + self.late_retention_ms) % self.window_ms
        return min(after + (phase - after) % self.window_ms for phase in (close_phase, release_phase))


class Route(enum.Enum):
    """What one click does to its window."""

    OPEN = "open"  # counted into an open window
    LATE = "late"  # counted into a closed window still within retention: revision + 1, re-emitted
    TOO_LATE = "too_late"  # beyond retention: written to clicks-late, counted in a metric
    FUTURE = "future"  # timestamp far in the future: dead-lettered


def route(rules: WindowRules, ts_ms: int, watermark_ms: int, now_ms: int) -> Route:
    """Classifies a click by its timestamp against its partition's watermark and the wall clock."""
    if rules.is_future(ts_ms, now_ms):
        return Route.FUTURE
    start = rules.start_of(ts_ms)
    if not rules.is_closed(start, watermark_ms):
        return Route.OPEN
    if not rules.is_released(start, watermark_ms):
        return Route.LATE
    return Route.TOO_LATE


@dataclass(slots=True)
class WindowState:
    """What the table stores per (window, URL): one changelog record, so its fields never disagree.

    ``last_offset`` is the highest offset of the source partition applied to this key; a redelivered event
    at or below it was already counted. Never modified (a new state is built per click); not declared
    frozen only because a frozen dataclass costs three times as much to build.
    """

    count: int
    last_offset: int
    revision: int
    partition: int

    def encode(self) -> list[int]:
        return [self.count, self.last_offset, self.revision, self.partition]

    @classmethod
    def decode(cls, raw: object) -> WindowState:
        if isinstance(raw, (bytes, str)):
            raw = json.loads(raw)
        if not isinstance(raw, list) or len(raw) != 4 or not all(type(v) is int for v in raw):
            raise ValueError(f"bad window state {raw!r}")
        count, last_offset, revision, partition = raw
        return cls(count, last_offset, revision, partition)


def apply_click(state: WindowState | None, offset: int, partition: int, bump: bool) -> WindowState | None:
    """The new state after one click at ``offset``, or ``None`` when it was already applied (redelivery).

    ``bump``: the click corrects a window whose current revision was already emitted (a late click), so
    the count goes out under the next revision; a new key starts at revision 0 in any case.
    """
    if state is None:
        return WindowState(count=1, last_offset=offset, revision=0, partition=partition)
    if state.last_offset >= offset:
        return None
    revision = state.revision + 1 if bump else state.revision
    return WindowState(state.count + 1, offset, revision, state.partition)


def window_key(window_start_ms: int, url: str) -> str:
    """The table key and the ``click-windows`` key: ``<window_start_ms>:<url>``."""
    return f"{window_start_ms}:{url}"


def split_key(key: str) -> tuple[int, str]:
    start, _, url = key.partition(":")
    return int(start), url


WATERMARK_PREFIX = "~wm:"


def watermark_key(partition: int) -> str:
    return f"{WATERMARK_PREFIX}{partition}"


FLOOR_PREFIX = "~floor:"


def floor_key(partition: int) -> str:
    """Written by ``replay streams``: clicks of windows starting before the floor (ms) are skipped."""
    return f"{FLOOR_PREFIX}{partition}"


@dataclass(frozen=True, slots=True)
class Watermark:
    """A partition's persisted watermark, the source offset of the last event handled when it was
    written, and the emitted horizon: every window that closes at or below ``emitted_ms`` was delivered to
    ``click-windows``. Windows closing in ``(emitted_ms, watermark_ms]`` were decided closed but maybe not
    delivered: they are emitted again (with their stored revision and count) after a restart.
    """

    watermark_ms: int
    offset: int
    emitted_ms: int

    def encode(self) -> list[int]:
        return [self.watermark_ms, self.offset, self.emitted_ms]

    @classmethod
    def decode(cls, raw: object) -> Watermark:
        """Also reads the two-field records of earlier versions, which persisted a watermark only after
        emitting what it closed (so their emitted horizon is the watermark itself)."""
        if isinstance(raw, (bytes, str)):
            raw = json.loads(raw)
        if not isinstance(raw, list) or len(raw) not in (2, 3) or not all(type(v) is int for v in raw):
            raise ValueError(f"bad watermark {raw!r}")
        return cls(raw[0], raw[1], raw[-1] if len(raw) == 3 else raw[0])

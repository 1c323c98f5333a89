"""Pure window rules: assignment, closing by watermark, late classification, redelivery dedupe.

All times are integer milliseconds since the epoch. Windows are tumbling and aligned to the epoch (SPEC §6):
``window_start_ms = ts_ms - ts_ms % window_ms``; a window ``[start, start + window_ms)`` closes when its
partition's watermark reaches ``start + window_ms + grace_ms``.
"""

from __future__ import annotations

import enum
import json
import logging
from dataclasses import dataclass

from clickmuncher import sketches
from clickmuncher.records import BOT, HUMAN, PREVIEW, ByClass
from clickmuncher.sketches import Sketch

log = logging.getLogger("streams")


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
    at or below it was already counted. ``bot``, ``preview`` and ``prefetch`` count those classes' clicks
    (the rest of ``count`` is human, SPEC §12); ``hll`` is the sketch of the human visitors: a
    :class:`~clickmuncher.sketches.Sketch`, its base64 text as read from the table (decoded on first use:
    a load reads every key and needs none), or None before the first visitor.

    A new state is built per click, sharing its predecessor's sketch, which the click updates in place:
    only the newest state of a key is ever read or written again (a sketch's older contents are never
    needed, and adding a visitor twice changes nothing). Not declared frozen only because a frozen
    dataclass costs three times as much to build.
    """

    count: int
    last_offset: int
    revision: int
    partition: int
    bot: int = 0
    preview: int = 0
    prefetch: int = 0
    hll: Sketch | str | None = None

    def encode(self) -> list[int | str]:
        """Four integers while every click was human without a visitor (the first version's record), else
        seven, then the sketch's base64 when there is one."""
        head: list[int | str] = [self.count, self.last_offset, self.revision, self.partition]
        if self.hll is None and not (self.bot or self.preview or self.prefetch):
            return head
        head += [self.bot, self.preview, self.prefetch]
        if self.hll is not None:
            head.append(self.hll if isinstance(self.hll, str) else sketches.to_base64(self.hll))
        return head

    @classmethod
    def decode(cls, raw: object) -> WindowState:
        if isinstance(raw, (bytes, str)):
            raw = json.loads(raw)
        if not isinstance(raw, list) or len(raw) not in (4, 7, 8) or not all(type(v) is int for v in raw[:7]):
            raise ValueError(f"bad window state {str(raw)[:200]}")
        if len(raw) == 8 and (not isinstance(raw[7], str) or len(raw[7]) > sketches.MAX_BASE64_CHARS):
            raise ValueError(f"bad window state {str(raw)[:200]}")
        if len(raw) > 4 and (min(raw[4:7]) < 0 or sum(raw[4:7]) > raw[0]):
            raise ValueError(f"bad window state {str(raw)[:200]}")
        return cls(*raw)

    @property
    def by_class(self) -> ByClass:
        """Clicks per class, in the order of ``clickmuncher.records.CLASSES``."""
        return (self.count - self.bot - self.preview - self.prefetch, self.bot, self.preview, self.prefetch)

    def visitors(self) -> Sketch | None:
        """The sketch, decoded if it was read from the table. One the table holds but that is not a sketch
        (impossible unless the changelog was written by someone else) is logged and started afresh: the
        counts stay exact, the uniques of that window lose its earlier visitors."""
        if isinstance(self.hll, str):
            try:
                self.hll = sketches.from_base64(self.hll)
            except sketches.SketchError as e:
                log.error("a window's sketch in the table is unreadable (%s); it starts afresh", e)
                self.hll = sketches.new()
        return self.hll

    def uniques(self) -> int:
        """Estimated distinct human visitors: never more than the human clicks."""
        sketch = self.visitors()
        return 0 if sketch is None else min(sketches.estimate(sketch), self.by_class[HUMAN])

    def hll_base64(self) -> str | None:
        if self.hll is None or isinstance(self.hll, str):
            return self.hll
        return sketches.to_base64(self.hll)


def apply_click(
    state: WindowState | None,
    offset: int,
    partition: int,
    bump: bool,
    cls: int = HUMAN,
    vid: str | None = None,
) -> WindowState | None:
    """The new state after one click at ``offset`` of class ``cls`` by visitor ``vid``, or ``None`` when it
    was already applied (redelivery).

    ``bump``: the click corrects a window whose current revision was already emitted (a late click), so
    the count goes out under the next revision; a new key starts at revision 0 in any case.
    """
    if state is None:
        new = WindowState(1, offset, 0, partition)
    elif state.last_offset >= offset:
        return None
    else:
        revision = state.revision + 1 if bump else state.revision
        new = WindowState(
            state.count + 1,
            offset,
            revision,
            state.partition,
            state.bot,
            state.preview,
            state.prefetch,
            state.hll,
        )
    if cls == HUMAN:
        if vid is not None:
            sketch = new.hll
            if sketch is None:
                sketch = new.hll = sketches.new()
            elif type(sketch) is str:
                sketch = new.visitors()
            sketch.update(vid)  # type: ignore[union-attr]
    elif cls == BOT:
        new.bot += 1
    elif cls == PREVIEW:
        new.preview += 1
    else:
        new.prefetch += 1
    return new


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

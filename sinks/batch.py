"""The pure part of the sink: from a batch of consumed records to the rows, deltas and offsets to write.

Nothing here touches Kafka or the database, so the merge rules are unit-tested directly:

- within a batch, one record per window (``url``, ``window_start_ms``) survives: the highest ``revision``,
  and at equal revision the later record (consumption order, which is offset order within a partition);
- against the stored row, a record with a lower revision changes nothing; an equal or higher one overwrites;
- ``clicks.click_count`` moves by the difference between the written row and the row it replaces, so it always
  equals the sum of that URL's ``click_windows.clicks``, however often a record is re-applied.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from clickmuncher.records import ClickWindow, RecordError

WindowKey = tuple[str, int]
"""(url, window_start_ms): the primary key of ``click_windows``."""


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One consumed message, as the sink needs it."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    record: RawRecord
    reason: str


@dataclass(frozen=True, slots=True)
class StoredWindow:
    """The part of a stored ``click_windows`` row the merge rules look at."""

    clicks: int
    revision: int


@dataclass(frozen=True, slots=True)
class Batch:
    """A decoded batch: one winning window per key, the dead letters, and where each partition resumes."""

    windows: tuple[ClickWindow, ...]
    dead: tuple[DeadLetter, ...]
    next_offsets: Mapping[int, int]
    size: int


@dataclass(frozen=True, slots=True)
class Writes:
    """What one batch writes: the rows to upsert and the change of each URL's total."""

    rows: tuple[ClickWindow, ...]
    click_deltas: Mapping[str, int]


def window_key(window: ClickWindow) -> WindowKey:
    return (window.url, window.window_start_ms)


def wins_over(candidate: ClickWindow, current: ClickWindow) -> bool:
    """True when ``candidate``, seen after ``current``, replaces it: a higher or equal revision."""
    return candidate.revision >= current.revision


def dedupe(windows: Iterable[ClickWindow]) -> tuple[ClickWindow, ...]:
    """One window per key, the winner of the records in consumption order; first-seen key order is kept."""
    winners: dict[WindowKey, ClickWindow] = {}
    for window in windows:
        key = window_key(window)
        current = winners.get(key)
        if current is None or wins_over(window, current):
            winners[key] = window
    return tuple(winners.values())


def plan_batch(records: Sequence[RawRecord]) -> Batch:
    """Decodes ``records`` (in consumption order); undecodable ones become dead letters (offsets advance)."""
    decoded: list[ClickWindow] = []
    dead: list[DeadLetter] = []
    next_offsets: dict[int, int] = {}
    for record in records:
        next_offsets[record.partition] = max(next_offsets.get(record.partition, 0), record.offset + 1)
        try:
            decoded.append(ClickWindow.decode(record.value))
        except RecordError as e:
            dead.append(DeadLetter(record, str(e)))
    return Batch(windows=dedupe(decoded), dead=tuple(dead), next_offsets=next_offsets, size=len(records))


def plan_writes(windows: Iterable[ClickWindow], stored: Mapping[WindowKey, StoredWindow]) -> Writes:
    """The rows that change (stale revisions dropped) and each URL's total delta against the stored rows.

    Every URL of a written row gets an entry, possibly 0, so a ``clicks`` row exists for each URL in
    ``click_windows``.
    """
    rows: list[ClickWindow] = []
    deltas: dict[str, int] = {}
    for window in windows:
        old = stored.get(window_key(window))
        if old is not None and window.revision < old.revision:
            continue
        rows.append(window)
        deltas[window.url] = deltas.get(window.url, 0) + window.clicks - (old.clicks if old else 0)
    return Writes(rows=tuple(rows), click_deltas=deltas)

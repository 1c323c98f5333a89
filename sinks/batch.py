"""The pure part of the sink: from a batch of consumed records to the rows, deltas and offsets to write.

Nothing here touches Kafka or the database, so the merge rules are unit-tested directly:

- within a batch, one record per window (``url``, ``window_start_ms``) survives: the highest ``revision``,
  and at equal revision the later record (consumption order, which is offset order within a partition);
- against the stored row, a record with a lower revision changes nothing; an equal or higher one overwrites;
- ``clicks.click_count`` moves by the difference between the written row and the row it replaces, so it always
  equals the sum of that URL's ``click_windows.clicks``, however often a record is re-applied.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from clickmuncher.records import ClickWindow, RecordError

WindowKey = tuple[str, int]
"""(url, window_start_ms): the primary key of ``click_windows``."""
T = TypeVar("T")


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
    """A decoded batch: one winning window per key, the dead letters, and where each partition resumes.

    ``sources`` maps each window's key to the record it was decoded from (for a dead letter, should the
    database refuse the window).
    """

    windows: tuple[ClickWindow, ...]
    dead: tuple[DeadLetter, ...]
    next_offsets: Mapping[int, int]
    size: int
    sources: Mapping[WindowKey, RawRecord] = field(default_factory=dict)


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
    return tuple(window for window, _ in _winners((window, None) for window in windows).values())


def _winners(decoded: Iterable[tuple[ClickWindow, T]]) -> dict[WindowKey, tuple[ClickWindow, T]]:
    winners: dict[WindowKey, tuple[ClickWindow, T]] = {}
    for window, source in decoded:
        key = window_key(window)
        current = winners.get(key)
        if current is None or wins_over(window, current[0]):
            winners[key] = (window, source)
    return winners


def plan_batch(records: Sequence[RawRecord]) -> Batch:
    """Decodes ``records`` (in consumption order); undecodable ones become dead letters (offsets advance)."""
    decoded: list[tuple[ClickWindow, RawRecord]] = []
    dead: list[DeadLetter] = []
    next_offsets: dict[int, int] = {}
    for record in records:
        next_offsets[record.partition] = max(next_offsets.get(record.partition, 0), record.offset + 1)
        try:
            decoded.append((ClickWindow.decode(record.value), record))
        except RecordError as e:
            dead.append(DeadLetter(record, str(e)))
    winners = _winners(decoded)
    return Batch(
        windows=tuple(window for window, _ in winners.values()),
        dead=tuple(dead),
        next_offsets=next_offsets,
        size=len(records),
        sources={key: record for key, (_, record) in winners.items()},
    )


def without_refused(batch: Batch, refused: Mapping[WindowKey, str]) -> Batch:
    """``batch`` with the windows of ``refused`` (key → the database's reason) moved to its dead letters:
    the same offsets, so their records are committed past like any other.

    A refused window's older revisions in the same batch are not written in its place: compaction keeps
    only the newest revision of a window, so a replay of the topic would not see them either.
    """
    dead = tuple(DeadLetter(batch.sources[key], f"database refused: {why}") for key, why in refused.items())
    return dataclasses.replace(
        batch,
        windows=tuple(window for window in batch.windows if window_key(window) not in refused),
        dead=batch.dead + dead,
    )


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

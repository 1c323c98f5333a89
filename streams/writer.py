"""Step 4 of the engine's protocol (``streams/engine.py``): a partition's batch written, then acked.

For each partition with held events: one table write per touched key, then, if a window closed, the
watermark (one record carrying the batch's last offset) and only after it the deletions of the keys whose
late retention the persisted watermark has passed; all of them retried in order until the broker has
acknowledged every changelog record; then the batch's events are acked, so no commit passes a click whose
changelog record is not durable.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from streams.metrics import RunStats, StreamsMetrics
from streams.partition import PartitionIndex
from streams.ports import Ack, Change, WindowTable
from streams.retry import until_done
from streams.windows import Watermark, WindowRules, watermark_key, window_key

STATE_CACHE_MAX = 50_000  # states kept decoded after their write, per partition (hot keys skip the store)


class BatchWriter:
    def __init__(
        self, rules: WindowRules, table: WindowTable, ack: Ack, metrics: StreamsMetrics, stats: RunStats
    ) -> None:
        self.rules = rules
        self.table = table
        self.ack = ack
        self.metrics = metrics
        self.stats = stats

    async def flush(self, parts: Sequence[PartitionIndex]) -> None:
        """Writes the batch of every partition given that holds events, then acks those events."""
        batches = [(part, self._changes(part)) for part in parts if part.held]
        if not batches:
            return
        await asyncio.gather(*(self._write(part.partition, changes) for part, changes in batches))
        for part, changes in batches:
            self.metrics.changelog_writes.inc(len(changes))
            self.stats.changelog_writes += len(changes)
            self.ack(part.held)
            part.note_written(changes, STATE_CACHE_MAX)
            part.held = []

    def _changes(self, part: PartitionIndex) -> list[Change]:
        """The batch's table changes, in the order they must reach the changelog."""
        changes: list[Change] = [(key, state.encode()) for key, state in part.pending.items()]
        if part.dirty and part.last_offset is not None:
            changes.append(
                (watermark_key(part.partition), Watermark(part.watermark_ms, part.last_offset).encode())
            )
            part.mark_persisted()
            for start in part.due_to_release(self.rules):
                changes.extend((window_key(start, url), None) for url in part.release(start))
        return changes

    async def _write(self, partition: int, changes: list[Change]) -> None:
        """Retrying all the changes, in order, keeps the changelog's last record per key right (and the
        watermark before the deletions) whatever part of a failed attempt reached the broker."""
        await until_done(lambda: self.table.write(partition, changes), "changelog write")

"""The worker's commit protocol: the one place where a partition's work becomes durable, visible and acked.

Everything the engine decides for a partition waits in memory (the batch's states, dead letters, too-late
clicks, late re-emissions, a moved watermark) until :meth:`Committer.commit` runs its five steps, in this
order. The engine calls it when a batch is large or old, before the watermark is used past a close or
release point, on revoke, on stop, and for idle partitions; nothing else writes the table, produces a
window record or acks an event.
"""

from __future__ import annotations

from collections.abc import Sequence

from streams.metrics import RunStats, StreamsMetrics
from streams.outputs import Outputs
from streams.partition import PartitionIndex
from streams.ports import Ack, Change, Output, WindowTable
from streams.retry import until_done
from streams.windows import Watermark, WindowRules, WindowState, watermark_key, window_key

STATE_CACHE_MAX = 50_000  # states kept decoded after their write, per partition (hot keys skip the store)


class Committer:
    def __init__(
        self,
        rules: WindowRules,
        table: WindowTable,
        outputs: Outputs,
        ack: Ack,
        metrics: StreamsMetrics,
        stats: RunStats,
        live: bool = False,
    ) -> None:
        self.rules = rules
        self.live = live
        self.table = table
        self.outputs = outputs
        self.ack = ack
        self.metrics = metrics
        self.stats = stats

    async def commit(self, part: PartitionIndex, closing_only: bool = False) -> None:
        """Makes the partition's pending work durable, then visible, then acked.

        ``closing_only`` (the watermark just reached a close or release point): step 2 writes only the
        states of the windows the watermark has closed, step 3 emits only the closing ones, and step 4
        acks nothing; the states of open windows wait for the next full commit (so none of them is
        written twice because a watermark moved).

        1. Deliver the batch's dead letters and too-late clicks. (At least once: a crash before step 2
           proves their offsets handled sends them again; they carry their source offset.)
        2. Write the table: each touched key's new state; then, if the watermark reached a close or
           release point or more windows were emitted, the watermark record ``[watermark, last offset,
           emitted horizon]``; then the deletions of the windows it released. Wait until the changelog has
           every record. From here on, what the watermark decided survives any crash: a closed window
           never re-opens, and each revision of a window has one count for good.
        3. Deliver the window records the durable table now implies: every window the persisted watermark
           closed and that was not emitted yet, and the new revision of each window corrected by late
           clicks. (A crash before this ends re-emits them after the restart: the closed windows from the
           emitted horizon, the corrected ones when their redelivered clicks meet a revision above 0.)
        4. Ack the batch's events: Faust may now commit their offsets.
        5. Move the emitted horizon (persisted by the next commit; until then a restart emits these
           windows again, with the same revisions and counts).
        """
        await self._deliver(part.outbox)  # 1
        part.outbox = []
        states = self._closing_states(part) if closing_only else part.pending  # 2
        changes = self._changes(part, states)
        if changes:
            await until_done(lambda: self.table.write(part.partition, changes), "changelog write")
        self._note_written(part, states, changes)
        await self._emit_closed(part)  # 3
        if not closing_only:
            await self._emit_corrected(part)
            if part.held:  # 4
                self.ack(part.held)
                part.held = []
        part.emitted_ms = max(part.emitted_ms, part.persisted_ms)  # 5

    async def commit_all(self, parts: Sequence[PartitionIndex]) -> None:
        for part in parts:
            if part.needs_commit():
                await self.commit(part)

    def state_of(self, part: PartitionIndex, key: str, start: int, url: str) -> WindowState | None:
        """The key's state: the batch's, the one last written (cached), or the table's. A key the index
        does not know is not in the table (the index holds every key of the partition's table)."""
        state = part.pending.get(key) or part.written.get(key)
        if state is not None or not part.knows(start, url):
            return state
        found = self.table.read(part.partition, key)
        return None if found is None else WindowState.decode(found)

    # ---- the steps ----------------------------------------------------------------------------------------

    def _closing_states(self, part: PartitionIndex) -> dict[str, WindowState]:
        """The states whose route the new watermark changes must be durable no later than it: those of
        every window it closed (open ones keep their route, and wait for the next full commit)."""
        return part.pending_closed(self.rules)

    def _changes(self, part: PartitionIndex, states: dict[str, WindowState]) -> list[Change]:
        """Step 2's records, in the order they must reach the changelog."""
        changes: list[Change] = [(key, state.encode()) for key, state in states.items()]
        if part.must_persist():
            # Never below what the table already proved handled: the deletions below may remove the
            # states that proved it, and redelivered clicks must still be known as handled.
            last = max(part.handled_offset, -1 if part.last_offset is None else part.last_offset)
            mark = Watermark(part.watermark_ms, last, part.emitted_ms)
            changes.append((watermark_key(part.partition), mark.encode()))
            part.mark_persisted(self.rules)
        for start in part.due_to_release(self.rules):
            changes.extend((window_key(start, url), None) for url in part.release(start))
        return changes

    def _note_written(
        self, part: PartitionIndex, states: dict[str, WindowState], changes: list[Change]
    ) -> None:
        self.metrics.changelog_writes.inc(len(changes))
        self.stats.changelog_writes += len(changes)
        if self.live:
            part.live_changed.update(states)
        part.note_written(states, changes, STATE_CACHE_MAX)

    async def _emit_closed(self, part: PartitionIndex) -> None:
        for start in part.due_to_close(self.rules):
            outputs = []
            for url in sorted(part.open.get(start, ())):
                key = window_key(start, url)
                state = self.state_of(part, key, start, url)
                if state is not None:
                    outputs.append(self.outputs.window(key, start, url, state))
            await self.outputs.emit(outputs)
            part.mark_closed(start)
            self.metrics.windows_closed.inc(len(outputs))

    async def _emit_corrected(self, part: PartitionIndex) -> None:
        if not part.reemit:
            return
        outputs = []
        for key, (start, url) in part.reemit.items():
            state = self.state_of(part, key, start, url)
            if state is not None:
                outputs.append(self.outputs.window(key, start, url, state))
        await self.outputs.emit(outputs)
        self.metrics.windows_reemitted.inc(len(outputs))
        part.reemit = {}
        part.revised = set()

    async def _deliver(self, outputs: list[Output]) -> None:
        if outputs:
            await self.outputs.deliver(outputs)

"""The counting engine: one click at a time into the table, windows closed by per-partition watermarks.

Independent of Faust: it sees the table, the output topics, the acks and the consumer through the types of
``streams/ports.py``. Events come in per partition, in offset order, a fetched batch at a time
(``handle_batch``): one lock acquisition per batch, and no await per event unless the batch must be
committed.

Per event of partition ``p`` at offset ``o``:

1. Offsets are contiguous: an event past a gap is dropped unacked and the consumer sent back (a gap that
   cannot be healed stops the worker); an event already handled is dropped.
2. Classify the click against ``p``'s watermark: bad record or future timestamp → a dead letter; beyond
   late retention → ``clicks-late``; open window → counted; closed window within retention → counted
   under the window's next revision, to be re-emitted. Outputs wait for the partition's next commit.
3. Redelivery after a crash: a key's state holds the highest offset applied to it, and a click at or below
   it is not counted again (a redelivered late click re-emits the stored state, in case its emission was
   lost). Dead letters and too-late clicks are not repeated at or below ``handled_offset``, the highest
   offset any record of the partition proves processed.
4. Move the watermark to the click's time (never backwards). When it reaches the next point where a
   window closes or is released, the partition is committed at once (``streams/commit.py``): the
   watermark is persisted before anything depends on it, then what it closed is emitted.

New states stay in the partition's batch and the events are held, not acked, until the commit; see
``Committer.commit`` for the order in which work becomes durable, visible and acked.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from clickmuncher.records import RecordError, click_fields
from streams.commit import Committer
from streams.metrics import RunStats, StreamsMetrics
from streams.outputs import Outputs
from streams.partition import PartitionIndex
from streams.ports import (
    Ack,
    CaughtUp,
    ConsumerHooks,
    Deliver,
    Incoming,
    LiveSink,
    Output,
    OutputTopics,
    WindowTable,
)
from streams.windows import (
    FLOOR_PREFIX,
    WATERMARK_PREFIX,
    Route,
    Watermark,
    WindowRules,
    WindowState,
    apply_click,
    route,
    split_key,
    window_key,
)

log = logging.getLogger("streams")

BATCH_MAX = 20000
BATCH_MAX_AGE_S = 1.0
SEEK_RETRY_S = 5.0
STALL_S = 5.0  # no event for this long while the consumer's position is ahead: records were lost on the way
MAX_SEEKS = 3  # then a gap is either below the log start (deleted by retention) or fatal
LIVE_CHUNK = 5000  # live records built between two yields to the event loop
# A partition whose next close is overdue by the wall clock (its boundary more than ``idle_s`` before the
# idle watermark: a backlog of old clicks just drained) is checked once it has been quiet this long,
# without waiting ``idle_s`` of silence.
OVERDUE_QUIET_S = 0.2


class OffsetGapError(RuntimeError):
    """Offsets of a partition never arrived although the broker still holds them: the worker must stop
    (and be restarted) rather than commit past them."""


@dataclass(slots=True)
class _Tally:
    """What one call of ``handle_batch`` counted, for the metrics (incremented once per batch)."""

    events: int = 0
    redelivered: int = 0
    opened: int = 0
    last_offset: int = -1


class Engine:
    def __init__(
        self,
        rules: WindowRules,
        topics: OutputTopics,
        table: WindowTable,
        deliver: Deliver,
        metrics: StreamsMetrics,
        ack: Ack,
        idle_s: float = 2.0,
        consumer: ConsumerHooks | None = None,
        live: LiveSink | None = None,
        live_every_s: float = 5.0,
    ) -> None:
        self.rules = rules
        self.live = live
        self.live_every_s = live_every_s
        self._live_mono = time.monotonic()
        self.table = table
        self.metrics = metrics
        self.idle_s = idle_s
        self.consumer = consumer
        self.parts: dict[int, PartitionIndex] = {}
        self.stats = RunStats()
        self.outputs = Outputs(rules, topics, deliver)
        live_on = live is not None
        self.committer = Committer(rules, table, self.outputs, ack, metrics, self.stats, live=live_on)
        self.stopping = False
        self.stopped_cleanly = False  # every partition committed by :meth:`stop`
        # Serialises the fetcher, the idle timer and rebalance callbacks: one partition is never committed
        # twice at once, and a revoke waits for an in-flight commit to finish.
        self.lock = asyncio.Lock()

    # ---- ownership --------------------------------------------------------------------------------------

    async def forget(self, partitions: Iterable[int]) -> None:
        """On revoke: commit, then forget the partitions' in-memory state: nothing more is emitted."""
        async with self.lock:
            revoked = [self.parts.pop(p) for p in partitions if p in self.parts]
            await self.committer.commit_all(revoked)
            for part in revoked:
                self.metrics.windows_open.labels(str(part.partition)).set(0)

    async def load(self, partitions: Iterable[int]) -> None:
        """After table recovery: rebuild the index of each newly owned partition from the table, and emit
        the windows its persisted watermark closed that may not have been delivered before."""
        async with self.lock:
            for part in self._load(partitions):
                if part.due_to_close(self.rules) or part.reemit:
                    await self.committer.commit(part)

    async def stop(self) -> None:
        """On SIGTERM/SIGINT, once fetching stopped: commit every partition; later batches are dropped
        unacked (they are fetched again by the next owner)."""
        async with self.lock:
            self.stopping = True
            await self.committer.commit_all(list(self.parts.values()))
            self.stopped_cleanly = True

    def _load(self, partitions: Iterable[int]) -> list[PartitionIndex]:
        fresh = {p: PartitionIndex(p) for p in partitions if p not in self.parts}
        if not fresh:
            return []
        marks: dict[int, Watermark] = {}
        windows: list[tuple[int, str, WindowState]] = []
        for key, raw in self.table.scan():
            try:
                self._read_entry(key, raw, fresh, marks, windows)
            except (ValueError, TypeError) as e:
                self.metrics.dead.labels("bad-state").inc()
                log.error("table entry %.120r skipped: %s", key, e)
        for p, part in fresh.items():
            mark = marks.get(p, Watermark(-1, -1, -1))
            part.restore(mark.watermark_ms, mark.emitted_ms, self.rules)
            part.handled_offset = max(part.handled_offset, mark.offset)
        for start, url, state in windows:
            part = fresh[state.partition]
            part.handled_offset = max(part.handled_offset, state.last_offset)
            # Windows the watermark closed beyond the emitted horizon stay open: the load emits them. A
            # released window whose keys are still there may hold a late revision never emitted (its
            # deletion waits for that): emitted again too.
            part.add(start, url, closed=self.rules.closes_at(start) <= part.emitted_ms)
            if self.rules.is_released(start, part.persisted_ms):
                part.reemit[window_key(start, url)] = (start, url)
        for p, part in fresh.items():
            log.info(
                "partition %d loaded: watermark_ms=%d emitted_ms=%d handled_offset=%d open=%d",
                p,
                part.watermark_ms,
                part.emitted_ms,
                part.handled_offset,
                part.open_count(),
            )
        self.parts.update(fresh)
        return list(fresh.values())

    def _read_entry(
        self,
        key: Any,
        raw: Any,
        fresh: dict[int, PartitionIndex],
        marks: dict[int, Watermark],
        windows: list[tuple[int, str, WindowState]],
    ) -> None:
        """One table entry into the load; raises ValueError or TypeError for an entry it cannot read."""
        if not isinstance(key, str):
            raise TypeError("key is not a string")
        if key.startswith(FLOOR_PREFIX):
            part = fresh.get(int(key[len(FLOOR_PREFIX) :]))
            if part is not None:
                part.floor_ms = int(raw)
        elif key.startswith(WATERMARK_PREFIX):
            p = int(key[len(WATERMARK_PREFIX) :])
            if p in fresh:
                marks[p] = Watermark.decode(raw)
        else:
            state = WindowState.decode(raw)
            if state.partition in fresh:
                start, url = split_key(key)
                windows.append((start, url, state))

    def _part(self, partition: int) -> PartitionIndex:
        if partition not in self.parts:
            self._load([partition])
        return self.parts[partition]

    # ---- per event --------------------------------------------------------------------------------------

    async def handle(self, event: Any, partition: int, offset: int, raw: bytes | None, now_ms: int) -> None:
        """One event; see :meth:`handle_batch`."""
        await self.handle_batch(partition, [(event, offset, raw)], now_ms)

    async def handle_batch(self, partition: int, events: Sequence[Incoming], now_ms: int) -> None:
        """Processes one partition's events in offset order (see the module docstring).

        Each event is held until its partition is committed: at once when the watermark reaches a close or
        release point, else when the batch is large or old (checked after every call and by the timer).
        """
        async with self.lock:
            if self.stopping:
                self._discard(event for event, _offset, _raw in events)
                return
            part = self._part(partition)
            tally = _Tally()
            handled_offset = part.handled_offset
            for event, offset, raw in events:
                if offset != part.next_offset and not await self._in_sequence(part, offset):
                    self._discard([event])  # not acked: delivered again, in order
                    continue
                part.next_offset = offset + 1
                if part.seeking or part.seek_attempts:
                    part.seeking = False
                    part.seek_attempts = 0
                if not part.held:
                    part.batch_started_mono = time.monotonic()
                part.held.append(event)
                tally.events += 1
                redelivered = offset <= handled_offset
                tally.redelivered += redelivered
                ts_ms = self._apply(part, offset, raw, now_ms, redelivered, tally)
                tally.last_offset = offset
                if ts_ms is not None and ts_ms > part.watermark_ms:
                    part.watermark_ms = ts_ms
                    if ts_ms >= part.boundary_ms:
                        part.last_offset = offset
                        await self.committer.commit(part, closing_only=True)
            self._note(part, tally)
            if len(part.held) >= BATCH_MAX:
                await self.committer.commit(part)
            await self._commit_due()

    def _note(self, part: PartitionIndex, tally: _Tally) -> None:
        if not tally.events:
            return
        part.note_event(tally.last_offset)
        self.stats.note_events(tally.events)
        self.metrics.events.inc(tally.events)
        if tally.redelivered:
            self.metrics.redelivered.inc(tally.redelivered)
        if tally.opened:
            self.metrics.windows_opened.inc(tally.opened)

    def _discard(self, events: Iterable[Any]) -> None:
        if self.consumer is not None:
            for event in events:
                self.consumer.discard(event)

    async def _in_sequence(self, part: PartitionIndex, offset: int) -> bool:
        """Whether this is the next offset of the partition; on a gap, seeks back to the missing offset.

        Faust can skip fetched messages after an in-process rebalance (its read offset stays ahead of the
        committed offset it seeks to). Counting a later click first would make the per-key offset dedupe
        drop the skipped ones, so a gap is never crossed: the consumer is sent back and the events beyond
        the gap are dropped unacked (they come again after the seek). Before the first event the expected
        offset is the committed one, or the start of the log when nothing was committed.
        """
        if self.consumer is None:
            return True
        expected = part.next_offset
        if expected is None:
            expected = await self._start_offset(part.partition)
        if offset == expected:
            return True
        part.next_offset = expected  # also what a repeated seek goes back to
        if offset < expected:
            return False  # handled already
        if part.seek_attempts >= MAX_SEEKS:
            return await self._give_up_on_gap(part, expected, offset)
        if not part.seeking:
            log.warning("partition %d: offset %d after %d: seek back", part.partition, offset, expected - 1)
            self.metrics.gaps.inc()
            await self._seek(part, expected)
        return False

    async def _start_offset(self, partition: int) -> int:
        assert self.consumer is not None
        # Right after an assignment the consumer may not know the committed offset yet: asked of the broker,
        # else the first event (at the committed offset) looks like a gap and the partition is read again
        # from its log start (exact, by the per-key offsets, but all that work repeated).
        committed = await self.consumer.group_committed(partition)
        if committed is not None:
            return committed
        earliest = await self.consumer.earliest(partition)
        return 0 if earliest is None else earliest

    async def _give_up_on_gap(self, part: PartitionIndex, expected: int, offset: int) -> bool:
        """After repeated seeks: offsets below the log start were deleted by retention (loud, then
        continue); offsets the broker still holds but never delivers stop the worker."""
        assert self.consumer is not None
        earliest = await self.consumer.earliest(part.partition)
        if earliest is not None and offset <= earliest:
            self.metrics.offsets_lost.inc(offset - expected)
            log.error(
                "partition %d: offsets %d-%d were deleted by retention before they were counted",
                part.partition,
                expected,
                offset - 1,
            )
            return True
        raise OffsetGapError(
            f"partition {part.partition}: offsets {expected}-{offset - 1} never arrived after "
            f"{MAX_SEEKS} seeks (log start {earliest})"
        )

    async def _seek(self, part: PartitionIndex, offset: int) -> None:
        assert self.consumer is not None
        part.seeking = True
        part.seek_mono = time.monotonic()
        part.seek_attempts += 1
        await self.consumer.seek(part.partition, offset)

    async def _retry_seeks(self) -> None:
        """A seek whose records did not come back in time is repeated (no event may arrive to do it)."""
        async with self.lock:
            for part in self.parts.values():
                stale = part.seeking and time.monotonic() - part.seek_mono > SEEK_RETRY_S
                if stale and self.consumer is not None and part.next_offset is not None:
                    log.warning("partition %d: seeking to %d again", part.partition, part.next_offset)
                    await self._seek(part, part.next_offset)

    async def _recover_stalls(self) -> None:
        """Records the consumer fetched but the engine never saw are fetched again.

        Faust's agent path lost such records (its stream queues are emptied when flow resumes after a
        rebalance); the batch drain does not use those queues, and this stays as the net under any other
        such path: a partition quiet for ``STALL_S`` whose consumer position is ahead of the next offset
        the engine expects is sent back to that offset (0 when nothing is known: an offset below the log
        start is reset to the earliest by the consumer). Only while the whole worker is quiet: under a
        backlog the fetcher can hold a partition's records for seconds while it serves the others.
        """
        if self.consumer is None or time.monotonic() - self.stats.last_mono < STALL_S:
            return
        for p, part in list(self.parts.items()):
            if part.held or part.idle_for_s() < STALL_S:
                continue
            if part.seeking and time.monotonic() - part.seek_mono < SEEK_RETRY_S:
                continue
            expected = part.next_offset if part.next_offset is not None else self.consumer.committed(p)
            position = await self.consumer.position(p)
            if position is None or position <= (expected or 0):
                continue
            async with self.lock:
                if self.parts.get(p) is not part or part.held or part.idle_for_s() < STALL_S:
                    continue  # revoked, or events came meanwhile
                log.warning(
                    "partition %d: consumer at %d but nothing after %s arrived", p, position, expected
                )
                self.metrics.gaps.inc()
                await self._seek(part, expected or 0)

    async def flush_all(self) -> None:
        """Commits every partition."""
        async with self.lock:
            await self.committer.commit_all(list(self.parts.values()))

    async def _commit_due(self) -> None:
        """Commits partitions whose batch is old, and those with nothing held but something to persist."""
        for part in list(self.parts.values()):
            old = part.batch_age_s() >= BATCH_MAX_AGE_S
            if old or (not part.held and part.needs_commit()):
                await self.committer.commit(part)

    def _apply(
        self,
        part: PartitionIndex,
        offset: int,
        raw: bytes | None,
        now_ms: int,
        redelivered: bool,
        tally: _Tally,
    ) -> int | None:
        """Steps 2 and 3; returns the timestamp that may move the watermark, if any. Not a coroutine (it
        runs once per click): outputs wait in the partition's outbox for its next commit."""
        try:
            url, ts_ms, cls, vid = click_fields(raw)
        except RecordError as e:
            self._dead(part, offset, raw, str(e), "malformed", redelivered)
            return None
        rules = self.rules
        start = rules.start_of(ts_ms)
        if start < part.floor_ms:
            self.metrics.replay_skipped.inc()
            return None
        where = route(rules, ts_ms, part.watermark_ms, now_ms)
        if where is Route.FUTURE:
            self._dead(part, offset, raw, "timestamp too far in the future", "future", redelivered)
            return None
        if where is Route.TOO_LATE:
            if not redelivered:
                self.metrics.late.inc()
                part.outbox.append(self.outputs.late(url, raw, part.partition, offset))
            return ts_ms
        key = window_key(start, url)
        state = self.committer.state_of(part, key, start, url)
        late = where is Route.LATE
        new = apply_click(state, offset, part.partition, late and key not in part.revised, cls, vid)
        if new is not None:
            part.pending[key] = new
            if state is None:
                tally.opened += 1
                part.add(start, url, closed=late)
            if late:
                part.revised.add(key)
        if late:  # also when redelivered: the stored revision is emitted again in case it was lost
            part.reemit[key] = (start, url)
        return ts_ms

    def _dead(
        self, part: PartitionIndex, offset: int, raw: bytes | None, reason: str, kind: str, redelivered: bool
    ) -> None:
        if redelivered:
            return
        self.metrics.dead.labels(kind).inc()
        log.debug("dead-lettering click %d/%d: %s", part.partition, offset, reason)
        part.outbox.append(self.outputs.dead(raw, reason, part.partition, offset))

    # ---- idle partitions --------------------------------------------------------------------------------

    async def tick(self, now_ms: int, caught_up: CaughtUp, rebalancing: bool = False) -> None:
        """Commits what is due (also while rebalancing: a revoke waits for the acks); then moves idle,
        fully caught-up partitions' watermarks to ``now - grace`` and commits them (which persists the
        watermark, then emits what it closed). Idle: quiet for ``idle_s``, or for ``OVERDUE_QUIET_S``
        when the next close is more than ``idle_s`` overdue by the wall clock (a drained backlog)."""
        async with self.lock:
            await self._commit_due()
        if rebalancing or self.stopping:
            return
        if self.live is not None and time.monotonic() - self._live_mono >= self.live_every_s:
            self._live_mono = time.monotonic()
            await self.publish_live()
        await self._retry_seeks()
        await self._recover_stalls()
        target = self.rules.idle_watermark(now_ms)
        idle: dict[int, PartitionIndex] = {}
        for p, part in list(self.parts.items()):
            self.metrics.windows_open.labels(str(p)).set(part.open_count())
            if part.watermark_ms >= 0:
                self.metrics.watermark_lag.labels(str(p)).set((now_ms - part.watermark_ms) / 1000)
            if self._idle_due(part, target):
                idle[p] = part
        if not idle:
            return
        # One question to the broker for all of them (it is slow when the consumer is busy fetching).
        asked = {p: self._next_offset(part) for p, part in idle.items()}
        ready = await caught_up(asked)
        for p in sorted(ready):
            async with self.lock:
                part = idle[p]
                if self.parts.get(p) is not part or self._next_offset(part) != asked[p] or self.stopping:
                    continue  # revoked or stopped meanwhile, or events came
                part.watermark_ms = max(part.watermark_ms, target)
                await self.committer.commit(part)

    def _idle_due(self, part: PartitionIndex, target_ms: int) -> bool:
        """Whether the idle check may move this partition to ``target_ms``: something closes on the way,
        and the partition has been quiet for ``idle_s``, or for a moment when that close is long overdue."""
        if target_ms < part.boundary_ms:
            return False
        quiet_s = part.idle_for_s()
        overdue = target_ms - part.boundary_ms >= self.idle_s * 1000
        return quiet_s >= self.idle_s or (overdue and quiet_s >= OVERDUE_QUIET_S)

    async def publish_live(self) -> int:
        """Sends the counts of open windows written since the last publication to the live topic; returns
        how many. Not awaited by the broker and built outside the lock, a chunk at a time, so it never
        delays counting or closing; it reads what the commits wrote, so ``click-windows`` is untouched."""
        if self.live is None:
            return 0
        async with self.lock:
            changed = [(part, part.live_changed) for part in self.parts.values() if part.live_changed]
            for part, _states in changed:
                part.live_changed = {}
        sent = 0
        for part, states in changed:
            records: list[Output] = []
            for key, state in states.items():
                start, url = split_key(key)
                if start in part.open and self.parts.get(part.partition) is part:
                    records.append(self.outputs.live(key, start, url, state))
                if len(records) >= LIVE_CHUNK:
                    sent += self._send_live(records)
                    records = []
                    await asyncio.sleep(0)
            sent += self._send_live(records)
        return sent

    def _send_live(self, records: list[Output]) -> int:
        if records and self.live is not None:
            self.live(records)
            self.metrics.live_published.inc(len(records))
        return len(records)

    def _next_offset(self, part: PartitionIndex) -> int | None:
        """The next offset the engine has to handle: everything below it is counted (None: nothing is
        known, neither a handled event since the load nor a committed offset)."""
        if part.next_offset is not None:
            return part.next_offset
        return None if self.consumer is None else self.consumer.committed(part.partition)

"""The counting engine: one click at a time into the table, windows closed by per-partition watermarks.

Independent of Faust: it sees the table as a :class:`~streams.ports.WindowTable` (read a key of a
partition, write a batch of changes of one partition and wait until its changelog records are acknowledged),
the output topics as ``deliver`` (produce records and wait for their acknowledgement) and ``ack(events)``
(see ``streams/ports.py``). Step 4 lives in ``streams/writer.py``, the output records in
``streams/outputs.py``.

Events come in per partition, in offset order, a fetched batch at a time (``handle_batch``): one lock
acquisition per batch, and no await per event unless an output must be delivered.

The protocol, per event of partition ``p`` at offset ``o``:

1. Classify the click against ``p``'s watermark: bad record or future timestamp → ``clicks-dead``;
   beyond late retention → ``clicks-late``; otherwise count it (late: ``revision + 1`` and re-emit).
   Each output is delivered (awaited) before the next event, so any table record of a later event
   proves it was written.
2. Redelivery after a crash: a key's record holds the highest offset applied to it, and a click at or
   below it is not counted again (per key, so it holds whatever prefix of a batch reached the changelog).
   Dead-letter and late outputs are not repeated for offsets at or below ``handled_offset``, the highest
   offset any record of the partition proves processed. A redelivered click still moves the watermark.
3. Move the watermark to the click's time (never backwards), then close every window it passed: emit one
   ClickWindow per URL and wait for delivery.
4. New states stay in the partition's batch; the event is held, not acked. A batch is flushed when it is
   large or old, on revoke and on stop (``BatchWriter.flush``): write each touched key once; if something
   closed, persist the watermark (one write carrying the batch's last offset) and only then delete the keys
   whose late retention the persisted watermark has passed; wait until the broker acknowledged all these
   changelog records; then ack the batch's events. Faust commits an offset only once acked, so no commit
   passes a click whose changelog record is not durable.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from clickmuncher.records import RecordError, click_fields
from streams.metrics import RunStats, StreamsMetrics
from streams.outputs import Outputs
from streams.partition import PartitionIndex
from streams.ports import Ack, CaughtUp, ConsumerHooks, Deliver, Incoming, Output, OutputTopics, WindowTable
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
from streams.writer import BatchWriter

log = logging.getLogger("streams")

BATCH_MAX = 20000
BATCH_MAX_AGE_S = 1.0
SEEK_RETRY_S = 5.0
STALL_S = 5.0  # no event for this long while the consumer's position is ahead: records were lost on the way
MAX_SEEKS = 3  # then the missing offsets are taken as deleted by retention


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
    ) -> None:
        self.rules = rules
        self.table = table
        self.metrics = metrics
        self.idle_s = idle_s
        self.consumer = consumer
        self.parts: dict[int, PartitionIndex] = {}
        self.stats = RunStats()
        self.outputs = Outputs(rules, topics, deliver)
        self.writer = BatchWriter(rules, table, ack, metrics, self.stats)
        self._outbox: list[Output] = []  # what the event being handled must deliver before the next
        # Serialises the agent, the idle timer and rebalance callbacks: one partition is never closed twice
        # at once, and a revoke waits for an in-flight emission to finish.
        self.lock = asyncio.Lock()

    # ---- ownership --------------------------------------------------------------------------------------

    async def forget(self, partitions: Iterable[int]) -> None:
        """On revoke: flush, then forget the partitions' in-memory state: nothing more is emitted for them."""
        async with self.lock:
            revoked = [self.parts.pop(p) for p in partitions if p in self.parts]
            await self.writer.flush(revoked)
            for part in revoked:
                self.metrics.windows_open.labels(str(part.partition)).set(0)

    async def load(self, partitions: Iterable[int]) -> None:
        """After table recovery: rebuild the index of each newly owned partition from the table."""
        async with self.lock:
            self._load(partitions)

    def _load(self, partitions: Iterable[int]) -> None:
        fresh = {p: PartitionIndex(p) for p in partitions if p not in self.parts}
        if not fresh:
            return
        windows: list[tuple[str, WindowState]] = []
        for key, raw in self.table.scan():
            if key.startswith(FLOOR_PREFIX):
                floor = fresh.get(int(key[len(FLOOR_PREFIX) :]))
                if floor is not None:
                    floor.floor_ms = int(raw)
                continue
            if key.startswith(WATERMARK_PREFIX):
                part = fresh.get(int(key[len(WATERMARK_PREFIX) :]))
                if part is not None:
                    mark = Watermark.decode(raw)
                    part.watermark_ms = part.persisted_ms = mark.watermark_ms
                    part.handled_offset = max(part.handled_offset, mark.offset)
                continue
            state = WindowState.decode(raw)
            if state.partition in fresh:
                windows.append((key, state))
        for key, state in windows:
            part = fresh[state.partition]
            start, url = split_key(key)
            part.handled_offset = max(part.handled_offset, state.last_offset)
            part.add(start, url, closed=self.rules.is_closed(start, part.persisted_ms))
        for p, part in fresh.items():
            log.info(
                "partition %d loaded: watermark_ms=%d handled_offset=%d open=%d",
                p,
                part.watermark_ms,
                part.handled_offset,
                part.open_count(),
            )
        self.parts.update(fresh)

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

        Each event is held until its batch is written. A batch is flushed once it is large, and every
        partition's old batch after each call, so no per-event clock check is needed.
        """
        async with self.lock:
            part = self._part(partition)
            tally = _Tally()
            rules = self.rules
            handled_offset = part.handled_offset
            held = part.held
            if not held:
                part.batch_started_mono = time.monotonic()
            for event, offset, raw in events:
                if offset != part.next_offset and not await self._in_sequence(part, offset):
                    if self.consumer is not None:
                        self.consumer.discard(event)  # not acked: Faust delivers it again, in order
                    continue
                part.next_offset = offset + 1
                if part.seeking or part.seek_attempts:
                    part.seeking = False
                    part.seek_attempts = 0
                held.append(event)
                tally.events += 1
                redelivered = offset <= handled_offset
                tally.redelivered += redelivered
                ts_ms = self._apply(part, offset, raw, now_ms, redelivered, tally)
                if self._outbox:
                    await self._send_outbox()
                if ts_ms is not None and part.advance(ts_ms) and part.any_due(rules):
                    await self._close_due(part)
                tally.last_offset = offset
            if tally.events:
                part.note_event(tally.last_offset)
                self.stats.note_events(tally.events)
                self.metrics.events.inc(tally.events)
                if tally.redelivered:
                    self.metrics.redelivered.inc(tally.redelivered)
                if tally.opened:
                    self.metrics.windows_opened.inc(tally.opened)
            if len(held) >= BATCH_MAX:
                await self.writer.flush([part])
            await self._flush_old()

    async def _in_sequence(self, part: PartitionIndex, offset: int) -> bool:
        """Whether this is the next offset of the partition; on a gap, seeks back to the missing offset.

        Faust can skip fetched messages after an in-process rebalance (its read offset stays ahead of the
        committed offset it seeks to). Counting a later click first would make the per-key offset dedupe
        drop the skipped ones, so a gap is never crossed: the consumer is sent back and the events beyond
        the gap are dropped unacked (they come again after the seek).
        """
        expected = part.next_offset
        if expected is None and self.consumer is not None:
            expected = self.consumer.committed(part.partition)
        if expected is not None and offset > expected and part.seek_attempts >= MAX_SEEKS:
            log.error(
                "partition %d: offsets %d-%d never came back (deleted by retention?): continuing at %d",
                part.partition,
                expected,
                offset - 1,
                offset,
            )
            expected = offset
        if expected is None or offset == expected:
            return True
        part.next_offset = expected  # also what a repeated seek goes back to
        if offset > expected and not part.seeking and self.consumer is not None:
            log.warning("partition %d: offset %d after %d: seek back", part.partition, offset, expected - 1)
            self.metrics.gaps.inc()
            await self._seek(part, expected)
        return False

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
        rebalance; seen after ``replay streams``: every click fetched during recovery, none counted); the
        batch drain does not use those queues, and this stays as the net under any other such path. With
        more clicks arriving, the next one shows the gap and ``_in_sequence`` seeks back; on a partition
        that gets no new clicks nothing would. So a partition quiet for ``STALL_S`` whose consumer position
        is ahead of the next offset the engine expects is sent back to that offset (0 when nothing is
        known: Faust reports a committed offset of 0 as none, and an offset below the log start is reset to
        the earliest by the consumer).

        Only while the whole worker is quiet: under a backlog, the fetcher can hold a partition's records
        for seconds while it serves the others, and the consumer's position counts them; sending it back
        then only made it fetch them twice (seen in the 1M-click benchmark).
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
                    "partition %d: consumer at %d but nothing after %s arrived: seek back",
                    p,
                    position,
                    expected,
                )
                self.metrics.gaps.inc()
                await self._seek(part, expected or 0)

    async def flush_all(self) -> None:
        """Writes every batch and acks its events."""
        async with self.lock:
            await self.writer.flush(list(self.parts.values()))

    async def _flush_old(self) -> None:
        await self.writer.flush(
            [part for part in self.parts.values() if part.batch_age_s() >= BATCH_MAX_AGE_S]
        )

    def _apply(
        self,
        part: PartitionIndex,
        offset: int,
        raw: bytes | None,
        now_ms: int,
        redelivered: bool,
        tally: _Tally,
    ) -> int | None:
        """Step 1 and 2; returns the timestamp that may move the watermark, if any.

        Not a coroutine (it runs once per click): an output it needs is put in ``_outbox``, which the
        caller delivers before the next event.
        """
        try:
            url, ts_ms = click_fields(raw)
        except RecordError as e:
            self._dead(raw, str(e), "malformed", redelivered)
            return None
        rules = self.rules
        start = rules.start_of(ts_ms)
        if start < part.floor_ms:
            self.metrics.replay_skipped.inc()
            return None
        where = route(rules, ts_ms, part.watermark_ms, now_ms)
        if where is Route.FUTURE:
            self._dead(raw, "timestamp too far in the future", "future", redelivered)
            return None
        if where is Route.TOO_LATE:
            if not redelivered:
                self.metrics.late.inc()
                self._outbox.append(self.outputs.late(url, raw))
            return ts_ms
        key = window_key(start, url)
        state = self._state(part, key, start, url)
        late = where is Route.LATE
        new = apply_click(state, offset, part.partition, late=late)
        if new is None:  # counted before a restart: this key's record proves it
            return ts_ms
        part.pending[key] = new
        if state is None:
            tally.opened += 1
            part.add(start, url, closed=late)
        if late:
            self.metrics.windows_reemitted.inc()
            self._outbox.append(self.outputs.window(key, start, url, new))
        return ts_ms

    def _dead(self, raw: bytes | None, reason: str, kind: str, redelivered: bool) -> None:
        if redelivered:
            return
        self.metrics.dead.labels(kind).inc()
        log.warning("dead-lettering a click: %s", reason)
        self._outbox.append(self.outputs.dead(raw, reason))

    async def _send_outbox(self) -> None:
        outputs, self._outbox = self._outbox, []
        await self.outputs.deliver(outputs)

    # ---- closing ----------------------------------------------------------------------------------------

    async def _close_due(self, part: PartitionIndex) -> None:
        """Step 3: emits every window the in-memory watermark passed, and waits for delivery."""
        for start in part.due_to_close(self.rules):
            outputs = []
            for url in sorted(part.open.get(start, ())):
                key = window_key(start, url)
                state = self._state(part, key, start, url)
                if state is not None:
                    outputs.append(self.outputs.window(key, start, url, state))
            await self.outputs.emit(outputs)
            part.mark_closed(start)
            self.metrics.windows_closed.inc(len(outputs))

    def _state(self, part: PartitionIndex, key: str, start: int, url: str) -> WindowState | None:
        """The key's state: the batch's, the one last written (cached), or the table's. A key the index
        does not know is not in the table (the index holds every key of the partition's table)."""
        state = part.pending.get(key) or part.written.get(key)
        if state is not None or not part.knows(start, url):
            return state
        found = self.table.read(part.partition, key)
        return None if found is None else WindowState.decode(found)

    # ---- idle partitions --------------------------------------------------------------------------------

    async def tick(self, now_ms: int, caught_up: CaughtUp, rebalancing: bool = False) -> None:
        """Flushes old batches (also while rebalancing: a revoke waits for their acks); then moves idle,
        fully caught-up partitions' watermarks to ``now - grace`` and emits what closed.

        The moved watermark is persisted with the partition's next batch.
        """
        async with self.lock:
            await self._flush_old()
        if rebalancing:
            return
        await self._retry_seeks()
        await self._recover_stalls()
        target = self.rules.idle_watermark(now_ms)
        idle: dict[int, PartitionIndex] = {}
        for p, part in list(self.parts.items()):
            self.metrics.windows_open.labels(str(p)).set(part.open_count())
            if part.watermark_ms >= 0:
                self.metrics.watermark_lag.labels(str(p)).set((now_ms - part.watermark_ms) / 1000)
            if part.idle_for_s() < self.idle_s or target <= part.watermark_ms:
                continue
            if any(self.rules.is_closed(ws, target) for ws in part.open):
                idle[p] = part
        if not idle:
            return
        # One question to the broker for all of them (it is slow when the consumer is busy fetching).
        ready = await caught_up({p: part.last_offset for p, part in idle.items()})
        for p in sorted(ready):
            async with self.lock:
                part = idle[p]
                if self.parts.get(p) is not part:
                    continue  # revoked meanwhile
                part.advance(target)
                await self._close_due(part)

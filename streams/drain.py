"""The consumer loop: whole fetched batches of ``clicks`` to the engine, everything else to Faust as before.

Faust's own loop (``Consumer._drain_messages``) hands each message to the conductor in a new task and the
agent's stream one event at a time; most of the worker's time went there (docs/benchmarks.md). This loop
fetches as Faust's ``getmany`` does (same fetch call, same flow-control, generation and active-partition
checks, same seek back when flow is stopped), but hands each partition's ``clicks`` records of one fetch to
``Engine.handle_batch`` at once. Messages of every other topic (the changelog during recovery) take Faust's
per-message path unchanged.

Faust's bookkeeping is kept (``streams/acks.py``): a batch's last record is tracked as a Faust message
before the engine sees the batch, so Faust's wait for acks on revoke and stop waits for it; a batch's
offsets are acked together, only after its changelog records are durable, so Faust never commits past
unwritten work; a record the engine drops is marked done without its offset being acked. The other records
stay aiokafka's own: no Faust message object per click.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from faust.transport.consumer import CONSUMER_FETCHING

from streams import faust_glue
from streams.acks import BatchAcks
from streams.engine import Engine, OffsetGapError
from streams.ports import wall_ms

log = logging.getLogger("streams")
FETCH_TIMEOUT_S = 1.0
EXIT_OFFSET_GAP = 70


def fetched_batches(
    records: Mapping[Any, Sequence[Any]], active: Collection[Any] | None, buffered: Collection[Any]
) -> list[tuple[Any, Sequence[Any]]]:
    """The partitions' record lists of one fetch that Faust would deliver: those of active partitions
    (or of partitions whose stream buffer is full, still drained), each in offset order."""
    return [
        (tp, batch)
        for tp, batch in records.items()
        if batch and (active is None or tp in active or tp in buffered)
    ]


class BatchDrain:
    """Installed as the consumer's ``_drain_messages`` (see :func:`install`); Faust's fetcher runs it."""

    def __init__(self, app: Any, engine: Engine, acks: BatchAcks, clicks_topic: str) -> None:
        self.app = app
        self.engine = engine
        self.acks = acks
        self.clicks_topic = clicks_topic

    async def __call__(self, fetcher: Any) -> None:
        consumer = self.app.consumer
        try:
            while not faust_glue.fetching_stopped(self.app, fetcher):
                consumer.diag.set_flag(CONSUMER_FETCHING)
                await asyncio.sleep(0)  # getmany can return at once, again and again
                await self._fetch_once(consumer)
                consumer.diag.unset_flag(CONSUMER_FETCHING)
        except consumer.consumer_stopped_errors:
            if self.app.should_stop:
                log.info("consumer stopped by the broker while shutting down")
                return
            raise
        except asyncio.CancelledError:
            if self.app.should_stop:
                return
            raise
        finally:
            consumer.diag.unset_flag(CONSUMER_FETCHING)

    async def _fetch_once(self, consumer: Any) -> None:
        """One fetch, as Faust's ``getmany`` delivers it, but a partition's records at a time."""
        records, active = await faust_glue.next_records(self.app, FETCH_TIMEOUT_S)
        generation = self.app.consumer_generation_id
        if records is None or consumer.should_stop:
            return
        if not consumer.flow_active:
            # What Faust's getmany does: drop what was fetched and go back to the committed offsets.
            try:
                await consumer.perform_seek()
            except Exception as e:
                log.warning("seek to committed offsets failed while flow is stopped: %r", e)
            return
        for tp, batch in fetched_batches(records, active, faust_glue.buffered_partitions(self.app)):
            if not self._may_process(consumer, generation):
                return  # a rebalance began: fetched again from the committed offset after it
            self.app.monitor.track_tp_end_offset(tp, consumer.highwater(tp))
            if tp.topic == self.clicks_topic:
                await self._count(tp, batch)
                continue
            for record in batch:
                if not self._may_process(consumer, generation):
                    return
                await self._to_faust(consumer, faust_glue.to_message(self.app, tp, record))
        if faust_glue.commit_due(self.app):
            await consumer.commit()

    async def _to_faust(self, consumer: Any, message: Any) -> None:
        """Faust's own per-message path (its read-offset filter is disabled, see app.py)."""
        await consumer.wait_first(consumer.callback(message), consumer.suspend_flow.wait())

    def _may_process(self, consumer: Any, generation: int) -> bool:
        """Faust's own test in ``getmany``: not while flow is stopped (a revoke began) and not once the
        group generation changed. (Not ``app.rebalancing``: that stays set during table recovery, which
        needs the changelog messages.)"""
        return bool(
            consumer.flow_active
            and not consumer.suspend_flow.is_set()
            and self.app.consumer_generation_id == generation
        )

    async def _count(self, tp: Any, batch: Sequence[Any]) -> None:
        # Tracking the last record is enough for Faust's wait for acks: a batch's records are acked
        # together, in the flush that writes them. (A revoke that finds one untracked still gets the
        # batch written, by the engine's own flush on revoke.)
        self.acks.track(tp, batch[-1])
        # What Faust's stream records per event, for its "stream idle" check.
        self.app.monitor.stream_inbound_time[tp] = time.monotonic()
        events = [(record, record.offset, record.value) for record in batch]
        # Shielded: a cancelled fetcher (rebalance, stop) must not cut a batch in half; the engine lock
        # makes the revoke wait for it.
        try:
            await asyncio.shield(self.engine.handle_batch(tp.partition, events, wall_ms()))
        except OffsetGapError as e:
            # Committing past missing clicks would lose them for good; a restart fetches them again.
            log.critical("streams: %s; exiting to be restarted", e)
            os._exit(EXIT_OFFSET_GAP)


def install(app: Any, engine: Engine, acks: BatchAcks, clicks_topic: str) -> None:
    """Call once the worker exists (the consumer needs its loop) and before it starts fetching."""
    faust_glue.install_drain(app, BatchDrain(app, engine, acks, clicks_topic))

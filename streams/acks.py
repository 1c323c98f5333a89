"""Acking a whole batch of ``clicks`` records with Faust's commit bookkeeping, in one step.

Faust commits a partition up to the first gap in its list of acked offsets, and on revoke and stop waits
until every *tracked* message is acked. Its per-message ``Consumer.ack`` builds that list one message at a
time, from message objects the worker would have to create for every record. Here the records of a batch
stay aiokafka's own records: only the last record of each fetch becomes a Faust message and is tracked
(enough for the waits: a batch is acked as a whole), and :meth:`BatchAcks.ack` records all the offsets of a
flushed batch at once, under Faust's ack lock, with the same rules as ``Consumer.ack``: nothing below the
committed offset, no offset twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from faust.types import TP

from streams import faust_glue


class BatchAcks:
    """Tracks, acks and discards ``clicks`` records (aiokafka ``ConsumerRecord``) for one Faust app."""

    def __init__(self, app: Any) -> None:
        self.app = app
        # Per partition, the tracked messages (one per fetched batch) not yet acked or discarded.
        self._tracked: dict[TP, list[Any]] = {}

    def track(self, tp: TP, record: Any) -> None:
        """Makes ``record`` (a batch's last) a Faust message that Faust's revoke and stop wait for."""
        message = faust_glue.to_message(self.app, tp, record)
        self.app.consumer.track_message(message)
        self._tracked.setdefault(tp, []).append(message)

    def ack(self, records: Sequence[Any]) -> None:
        """Acks one partition's records, in offset order: their offsets become committable."""
        if not records:
            return
        tp = TP(records[0].topic, records[0].partition)
        with faust_glue.acks_locked():
            if self.app.topics.acks_enabled_for(tp.topic):
                faust_glue.record_acks(self.app, tp, (record.offset for record in records))
            last = records[-1].offset
            self._release(tp, lambda offset: offset <= last)

    def discard(self, record: Any) -> None:
        """Forgets a record without acking its offset (it is delivered again, in order).

        A tracked one is marked done for Faust's waits, but its offset is not recorded as acked, so no
        commit can pass it.
        """
        with faust_glue.acks_locked():
            self._release(TP(record.topic, record.partition), lambda offset: offset == record.offset)

    def _release(self, tp: TP, done: Callable[[int], bool]) -> None:
        """Marks done the tracked messages of ``tp`` whose offset is ``done``."""
        tracked = self._tracked.get(tp, [])
        finished = [message for message in tracked if done(message.offset)]
        self._tracked[tp] = [message for message in tracked if not done(message.offset)]
        faust_glue.release_messages(self.app, finished)

    def forget(self, tps: Sequence[TP]) -> None:
        """On revoke, after the engine flushed: nothing of these partitions is waited for any more."""
        with faust_glue.acks_locked():
            for tp in tps:
                self._release(tp, lambda offset: True)
                self._tracked.pop(tp, None)

"""The sink loop and its commit protocol: ``click-windows`` → one DB transaction per batch → Kafka commit.

:func:`open_sink` opens everything in one place and closes it in reverse; :meth:`Sink.run` consumes until a
stop is requested (or, for tests and tools, until it has caught up with the topic).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import TypeVar

import sqlalchemy as sa
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from clickmuncher.db.engines import make_engine
from clickmuncher.db.schema import upgrade
from clickmuncher.kafka.check import check_at_start
from clickmuncher.retry import Retry
from clickmuncher.settings import SinkSettings
from sinks import errors, kafka_io, split, store
from sinks.batch import Batch, DeadLetter, plan_batch, without_refused
from sinks.metrics import SinkMetrics

log = logging.getLogger("sinks")
T = TypeVar("T")

RETRY_FIRST_S = 0.5
CRASH_EXIT_CODE = 137
WATERMARK_TIMEOUT_S = 10.0


class StopRequested(RuntimeError):
    """A stop was requested while the sink waited for the database; nothing of the batch was committed."""


@dataclass
class SinkSummary:
    """Totals for the one summary line logged at the end."""

    batches: int = 0
    records: int = 0
    rows_written: int = 0
    dead_letters: int = 0
    refused_windows: int = 0
    db_errors: int = 0
    fenced_batches: int = 0

    def line(self) -> str:
        return " ".join(f"{name}={value}" for name, value in vars(self).items())


class Sink:
    """Owns the consumer, the dead-letter producer and the engine (opened by :func:`open_sink`)."""

    def __init__(
        self,
        settings: SinkSettings,
        *,
        engine: sa.Engine,
        consumer: Consumer,
        producer: Producer,
        metrics: SinkMetrics,
        stop: threading.Event,
    ) -> None:
        self.settings = settings
        self.topic = settings.windows_topic
        self.engine = engine
        self.consumer = consumer
        self.producer = producer
        self.metrics = metrics
        self.stop = stop
        self.joined = False  # in the consumer group (readiness, sinks/health.py)
        self.polled_mono = time.monotonic()  # when the loop last polled Kafka
        self.summary = SinkSummary()
        # partition -> next_offset as stored in sink_offsets by us (or read at assignment): the fence
        self.positions: dict[int, int] = {}
        # The batch being applied, with the windows the database refused moved to its dead letters, and the
        # (partition, offset) of those dead letters already acked by the broker.
        self._in_hand = Batch(windows=(), dead=(), next_offsets={}, size=0)
        self._dead_acked: set[tuple[int, int]] = set()
        self._partition_count: int | None = None

    # -- assignment: the DB is the source of truth -------------------------------------------------------

    def subscribe(self) -> None:
        self.consumer.subscribe([self.topic], on_assign=self._on_assign, on_revoke=self._on_revoke)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        offsets = self._retry_db(
            lambda: store.claim_partitions(self.engine, self.topic, [tp.partition for tp in partitions])
        )
        for tp in partitions:
            tp.offset = offsets[tp.partition]
        self.positions = dict(offsets)
        consumer.assign(partitions)
        self.joined = True
        log.info("assigned %s: resuming at %s (from sink_offsets)", self.topic, dict(sorted(offsets.items())))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self.positions.pop(tp.partition, None)
        consumer.unassign()
        self.joined = False

    # -- the loop ------------------------------------------------------------------------------------------

    def run(self, *, until_caught_up: bool = False) -> SinkSummary:
        """Consumes batches until ``stop`` is set; with ``until_caught_up`` also returns once every
        partition of the topic is assigned and applied up to its high watermark. The batch in hand is always
        finished."""
        while not self.stop.is_set():
            try:
                messages = self.consumer.consume(
                    num_messages=self.settings.sink_batch_size, timeout=self.settings.sink_poll_timeout_s
                )
            except StopRequested:  # raised by _on_assign while the database was unavailable
                break
            self.polled_mono = time.monotonic()
            records = kafka_io.raw_records(messages)
            if records:
                self._apply(plan_batch(records))
            elif until_caught_up and self.caught_up():
                break
        return self.summary

    def _apply(self, batch: Batch) -> None:
        """Applies one batch, retrying transient failures with backoff until it commits or a stop is
        requested; windows the database refuses are dead-lettered and the rest committed."""
        began = time.monotonic()
        self._in_hand = batch
        self._dead_acked.clear()
        try:
            self._retry_db(self._commit_in_hand)
        except store.Fenced as e:
            self._on_fenced(batch, e)
        except StopRequested:
            log.warning("stop requested while the database failed: batch of %d not committed", batch.size)
            return
        self.metrics.batch_latency.observe(time.monotonic() - began)

    def _commit_in_hand(self) -> None:
        """:meth:`commit_batch` of the batch in hand. While the database refuses its data (a permanent
        error), the windows it refuses on their own are found (``sinks/split.py``, nothing committed) and
        moved to the batch's dead letters, and the rest is committed the same way; each round removes at
        least one window. If it refuses none on its own, raises :class:`errors.NotReproduced`, retried like a
        transient failure."""
        while True:
            try:
                self.commit_batch(self._in_hand)
                return
            except errors.BadData as e:
                log.warning("database refused data of a batch of %d, isolating: %s", self._in_hand.size, e)
                self.metrics.split_batches.inc()
                refused = split.find_refused(self.engine, self._in_hand.windows)
                if not refused:
                    raise errors.NotReproduced(f"no window refused on its own after: {e}") from e
                self.summary.refused_windows += len(refused)
                self.metrics.refused_windows.inc(len(refused))
                self._in_hand = without_refused(self._in_hand, refused)

    def commit_batch(self, batch: Batch) -> None:
        """The commit protocol: the only place that commits a batch's rows or offsets. On failure nothing is
        committed to Kafka and the whole batch is retried; the DB writes are absolute and revision-guarded, so
        a retry or a redelivery after a crash converges to the same rows. A permanent failure (the data's,
        ``sinks/errors.py``) is raised as :class:`errors.BadData`, also with nothing committed: the caller
        moves the windows the database refuses to ``batch.dead`` and calls this again.

        1. Dead letters: produce the batch's malformed records and the windows the database refused to the
           dead topic and wait for the acks (each once per batch in this process; a crash before step 3 can
           repeat them, dead letters are at-least-once). Their offsets are in the batch's next offsets, so
           they are committed past in step 3 exactly like the windows written.
        2. One DB transaction: check this sink still owns the partitions' positions, read the old rows,
           upsert ``click_windows``, add the deltas to ``clicks``, store the next offsets in ``sink_offsets``.
           If the positions already are the batch's next offsets, an earlier attempt committed it and only
           its outcome was lost (connection dropped during COMMIT): write nothing, go on with step 4.
        3. DB commit: from here the batch counts, even if the process dies now.
        4. Kafka commit of the same next offsets, synchronous; a failure is logged and counted only, since
           the next assignment resumes from ``sink_offsets``.
        5. Remember the new positions (the fence for the next batch) and record metrics.
        """
        unsent = [letter for letter in batch.dead if _place(letter) not in self._dead_acked]
        if unsent:
            dead_topic = self.settings.windows_dead_topic
            self._until_delivered(
                lambda: kafka_io.send_dead_letters(self.producer, dead_topic, self.topic, unsent)
            )
            self._dead_acked.update(_place(letter) for letter in unsent)
            if self.settings.sink_crash_after_dead_letters:
                os._exit(CRASH_EXIT_CODE)  # fault injection for tests: die before the DB transaction
        with errors.permanent_as_bad_data(), self.engine.begin() as conn:
            rows = store.write_batch(conn, self.topic, batch, self.positions)
        if self.settings.sink_crash_after_db_commit:
            os._exit(CRASH_EXIT_CODE)  # fault injection for tests: die between the DB and the Kafka commit
        self._commit_kafka(batch)
        self.positions.update(batch.next_offsets)
        if rows is None:
            log.info("batch of %d was committed by an earlier attempt", batch.size)
        self._record(batch, rows or 0)

    def _commit_kafka(self, batch: Batch) -> None:
        try:
            kafka_io.commit_offsets(self.consumer, self.topic, batch.next_offsets)
        except KafkaException as e:
            self.metrics.kafka_commit_errors.inc()
            log.warning("Kafka offset commit failed (the DB keeps the position): %s", e)

    def _record(self, batch: Batch, rows: int) -> None:
        summary, metrics = self.summary, self.metrics
        summary.batches += 1
        summary.records += batch.size
        summary.rows_written += rows
        summary.dead_letters += len(batch.dead)
        metrics.batches.inc()
        metrics.rows_written.inc(rows)
        metrics.dead_letters.inc(len(batch.dead))
        for partition, lag in kafka_io.lag_by_partition(
            self.consumer, self.topic, batch.next_offsets
        ).items():
            metrics.consumer_lag.labels(partition=str(partition)).set(lag)

    def _on_fenced(self, batch: Batch, error: store.Fenced) -> None:
        """Another sink wrote these partitions: drop the batch and continue from what the DB says."""
        self.summary.fenced_batches += 1
        self.metrics.fenced_batches.inc()
        log.warning("batch dropped: %s", error)
        try:
            stored = self._retry_db(self._load_offsets)
        except StopRequested:
            return
        for partition in batch.next_offsets:
            offset = stored.get(partition, store.FROM_BEGINNING)
            self.positions[partition] = offset
            try:
                self.consumer.seek(TopicPartition(self.topic, partition, offset))
            except KafkaException as e:
                log.info("partition %d not seekable (revoked?): %s", partition, e)

    def _load_offsets(self) -> dict[int, int]:
        with self.engine.connect() as conn:
            return store.load_offsets(conn, self.topic)

    def _retry_db(self, action: Callable[[], T]) -> T:
        """Runs ``action`` until it succeeds; transient database failures are logged, counted and retried
        with exponential backoff up to ``sink_retry_max_s``. Permanent ones reach this point only as
        :class:`errors.BadData`, which passes. (Dead-letter delivery: :meth:`_until_delivered`.)"""
        delay_s, failures = RETRY_FIRST_S, 0
        while True:
            try:
                result = action()
            except (sa.exc.DBAPIError, errors.NotReproduced) as e:
                failures += 1
                self.summary.db_errors += 1
                self.metrics.db_errors.inc()
                log.warning("nothing committed, retrying in %.1fs: %s", delay_s, errors.one_line(e))
                if self.stop.wait(delay_s):
                    raise StopRequested from e
                delay_s = min(delay_s * 2, self.settings.sink_retry_max_s)
                continue
            if failures:
                log.info("recovered after %d failed attempt(s)", failures)
            return result

    def _until_delivered(self, send: Callable[[], None]) -> None:
        """The Kafka side of a commit: ``send`` again while it fails transiently (a broker outage is waited
        out, however long); any other error is raised, stopping the sink. A stop request ends the wait
        (:class:`StopRequested`, nothing of the batch committed)."""
        Retry("dead-letter delivery").call(send, sleep=self._wait_or_stop)

    def _wait_or_stop(self, delay_s: float) -> None:
        if self.stop.wait(delay_s):
            raise StopRequested

    # -- progress ------------------------------------------------------------------------------------------

    def caught_up(self) -> bool:
        """True when all partitions of the topic are assigned here and applied up to their high watermarks."""
        assignment = self.consumer.assignment()
        if not assignment or len(assignment) < self.partition_count():
            return False
        for tp in self.consumer.position(assignment):
            low, high = self.consumer.get_watermark_offsets(tp, timeout=WATERMARK_TIMEOUT_S)
            done = max(tp.offset, self.positions.get(tp.partition, store.FROM_BEGINNING), low)
            if done < high:
                return False
        return True

    def partition_count(self) -> int:
        if self._partition_count is None:
            metadata = self.consumer.list_topics(self.topic, timeout=WATERMARK_TIMEOUT_S)
            self._partition_count = len(metadata.topics[self.topic].partitions)
        return self._partition_count


def _place(letter: DeadLetter) -> tuple[int, int]:
    return (letter.record.partition, letter.record.offset)


@contextmanager
def open_sink(
    settings: SinkSettings, *, metrics: SinkMetrics | None = None, stop: threading.Event | None = None
) -> Iterator[Sink]:
    """Migrates the schema, ensures the topics, opens the engine and the clients, subscribes; closes all in
    reverse order on exit (the consumer leaves its group)."""
    upgrade(settings.database_url)
    check_at_start(settings, "sink")
    with ExitStack() as stack:
        engine = make_engine(settings.database_url)
        stack.callback(engine.dispose)
        producer = Producer(kafka_io.producer_config(settings))
        stack.callback(producer.flush, kafka_io.DELIVERY_TIMEOUT_S)
        consumer = Consumer(kafka_io.consumer_config(settings))
        stack.callback(consumer.close)
        sink = Sink(
            settings,
            engine=engine,
            consumer=consumer,
            producer=producer,
            metrics=metrics if metrics is not None else SinkMetrics(),
            stop=stop if stop is not None else threading.Event(),
        )
        sink.subscribe()
        yield sink

"""The worker's own Kafka producer (confluent-kafka): changelog records and outputs, delivery awaited.

Faust's producer queues changelog records behind a hard-coded 100-message buffer, which throttled the worker
to its send rate (docs/benchmarks.md). This producer takes a whole batch of records at once and returns when
the broker has acknowledged every one of them (``acks=all``, idempotent, so records of one partition are
written in the order they were produced, also across retries).

Delivery reports are served on the event loop thread (``poll(0)`` every millisecond while a batch waits), not
by a background thread: a report then costs one counter decrement, with no lock and no thread handing the GIL
back and forth with the event loop for every record.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from clickmuncher.kafka.config import KafkaSettings
from clickmuncher.kafka.config import producer_config as kafka_producer_config
from streams.ports import Headers

REPORT_POLL_S = 0.001


class DeliveryError(KafkaException):
    """At least one record of a batch was not acknowledged by the broker; the caller retries the batch.
    ``args[0]`` is the first record's ``KafkaError``, which tells a transient failure (clickmuncher.retry)
    from a permanent one."""


class OutRecord(NamedTuple):
    """One record to produce; ``partition`` None lets the (Java-compatible murmur2) partitioner choose.

    A tuple, not a dataclass: one is built per changelog record and per output, and a frozen dataclass
    costs three times as much to build."""

    topic: str
    key: bytes | None
    value: bytes | None
    partition: int | None = None
    headers: Headers | None = None


class _Batch:
    """Counts the outstanding delivery reports of one batch (reports arrive on the event loop thread)."""

    __slots__ = ("error", "failed", "max_offset", "remaining")

    def __init__(self, size: int) -> None:
        self.remaining = size
        self.error: KafkaError | None = None
        self.failed: Exception | None = None  # what stopped the batch from being produced whole
        self.max_offset = -1

    def on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self.error = self.error or err
        else:
            offset = msg.offset()
            if offset is not None and offset > self.max_offset:
                self.max_offset = offset
        self.remaining -= 1

    def abandon(self, count: int, error: Exception) -> None:
        """``count`` records were never produced (``error``): they will have no delivery report."""
        self.failed = error
        self.remaining -= count


def producer_config(kafka: KafkaSettings, client_id: str) -> dict[str, Any]:
    """Idempotent with ``acks=all`` (clickmuncher.kafka.config), on the cluster of ``kafka``."""
    extra = {
        "client.id": client_id,
        "linger.ms": 2,
        "compression.type": "lz4",
        # The partitioner of Faust's (aiokafka's) producer, so click-windows keys stay on their partitions.
        "partitioner": "murmur2_random",
    }
    return kafka_producer_config(kafka, extra)


class BatchProducer:
    """Produces batches of records and waits for their delivery; ``start``/``stop`` own the client."""

    def __init__(self, config: dict[str, Any]) -> None:
        self._config = config
        self._producer: Producer | None = None

    def start(self) -> None:
        if self._producer is None:
            self._producer = Producer(self._config)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Waits (bounded) for what is in flight; records not delivered by then are simply lost with the
        process, as after a kill -9: nothing was acked for them."""
        if self._producer is not None:
            self._producer.flush(timeout_s)
            self._producer = None

    async def deliver(self, records: Sequence[OutRecord]) -> int:
        """Produces every record in order and returns once all are acknowledged: the highest offset
        written (-1 for no records). Raises :class:`DeliveryError` if any one failed."""
        if not records:
            return -1
        self.start()
        producer = self._producer
        assert producer is not None
        batch = _Batch(len(records))
        for i, record in enumerate(records):
            try:
                # False while librdkafka's local queue is full: serve reports to make room
                while not _try_produce(producer, record, batch):
                    producer.poll(0)
                    await asyncio.sleep(REPORT_POLL_S)
            except Exception as e:
                batch.abandon(len(records) - i, e)
                break
        while True:
            producer.poll(0)  # runs the delivery callbacks of every batch, on this thread
            if batch.remaining <= 0:
                break
            await asyncio.sleep(REPORT_POLL_S)
        if batch.failed is not None:
            raise batch.failed
        if batch.error is not None:
            raise DeliveryError(batch.error)
        return batch.max_offset


def _try_produce(producer: Producer, record: OutRecord, batch: _Batch) -> bool:
    """Hands one record to librdkafka; False when its local queue is full."""
    try:
        if record.headers is None:
            # Positional (topic, value, key, partition, on_delivery; -1: the partitioner chooses): half the
            # cost of the keyword call, and this runs for every changelog record and output.
            partition = -1 if record.partition is None else record.partition
            producer.produce(record.topic, record.value, record.key, partition, batch.on_delivery)
        else:
            producer.produce(
                record.topic,
                record.value,
                record.key,
                partition=-1 if record.partition is None else record.partition,
                headers=list(record.headers),
                on_delivery=batch.on_delivery,
            )
    except BufferError:
        return False
    return True


def live_producer_config(kafka: KafkaSettings, client_id: str) -> dict[str, Any]:
    """Live counts are superseded every few seconds: no idempotence, one acknowledgement, a long linger."""
    extra = {
        "client.id": f"{client_id}-live",
        "enable.idempotence": False,
        "acks": 1,
        "linger.ms": 100,
        "compression.type": "lz4",
        "partitioner": "murmur2_random",
    }
    return kafka_producer_config(kafka, extra)


class LiveProducer:
    """Sends live counts without waiting: a record that finds the local queue full is dropped (counted);
    the next publication of its window, or the window's final record, supersedes it."""

    def __init__(self, config: dict[str, Any], on_dropped: Callable[[int], None]) -> None:
        self._config = config
        self._on_dropped = on_dropped
        self._producer: Producer | None = None

    def start(self) -> None:
        if self._producer is None:
            self._producer = Producer(self._config)

    def stop(self, timeout_s: float = 2.0) -> None:
        if self._producer is not None:
            self._producer.flush(timeout_s)
            self._producer = None

    def send(self, records: Sequence[tuple[str, bytes, bytes, Any]]) -> None:
        self.start()
        producer = self._producer
        assert producer is not None
        for i, (topic, key, value, _headers) in enumerate(records):
            try:
                producer.produce(topic, value, key)
            except BufferError:
                self._on_dropped(len(records) - i)
                break
        producer.poll(0)

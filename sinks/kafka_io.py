"""The sink's Kafka clients: the consumer of ``click-windows`` and the dead-letter producer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from clickmuncher.kafka import config
from clickmuncher.records import DEAD_LETTER_MAX_BYTES
from clickmuncher.settings import SinkSettings
from sinks.batch import DeadLetter, RawRecord
from sinks.errors import REASON_MAX_CHARS

DELIVERY_TIMEOUT_S = 30.0
FLUSH_MARGIN_S = 5.0  # a flush waits this much longer than a dead letter's delivery timeout


class DeliveryError(KafkaException):
    """Dead letters not acknowledged by the broker. ``args[0]`` is the first ``KafkaError`` (a timeout when
    some were still pending), so :mod:`clickmuncher.retry` tells a transient failure from a permanent one."""


def consumer_config(settings: SinkSettings) -> dict[str, Any]:
    extra = {
        "client.id": "clickmuncher-sink",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        "session.timeout.ms": int(settings.sink_session_timeout_s * 1000),
        "heartbeat.interval.ms": min(3000, int(settings.sink_session_timeout_s * 1000) // 3),
    }
    return config.consumer_config(settings.kafka, settings.sink_group, extra)


def producer_config(settings: SinkSettings) -> dict[str, Any]:
    """Idempotent, ``acks=all``; a dead letter not acknowledged within the delivery timeout is reported
    failed (and sent again), rather than waiting on in the queue behind the next attempt's copy."""
    extra = {
        "client.id": "clickmuncher-sink-dead-letters",
        "message.timeout.ms": int(DELIVERY_TIMEOUT_S * 1000),
    }
    return config.producer_config(settings.kafka, extra)


def raw_records(messages: Sequence[Message]) -> list[RawRecord]:
    """The data messages of a ``consume()`` result; broker errors raise, informational events are skipped."""
    records: list[RawRecord] = []
    for message in messages:
        error = message.error()
        if error is not None:
            if error.fatal():
                raise KafkaException(error)
            continue
        partition, offset = message.partition(), message.offset()
        assert partition is not None and offset is not None
        records.append(RawRecord(partition, offset, message.key(), message.value()))
    return records


def send_dead_letters(
    producer: Producer, dead_topic: str, source_topic: str, dead: Sequence[DeadLetter]
) -> None:
    """Produces each dead letter and waits for the acks: the raw key and value (each cut to
    :data:`DEAD_LETTER_MAX_BYTES`, with header ``key-truncated-from``/``value-truncated-from`` = the original
    size, so no record is too large to dead-letter), headers ``reason`` (one line; also as ``error``, its
    older name), ``source-topic``, ``source-partition``, ``source-offset``."""
    failures: list[KafkaError] = []

    def on_delivery(error: KafkaError | None, _message: Any) -> None:
        if error is not None:
            failures.append(error)

    for letter in dead:
        record = letter.record
        reason = _one_line(letter.reason).encode()
        headers: list[tuple[str, str | bytes | None]] = [
            ("reason", reason),
            ("error", reason),
            ("source-topic", source_topic.encode()),
            ("source-partition", str(record.partition).encode()),
            ("source-offset", str(record.offset).encode()),
        ]
        key = _cut(record.key, "key", headers)
        value = _cut(record.value, "value", headers)
        producer.produce(dead_topic, key=key, value=value, headers=headers, on_delivery=on_delivery)
    remaining = producer.flush(DELIVERY_TIMEOUT_S + FLUSH_MARGIN_S)
    if remaining or failures:
        pending = KafkaError(KafkaError._MSG_TIMED_OUT, f"{remaining} dead letters still pending")
        raise DeliveryError(failures[0] if failures else pending)


def _cut(data: bytes | None, name: str, headers: list[tuple[str, str | bytes | None]]) -> bytes | None:
    if data is None or len(data) <= DEAD_LETTER_MAX_BYTES:
        return data
    headers.append((f"{name}-truncated-from", str(len(data)).encode()))
    return data[:DEAD_LETTER_MAX_BYTES]


def _one_line(reason: str) -> str:
    lines = reason.strip().splitlines()
    return lines[0][:REASON_MAX_CHARS] if lines else "unknown"


def commit_offsets(consumer: Consumer, topic: str, next_offsets: Mapping[int, int]) -> None:
    """Synchronous commit of exactly these positions (for tooling; the DB holds the sink's truth)."""
    consumer.commit(
        offsets=[TopicPartition(topic, p, o) for p, o in sorted(next_offsets.items())], asynchronous=False
    )


def lag_by_partition(consumer: Consumer, topic: str, next_offsets: Mapping[int, int]) -> dict[int, int]:
    """High watermark (as last fetched) minus the next offset, for the partitions given."""
    lags: dict[int, int] = {}
    for partition, offset in next_offsets.items():
        _low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), cached=True)
        if high is not None and high >= 0:
            lags[partition] = max(0, high - offset)
    return lags

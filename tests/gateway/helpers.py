"""Helpers for the gateway tests: settings, reading a topic back, polling without timed asserts."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from clickmuncher.kafka.admin import ensure_topics
from clickmuncher.settings import Settings
from tests import kafka_clients

SIGNING_KEY = "test-signing-key"
ALLOWED_HOSTS = ["example.com", "*.allowed.org"]


def gateway_settings(bootstrap: str, topic: str, state_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "kafka_bootstrap": bootstrap,
        "clicks_topic": topic,
        "state_dir": state_dir,
        "signing_key": SIGNING_KEY,
        "allowed_hosts": ALLOWED_HOSTS,
        "partitions": 2,
        "gateway_linger_ms": 5,
        "gateway_drain_timeout_s": 2.0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def create_topic(bootstrap: str, topic: str) -> None:
    ensure_topics(kafka_clients.kafka_of(bootstrap), {topic: {}}, partitions=2)


@dataclass(frozen=True)
class Event:
    key: bytes
    value: bytes
    timestamp_type: int
    timestamp_ms: int


def _consumer(bootstrap: str) -> Consumer:
    return kafka_clients.consumer(bootstrap, "gateway-tests", {"enable.auto.commit": False})


def _high_watermarks(consumer: Consumer, topic: str) -> dict[int, int]:
    partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
    return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1] for p in partitions}


def topic_count(bootstrap: str, topic: str) -> int:
    """How many records the topic holds (sum of high watermarks; nothing is deleted in tests)."""
    consumer = _consumer(bootstrap)
    try:
        return sum(_high_watermarks(consumer, topic).values())
    finally:
        consumer.close()


def read_topic(bootstrap: str, topic: str) -> list[Event]:
    """Every record on ``topic`` up to its current high watermarks."""
    consumer = _consumer(bootstrap)
    try:
        ends = _high_watermarks(consumer, topic)
        consumer.assign([TopicPartition(topic, p, 0) for p in ends])
        events: list[Event] = []
        done = {p for p, end in ends.items() if end == 0}
        while len(done) < len(ends):
            for msg in consumer.consume(500, timeout=1.0):
                if msg.error() is not None:
                    continue
                partition, offset = msg.partition(), msg.offset()
                assert partition is not None and offset is not None
                ts_type, ts = msg.timestamp()
                events.append(Event(msg.key() or b"", msg.value() or b"", ts_type, ts))
                if offset + 1 >= ends[partition]:
                    done.add(partition)
        return events
    finally:
        consumer.close()


def wait_for(condition: Callable[[], bool], what: str, deadline_s: float = 120.0) -> None:
    """Polls ``condition`` until true; fails (a generous deadline, not a speed assertion) otherwise."""
    end = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.2)

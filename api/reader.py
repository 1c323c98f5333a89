"""Reads the live topic into :class:`~api.live.LiveCounts`: every partition from the beginning, by
assignment (no consumer group, nothing committed), in a thread of its own.

:func:`read_snapshot` reads the topic once to its end, for ``clickmuncher stats``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Message, TopicPartition

from api.live import LiveCounts, Skipped, parse_key, parse_live
from api.metrics import ApiMetrics
from clickmuncher.kafka import config
from clickmuncher.settings import ApiSettings

log = logging.getLogger("api.live")
CONSUME_BATCH = 500
CONSUME_TIMEOUT_S = 0.5
ASSIGN_EVERY_S = 5.0
METADATA_TIMEOUT_S = 5.0


class LiveUnavailable(RuntimeError):
    """The live topic cannot be read (missing, or the broker does not answer)."""


def consumer_config(settings: ApiSettings) -> dict[str, Any]:
    # librdkafka wants a group id even for assigned partitions; the group is never joined nor committed to.
    extra = {
        "client.id": "clickmuncher-api-live",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "log_level": 0,  # broker outages are reported once, by LiveReader, not on every reconnect attempt
    }
    return config.consumer_config(settings.kafka, "clickmuncher-api-live", extra)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class LiveIntake:
    """Applies live-topic records to the counts, each counted in the metrics by outcome."""

    def __init__(
        self, counts: LiveCounts, metrics: ApiMetrics, retention_s: int, clock: Callable[[], int] = now_ms
    ) -> None:
        self.counts = counts
        self.metrics = metrics
        self.retention_ms = retention_s * 1000
        self.clock = clock

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        try:
            outcome = self._apply(key, value)
        except Skipped as e:
            self.metrics.live_skipped.labels(e.reason).inc()
            outcome = "skipped"
        self.metrics.live_records.labels(outcome).inc()

    def _apply(self, key: bytes | None, value: bytes | None) -> str:
        if value is None:  # a tombstone: the publisher withdrew this window's live count
            removed = self.counts.remove([parse_key(key)])
            self.metrics.live_pruned.labels("tombstone").inc(removed)
            return "tombstone"
        now = self.clock()
        window = parse_live(key, value, now)
        if window.window_end_ms < now - self.retention_ms:
            return "expired"
        return "stored" if self.counts.offer(window) else "older"

    def apply_messages(self, messages: list[Message]) -> None:
        for message in messages:
            error = message.error()
            if error is None:
                self.apply(message.key(), message.value())
            elif error.fatal():
                raise KafkaException(error)
        dropped = self.counts.shrink()
        self.metrics.live_pruned.labels("capacity").inc(dropped)
        self.metrics.live_entries.set(len(self.counts))


def topic_partitions(consumer: Consumer, topic: str) -> list[int]:
    """The partitions of ``topic``; raises :class:`LiveUnavailable` when it is missing or unreachable."""
    try:
        metadata = consumer.list_topics(topic, timeout=METADATA_TIMEOUT_S)
    except KafkaException as e:
        raise LiveUnavailable(f"broker unreachable: {e.args[0].str()}") from e
    found = metadata.topics.get(topic)
    if found is None or found.error is not None or not found.partitions:
        raise LiveUnavailable(f"topic {topic} does not exist")
    return sorted(found.partitions)


class LiveReader:
    """The reading thread: assigns new partitions every few seconds, applies what it consumes."""

    def __init__(self, settings: ApiSettings, counts: LiveCounts, metrics: ApiMetrics) -> None:
        self.settings = settings
        self.topic = settings.live_topic
        self.metrics = metrics
        self.intake = LiveIntake(counts, metrics, settings.api_live_retention_s)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="api-live-reader", daemon=True)
        self._assigned: set[int] = set()
        self._problem: str | None = "not connected yet"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    @property
    def problem(self) -> str | None:
        """Why live counts are not being read, or None while they are."""
        return self._problem

    def _run(self) -> None:
        consumer = Consumer(consumer_config(self.settings))
        next_assign = 0.0
        try:
            while not self._stop.is_set():
                if time.monotonic() >= next_assign:
                    self._assign_new(consumer)
                    next_assign = time.monotonic() + ASSIGN_EVERY_S
                if not self._assigned:
                    self._stop.wait(CONSUME_TIMEOUT_S)
                    continue
                self.intake.apply_messages(consumer.consume(CONSUME_BATCH, CONSUME_TIMEOUT_S))
        except Exception:
            log.exception("live reader failed; live counts are no longer updated")
            self._set_problem("reader failed (see the log)")
        finally:
            consumer.close()

    def _assign_new(self, consumer: Consumer) -> None:
        try:
            partitions = topic_partitions(consumer, self.topic)
        except LiveUnavailable as e:
            self._set_problem(str(e))
            return
        new = [p for p in partitions if p not in self._assigned]
        if new:
            consumer.incremental_assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in new])
            self._assigned.update(new)
            log.info("live topic %s: reading partitions %s from the beginning", self.topic, new)
        self._set_problem(None)

    def _set_problem(self, problem: str | None) -> None:
        if problem != self._problem:
            if problem is None:
                log.info("live topic %s: reading", self.topic)
            else:
                log.warning("live counts unavailable: %s (retrying every %.0fs)", problem, ASSIGN_EVERY_S)
        self._problem = problem
        self.metrics.live_up.set(problem is None and bool(self._assigned))


def read_snapshot(settings: ApiSettings, timeout_s: float) -> LiveCounts:
    """The live counts of the whole topic, read to the end offsets it had at the start.

    Raises :class:`LiveUnavailable` when the topic is missing, the broker does not answer, or the end is not
    reached within ``timeout_s``.
    """
    counts = LiveCounts(settings.api_live_max_entries)
    intake = LiveIntake(counts, ApiMetrics.create(), settings.api_live_retention_s)
    consumer = Consumer(consumer_config(settings))
    deadline = time.monotonic() + timeout_s
    try:
        topic = settings.live_topic
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout_s)[1]
            for p in topic_partitions(consumer, topic)
        }
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p, end in ends.items() if end > 0])
        while _behind(consumer, ends):
            if time.monotonic() > deadline:
                raise LiveUnavailable(f"topic {topic} not read to its end in {timeout_s:.0f}s")
            intake.apply_messages(consumer.consume(CONSUME_BATCH, CONSUME_TIMEOUT_S))
    except KafkaException as e:
        raise LiveUnavailable(f"broker error: {e.args[0].str()}") from e
    finally:
        consumer.close()
    return counts


def _behind(consumer: Consumer, ends: dict[int, int]) -> bool:
    assigned = [tp for tp in consumer.assignment()]
    positions = consumer.position(assigned) if assigned else []
    return any(tp.offset < ends[tp.partition] for tp in positions)

"""Handing clicks to Kafka without ever waiting for it: the producer, its pump thread and the disk spool.

A click goes to the confluent-kafka producer (idempotent, ``acks=all``, infinite message timeout, so a click
waits in memory while Kafka is away). When the producer's queue is full the click goes to the
:mod:`gateway.spool` instead, and so do all later clicks until the spool is drained again (order is kept).
A click is spooled only if it never entered the producer or its delivery report says it was not delivered,
so it is never produced twice.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from clickmuncher.kafka.config import producer_config as kafka_producer_config
from clickmuncher.kafka.topics import create_missing, service_topics
from clickmuncher.records import ClickEvent
from clickmuncher.settings import GatewaySettings
from gateway.keeper import SpoolKeeper
from gateway.metrics import Metrics
from gateway.spool import Spool, claimed, replay_segment, segments

log = logging.getLogger("gateway.clicks")
PUMP_POLL_S = 0.1
REPLAY_EVERY_S = 0.5
SCAN_EVERY_S = 1.0  # the spool's gauges and the usage its size cap checks
TOPIC_RETRY_S = 2.0
IN_FLIGHT_GRACE_S = 1.0  # at shutdown, for requests already sent to a broker to be answered


def producer_config(settings: GatewaySettings) -> dict[str, Any]:
    extra: dict[str, Any] = {
        "client.id": f"clickmuncher-gateway-{os.getpid()}",
        "linger.ms": settings.gateway_linger_ms,
        "message.timeout.ms": 0,  # 0 = infinite: a click waits in the producer while Kafka is away
        # Reports only for failures: a per-click callback would cost the GIL on every redirect; successes
        # are counted from the producer's queue length instead (ClickSink._count_delivered).
        "delivery.report.only.error": True,
        "queue.buffering.max.messages": settings.gateway_queue_max_messages,
        "allow.auto.create.topics": False,  # the topic is created with its partition count, below
        "reconnect.backoff.max.ms": 1000,
        "statistics.interval.ms": 1000,
        "log_level": 2,  # connection failures reach error_cb (readiness); only critical ones are printed
    }
    return kafka_producer_config(settings.kafka, extra)  # idempotent, acks=all, the cluster's security


class ClickSink:
    """Accepts clicks from request handlers; :meth:`start` and :meth:`close` bracket its life."""

    def __init__(self, settings: GatewaySettings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.spool = Spool(settings.state_dir / "spool", settings.gateway_spool_max_bytes)
        self.keeper = SpoolKeeper(self.spool, metrics)
        self._producer: Producer | None = None
        self._lock = threading.Lock()
        self._spooling = False
        self._ready = False
        self._fatal = False
        self._stopping = threading.Event()
        self._replay_until = math.inf  # monotonic time after which a replay gives up
        self._accepted = 0  # clicks the producer took (produce() returned)
        self._not_delivered = 0  # clicks with a failed or purged delivery report
        self._delivered = 0  # clicks known delivered, as last counted
        self._threads: list[threading.Thread] = []

    @property
    def ready(self) -> bool:
        """Whether the producer currently reaches a broker."""
        return self._ready and not self._fatal

    @property
    def healthy(self) -> bool:
        """False after a fatal producer error (restart the process; its spool is kept), and while clicks
        need the spool and it cannot take them (they are being lost)."""
        return not self._fatal and self.keeper.failure is None

    @property
    def problem(self) -> str:
        """Why the sink is not healthy ("" when it is)."""
        if self._fatal:
            return "kafka producer failed fatally; restart the gateway"
        return f"clicks are being lost: {self.keeper.failure}" if self.keeper.failure else ""

    @property
    def lost(self) -> int:
        """Clicks that got a redirect but were neither produced nor spooled."""
        return self.keeper.lost

    @property
    def producer(self) -> Producer:
        assert self._producer is not None, "ClickSink.start() was not called"
        return self._producer

    def start(self) -> None:
        """Raises :class:`ConfigError` when the spool directory cannot be written."""
        self.keeper.start()
        config = producer_config(self.settings)
        config.update(error_cb=self._on_error, stats_cb=self._on_stats, on_delivery=self._on_delivery)
        self._producer = Producer(config)
        self.metrics.queue_length.set_function(lambda: len(self.producer))
        for name, target in (("pump", self._pump), ("topics", self._ensure_topic)):
            thread = threading.Thread(target=target, name=f"gateway-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def submit(self, event: ClickEvent) -> None:
        """Hands ``event`` to the producer, or to the spool when the producer is full; never waits."""
        with self._lock:
            if not self._spooling:
                try:
                    self._produce(event)
                    return
                except (BufferError, KafkaException) as e:
                    log.warning("producer refused a click (%s); spooling until it takes them again", e)
                    self._spooling = True
            if self.keeper.keep(event):
                return
            try:  # the spool cannot take it: the producer, even out of order, rather than a lost click
                self._produce(event)
            except (BufferError, KafkaException):
                self.keeper.lose(event)

    def _produce(self, event: ClickEvent) -> None:
        # Positional (topic, value, key, partition -1: the partitioner's choice, callback and on_delivery
        # None: the producer's own, timestamp): half the cost of the keyword call, on every redirect.
        self.producer.produce(
            self.settings.clicks_topic, event.encode(), event.key(), -1, None, None, event.ts_ms
        )
        self._accepted += 1

    def _count_delivered(self) -> None:
        """Clicks that left the producer without a failure report were delivered: count them.

        ``len(producer)`` includes clicks in flight; reading it after ``_accepted`` can only undercount for
        a moment (a click still being handed over), never overcount.
        """
        delivered = self._accepted - len(self.producer) - self._not_delivered
        if delivered > self._delivered:
            self.metrics.produced.inc(delivered - self._delivered)
            self._delivered = delivered
            self._set_ready(True)

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            return
        self._not_delivered += 1
        if err.code() != KafkaError._PURGE_QUEUE:  # purged at shutdown: spooled, not a failure
            self.metrics.delivery_failures.inc()
        value = msg.value()
        if err.code() == KafkaError._PURGE_INFLIGHT or value is None:
            log.error("click possibly delivered, not spooled (%s): %r", err, value)
            return
        with self._lock:
            self._spooling = True
            event = ClickEvent.decode(value)
            if not self.keeper.keep(event):
                self.keeper.lose(event)

    def _on_error(self, err: KafkaError) -> None:
        if err.fatal():
            self._fatal = True
            log.error("kafka producer failed fatally (%s); clicks go to the spool until a restart", err)
        elif err.code() == KafkaError._ALL_BROKERS_DOWN:
            self._set_ready(False)
        elif err.code() != KafkaError._TRANSPORT:
            log.warning("kafka: %s", err)

    def _on_stats(self, stats_json: str) -> None:
        # Only brokers have a "state" of "UP" in librdkafka's statistics; searched, not parsed: parsing the
        # whole document every second held the GIL away from request handlers for a noticeable moment.
        self._set_ready('"state":"UP"' in stats_json)

    def _set_ready(self, ready: bool) -> None:
        if ready != self._ready:
            log.info("kafka %s", "reachable" if ready else "unreachable")
        self._ready = ready
        self.metrics.kafka_up.set(1 if ready else 0)

    def _pump(self) -> None:
        """Serves delivery reports; while Kafka is reachable, hands spooled clicks back to the producer."""
        last_replay = last_scan = 0.0
        while not self._stopping.is_set():
            self.producer.poll(PUMP_POLL_S)
            self._count_delivered()
            if self._ready and time.monotonic() - last_replay >= REPLAY_EVERY_S:
                self._replay()
                last_replay = time.monotonic()
            if time.monotonic() - last_scan >= SCAN_EVERY_S:
                self.keeper.scan()
                last_scan = time.monotonic()

    def _replay(self) -> None:
        with self._lock:
            if self._spooling:
                self.spool.seal()
        drained = True
        for path in segments(self.spool.directory):
            with claimed(path) as fd:
                if fd is not None and not replay_segment(path, fd, self._hand_over):
                    drained = False
                    break
        with self._lock:
            if drained and self.spool.active_bytes() == 0 and self._spooling:
                log.info("spool drained; clicks go straight to the producer again")
                self._spooling = False
                self.keeper.not_needed()

    def _hand_over(self, event: ClickEvent) -> bool:
        """Produces a spooled click, waiting for room while Kafka is reachable; False: give up for now."""
        while self._ready and time.monotonic() < self._replay_until:
            try:
                with self._lock:  # _accepted is counted by request handlers too
                    self._produce(event)
            except BufferError:
                self.producer.poll(PUMP_POLL_S)
                continue
            except KafkaException:
                return False
            self.metrics.replayed.inc()
            return True
        return False

    def _ensure_topic(self) -> None:
        """Creates the clicks topic in the background, retrying while Kafka is away; redirects never wait."""
        topics = service_topics(self.settings, "gateway")
        while not self._stopping.is_set():
            if not self._ready:  # no admin connection churn while Kafka is away
                self._stopping.wait(PUMP_POLL_S)
                continue
            try:
                create_missing(self.settings.kafka, topics, timeout_s=5)
                return
            except Exception as e:  # any failure here must only delay the topic, never the gateway
                log.info("clicks topic not ensured yet (%s); retrying", e)
                self._stopping.wait(TOPIC_RETRY_S)

    def close(self) -> None:
        """Stops the pump, delivers what Kafka takes within the drain timeout, spools the rest (SPEC §8)."""
        self._replay_until = 0.0  # a replay in progress stops; its segment position is kept
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=10)
        drain_until = time.monotonic() + self.settings.gateway_drain_timeout_s
        if self.ready:
            # Kafka is reachable: hand the spool over too, so a gateway that is not restarted leaves none.
            self._replay_until = drain_until
            self._replay()
        self._drain(max(0.0, drain_until - time.monotonic()))
        self.spool.seal()
        self._count_delivered()
        self._log_summary()

    def _drain(self, timeout_s: float) -> None:
        producer = self.producer
        left = producer.flush(timeout_s)
        if left:
            # Clicks still queued never reached Kafka: their purge reports put them in the spool.
            producer.purge(in_queue=True, in_flight=False)
            producer.poll(0)
            left = producer.flush(IN_FLIGHT_GRACE_S)
        if left:
            producer.purge(in_queue=True, in_flight=True)
            producer.poll(0)

    def _log_summary(self) -> None:
        sample = self.metrics.registry.get_sample_value
        names = ("clicks_produced", "clicks_spooled", "clicks_replayed", "delivery_failures")
        log.log(
            logging.ERROR if self.lost else logging.INFO,
            "clicks closed: produced=%d spooled=%d replayed=%d delivery_failures=%d lost=%d",
            *(int(sample(f"clickmuncher_gateway_{name}_total") or 0) for name in names),
            self.lost,
        )

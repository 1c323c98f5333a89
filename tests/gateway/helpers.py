"""Helpers for the gateway tests: settings, reading a topic back, polling without timed asserts."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp
from confluent_kafka import Consumer, TopicPartition

from clickmuncher.kafka.admin import ensure_topics
from clickmuncher.settings import Settings
from gateway.app import Gateway
from gateway.clicks import ClickSink
from gateway.server import GatewayServer, bound_port, listen
from tests import kafka_clients

SIGNING_KEY = "test-signing-key-of-at-least-32-bytes"
OLD_SIGNING_KEY = "retired-test-key-of-at-least-32-bytes"
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
        "gateway_metrics_port": 0,
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


class GatewayClient:
    """A gateway served on a free port of 127.0.0.1 (the production server, in this process) and an HTTP
    session to it; :meth:`close` stops it as SIGTERM does (so the topic then holds every click)."""

    def __init__(self, settings: Settings, sink: ClickSink | None = None) -> None:
        self.gateway = Gateway(settings, sink)
        self.metrics = self.gateway.metrics
        self.sink = self.gateway.sink
        self.base = ""
        self.port = 0
        self._runner: Any = None
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> GatewayClient:
        await self.gateway.start()
        server = GatewayServer(self.gateway.handle, self.metrics.http, self.gateway.settings)
        self._runner = await listen(server, "127.0.0.1", 0)
        self.port = bound_port(self._runner)
        self.base = f"http://127.0.0.1:{self.port}"
        self._session = aiohttp.ClientSession()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        assert self._session is not None, "not started"
        kwargs.setdefault("allow_redirects", False)
        return self._session.request(method, self.base + path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def head(self, path: str, **kwargs: Any) -> Any:
        return self.request("HEAD", path, **kwargs)

    def sample(self, name: str, labels: dict[str, str] | None = None) -> float:
        return self.metrics.registry.get_sample_value(name, labels or {}) or 0.0

    async def close(self) -> None:
        if self._session is None:
            return
        session, self._session = self._session, None
        await session.close()
        await self._runner.cleanup()
        await self.gateway.close()

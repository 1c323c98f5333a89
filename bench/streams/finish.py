"""The finish line of the window-emitting peers: every click counted in a window record visible on the output
topic, and every count exact.

A peer's run ends when the latest records per key on its output topic add up to every click of the load; the
records are then compared with the load's expected counts (bench/streams/load.py ``--expected``), and any
difference fails the run.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from confluent_kafka import Consumer

from bench.common import kafka
from bench.streams.load import SENTINEL_URL
from clickmuncher.kafka.config import consumer_config

DEADLINE_S = 900.0


class ExactnessError(AssertionError):
    """A peer's window records disagree with the load: the run's figures are not to be trusted."""


def read_expected(path: Path) -> dict[str, int]:
    """``{"<window_start_ms>:<url>": clicks}`` as load.py wrote it."""
    return json.loads(path.read_text())  # type: ignore[no-any-return]


class WindowWatch:
    """Reads one output topic from its start (committed records only) and keeps the latest record per key.

    Subscribe it before the peer starts, so that no second is lost to the group join after the peer's end.
    """

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        reading = {
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
        group = f"bench-watch-{uuid.uuid4().hex[:8]}"
        self.consumer = Consumer(consumer_config(kafka(bootstrap), group, reading))
        self.consumer.subscribe([topic])
        self.latest: dict[str, int] = {}
        self.records = 0

    def wait(self, clicks: int, check_alive: Callable[[], None]) -> float:
        """Consumes until the latest counts (sentinels left out) add up to ``clicks``; returns that moment
        (``time.time()``).

        ``check_alive`` raises when the peer has died; after ``DEADLINE_S`` the run fails."""
        deadline = time.monotonic() + DEADLINE_S
        counted = 0
        while counted < clicks:
            check_alive()
            if time.monotonic() > deadline:
                raise ExactnessError(f"{self.topic}: {counted} of {clicks} clicks after {DEADLINE_S:.0f} s")
            for message in self.consumer.consume(10_000, 0.1):
                key, value = message.key(), message.value()
                if message.error() or key is None or value is None:
                    continue
                self.records += 1
                name, clicks_now = key.decode(), json.loads(value)["clicks"]
                if SENTINEL_URL not in name:
                    counted += clicks_now - self.latest.get(name, 0)
                self.latest[name] = clicks_now
        return time.time()

    def verify(self, expected: dict[str, int]) -> None:
        """Raises ExactnessError unless every expected window has its exact count and nothing else was
        emitted (the sentinels' own windows excepted: nothing ever closes them for some peers)."""
        emitted = {key: count for key, count in self.latest.items() if SENTINEL_URL not in key}
        wrong = {k: (count, emitted.get(k)) for k, count in expected.items() if emitted.get(k) != count}
        extra = sorted(set(emitted) - set(expected))
        if wrong or extra:
            sample = list(wrong.items())[:3]
            raise ExactnessError(
                f"{self.topic}: {len(wrong)} windows wrong or missing (expected, got), e.g. {sample}; "
                f"{len(extra)} unexpected, e.g. {extra[:3]}"
            )

    def close(self) -> None:
        self.consumer.close()

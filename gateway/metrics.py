"""The gateway's Prometheus metrics, in one registry per application (so tests can run several)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

PREFIX = "clickmuncher_gateway"


@dataclass(frozen=True, slots=True)
class Metrics:
    registry: CollectorRegistry
    clicks: Counter
    rejected: Counter
    produced: Counter
    delivery_failures: Counter
    spooled: Counter
    replayed: Counter
    lost: Counter
    queue_length: Gauge
    kafka_up: Gauge

    @classmethod
    def create(cls) -> Metrics:
        reg = CollectorRegistry()
        return cls(
            registry=reg,
            clicks=Counter(f"{PREFIX}_clicks", "Redirects counted (GET answered 302)", registry=reg),
            rejected=Counter(f"{PREFIX}_rejected", "Requests refused, by rule", ["reason"], registry=reg),
            produced=Counter(f"{PREFIX}_clicks_produced", "Clicks acknowledged by Kafka", registry=reg),
            delivery_failures=Counter(
                f"{PREFIX}_delivery_failures", "Delivery reports with an error", registry=reg
            ),
            spooled=Counter(f"{PREFIX}_clicks_spooled", "Clicks written to the disk spool", registry=reg),
            replayed=Counter(
                f"{PREFIX}_clicks_replayed", "Spooled clicks handed back to the producer", registry=reg
            ),
            lost=Counter(
                f"{PREFIX}_clicks_lost", "Clicks neither produced nor spooled (no spool)", registry=reg
            ),
            queue_length=Gauge(
                f"{PREFIX}_producer_queue_length", "Clicks in the producer awaiting delivery", registry=reg
            ),
            kafka_up=Gauge(f"{PREFIX}_kafka_up", "1 while the producer reaches a broker", registry=reg),
        )

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric."""
        return generate_latest(self.registry)

"""The sink's Prometheus metrics, in a registry of their own (several sinks can live in one test process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

PREFIX = "clickmuncher_sink"


class SinkMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.rows_written = Counter(f"{PREFIX}_rows_written", "Window rows upserted", registry=r)
        self.batches = Counter(f"{PREFIX}_batches", "Batches committed to the database", registry=r)
        self.batch_latency = Histogram(
            f"{PREFIX}_batch_latency_seconds",
            "From a batch's first write attempt to its Kafka commit",
            registry=r,
        )
        self.db_errors = Counter(
            f"{PREFIX}_db_errors", "Failed database transactions retried (transient errors)", registry=r
        )
        self.dead_letters = Counter(
            f"{PREFIX}_dead_letters",
            "Records sent to the dead topic: malformed, or refused by the database",
            registry=r,
        )
        self.refused_windows = Counter(
            f"{PREFIX}_refused_windows",
            "Windows the database refused on their own (permanent errors), sent to the dead topic",
            registry=r,
        )
        self.split_batches = Counter(
            f"{PREFIX}_split_batches", "Batches split to find the windows the database refused", registry=r
        )
        self.kafka_commit_errors = Counter(
            f"{PREFIX}_kafka_commit_errors",
            "Failed Kafka offset commits (the DB keeps the position)",
            registry=r,
        )
        self.fenced_batches = Counter(
            f"{PREFIX}_fenced_batches", "Batches dropped because another sink owns the partition", registry=r
        )
        self.consumer_lag = Gauge(
            f"{PREFIX}_consumer_lag_messages", "High watermark minus next offset", ["partition"], registry=r
        )

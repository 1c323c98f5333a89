"""The api's Prometheus metrics, in one registry per application (tests run several)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

PREFIX = "clickmuncher_api"
LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass(frozen=True, slots=True)
class ApiMetrics:
    registry: CollectorRegistry
    requests: Counter
    latency: Histogram
    db_errors: Counter
    live_records: Counter
    live_skipped: Counter
    live_pruned: Counter
    live_entries: Gauge
    live_up: Gauge

    @classmethod
    def create(cls) -> ApiMetrics:
        reg = CollectorRegistry()
        return cls(
            registry=reg,
            requests=Counter(
                f"{PREFIX}_requests",
                "HTTP requests answered, by route and status",
                ["route", "status"],
                registry=reg,
            ),
            latency=Histogram(
                f"{PREFIX}_request_seconds",
                "Time to answer an API request, by route",
                ["route"],
                buckets=LATENCY_BUCKETS_S,
                registry=reg,
            ),
            db_errors=Counter(f"{PREFIX}_db_errors", "Requests that failed on the database", registry=reg),
            live_records=Counter(
                f"{PREFIX}_live_records",
                "Live-topic records read: stored, older than the held count, expired, skipped (bad)",
                ["outcome"],
                registry=reg,
            ),
            live_skipped=Counter(
                f"{PREFIX}_live_skipped",
                "Live-topic records skipped as malformed, by reason",
                ["reason"],
                registry=reg,
            ),
            live_pruned=Counter(
                f"{PREFIX}_live_pruned",
                "Live entries dropped: final in the database, past retention, over capacity, tombstoned",
                ["cause"],
                registry=reg,
            ),
            live_entries=Gauge(f"{PREFIX}_live_entries", "Live (url, window) entries held", registry=reg),
            live_up=Gauge(
                f"{PREFIX}_live_up", "1 while the live topic's partitions are assigned and read", registry=reg
            ),
        )

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

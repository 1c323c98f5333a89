"""The gateway's Prometheus metrics, in one registry per gateway (so tests can run several).

Two kinds: what the event loop counts on every request (:class:`HttpTally`: plain integers, no lock, read
at scrape time by a collector on the same loop; a ``prometheus_client`` counter takes a lock per increment),
and what the producer's and the spool's threads count (``prometheus_client`` counters and gauges).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from clickmuncher.records import CLASSES

PREFIX = "clickmuncher_gateway"
LOSS_REASONS = ("spool_full", "spool_unwritable")
LATENCY_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass(slots=True)
class HttpTally:
    """The request path's counts; touched by the event loop's thread only."""

    clicks: int = 0
    by_class: list[int] = field(default_factory=lambda: [0] * len(CLASSES))  # indexed as CLASSES
    rejected: dict[str, int] = field(default_factory=dict)  # by reason
    responses: dict[int, int] = field(default_factory=dict)  # by status
    latency_counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS_S) + 1))
    latency_sum_s: float = 0.0
    malformed: int = 0
    header_timeouts: int = 0
    connections_refused: int = 0
    connections_open: int = 0

    def observe(self, status: int, seconds: float) -> None:
        """One response sent: its status, and the time from its request's head parsed to its last byte."""
        self.responses[status] = self.responses.get(status, 0) + 1
        self.latency_counts[bisect_left(LATENCY_BUCKETS_S, seconds)] += 1
        self.latency_sum_s += seconds

    def reject(self, reason: str) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1


class _TallyCollector(Collector):
    def __init__(self, tally: HttpTally) -> None:
        self.tally = tally

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily | HistogramMetricFamily]:
        t = self.tally
        yield _counter("clicks", "Redirects counted (GET answered 302)", t.clicks)
        by_class = dict(zip(CLASSES, t.by_class, strict=True))
        yield _counter("clicks_by_class", "Redirects counted, by click class", by_class, "cls")
        yield _counter("rejected", "Requests refused, by rule", t.rejected, "reason")
        yield _counter("responses", "Responses sent, by HTTP status", t.responses, "status")
        yield _counter("malformed_requests", "Requests that were not valid HTTP (answered 400)", t.malformed)
        yield _counter("header_timeouts", "Connections closed: no request head in time", t.header_timeouts)
        yield _counter("connections_refused", "Connections closed at once: cap", t.connections_refused)
        yield GaugeMetricFamily(f"{PREFIX}_connections_open", "Open client connections", t.connections_open)
        cumulative, buckets = 0, []
        for bound, count in zip((*map(str, LATENCY_BUCKETS_S), "+Inf"), t.latency_counts, strict=True):
            cumulative += count
            buckets.append((bound, float(cumulative)))
        yield HistogramMetricFamily(
            f"{PREFIX}_request_duration_seconds",
            "From a request's head parsed to its response written",
            buckets=buckets,
            sum_value=t.latency_sum_s,
        )


def _counter(
    name: str, doc: str, value: int | dict[str, int] | dict[int, int], label: str = ""
) -> CounterMetricFamily:
    if isinstance(value, int):
        return CounterMetricFamily(f"{PREFIX}_{name}", doc, value=value)
    family = CounterMetricFamily(f"{PREFIX}_{name}", doc, labels=[label])
    for key, count in sorted(value.items()):
        family.add_metric([str(key)], count)
    return family


@dataclass(frozen=True, slots=True)
class Metrics:
    registry: CollectorRegistry
    http: HttpTally
    produced: Counter
    delivery_failures: Counter
    spooled: Counter
    replayed: Counter
    lost: Counter
    queue_length: Gauge
    kafka_up: Gauge
    spool_bytes: Gauge
    spool_segments: Gauge
    spool_oldest_age: Gauge
    spool_max_bytes: Gauge

    @classmethod
    def create(cls) -> Metrics:
        reg = CollectorRegistry()
        http = HttpTally()
        reg.register(_TallyCollector(http))

        def gauge(name: str, doc: str) -> Gauge:
            return Gauge(f"{PREFIX}_{name}", doc, registry=reg)

        def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
            return Counter(f"{PREFIX}_{name}", doc, labels, registry=reg)

        lost = counter("clicks_lost", "Clicks redirected but neither produced nor spooled", ("reason",))
        for reason in LOSS_REASONS:
            lost.labels(reason)  # shown as 0 from the start
        return cls(
            registry=reg,
            http=http,
            produced=counter("clicks_produced", "Clicks acknowledged by Kafka"),
            delivery_failures=counter("delivery_failures", "Delivery reports with an error"),
            spooled=counter("clicks_spooled", "Clicks written to the disk spool"),
            replayed=counter("clicks_replayed", "Spooled clicks handed back to the producer"),
            lost=lost,
            queue_length=gauge("producer_queue_length", "Clicks in the producer awaiting delivery"),
            kafka_up=gauge("kafka_up", "1 while the producer reaches a broker"),
            spool_bytes=gauge("spool_bytes", "Bytes of spooled clicks not yet handed back to the producer"),
            spool_segments=gauge("spool_segments", "Spool segment files, every process's"),
            spool_oldest_age=gauge("spool_oldest_click_age_seconds", "Age of the oldest spooled click, or 0"),
            spool_max_bytes=gauge("spool_max_bytes", "The spool's size cap"),
        )

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric."""
        return generate_latest(self.registry)

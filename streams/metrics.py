"""Prometheus metrics of the streams worker (served on ``CLICKMUNCHER_STREAMS_METRICS_PORT`` with the health
endpoints, clickmuncher/health.py; 0: off)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge


class StreamsMetrics:
    """One registry per worker, so tests can build several engines in one process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.events = Counter("clickmuncher_streams_events", "Click events processed", registry=r)
        self.redelivered = Counter(
            "clickmuncher_streams_redelivered", "Events already handled before a restart", registry=r
        )
        self.windows_opened = Counter(
            "clickmuncher_streams_windows_opened", "Click windows (URL, window) created", registry=r
        )
        self.windows_closed = Counter(
            "clickmuncher_streams_windows_closed", "Click windows emitted on close", registry=r
        )
        self.windows_reemitted = Counter(
            "clickmuncher_streams_windows_reemitted", "Click windows re-emitted for late clicks", registry=r
        )
        self.windows_open = Gauge(
            "clickmuncher_streams_windows_open", "Open click windows per partition", ["partition"], registry=r
        )
        self.late = Counter(
            "clickmuncher_streams_late", "Clicks beyond late retention, written to clicks-late", registry=r
        )
        self.dead = Counter(
            "clickmuncher_streams_dead_lettered", "Clicks written to clicks-dead", ["reason"], registry=r
        )
        self.replay_skipped = Counter(
            "clickmuncher_streams_replay_skipped", "Clicks of windows before a replay's start", registry=r
        )
        self.gaps = Counter(
            "clickmuncher_streams_offset_gaps",
            "Offset gaps; the consumer seeks back",
            registry=r,
        )
        self.offsets_lost = Counter(
            "clickmuncher_streams_offsets_lost",
            "Clicks deleted by retention before they were counted (a gap below the log start)",
            registry=r,
        )
        self.live_published = Counter(
            "clickmuncher_streams_live_published", "Live counts of open windows sent", registry=r
        )
        self.live_dropped = Counter(
            "clickmuncher_streams_live_dropped", "Live counts dropped (producer queue full)", registry=r
        )
        self.changelog_writes = Counter(
            "clickmuncher_streams_changelog_writes", "Table writes and deletes", registry=r
        )
        self.watermark_lag = Gauge(
            "clickmuncher_streams_watermark_lag_seconds",
            "Wall clock minus the partition's watermark",
            ["partition"],
            registry=r,
        )


@dataclass
class RunStats:
    """Totals for the worker's summary line: events, changelog messages, and the busy span."""

    events: int = 0
    changelog_writes: int = 0
    first_mono: float = 0.0
    last_mono: float = 0.0

    def note_events(self, count: int) -> None:
        if not count:
            return
        now = time.monotonic()
        if not self.events:
            self.first_mono = now
        self.events += count
        self.last_mono = now

    def summary(self) -> str:
        span_s = max(self.last_mono - self.first_mono, 1e-9)
        per_click = self.changelog_writes / self.events if self.events else 0.0
        return (
            f"events={self.events} events_per_s={self.events / span_s:.0f} "
            f"changelog_writes={self.changelog_writes} changelog_per_click={per_click:.3f}"
        )

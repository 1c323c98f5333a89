"""The spool as the click sink uses it: appends that are counted, the failure /healthz reports, lost clicks,
and the spool's gauges.

A click that needs the spool and cannot get there (disk full, unwritable, the size cap) is *lost*: counted in
``clickmuncher_gateway_clicks_lost_total{reason}``, logged (rate-limited), and the gateway reports itself
unhealthy until a spool write succeeds again or the spool is no longer needed.
"""

from __future__ import annotations

import logging
import time

from clickmuncher.records import ClickEvent
from gateway.metrics import LOSS_REASONS, Metrics
from gateway.ratelimit import RateLimitedLog
from gateway.spool import Spool, SpoolFull, prepare, remove_orphans

log = logging.getLogger("gateway.clicks")


class SpoolKeeper:
    """Wraps a :class:`Spool`; called under the click sink's lock (or from its one pump thread)."""

    def __init__(self, spool: Spool, metrics: Metrics) -> None:
        self.spool = spool
        self.metrics = metrics
        self.failure: str | None = None  # why the last click that needed the spool could not go there
        self._loss_reason = LOSS_REASONS[0]
        self._log_lost = RateLimitedLog(log, logging.ERROR)
        self._oldest_ts_ms: int | None = None  # the oldest spooled click, as of the last scan

    def start(self) -> None:
        """Raises :class:`ConfigError` when the spool directory cannot be written."""
        prepare(self.spool.directory)
        remove_orphans(self.spool.directory)
        self.metrics.spool_max_bytes.set(self.spool.max_bytes)
        self.metrics.spool_oldest_age.set_function(self._oldest_age_s)
        self.scan()

    def keep(self, event: ClickEvent) -> bool:
        """Appends ``event`` to the spool; False (and :attr:`failure` set) when the spool refuses it."""
        try:
            self.spool.append([event])
        except SpoolFull as e:
            self._failed("spool_full", f"the spool is full ({e}); see CLICKMUNCHER_GATEWAY_SPOOL_MAX_BYTES")
            return False
        except OSError as e:
            self._failed("spool_unwritable", f"the spool cannot be written ({e})")
            return False
        if self.failure is not None:
            log.warning("the spool takes clicks again")
            self.failure = None
        self.metrics.spooled.inc()
        return True

    def _failed(self, reason: str, detail: str) -> None:
        if self.failure is None:
            log.error("%s: clicks are lost until it takes them again; /healthz answers 503", detail)
        self.failure = detail
        self._loss_reason = reason

    def lose(self, event: ClickEvent) -> None:
        """Counts ``event`` lost: nowhere left to keep it, though its redirect succeeded (SPEC §1)."""
        self.metrics.lost.labels(self._loss_reason).inc()
        self._log_lost("click lost (%s): %s", self.failure, event.url)

    def not_needed(self) -> None:
        """The spool is drained and clicks go to the producer again: a past failure no longer matters."""
        self.failure = None

    @property
    def lost(self) -> int:
        """Clicks that got a redirect but were neither produced nor spooled."""
        sample = self.metrics.registry.get_sample_value
        name = "clickmuncher_gateway_clicks_lost_total"
        return int(sum(sample(name, {"reason": reason}) or 0 for reason in LOSS_REASONS))

    def scan(self) -> None:
        """Refreshes the gauges and the usage the size cap checks (every process's segments)."""
        try:
            stats = self.spool.refresh()
        except OSError as e:
            log.warning("spool: cannot scan %s (%s)", self.spool.directory, e)
            return
        self.metrics.spool_bytes.set(stats.bytes)
        self.metrics.spool_segments.set(stats.segments)
        self._oldest_ts_ms = stats.oldest_ts_ms

    def _oldest_age_s(self) -> float:
        oldest = self._oldest_ts_ms
        return 0.0 if oldest is None else max(0.0, time.time() - oldest / 1000)

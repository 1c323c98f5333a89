"""The sink service: ``clickmuncher sink`` and ``python -m sinks``."""

from __future__ import annotations

import logging
import signal
import threading
import time
from types import FrameType

from clickmuncher.health import ClusterProbe, serve
from clickmuncher.logs import log_start, setup_logging
from clickmuncher.settings import SinkSettings
from sinks.health import SinkHealth
from sinks.metrics import SinkMetrics
from sinks.sink import open_sink

log = logging.getLogger("sinks")
METRICS_PORT = "CLICKMUNCHER_SINK_METRICS_PORT"


def run(settings: SinkSettings, **options: object) -> None:
    """Runs the sink until SIGTERM or SIGINT, then finishes the batch in hand and logs one summary line."""
    setup_logging()
    log_start("sink", settings, **options)
    stop = threading.Event()
    _request_stop_on_signals(stop)
    metrics = SinkMetrics()
    health = SinkHealth(ClusterProbe(settings.kafka))
    serve(settings.sink_metrics_port, metrics.registry, health.alive, health.ready, METRICS_PORT)
    began = time.monotonic()
    with open_sink(settings, metrics=metrics, stop=stop) as sink:
        health.sink = sink
        summary = sink.run()
    log.info("sink stopped: %s uptime_s=%.0f", summary.line(), time.monotonic() - began)


def _request_stop_on_signals(stop: threading.Event) -> None:
    def handler(signum: int, _frame: FrameType | None) -> None:
        stop.set()  # only a request: the loop finishes its batch and closes the consumer

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, handler)


def main() -> None:
    """``python -m sinks``: the same as ``clickmuncher sink``."""
    from sinks.cli import sink_command

    sink_command.main(prog_name="python -m sinks")


if __name__ == "__main__":
    main()

"""``clickmuncher streams`` and ``python -m streams``: one Faust worker (several share partitions)."""

from __future__ import annotations

import gc
import logging
import shutil
import signal
from pathlib import Path
from types import FrameType

from clickmuncher.health import serve
from clickmuncher.kafka.check import check_cluster, ensure_topics_at_start
from clickmuncher.kafka.topics import ensure_service_topics
from clickmuncher.logs import FORMAT, log_start, setup_logging
from clickmuncher.settings import StreamsSettings
from streams.app import Worker, state_path
from streams.metrics import StreamsMetrics
from streams.replay import check_no_pending_replay

# Faust's worker replaces the logging set-up at start: our lines at INFO, Faust's and Kafka's at WARNING.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": FORMAT}},
    "handlers": {
        "stderr": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr", "formatter": "plain"}
    },
    "root": {"level": "INFO", "handlers": ["stderr"]},
    "loggers": {name: {"level": "WARNING"} for name in ("faust", "mode", "aiokafka", "kafka", "rocksdict")},
}


GC_GEN0_THRESHOLD = 50_000
METRICS_PORT = "CLICKMUNCHER_STREAMS_METRICS_PORT"


def ensure_streams_topics(settings: StreamsSettings) -> list[str]:
    """The topics this worker reads and writes, and the table's changelog: created when missing, and
    refused (``MisconfiguredTopic``, one line) when one differs from its declaration.

    The changelog is created here, before Faust starts, rather than by Faust's own declaration: workers
    starting together would each create it, and one whose metadata does not show it yet stops on a
    partition-count mismatch.
    """
    return ensure_service_topics(settings, "streams")


def _exit_on_signals_until_faust_runs() -> None:
    """SIGTERM or SIGINT during the start (the cluster check, topics, the worker being built) end it at once
    with exit code 0, as a stop does: nothing is consumed yet. Faust's worker installs its own handlers."""

    def stop(signum: int, frame: FrameType | None) -> None:
        logging.getLogger("streams").info("%s before the worker ran: stopped", signal.Signals(signum).name)
        raise SystemExit(0)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)


def table_dir(settings: StreamsSettings) -> Path:
    return state_path(settings)


def run(settings: StreamsSettings, **options: object) -> None:
    """Runs the worker until SIGINT/SIGTERM (Faust's worker drains and stops cleanly)."""
    from streams import faust_glue

    setup_logging()
    log_start("streams", settings)
    _exit_on_signals_until_faust_runs()
    # The local store is a cache of the changelog: after a kill -9 it may hold writes whose changelog
    # records were never sent, so each start rebuilds it from the changelog (see docs/streams.md).
    shutil.rmtree(table_dir(settings), ignore_errors=True)
    table_dir(settings).mkdir(parents=True, exist_ok=True)
    # The cluster first (a wrong password or CA is one line), then a half-done replay must be finished before
    # any topic is touched, then the topics.
    cluster = check_cluster(settings.kafka)
    check_no_pending_replay(settings)
    ensure_topics_at_start(settings, "streams", cluster)
    metrics = StreamsMetrics()
    # A few short-lived objects per click (messages, states, records): with the default threshold (700
    # allocations) the cyclic collector ran thousands of times a second.
    gc.set_threshold(GC_GEN0_THRESHOLD)
    streams_worker = Worker(settings, metrics)
    health = streams_worker.health
    serve(settings.streams_metrics_port, metrics.registry, health.alive, health.ready, METRICS_PORT)
    worker = faust_glue.StreamsWorker(
        streams_worker.app, loglevel=logging.INFO, quiet=True, redirect_stdouts=False, logging_config=LOGGING
    )
    streams_worker.prepare()
    try:
        worker.execute_from_commandline()
    finally:
        streams_worker.close()

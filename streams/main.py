"""``clickmuncher streams`` and ``python -m streams``: one Faust worker (several share partitions)."""

from __future__ import annotations

import gc
import logging
import shutil
from pathlib import Path

from clickmuncher.kafka.admin import COMPACTED, ensure_topics
from clickmuncher.logs import FORMAT, log_start, setup_logging
from clickmuncher.settings import StreamsSettings
from streams.app import Worker, changelog_topic, state_path
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


def ensure_streams_topics(settings: StreamsSettings) -> list[str]:
    """The topics this worker reads and writes, and the table's changelog.

    The changelog is created here, before Faust starts, rather than by Faust's own declaration: workers
    starting together would each create it, and one whose metadata does not show it yet stops on a
    partition-count mismatch.
    """
    topics = {
        settings.clicks_topic: {},
        changelog_topic(settings): COMPACTED,
        settings.windows_topic: COMPACTED,
        settings.clicks_dead_topic: {},
        settings.clicks_late_topic: {},
        settings.live_topic: COMPACTED,
    }
    return ensure_topics(settings.kafka_bootstrap, topics, settings.partitions)


def table_dir(settings: StreamsSettings) -> Path:
    return state_path(settings)


def run(settings: StreamsSettings, **options: object) -> None:
    """Runs the worker until SIGINT/SIGTERM (Faust's worker drains and stops cleanly)."""
    from streams import faust_glue

    setup_logging()
    # The local store is a cache of the changelog: after a kill -9 it may hold writes whose changelog
    # records were never sent, so each start rebuilds it from the changelog (see docs/streams.md).
    shutil.rmtree(table_dir(settings), ignore_errors=True)
    table_dir(settings).mkdir(parents=True, exist_ok=True)
    check_no_pending_replay(settings)  # before any topic is touched: a half-done replay must be finished
    ensure_streams_topics(settings)
    metrics = StreamsMetrics()
    metrics.serve(settings.streams_metrics_port)
    # A few short-lived objects per click (messages, states, records): with the default threshold (700
    # allocations) the cyclic collector ran thousands of times a second.
    gc.set_threshold(GC_GEN0_THRESHOLD)
    streams_worker = Worker(settings, metrics)
    log_start("streams", settings)
    worker = faust_glue.StreamsWorker(
        streams_worker.app, loglevel=logging.INFO, quiet=True, redirect_stdouts=False, logging_config=LOGGING
    )
    streams_worker.prepare()
    try:
        worker.execute_from_commandline()
    finally:
        streams_worker.close()

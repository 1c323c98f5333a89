"""``clickmuncher streams`` and ``python -m streams``: one Faust worker (several share partitions)."""

from __future__ import annotations

import gc
import logging
import shutil
import signal
from pathlib import Path
from types import FrameType

from clickmuncher.health import serve
from clickmuncher.kafka.admin import topic_id
from clickmuncher.kafka.check import check_cluster, ensure_topics_at_start
from clickmuncher.kafka.topics import changelog_topic, ensure_service_topics
from clickmuncher.logs import FORMAT, log_start, setup_logging
from clickmuncher.settings import StreamsSettings
from streams.app import Worker, state_path, store_on_disk
from streams.kept_store import CleanStop, take_marker, why_rebuilt, write_marker
from streams.metrics import StreamsMetrics
from streams.ports import wall_ms
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


log = logging.getLogger("streams")
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


def run(settings: StreamsSettings, **options: object) -> None:
    """Runs the worker until SIGINT/SIGTERM (Faust's worker drains and stops cleanly)."""
    from streams import faust_glue

    setup_logging()
    log_start("streams", settings)
    _exit_on_signals_until_faust_runs()
    store_dir = state_path(settings)
    last_stop = take_marker(store_dir)  # gone at once: a crash of this run must not leave it behind
    # The cluster first (a wrong password or CA is one line), then a half-done replay must be finished before
    # any topic is touched, then the topics.
    cluster = check_cluster(settings.kafka)
    check_no_pending_replay(settings)
    ensure_topics_at_start(settings, "streams", cluster)
    changelog = changelog_topic(settings)
    changelog_id = topic_id(settings.kafka, changelog)
    _prepare_store(settings, store_dir, last_stop, changelog, changelog_id)
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
        if changelog_id is not None and streams_worker.store_agrees_with_changelog():
            write_marker(store_dir, CleanStop(changelog, changelog_id, wall_ms()))
            log.info("local store kept for the next start (clean stop)")


def _prepare_store(
    settings: StreamsSettings,
    store_dir: Path,
    last_stop: CleanStop | None,
    changelog: str,
    changelog_id: str | None,
) -> None:
    """Keeps the local store of a clean stop, else deletes it: after a kill -9 it may hold writes whose
    changelog records were never sent, so it is rebuilt from the changelog (streams/kept_store.py)."""
    now_ms = wall_ms()
    reason = why_rebuilt(last_stop, changelog, changelog_id, now_ms)
    if reason is None and store_on_disk(settings):
        assert last_stop is not None
        ago_s = (now_ms - last_stop.stopped_ms) / 1000
        log.info("local store kept (clean stop %.0f s ago): recovery reads the changelog's tail", ago_s)
    else:
        if store_dir.exists():
            log.info("local store rebuilt from the changelog: %s", reason or "memory store")
        shutil.rmtree(store_dir, ignore_errors=True)
    store_dir.mkdir(parents=True, exist_ok=True)

"""Entry point: ``clickmuncher gateway`` / ``python -m gateway``; one or N processes sharing one port."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from types import FrameType

from aiohttp import web

from clickmuncher.kafka.check import check_at_start
from clickmuncher.logs import log_start, setup_logging
from clickmuncher.settings import ConfigError, Settings
from gateway.app import create_app
from gateway.guard import Guard

log = logging.getLogger("gateway")
SHUTDOWN_TIMEOUT_S = 10.0


def run(settings: Settings, host: str = "127.0.0.1", port: int = 8080, workers: int = 1) -> None:
    """Serves until SIGTERM or SIGINT; ``workers`` > 1 processes share the port (SO_REUSEPORT).

    Raises :class:`ConfigError` before anything starts when the configuration is unusable.
    """
    if workers < 1:
        raise ConfigError("--workers must be at least 1")
    Guard.from_settings(settings)  # fail fast, in the parent, with a one-line reason
    setup_logging()
    log_start("gateway", settings, host=host, port=port, workers=workers)
    check_at_start(settings, "gateway")  # once, in the parent: a wrong password or CA ends it in one line
    if workers == 1:
        serve(settings, host, port, reuse_port=False)
        return
    _supervise(settings, host, port, workers)


def serve(settings: Settings, host: str, port: int, reuse_port: bool) -> None:
    """One gateway process: serves until SIGTERM/SIGINT, then drains and returns."""
    asyncio.run(_serve(settings, host, port, reuse_port))


async def _serve(settings: Settings, host: str, port: int, reuse_port: bool) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)  # only request the stop; the drain happens below
    runner = web.AppRunner(create_app(settings), shutdown_timeout=SHUTDOWN_TIMEOUT_S, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, reuse_port=reuse_port or None)
        try:
            await site.start()
        except OSError as e:
            raise ConfigError(f"cannot listen on {host}:{port}: {e.strerror}") from e
        log.info("gateway listening on http://%s:%d/", host, port)
        await stop.wait()
        log.info("gateway stopping: no new connections, finishing requests, draining clicks")
    finally:
        # Stops listening, waits for in-flight requests, then closes the click sink (flush, spool the rest).
        await runner.cleanup()
    log.info("gateway stopped")


def _worker(settings: Settings, host: str, port: int) -> None:
    setup_logging()
    try:
        serve(settings, host, port, reuse_port=True)
    except ConfigError as e:
        log.error("%s", e)
        raise SystemExit(2) from e


def _supervise(settings: Settings, host: str, port: int, workers: int) -> None:
    """Starts ``workers`` processes on one port and waits for them.

    SIGTERM/SIGINT are forwarded to every worker; a worker that fails stops the others too.
    """
    context = multiprocessing.get_context("spawn")
    processes: list[BaseProcess] = [
        context.Process(target=_worker, args=(settings, host, port), name=f"gateway-{i}")
        for i in range(workers)
    ]

    def forward(signum: int, frame: FrameType | None) -> None:
        _terminate(processes)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for process in processes:
        process.start()
    while running := [p for p in processes if p.exitcode is None]:
        wait([p.sentinel for p in running])
        if any(p.exitcode not in (None, 0) for p in processes):
            _terminate(processes)
    failed = [f"{p.name} (exit {p.exitcode})" for p in processes if p.exitcode != 0]
    if failed:
        raise ConfigError(f"gateway workers failed: {', '.join(failed)}")
    log.info("gateway workers stopped")


def _terminate(processes: list[BaseProcess]) -> None:
    for process in processes:
        if process.pid is not None and process.exitcode is None:
            os.kill(process.pid, signal.SIGTERM)

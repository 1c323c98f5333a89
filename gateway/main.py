"""Entry point: ``clickmuncher gateway`` / ``python -m gateway``; one or N processes sharing one port."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
from collections.abc import Callable
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from types import FrameType

from aiohttp import web

from clickmuncher.kafka.check import check_at_start
from clickmuncher.logs import log_start, setup_logging
from clickmuncher.settings import ConfigError, GatewaySettings
from gateway.app import Gateway, metrics_handler
from gateway.classes import crawler_list_version
from gateway.guard import Guard
from gateway.server import GatewayServer, listen
from gateway.spool import prepare
from gateway.visitors import visitor_key

log = logging.getLogger("gateway")
EXIT_CLICKS_LOST = 1


def check_settings(settings: GatewaySettings) -> None:
    """Raises :class:`ConfigError` for a configuration the gateway cannot work with (SPEC §5)."""
    Guard.from_settings(settings)  # an empty or malformed bootstrap is refused by the settings already
    visitor_key(settings)
    prepare(settings.state_dir / "spool")


def run(settings: GatewaySettings, host: str = "127.0.0.1", port: int = 8080, workers: int = 1) -> None:
    """Serves until SIGTERM or SIGINT; ``workers`` > 1 processes share the port (SO_REUSEPORT).

    Raises :class:`ConfigError` before anything starts when the configuration is unusable; exits with
    :data:`EXIT_CLICKS_LOST` when a click that got a redirect was lost (its spool could not be written).
    """
    if workers < 1:
        raise ConfigError("--workers must be at least 1")
    check_settings(settings)  # fail fast, in the parent, with a one-line reason
    setup_logging()
    log_start(
        "gateway",
        settings,
        host=host,
        port=port,
        workers=workers,
        event_loop=_loop_name(settings),
        crawler_list=crawler_list_version(),
    )
    check_at_start(settings, "gateway")  # once, in the parent: a wrong password or CA ends it in one line
    if workers == 1:
        if serve(settings, host, port, reuse_port=False):
            raise SystemExit(EXIT_CLICKS_LOST)
        return
    _supervise(settings, host, port, workers)


def serve(settings: GatewaySettings, host: str, port: int, reuse_port: bool, index: int = 0) -> int:
    """One gateway process (worker ``index``): serves until SIGTERM/SIGINT, then drains; returns the
    number of clicks lost."""
    with asyncio.Runner(loop_factory=loop_factory(settings)) as runner:
        return runner.run(_serve(settings, host, port, reuse_port, index))


def loop_factory(settings: GatewaySettings) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when it is installed and not switched off (docs/benchmarks.md: what it gives)."""
    if not settings.gateway_uvloop:
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def _loop_name(settings: GatewaySettings) -> str:
    return "asyncio" if loop_factory(settings) is None else "uvloop"


async def _serve(settings: GatewaySettings, host: str, port: int, reuse_port: bool, index: int) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)  # only request the stop; the drain happens below
    gateway = Gateway(settings)
    # Closed in reverse: stop listening and finish in-flight requests, then drain the clicks (flush the
    # producer, spool the rest, log the summary line), then the metrics listener.
    async with contextlib.AsyncExitStack() as stack:
        await _listen_metrics(stack, gateway, settings, host, index)
        await gateway.start()
        stack.push_async_callback(gateway.close)
        server = GatewayServer(gateway.handle, gateway.metrics.http, settings)
        stack.push_async_callback((await listen(server, host, port, reuse_port)).cleanup)
        log.info("gateway listening on http://%s:%d/", host, port)
        await stop.wait()
        log.info("gateway stopping: no new connections, finishing requests, draining clicks")
    log.info("gateway stopped")
    return gateway.sink.lost


async def _listen_metrics(
    stack: contextlib.AsyncExitStack, gateway: Gateway, settings: GatewaySettings, host: str, index: int
) -> None:
    if not settings.gateway_metrics_port:
        return
    port = settings.gateway_metrics_port + index
    server = web.Server(metrics_handler(gateway.metrics))
    runner = await listen(server, host, port, what="CLICKMUNCHER_GATEWAY_METRICS_PORT")
    stack.push_async_callback(runner.cleanup)
    log.info("metrics on http://%s:%d/metrics", host, port)


def _worker(settings: GatewaySettings, host: str, port: int, index: int) -> None:
    setup_logging()
    try:
        lost = serve(settings, host, port, reuse_port=True, index=index)
    except ConfigError as e:
        log.error("%s", e)
        raise SystemExit(2) from e
    if lost:
        raise SystemExit(EXIT_CLICKS_LOST)


def _supervise(settings: GatewaySettings, host: str, port: int, workers: int) -> None:
    """Starts ``workers`` processes on one port and waits for them.

    SIGTERM/SIGINT are forwarded to every worker; a worker that fails stops the others too.
    """
    context = multiprocessing.get_context("spawn")
    processes: list[BaseProcess] = [
        context.Process(target=_worker, args=(settings, host, port, i), name=f"gateway-{i}")
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
    if any(p.exitcode == EXIT_CLICKS_LOST for p in processes):
        log.error("gateway workers stopped; clicks were lost (see the workers' summary lines)")
        raise SystemExit(EXIT_CLICKS_LOST)
    failed = [f"{p.name} (exit {p.exitcode})" for p in processes if p.exitcode != 0]
    if failed:
        raise ConfigError(f"gateway workers failed: {', '.join(failed)}")
    log.info("gateway workers stopped")


def _terminate(processes: list[BaseProcess]) -> None:
    for process in processes:
        if process.pid is not None and process.exitcode is None:
            os.kill(process.pid, signal.SIGTERM)

"""Entry point: ``clickmuncher api`` / ``python -m api``."""

from __future__ import annotations

import asyncio
import logging
import os
import signal

from aiohttp import web

from api.app import create_app
from clickmuncher.kafka.check import check_at_start
from clickmuncher.logs import setup_logging
from clickmuncher.settings import ApiSettings, ConfigError

log = logging.getLogger("api")
SHUTDOWN_TIMEOUT_S = 10.0
# What the api reads; the start line shows these only (the database password masked), then the address it
# listens on (``--port``, else ``CLICKMUNCHER_API_PORT``).
OWN_SETTINGS = (
    "kafka_bootstrap",
    "kafka_security_protocol",
    "kafka_sasl_mechanism",
    "kafka_sasl_username",
    "kafka_ssl_ca_file",
    "database_url",
    "live_topic",
    "live_every_s",
    "grace_s",
    "api_live_retention_s",
    "api_live_max_entries",
)


def start_line(settings: ApiSettings, host: str, port: int) -> str:
    shown = {name: value for name, value in settings.masked().items() if name in OWN_SETTINGS}
    shown.update(host=host, port=str(port))
    return "api starting: " + " ".join(f"{name}={value}" for name, value in shown.items())


def run(settings: ApiSettings, host: str = "127.0.0.1", port: int | None = None) -> None:
    """Serves until SIGTERM or SIGINT, then finishes in-flight requests and stops the live reader."""
    setup_logging()
    listen_port = settings.api_port if port is None else port
    log.info(start_line(settings, host, listen_port))
    check_at_start(settings, "api")  # a wrong password or CA, no broker, a misconfigured live topic: one line
    asyncio.run(_serve(settings, host, listen_port))


async def _serve(settings: ApiSettings, host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)  # only request the stop; the cleanup below drains
    runner = web.AppRunner(create_app(settings), shutdown_timeout=SHUTDOWN_TIMEOUT_S, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as e:
            reason = os.strerror(e.errno) if e.errno else str(e)
            raise ConfigError(f"cannot listen on {host}:{port}: {reason}") from e
        log.info("api listening: the page at http://%s:%d/", host, port)
        await stop.wait()
        log.info("api stopping: finishing requests, closing the live reader")
    finally:
        await runner.cleanup()
    log.info("api stopped")

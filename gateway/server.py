"""The HTTP server: aiohttp's low-level server with the limits a public endpoint needs.

aiohttp alone gives an idle keep-alive connection an hour, a request head as long as it likes to arrive, no
cap on connections, and logs a traceback at ERROR for each malformed request. Here:

- a request head must be complete within ``CLICKMUNCHER_GATEWAY_HEADER_TIMEOUT_S`` of its first byte (of the
  connection's opening for the first one), or the connection is closed (slowloris; checked every second, or
  every quarter of the timeout if shorter);
- an idle keep-alive connection is closed after ``CLICKMUNCHER_GATEWAY_KEEPALIVE_TIMEOUT_S``;
- past ``CLICKMUNCHER_GATEWAY_MAX_CONNECTIONS`` open connections, a new one is closed at once;
- a malformed request is answered 400 and counted, with one DEBUG line;
- every response's status and latency are counted (:class:`~gateway.metrics.HttpTally`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_protocol import RequestHandler

from clickmuncher.settings import ConfigError, GatewaySettings
from gateway.metrics import HttpTally
from gateway.ratelimit import RateLimitedLog

log = logging.getLogger("gateway.http")
SHUTDOWN_TIMEOUT_S = 10.0
HEAD_END = b"\r\n\r\n"
Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


class GatewayServer(web.Server):
    """Makes a :class:`GatewayProtocol` per connection and keeps the limits they share.

    Head deadlines are checked by one timer per server, every :attr:`sweep_s` seconds, rather than a timer
    per request (creating and cancelling one cost 2 µs a request, 4 % of a redirect): a connection that
    misses its deadline is closed within ``sweep_s`` after it.
    """

    def __init__(self, handler: Handler, tally: HttpTally, settings: GatewaySettings, **kwargs: Any) -> None:
        kwargs.update(
            keepalive_timeout=settings.gateway_keepalive_timeout_s,
            access_log_class=_latency_recorder(tally),
            access_log=logging.getLogger("gateway.access"),  # never written: the recorder only counts
        )
        super().__init__(handler, **kwargs)
        self.tally = tally
        self.header_timeout_s = settings.gateway_header_timeout_s
        self.sweep_s = min(1.0, self.header_timeout_s / 4)
        self.max_connections = settings.gateway_max_connections
        self.log_refused = RateLimitedLog(log, logging.WARNING)
        self.loop = asyncio.get_running_loop()
        self.open: set[GatewayProtocol] = set()
        self._protocol_kwargs = kwargs
        self._sweeper: asyncio.TimerHandle | None = None

    def __call__(self) -> RequestHandler:
        return GatewayProtocol(self, loop=self.loop, **self._protocol_kwargs)

    def opened(self, connection: GatewayProtocol) -> None:
        self.open.add(connection)
        if self._sweeper is None:
            self._sweeper = self.loop.call_later(self.sweep_s, self._sweep)

    def _sweep(self) -> None:
        now = self.loop.time()
        for connection in [c for c in self.open if c.head_deadline is not None and c.head_deadline <= now]:
            connection.head_timed_out()
        self._sweeper = self.loop.call_later(self.sweep_s, self._sweep) if self.open else None

    def pre_shutdown(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        super().pre_shutdown()


class GatewayProtocol(RequestHandler):
    """One connection: aiohttp's handler plus the head deadline, the connection cap and quiet 400s."""

    def __init__(self, server: GatewayServer, **kwargs: Any) -> None:
        super().__init__(server, **kwargs)
        self._server = server
        self.head_deadline: float | None = None  # loop time by which the request head under way must end
        self._tail = b""  # the last bytes seen, in case a head's end is split across reads
        self._counted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        server = self._server
        tally = server.tally
        super().connection_made(transport)
        if tally.connections_open >= server.max_connections:
            tally.connections_refused += 1
            server.log_refused("%d connections open, the cap: refusing new ones", tally.connections_open)
            self.force_close()
            return
        tally.connections_open += 1
        self._counted = True
        self.head_deadline = server.loop.time() + server.header_timeout_s
        server.opened(self)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._counted:
            self._server.tally.connections_open -= 1
            self._server.open.discard(self)
            self._counted = False
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        buffer = self._tail + data
        end = buffer.rfind(HEAD_END)
        if end < 0:
            if self.head_deadline is None:  # the first bytes of a new request on an idle connection
                self.head_deadline = self._server.loop.time() + self._server.header_timeout_s
            self._tail = buffer[-3:]
        else:
            rest = buffer[end + len(HEAD_END) :]
            # a pipelined request's head has begun, or nothing is under way
            self.head_deadline = self._server.loop.time() + self._server.header_timeout_s if rest else None
            self._tail = rest[-3:]
        super().data_received(data)

    def head_timed_out(self) -> None:
        self.head_deadline = None
        self._server.tally.header_timeouts += 1
        log.debug("closing a connection from %s: no complete request head in time", self.peername)
        self.force_close()

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if status >= 500:  # our own bug: aiohttp's traceback at ERROR is what it deserves
            return super().handle_error(request, status, exc, message)
        self._server.tally.malformed += 1
        reason = " ".join((message or str(exc or "?")).split())[:200]  # one line, whatever the client sent
        log.debug("malformed request from %s: %s", request.remote, reason)
        response = web.Response(status=status, text=f"{status} malformed request\n")
        response.force_close()
        return response


def _latency_recorder(tally: HttpTally) -> type[AbstractAccessLogger]:
    class LatencyRecorder(AbstractAccessLogger):
        """aiohttp's access-log hook, called once a response is written: counts it, logs nothing."""

        def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
            tally.observe(response.status, time)

        @property
        def enabled(self) -> bool:
            return True

    return LatencyRecorder


async def listen(
    server: web.Server, host: str, port: int, reuse_port: bool = False, what: str = "--port"
) -> web.ServerRunner:
    """``server`` listening on ``host:port``; raises :class:`ConfigError` when the port cannot be bound."""
    runner = web.ServerRunner(server, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port, reuse_port=reuse_port or None).start()
    except OSError as e:
        await runner.cleanup()
        raise ConfigError(f"{what}: cannot listen on {host}:{port}: {e.strerror}") from e
    return runner


def bound_port(runner: web.ServerRunner) -> int:
    """The port a runner listens on (the one the kernel chose, for port 0)."""
    address = runner.addresses[0]
    return int(address[1])

"""The gateway's HTTP endpoints (SPEC §5): ``/`` redirects, ``/healthz``, ``/readyz``; ``/metrics`` on a
listener of its own (:func:`metrics_handler`).

One :class:`Gateway` per process: it validates the settings when built, opens the Kafka producer and spool in
:meth:`Gateway.start` and drains them in :meth:`Gateway.close`. Requests are served by aiohttp's low-level
server (:mod:`gateway.server`): no router, no middleware, one dictionary lookup per request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from aiohttp import web
from multidict import MultiMapping

from clickmuncher.records import ClickEvent
from clickmuncher.settings import GatewaySettings
from clickmuncher.urls import Rejected, bad_request
from gateway.classes import Classifier
from gateway.clicks import ClickSink
from gateway.clientaddr import client_address, parse_networks
from gateway.guard import Guard
from gateway.metrics import Metrics
from gateway.ratelimit import RateLimitedLog
from gateway.server import Handler
from gateway.visitors import VisitorIds, visitor_key

log = logging.getLogger("gateway.http")
NO_STORE = "private, no-store"  # a cached redirect is a lost click
Endpoint = Callable[[web.BaseRequest], web.Response]


class Gateway:
    """The endpoints and what they need; raises ConfigError when the open-redirect guard cannot be built."""

    def __init__(self, settings: GatewaySettings, sink: ClickSink | None = None) -> None:
        self.settings = settings
        self.guard = Guard.from_settings(settings)
        self.metrics = Metrics.create()
        self.sink = sink if sink is not None else ClickSink(settings, self.metrics)
        self.proxies = parse_networks(settings.trusted_proxies)
        self.visitors = VisitorIds(visitor_key(settings))
        self.classifier = Classifier(settings.gateway_agent_cache)
        self._accept = self.guard.cached(settings.gateway_verdict_cache)
        self._tally = self.metrics.http
        self._log_refused = RateLimitedLog(log, logging.INFO)
        self._endpoints: dict[str, Endpoint] = {
            "/": self.redirect,
            "/healthz": self.healthz,
            "/readyz": self.readyz,
        }

    async def start(self) -> None:
        """Opens the producer and the spool; raises ConfigError when the spool cannot be written."""
        await asyncio.to_thread(self.sink.start)

    async def close(self) -> None:
        """Flushes the producer, spools what Kafka did not take (SPEC §8) and logs the summary line."""
        await asyncio.to_thread(self.sink.close)

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        endpoint = self._endpoints.get(request.path)
        if endpoint is None:
            return web.Response(status=404, text="404 not found\n")
        if request.method not in ("GET", "HEAD"):
            return web.Response(status=405, text="405 method not allowed\n", headers={"Allow": "GET, HEAD"})
        return endpoint(request)

    def redirect(self, request: web.BaseRequest) -> web.Response:
        """``GET /?u=URL[&s=SIG]``: 302 to URL exactly as given, one click produced (with its class and
        visitor id, SPEC §12); ``HEAD``: not counted."""
        try:
            query = request.query
            url = _single(query, "u")
            if not url:
                raise bad_request("missing_u", "the u parameter is missing or empty")
            key = self._accept(url, _single(query, "s"))
        except Rejected as e:
            return self._refuse(request, e)
        if request.method == "GET":
            ts_ms = time.time_ns() // 1_000_000
            agent = request.headers.get("User-Agent", "")
            cls = self.classifier.classify(request.headers, agent)
            vid = self.visitors.vid(self._address(request), agent, ts_ms)
            self.sink.submit(ClickEvent(key, ts_ms, cls, vid))
            self._tally.clicks += 1
            self._tally.by_class[cls] += 1
        return web.Response(status=302, headers={"Location": url, "Cache-Control": NO_STORE})

    def _address(self, request: web.BaseRequest) -> str:
        if not self.proxies:
            return request.remote or "-"
        return client_address(request.remote, request.headers.getall("X-Forwarded-For", []), self.proxies)

    def _refuse(self, request: web.BaseRequest, rejected: Rejected) -> web.Response:
        self._tally.reject(rejected.reason)
        self._log_refused("refused %s from %s: %s", rejected.status, _Client(request, self), rejected)
        body = f"{rejected.status} refused: {rejected.reason}: {rejected.detail}\n"
        return web.Response(status=rejected.status, text=body, headers={"Cache-Control": NO_STORE})

    def healthz(self, request: web.BaseRequest) -> web.Response:
        """200 while the process can do its job; 503 after a fatal producer error (restart it) and while
        clicks need the spool and it cannot take them."""
        if self.sink.healthy:
            return web.Response(text="ok\n")
        return web.Response(status=503, text=f"{self.sink.problem}\n")

    def readyz(self, request: web.BaseRequest) -> web.Response:
        """200 while the producer reaches Kafka, 503 otherwise (clicks are still accepted and buffered)."""
        if self.sink.ready:
            return web.Response(text="ready\n")
        return web.Response(status=503, text="kafka unreachable\n")


def _single(query: MultiMapping[str], name: str) -> str | None:
    values = query.getall(name, ())
    if len(values) > 1:
        raise bad_request("duplicate_param", f"the {name} parameter is given more than once")
    return values[0] if values else None


class _Client:
    """The client's address, worked out only if the rate-limited log line is written."""

    def __init__(self, request: web.BaseRequest, gateway: Gateway) -> None:
        self.request = request
        self.gateway = gateway

    def __str__(self) -> str:
        return self.gateway._address(self.request)


def metrics_handler(metrics: Metrics) -> Handler:
    """The metrics listener's handler: ``GET /metrics`` in the Prometheus text format, 404 otherwise."""

    async def handle(request: web.BaseRequest) -> web.Response:
        if request.path != "/metrics":
            return web.Response(status=404, text="404 not found: the metrics are at /metrics\n")
        return web.Response(body=metrics.exposition(), content_type="text/plain", charset="utf-8")

    return handle

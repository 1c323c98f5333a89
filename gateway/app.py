"""The gateway's HTTP application: ``/`` redirects, ``/healthz``, ``/readyz``, ``/metrics`` (SPEC §5)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

from aiohttp import web

from clickmuncher.records import ClickEvent
from clickmuncher.settings import Settings
from gateway.clicks import ClickSink
from gateway.clientaddr import Network, client_address, parse_networks
from gateway.guard import Guard
from gateway.metrics import Metrics
from gateway.urls import Rejected, bad_request, normalize_url

log = logging.getLogger("gateway.http")
NO_STORE = "private, no-store"  # a cached redirect is a lost click
GUARD = web.AppKey("guard", Guard)
SINK = web.AppKey("sink", ClickSink)
METRICS = web.AppKey("metrics", Metrics)
PROXIES = web.AppKey("proxies", tuple[Network, ...])


def create_app(settings: Settings) -> web.Application:
    """The application; raises ConfigError when the open-redirect guard cannot be configured.

    The Kafka producer and spool are opened when the app starts and closed, drained, when it stops.
    """
    app = web.Application()
    app[GUARD] = Guard.from_settings(settings)
    app[METRICS] = Metrics.create()
    app[SINK] = ClickSink(settings, app[METRICS])
    app[PROXIES] = parse_networks(settings.trusted_proxies)
    app.router.add_get("/", redirect)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.cleanup_ctx.append(_clicks_ctx)
    return app


async def _clicks_ctx(app: web.Application) -> AsyncIterator[None]:
    sink = app[SINK]
    await asyncio.to_thread(sink.start)
    yield
    await asyncio.to_thread(sink.close)


def _single(request: web.Request, name: str) -> str | None:
    values = request.query.getall(name, [])
    if len(values) > 1:
        raise bad_request("duplicate_param", f"the {name} parameter is given more than once")
    return values[0] if values else None


async def redirect(request: web.Request) -> web.Response:
    """``GET /?u=URL[&s=SIG]``: 302 to URL exactly as given, one click produced; ``HEAD``: not counted."""
    try:
        url = _single(request, "u")
        sig = _single(request, "s")
        if not url:
            raise bad_request("missing_u", "the u parameter is missing or empty")
        request.app[GUARD].check(url, sig)
        key = normalize_url(url)
    except Rejected as e:
        return _refuse(request, e)
    if request.method == "GET":
        request.app[SINK].submit(ClickEvent(key, time.time_ns() // 1_000_000))
        request.app[METRICS].clicks.inc()
    return web.Response(status=302, headers={"Location": url, "Cache-Control": NO_STORE})


def _refuse(request: web.Request, rejected: Rejected) -> web.Response:
    request.app[METRICS].rejected.labels(rejected.reason).inc()
    client = client_address(
        request.remote, request.headers.getall("X-Forwarded-For", []), request.app[PROXIES]
    )
    log.info("refused %s from %s: %s", rejected.status, client, rejected)
    body = f"{rejected.status} refused: {rejected.reason}: {rejected.detail}\n"
    return web.Response(status=rejected.status, text=body, headers={"Cache-Control": NO_STORE})


async def healthz(request: web.Request) -> web.Response:
    """200 while the process can do its job; 503 after a fatal producer error (restart it)."""
    if request.app[SINK].healthy:
        return web.Response(text="ok\n")
    return web.Response(status=503, text="kafka producer failed fatally; restart the gateway\n")


async def readyz(request: web.Request) -> web.Response:
    """200 while the producer reaches Kafka, 503 otherwise (clicks are still accepted and buffered)."""
    if request.app[SINK].ready:
        return web.Response(text="ready\n")
    return web.Response(status=503, text="kafka unreachable\n")


async def metrics(request: web.Request) -> web.Response:
    body = request.app[METRICS].exposition()
    return web.Response(body=body, content_type="text/plain", charset="utf-8")

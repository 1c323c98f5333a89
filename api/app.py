"""The api's HTTP application (SPEC §11): ``/api/top``, ``/api/windows``, ``/api/totals``, the page at ``/``
with its scripts and styles, ``/healthz`` and ``/metrics``.

Resources are opened in one place, :func:`_resources_ctx`: the database engine, the thread pool its
blocking calls run in, the live reader thread and the pruner task; they are closed in reverse order.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import sqlalchemy as sa
from aiohttp import web

from api import page
from api.db import make_read_engine
from api.encode import windows_json
from api.live import LiveCounts
from api.metrics import ApiMetrics
from api.params import BadRequest, top_query, totals_query, uniques_query, windows_query
from api.reader import LiveReader, now_ms
from api.service import ReadService, TooManyWindows
from clickmuncher.records import iso_utc
from clickmuncher.settings import ApiSettings

log = logging.getLogger("api.http")
DB_THREADS = 4  # threads for blocking database calls, and connections in the pool
T = TypeVar("T")

SETTINGS = web.AppKey("settings", ApiSettings)
METRICS = web.AppKey("metrics", ApiMetrics)
LIVE = web.AppKey("live", LiveCounts)
SERVICE = web.AppKey("service", ReadService)
EXECUTOR = web.AppKey("executor", ThreadPoolExecutor)
READER = web.AppKey("reader", LiveReader)
PAGES = web.AppKey("pages", page.Pages)


def create_app(settings: ApiSettings) -> web.Application:
    """The application; nothing is opened until it starts."""
    app = web.Application(middlewares=[_observe, _errors])
    app[SETTINGS] = settings
    app[METRICS] = ApiMetrics.create()
    app[LIVE] = LiveCounts(settings.api_live_max_entries)
    app.router.add_get("/", index)
    app.router.add_get("/static/{name}", static)
    app.router.add_get("/api/top", top)
    app.router.add_get("/api/windows", windows)
    app.router.add_get("/api/totals", totals)
    app.router.add_get("/api/uniques", uniques)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.cleanup_ctx.append(_resources_ctx)
    return app


async def _resources_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    app[PAGES] = await asyncio.to_thread(page.load, settings.live_every_s)
    engine = make_read_engine(settings.database_url, DB_THREADS)
    app[EXECUTOR] = ThreadPoolExecutor(DB_THREADS, thread_name_prefix="api-db")
    app[SERVICE] = ReadService(engine, app[LIVE])
    app[READER] = LiveReader(settings, app[LIVE], app[METRICS])
    app[READER].start()
    pruner = asyncio.create_task(_prune_forever(app))
    yield
    pruner.cancel()
    await asyncio.gather(pruner, return_exceptions=True)
    await asyncio.to_thread(app[READER].stop)
    await asyncio.to_thread(app[EXECUTOR].shutdown, True)
    engine.dispose()


async def _blocking(app: web.Application, func: Callable[..., T], *args: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(app[EXECUTOR], func, *args)


async def _prune_forever(app: web.Application) -> None:
    """Every ``live_every_s``: drops live entries the database has made final, and expired ones."""
    settings, metrics = app[SETTINGS], app[METRICS]
    failing = False
    while True:
        await asyncio.sleep(settings.live_every_s)
        now = now_ms()
        try:
            final, expired = await _blocking(
                app,
                app[SERVICE].prune,
                now - settings.grace_s * 1000,
                now - settings.api_live_retention_s * 1000,
            )
        except sa.exc.SQLAlchemyError as e:
            if not failing:
                log.warning("pruning live counts failed, retrying: %s", _first_line(e))
            failing = True
            continue
        failing = False
        metrics.live_pruned.labels("final").inc(final)
        metrics.live_pruned.labels("retention").inc(expired)
        metrics.live_entries.set(len(app[LIVE]))


@web.middleware
async def _errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Bad parameters are 400s with the reason; a database that fails is a 503."""
    try:
        return await handler(request)
    except (BadRequest, TooManyWindows) as e:
        code, detail = (e.code, e.detail) if isinstance(e, BadRequest) else ("too_many_windows", str(e))
        return _json({"error": code, "detail": detail}, status=400)
    except sa.exc.SQLAlchemyError as e:
        request.app[METRICS].db_errors.inc()
        log.warning("%s failed on the database: %s", request.path, _first_line(e))
        return _json({"error": "database_unavailable", "detail": _first_line(e)}, status=503)


@web.middleware
async def _observe(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Security headers on every answer; count and time every request by route (bounded labels)."""
    began = time.perf_counter()
    try:
        response = await handler(request)
    except web.HTTPException as e:
        response = e
    route = request.match_info.route.resource
    name = route.canonical if route is not None else "other"
    metrics = request.app[METRICS]
    metrics.requests.labels(name, str(response.status)).inc()
    metrics.latency.labels(name).observe(time.perf_counter() - began)
    response.headers.update(page.SECURITY_HEADERS)
    if isinstance(response, web.HTTPException):
        raise response
    return response


def _json(body: object, status: int = 200) -> web.Response:
    response = web.json_response(body, status=status)
    response.headers["Cache-Control"] = "no-store"
    return response


async def top(request: web.Request) -> web.Response:
    query = top_query(request.query, now_ms())
    service = request.app[SERVICE]
    rows = await _blocking(
        request.app, service.top, query.since_ms, query.until_ms, query.limit, query.final, query.cls
    )
    urls = [{"url": r.url, "clicks": r.clicks, "live": r.live} for r in rows]
    since, until = iso_utc(query.since_ms), iso_utc(query.until_ms)
    return _json({"since": since, "until": until, "cls": query.cls, "urls": urls})


async def windows(request: web.Request) -> web.Response:
    query = windows_query(request.query, now_ms())
    rows = await _blocking(request.app, request.app[SERVICE].windows, query.url, query.from_ms, query.to_ms)
    body = windows_json(query.url, query.from_ms, query.to_ms, rows, query.cls)
    return web.Response(body=body, content_type="application/json", headers={"Cache-Control": "no-store"})


async def totals(request: web.Request) -> web.Response:
    url, cls = totals_query(request.query)
    total = await _blocking(request.app, request.app[SERVICE].total, url, cls)
    return _json({"url": url, "cls": cls, "clicks": total.clicks, "live": total.live})


async def uniques(request: web.Request) -> web.Response:
    """Distinct human visitors over the closed windows of a range: the union of their sketches."""
    query = uniques_query(request.query, now_ms())
    found = await _blocking(request.app, request.app[SERVICE].uniques, query.url, query.from_ms, query.to_ms)
    return _json(
        {
            "url": query.url,
            "from": iso_utc(query.from_ms),
            "to": iso_utc(query.to_ms),
            "uniques": found.uniques,
            "human_clicks": found.human_clicks,
            "windows": found.windows,
            "windows_with_visitors": found.merged,
            "windows_without_classes": found.unclassified,
        }
    )


async def index(request: web.Request) -> web.Response:
    return request.app[PAGES].response("index.html")


async def static(request: web.Request) -> web.Response:
    return request.app[PAGES].response(request.match_info["name"])


async def healthz(request: web.Request) -> web.Response:
    """200 while the database answers (503 otherwise); says whether live counts are read."""
    live = request.app[READER].problem or "ok"
    try:
        await _blocking(request.app, request.app[SERVICE].ping)
    except sa.exc.SQLAlchemyError as e:
        return _json({"status": "unavailable", "database": _first_line(e), "live": live}, status=503)
    return _json({"status": "ok", "database": "ok", "live": live})


async def metrics(request: web.Request) -> web.Response:
    body = request.app[METRICS].exposition()
    return web.Response(body=body, content_type="text/plain", charset="utf-8")


def _first_line(error: Exception) -> str:
    text = str(getattr(error, "orig", None) or error).strip()
    return text.splitlines()[0] if text else type(error).__name__

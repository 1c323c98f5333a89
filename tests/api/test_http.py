"""The api over HTTP, in-process, on both databases: answers, merges with live counts, refusals, headers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from api.app import LIVE, SERVICE, create_app
from api.live import LiveWindow
from api.page import CSP
from clickmuncher.db.schema import upgrade
from clickmuncher.records import ClickWindow, iso_utc
from clickmuncher.settings import Settings
from tests.api.helpers import T0_MS, WINDOW_MS, closed, db_sum, seed

pytestmark = pytest.mark.kafka
A, B, C = "https://example.com/a", "https://example.com/b", "https://example.com/c?x=1"
SINCE, UNTIL = iso_utc(T0_MS), iso_utc(T0_MS + 10 * WINDOW_MS)


def as_live(window: ClickWindow) -> LiveWindow:
    return LiveWindow(
        window.url, window.window_start_ms, window.window_end_ms, window.clicks, window.revision
    )


@pytest.fixture
async def client(db_url: str, kafka_bootstrap: str, unique: str) -> AsyncIterator[TestClient[Any, Any]]:
    upgrade(db_url)
    seed(db_url, [closed(A, 0, 5), closed(A, 1, 6, revision=2), closed(B, 1, 20), closed(C, 2, 1)])
    seed(db_url, [closed(A, -5, 100)])  # before the range asked for
    settings = Settings(
        database_url=db_url, kafka_bootstrap=kafka_bootstrap, live_topic=f"live-{unique}", live_every_s=3600
    )
    app = create_app(settings)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


def app_of(client: TestClient[Any, Any]) -> web.Application:
    app = client.server.app
    assert app is not None
    return app


async def get(client: TestClient[Any, Any], path: str, status: int = 200, **params: str) -> Any:
    response = await client.get(path, params=params)
    assert response.status == status, await response.text()
    assert response.headers["Content-Security-Policy"] == CSP
    return await response.json()


async def test_top_windows_totals_from_the_database(client: TestClient[Any, Any], db_url: str) -> None:
    body = await get(client, "/api/top", since=SINCE, until=UNTIL)
    assert body == {
        "since": SINCE,
        "until": UNTIL,
        "cls": "human",
        "urls": [
            {"url": B, "clicks": 20, "live": 0},
            {"url": A, "clicks": 11, "live": 0},
            {"url": C, "clicks": 1, "live": 0},
        ],
    }
    assert db_sum(db_url, A, T0_MS, T0_MS + 10 * WINDOW_MS) == 11
    body = await get(client, "/api/top", since=iso_utc(T0_MS + WINDOW_MS), until=UNTIL, limit="1")
    assert body["urls"] == [{"url": B, "clicks": 20, "live": 0}]

    body = await get(client, "/api/windows", url="HTTPS://Example.com:443/a", **{"from": SINCE, "to": UNTIL})
    assert body["url"] == A
    assert body["windows"] == [
        {
            "window_start": iso_utc(T0_MS),
            "window_end": iso_utc(T0_MS + WINDOW_MS),
            "clicks": 5,
            "revision": 0,
            "final": True,
            "by_class": None,
            "uniques": None,
        },
        {
            "window_start": iso_utc(T0_MS + WINDOW_MS),
            "window_end": iso_utc(T0_MS + 2 * WINDOW_MS),
            "clicks": 6,
            "revision": 2,
            "final": True,
            "by_class": None,
            "uniques": None,
        },
    ]
    assert await get(client, "/api/totals", url=A) == {"url": A, "cls": "human", "clicks": 111, "live": 0}
    assert await get(client, "/api/totals", url="https://never.example/") == {
        "url": "https://never.example/",
        "cls": "human",
        "clicks": 0,
        "live": 0,
    }


async def test_live_counts_merge_and_final_windows_win(client: TestClient[Any, Any]) -> None:
    live = app_of(client)[LIVE]
    live.offer(as_live(closed(A, 1, 999)))  # A's window 1 is final in the database: this entry never counts
    live.offer(as_live(closed(A, 3, 4)))
    live.offer(as_live(closed("https://example.com/d", 3, 30)))  # only live, outranks every closed URL
    live.offer(as_live(closed(C, 3, 15)))  # C ranks third by closed clicks alone; live moves it up
    body = await get(client, "/api/top", since=SINCE, until=UNTIL, limit="3")
    assert body["urls"] == [
        {"url": "https://example.com/d", "clicks": 30, "live": 30},
        {"url": B, "clicks": 20, "live": 0},
        {"url": C, "clicks": 16, "live": 15},
    ]
    final = await get(client, "/api/top", since=SINCE, until=UNTIL, limit="3", final="1")
    assert [row["url"] for row in final["urls"]] == [B, A, C]

    body = await get(client, "/api/windows", url=A, **{"from": SINCE, "to": UNTIL})
    assert [(w["clicks"], w["final"]) for w in body["windows"]] == [(5, True), (6, True), (4, False)]
    assert await get(client, "/api/totals", url=A) == {"url": A, "cls": "human", "clicks": 115, "live": 4}

    pruned_final, expired = await _prune(client, ended_before_ms=T0_MS + 100 * WINDOW_MS, expired_before_ms=0)
    assert (pruned_final, expired) == (1, 0)  # A's window 1, the one the database holds
    assert len(live) == 3


async def _prune(
    client: TestClient[Any, Any], ended_before_ms: int, expired_before_ms: int
) -> tuple[int, int]:
    import asyncio

    service = app_of(client)[SERVICE]
    return await asyncio.to_thread(service.prune, ended_before_ms, expired_before_ms)


BAD_REQUESTS = [
    ("/api/top", {"limit": "1001"}, "bad_limit"),
    ("/api/top", {"since": UNTIL, "until": SINCE}, "inverted_range"),
    ("/api/top", {"sort": "url"}, "unknown_parameter"),
    ("/api/top", {"final": "true"}, "bad_flag"),
    ("/api/windows", {"url": "javascript:alert(1)"}, "bad_url_bad_scheme"),
    ("/api/windows", {"url": "https://example.com/", "from": "soon"}, "bad_time"),
    ("/api/totals", {}, "missing_url"),
    ("/api/totals", {"url": "http://exa mple.com/"}, "bad_url_whitespace"),
]


async def test_bad_input_is_a_400_with_the_reason(client: TestClient[Any, Any]) -> None:
    for path, params, code in BAD_REQUESTS:
        body = await get(client, path, status=400, **params)
        assert body["error"] == code and body["detail"], (path, params)


async def test_a_range_of_more_than_10000_windows_is_refused(
    client: TestClient[Any, Any], db_url: str
) -> None:
    url = "https://example.com/busy"
    seed(db_url, [closed(url, n, 1) for n in range(10_001)])
    body = await get(
        client, "/api/windows", status=400, url=url, **{"from": SINCE, "to": "2030-01-01T00:00:00Z"}
    )
    assert body["error"] == "too_many_windows"


async def test_page_health_and_metrics(client: TestClient[Any, Any]) -> None:
    page = await client.get("/")
    html = await page.text()
    assert page.status == 200 and page.headers["Content-Security-Policy"] == CSP
    assert 'src="/static/app.js"' in html and "__POLL_MS__" not in html
    for name in ("app.js", "app.css", "favicon.svg"):
        assert (await client.get(f"/static/{name}")).status == 200
    assert (await client.get("/static/../app.py")).status == 404
    assert (await client.get("/static/nothing.js")).status == 404
    health = await get(client, "/healthz")
    assert health["status"] == "ok" and health["database"] == "ok"
    await get(client, "/api/top", status=400, limit="0")
    metrics = await (await client.get("/metrics")).text()
    assert 'clickmuncher_api_requests_total{route="/api/top",status="400"} 1.0' in metrics
    assert "clickmuncher_api_live_up" in metrics

"""SPEC §12 in the api, on both databases: human clicks by default, every class with cls=all, one class on
demand, windows without classes read as human, and uniques merged from the stored sketches over any range."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from api.app import LIVE, create_app
from api.live import LiveWindow
from clickmuncher import sketches
from clickmuncher.db.schema import upgrade
from clickmuncher.records import ClickWindow, iso_utc
from clickmuncher.settings import Settings
from tests.api.helpers import T0_MS, WINDOW_MS, closed, seed
from tests.api.test_http import get

pytestmark = pytest.mark.kafka
A, B = "https://example.com/a", "https://example.com/b"
SINCE, UNTIL = iso_utc(T0_MS), iso_utc(T0_MS + 10 * WINDOW_MS)


def visitors(first: int, count: int) -> bytes:
    sketch = sketches.new()
    for n in range(first, first + count):
        sketches.update(sketch, f"{n:016x}")
    return sketches.serialize(sketch)


def classified(url: str, n: int, by_class: tuple[int, int, int, int], first: int, count: int) -> ClickWindow:
    window = closed(url, n, sum(by_class))
    hll = visitors(first, count) if count else None
    return ClickWindow(
        url, window.window_start_ms, window.window_end_ms, window.clicks, 0, by_class, count, hll
    )


@pytest.fixture
async def client(db_url: str, kafka_bootstrap: str, unique: str) -> AsyncIterator[TestClient[Any, Any]]:
    upgrade(db_url)
    seed(
        db_url,
        [
            closed(A, 0, 10),  # counted before classes existed: 10 clicks, read as human
            classified(A, 1, (30, 50, 5, 5), 0, 20),  # visitors 0-19
            classified(A, 2, (40, 0, 0, 2), 10, 25),  # visitors 10-34: 15 of them new
            classified(B, 1, (5, 200, 0, 0), 100, 5),  # B: most clicks, mostly bots
            classified(B, 2, (0, 7, 0, 0), 0, 0),  # no human: no sketch
        ],
    )
    settings = Settings(
        database_url=db_url, kafka_bootstrap=kafka_bootstrap, live_topic=f"live-{unique}", live_every_s=3600
    )
    async with TestClient(TestServer(create_app(settings))) as test_client:
        yield test_client


async def test_human_clicks_by_default_every_class_on_demand(client: TestClient[Any, Any]) -> None:
    top = await get(client, "/api/top", since=SINCE, until=UNTIL)
    assert top["cls"] == "human" and top["urls"] == [
        {"url": A, "clicks": 80, "live": 0},
        {"url": B, "clicks": 5, "live": 0},
    ]
    every = await get(client, "/api/top", since=SINCE, until=UNTIL, cls="all")
    assert [(u["url"], u["clicks"]) for u in every["urls"]] == [(B, 212), (A, 142)]
    bots = await get(client, "/api/top", since=SINCE, until=UNTIL, cls="bot")
    assert [(u["url"], u["clicks"]) for u in bots["urls"]] == [(B, 207), (A, 50)]

    assert (await get(client, "/api/totals", url=A))["clicks"] == 80
    assert (await get(client, "/api/totals", url=A, cls="all"))["clicks"] == 142
    assert (await get(client, "/api/totals", url=A, cls="prefetch"))["clicks"] == 7

    windows = (await get(client, "/api/windows", url=A, **{"from": SINCE, "to": UNTIL}))["windows"]
    assert [(w["clicks"], w["uniques"]) for w in windows] == [(10, None), (30, 20), (40, 25)]
    assert windows[0]["by_class"] is None
    assert windows[1]["by_class"] == {"human": 30, "bot": 50, "preview": 5, "prefetch": 5}
    windows = (await get(client, "/api/windows", url=A, cls="preview", **{"from": SINCE, "to": UNTIL}))[
        "windows"
    ]
    assert [w["clicks"] for w in windows] == [0, 5, 0]

    refused = await get(client, "/api/top", status=400, cls="robots")
    assert refused["error"] == "bad_class"


async def test_live_counts_follow_the_class(client: TestClient[Any, Any]) -> None:
    start = T0_MS + 3 * WINDOW_MS
    live = LiveWindow(B, start, start + WINDOW_MS, 100, 0, (90, 10, 0, 0), 60)
    client.server.app[LIVE].offer(live)  # type: ignore[index]
    top = await get(client, "/api/top", since=SINCE, until=UNTIL)
    assert top["urls"][0] == {"url": B, "clicks": 95, "live": 90}
    assert (await get(client, "/api/totals", url=B, cls="bot"))["clicks"] == 217
    windows = (await get(client, "/api/windows", url=B, **{"from": SINCE, "to": UNTIL}))["windows"]
    assert windows[-1]["final"] is False and windows[-1]["uniques"] == 60 and windows[-1]["clicks"] == 90


async def test_uniques_merge_the_sketches_of_any_range(client: TestClient[Any, Any]) -> None:
    body = await get(client, "/api/uniques", url=A, **{"from": SINCE, "to": UNTIL})
    assert body["uniques"] == 35  # visitors 0-34; the same visitor in two windows counts once
    assert (body["human_clicks"], body["windows"], body["windows_with_visitors"]) == (80, 3, 2)
    assert body["windows_without_classes"] == 1
    one = await get(client, "/api/uniques", url=A, **{"from": iso_utc(T0_MS + 2 * WINDOW_MS), "to": UNTIL})
    assert one["uniques"] == 25
    none = await get(client, "/api/uniques", url="https://never.example/", **{"from": SINCE, "to": UNTIL})
    assert (none["uniques"], none["windows"]) == (0, 0)

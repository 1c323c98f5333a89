"""SPEC §12 end to end: the same link clicked by browsers, Slackbot, Googlebot and a prefetch, and HEADs,
through the real gateway, streams worker and sink: the database holds each class's exact count; a large
synthetic population's unique visitors, merged from the stored sketches, are within 2 % of the truth."""

from __future__ import annotations

import asyncio
from collections import Counter
from urllib.parse import quote

import aiohttp
import pytest
import sqlalchemy as sa

from api.live import LiveCounts
from api.service import ReadService
from clickmuncher.db.tables import CLASS_COLUMNS, click_windows
from clickmuncher.records import CLASSES
from gateway.signing import signature
from tests.conftest import LocalBroker
from tests.e2e.harness import SIGNING_KEY, gateway_port, pipeline
from tests.e2e.traffic import wait_for_total

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.timeout(300)]

LAUNCH = "https://example.com/launch"
CROWD = "https://example.com/crowd"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0"
SLACKBOT = "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
POPULATION = 20_000  # distinct visitors of CROWD
CROWD_CLICKS = 26_000
FAR_MS = 253_402_300_799_000  # 9999-12-31  # some come back, in the same window or a later one


def launch_requests() -> list[tuple[str, str, dict[str, str]]]:
    """(method, url, headers): 12 browser visitors clicking 30 times, Slackbot 4, Googlebot 5, 3 prefetches,
    6 HEADs (not counted)."""
    requests = [
        ("GET", LAUNCH, {"User-Agent": (FIREFOX, CHROME)[n % 2], "X-Forwarded-For": f"198.51.100.{n % 12}"})
        for n in range(30)
    ]
    requests += [("GET", LAUNCH, {"User-Agent": SLACKBOT, "X-Forwarded-For": "203.0.113.1"})] * 4
    requests += [("GET", LAUNCH, {"User-Agent": GOOGLEBOT, "X-Forwarded-For": "203.0.113.2"})] * 5
    requests += [
        ("GET", LAUNCH, {"User-Agent": CHROME, "Sec-Purpose": "prefetch", "X-Forwarded-For": "198.51.100.1"})
    ] * 3
    requests += [("HEAD", LAUNCH, {"User-Agent": FIREFOX, "X-Forwarded-For": "198.51.100.1"})] * 6
    return requests


def crowd_requests() -> list[tuple[str, str, dict[str, str]]]:
    visitors = [n % POPULATION for n in range(CROWD_CLICKS)]
    return [
        ("GET", CROWD, {"User-Agent": FIREFOX, "X-Forwarded-For": f"10.{v >> 16}.{(v >> 8) & 255}.{v & 255}"})
        for v in visitors
    ]


async def send(
    port: int, requests: list[tuple[str, str, dict[str, str]]], concurrency: int = 32
) -> Counter[str]:
    """Sends every request once; returns the 302s per (method, URL)."""
    redirected: Counter[str] = Counter()
    queue: asyncio.Queue[tuple[str, str, dict[str, str]]] = asyncio.Queue()
    for request in requests:
        queue.put_nowait(request)

    async def worker(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            method, url, headers = queue.get_nowait()
            path = f"/?u={quote(url, safe='')}&s={signature(url, SIGNING_KEY)}"
            async with session.request(
                method, f"http://127.0.0.1:{port}{path}", headers=headers, allow_redirects=False
            ) as response:
                await response.read()
                redirected[f"{method} {url}"] += response.status == 302

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return redirected


def class_sums(database_url: str, url: str) -> dict[str, int]:
    c = click_windows.c
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(*(sa.func.sum(c[name]) for name in CLASS_COLUMNS)).where(c.url == url)
        ).one()
    engine.dispose()
    return dict(zip(CLASSES, (int(n) for n in row), strict=True))


def test_each_class_is_counted_exactly_and_uniques_within_two_percent(
    kafka: LocalBroker, pg_db_url: str, unique: str
) -> None:
    port = gateway_port()
    with pipeline(kafka.bootstrap, pg_db_url, unique) as run:
        run.start_one_of_each(port)
        sent = asyncio.run(send(port, launch_requests()))
        sent += asyncio.run(send(port, crowd_requests()))
        assert sent == Counter({f"GET {LAUNCH}": 42, f"HEAD {LAUNCH}": 6, f"GET {CROWD}": CROWD_CLICKS})
        totals = wait_for_total(pg_db_url, 42 + CROWD_CLICKS)
        assert totals == Counter({LAUNCH: 42, CROWD: CROWD_CLICKS}), run.log_tail("streams-1")

        assert class_sums(pg_db_url, LAUNCH) == {"human": 30, "bot": 5, "preview": 4, "prefetch": 3}
        assert class_sums(pg_db_url, CROWD) == {"human": CROWD_CLICKS, "bot": 0, "preview": 0, "prefetch": 0}
        engine = sa.create_engine(pg_db_url)
        service = ReadService(engine, LiveCounts(10))
        launch = service.uniques(LAUNCH, 0, FAR_MS)
        assert launch.uniques == 12  # a prefetch is no visit: its visitor is one of the 12 anyway
        crowd = service.uniques(CROWD, 0, FAR_MS)
        engine.dispose()
        assert crowd.windows > 1 and crowd.merged == crowd.windows  # spread over windows, merged
        assert abs(crowd.uniques - POPULATION) / POPULATION <= 0.02, crowd

"""The live topic read by the api (real broker): records reach the answers, bad ones are skipped and
counted, tombstones withdraw; ``clickmuncher stats`` reads the topic to its end and marks live counts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from click.testing import CliRunner

from api.app import create_app
from api.reader import read_snapshot
from clickmuncher.cli import main
from clickmuncher.db.schema import upgrade
from clickmuncher.kafka.admin import COMPACTED, ensure_topics
from clickmuncher.settings import Settings
from tests.api.helpers import WINDOW_MS, closed, live_value, produce_live, seed

pytestmark = pytest.mark.kafka
A, B = "https://example.com/a", "https://example.com/b"
WAIT_S = 30.0


def recent_t0() -> int:
    now = time.time_ns() // 1_000_000
    return now - now % WINDOW_MS - 5 * WINDOW_MS


def records(t0: int) -> list[tuple[bytes | None, bytes | None]]:
    a_old, a_new = closed(A, 4, 3, t0_ms=t0), closed(A, 4, 8, t0_ms=t0)
    b = closed(B, 4, 5, t0_ms=t0)
    gone = closed(B, 3, 50, t0_ms=t0)
    return [
        (a_new.key(), live_value(a_new)),
        (a_old.key(), live_value(a_old)),  # an older count after a newer one: ignored
        (b.key(), live_value(b)),
        (gone.key(), live_value(gone)),
        (gone.key(), None),  # withdrawn by a tombstone
        (b"garbage", b"\x00\x01"),
        (b.key(), b"[" * 3000),
        (b.key(), live_value(b, clicks="many")),
        (b"4:" + B.encode(), live_value(b)),  # a key that does not match the value
    ]


@pytest.fixture
def settings(kafka_bootstrap: str, db_url: str, unique: str, tmp_path: Path) -> Settings:
    upgrade(db_url)
    ensure_topics(kafka_bootstrap, {f"live-{unique}": COMPACTED}, 2)  # the reader assigns it at start
    return Settings(
        kafka_bootstrap=kafka_bootstrap,
        database_url=db_url,
        live_topic=f"live-{unique}",
        live_every_s=0.5,
        state_dir=tmp_path,
    )


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(create_app(settings))) as test_client:
        yield test_client


async def wait_for(client: TestClient[Any, Any], path: str, want: Any, **params: str) -> Any:
    deadline = time.monotonic() + WAIT_S
    while True:
        body = await (await client.get(path, params=params)).json()
        if body == want or time.monotonic() > deadline:
            return body
        await asyncio.sleep(0.2)


async def test_live_records_reach_the_answers(client: TestClient[Any, Any], settings: Settings) -> None:
    t0 = recent_t0()
    await asyncio.to_thread(produce_live, settings.kafka_bootstrap, settings.live_topic, records(t0))
    want = {"url": A, "cls": "human", "clicks": 8, "live": 8}
    assert await wait_for(client, "/api/totals", want, url=A) == want
    want_b = {"url": B, "cls": "human", "clicks": 5, "live": 5}
    assert await wait_for(client, "/api/totals", want_b, url=B) == want_b

    for line in (
        'clickmuncher_api_live_skipped_total{reason="not_json"} 1.0',
        'clickmuncher_api_live_skipped_total{reason="too_deep"} 1.0',
        'clickmuncher_api_live_skipped_total{reason="bad_field"} 1.0',
        'clickmuncher_api_live_skipped_total{reason="bad_key"} 1.0',
        'clickmuncher_api_live_records_total{outcome="older"} 1.0',
        'clickmuncher_api_live_pruned_total{cause="tombstone"} 1.0',
        "clickmuncher_api_live_up 1.0",
    ):
        await wait_for_metric(client, line)
    health = await (await client.get("/healthz")).json()
    assert health["live"] == "ok"

    # The window closes: the sink writes it final (9, one late click more than the live 8); the pruner drops
    # the live entry and the answers hold the final count, never both.
    seed(settings.database_url, [closed(A, 4, 9, t0_ms=t0)])
    want = {"url": A, "cls": "human", "clicks": 9, "live": 0}
    assert await wait_for(client, "/api/totals", want, url=A) == want
    metrics = await wait_for_metric(client, 'clickmuncher_api_live_pruned_total{cause="final"} 1.0')
    assert "clickmuncher_api_live_entries 1.0" in metrics


async def wait_for_metric(client: TestClient[Any, Any], line: str) -> str:
    deadline = time.monotonic() + WAIT_S
    while True:
        text = await (await client.get("/metrics")).text()
        if line in text or time.monotonic() > deadline:
            assert line in text, text
            return text
        await asyncio.sleep(0.2)


def test_snapshot_and_stats_show_live_counts_marked(settings: Settings, db_url: str) -> None:
    t0 = recent_t0()
    produce_live(settings.kafka_bootstrap, settings.live_topic, records(t0))
    counts = read_snapshot(settings, timeout_s=30)
    assert sorted((w.url, w.clicks) for w in counts.in_range(0, 2**62)) == [(A, 8), (B, 5)]

    seed(db_url, [closed(A, 2, 7, t0_ms=t0)])
    env = {
        "CLICKMUNCHER_DATABASE_URL": db_url,
        "CLICKMUNCHER_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "CLICKMUNCHER_LIVE_TOPIC": settings.live_topic,
    }
    result = CliRunner().invoke(main, ["stats"], env=env)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    # url, clicks, human, bot, preview, prefetch, uniques (closed windows), of which live: records without
    # classes count as human
    assert lines[3].split() == [A, "15", "15", "0", "0", "0", "0", "+8", "live"]
    assert lines[4].split() == [B, "5", "5", "0", "0", "0", "0", "+5", "live"]
    states = [line.split()[-1] for line in lines[9:12]]
    assert states == ["live", "live", "final"], result.output
    assert lines[-1] == f"live counts: 2 open window entries read from {settings.live_topic}"

    result = CliRunner().invoke(main, ["stats", "--no-live"], env=env)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[3].split() == [A, "7", "7", "0", "0", "0", "0"]
    absent = {**env, "CLICKMUNCHER_LIVE_TOPIC": settings.live_topic + "-missing"}
    result = CliRunner().invoke(main, ["stats"], env=absent)
    assert result.exit_code == 0 and "live counts: unavailable (topic" in result.output

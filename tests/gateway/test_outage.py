"""Kafka away: every redirect still answers 302; once Kafka is back every click is on the topic exactly once.

The session's broker is shared: each test restarts it in a ``finally``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import aiohttp
import pytest

from clickmuncher.devstack.kafka.broker import free_port
from gateway.spool import segments
from tests.conftest import LocalBroker
from tests.gateway.helpers import (
    GatewayClient,
    create_topic,
    gateway_settings,
    read_topic,
    topic_count,
    wait_for,
)

CLICKS = 2000
CONCURRENCY = 16


def destination(i: int) -> str:
    return f"http://example.com/outage/{i}"


async def send_clicks(session: aiohttp.ClientSession, base: str, count: int) -> list[int]:
    """GETs ``count`` distinct links, ``CONCURRENCY`` at a time; returns the statuses."""
    limit = asyncio.Semaphore(CONCURRENCY)

    async def one(i: int) -> int:
        link = f"{base}/?u={quote(destination(i), safe='')}"
        async with limit, session.get(link, allow_redirects=False) as response:
            return response.status

    return list(await asyncio.gather(*(one(i) for i in range(count))))


def assert_exactly_once(bootstrap: str, topic: str) -> None:
    events = read_topic(bootstrap, topic)
    urls = [json.loads(event.value)["url"] for event in events]
    assert len(urls) == CLICKS
    assert set(urls) == {destination(i) for i in range(CLICKS)}


@pytest.mark.kafka
async def test_broker_outage_loses_and_duplicates_nothing(
    kafka: LocalBroker, unique: str, tmp_path: Path
) -> None:
    topic = f"clicks-outage-{unique}"
    create_topic(kafka.bootstrap, topic)
    settings = gateway_settings(kafka.bootstrap, topic, tmp_path, gateway_queue_max_messages=300)
    client = GatewayClient(settings)
    await client.__aenter__()
    sink, metrics = client.sink, client.metrics
    try:
        await asyncio.to_thread(wait_for, lambda: sink.ready, "the producer to reach Kafka")
        assert (await client.get("/readyz")).status == 200
        await asyncio.to_thread(kafka.stop)
        async with aiohttp.ClientSession() as session:
            statuses = await send_clicks(session, client.base, CLICKS)
        assert statuses == [302] * CLICKS
        await asyncio.to_thread(wait_for, lambda: not sink.ready, "the producer to notice the outage")
        assert (await client.get("/readyz")).status == 503
        assert (metrics.registry.get_sample_value("clickmuncher_gateway_clicks_spooled_total") or 0) > 0
    finally:
        await asyncio.to_thread(kafka.start)
    produced = "clickmuncher_gateway_clicks_produced_total"
    await asyncio.to_thread(
        wait_for, lambda: metrics.registry.get_sample_value(produced) == CLICKS, "every click delivered"
    )
    await client.close()
    assert segments(tmp_path / "spool") == []
    assert_exactly_once(kafka.bootstrap, topic)


@contextlib.contextmanager
def running_gateway(
    env: dict[str, str], port: int, workers: int, cwd: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """``python -m gateway`` in its own process group; whatever is left of the group is killed at the end."""
    command = [sys.executable, "-m", "gateway", "--port", str(port), "--workers", str(workers)]
    log_path = cwd / f"gateway-{port}-{time.monotonic_ns()}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_for(lambda: process.poll() is not None or _healthy(port), "the gateway to answer /healthz")
        assert process.poll() is None, log_path.read_text()
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def terminate(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=120)


@pytest.mark.kafka
async def test_sigterm_while_kafka_is_down_spools_and_a_restart_delivers(
    kafka: LocalBroker, unique: str, tmp_path: Path
) -> None:
    topic = f"clicks-sigterm-{unique}"
    create_topic(kafka.bootstrap, topic)
    env = {
        **os.environ,
        "CLICKMUNCHER_KAFKA_BOOTSTRAP": kafka.bootstrap,
        "CLICKMUNCHER_CLICKS_TOPIC": topic,
        "CLICKMUNCHER_STATE_DIR": str(tmp_path / "state"),
        "CLICKMUNCHER_ALLOWED_HOSTS": "example.com",
        "CLICKMUNCHER_VISITOR_KEY": "outage-test-visitor-key-of-32-bytes-or-more",
        "CLICKMUNCHER_PARTITIONS": "2",
        "CLICKMUNCHER_GATEWAY_QUEUE_MAX_MESSAGES": "300",
        "CLICKMUNCHER_GATEWAY_DRAIN_TIMEOUT_S": "1",
        "CLICKMUNCHER_GATEWAY_METRICS_PORT": "0",
    }
    port = free_port()
    with running_gateway(env, port, 2, tmp_path) as first:
        try:
            await asyncio.to_thread(kafka.stop)
            async with aiohttp.ClientSession() as session:
                statuses = await send_clicks(session, f"http://127.0.0.1:{port}", CLICKS)
            assert statuses == [302] * CLICKS
            assert await asyncio.to_thread(terminate, first) == 0
            assert segments(tmp_path / "state" / "spool")  # the clicks Kafka never got wait on disk
        finally:
            await asyncio.to_thread(kafka.start)
    with running_gateway(env, port, 1, tmp_path) as second:
        await asyncio.to_thread(
            wait_for, lambda: topic_count(kafka.bootstrap, topic) >= CLICKS, "the spool to be replayed"
        )
        await asyncio.to_thread(
            wait_for, lambda: not segments(tmp_path / "state" / "spool"), "the spool to be emptied"
        )
        assert await asyncio.to_thread(terminate, second) == 0
    assert_exactly_once(kafka.bootstrap, topic)

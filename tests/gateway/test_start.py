"""Start-up: without Kafka the gateway still serves; with Kafka it delivers spools left by earlier runs."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from clickmuncher.devstack.kafka.broker import free_port
from clickmuncher.records import ClickEvent
from gateway.spool import Spool, segments
from tests import kafka_clients
from tests.gateway.helpers import GatewayClient, create_topic, gateway_settings, read_topic, wait_for


async def test_serves_without_kafka_and_spools_on_stop(tmp_path: Path) -> None:
    nowhere = f"127.0.0.1:{free_port()}"
    settings = gateway_settings(nowhere, "clicks-nowhere", tmp_path, gateway_drain_timeout_s=0.2)
    async with GatewayClient(settings) as client:
        response = await client.get("/?u=http%3A%2F%2FExample.com%2Fa")
        assert response.status == 302
        assert response.headers["Location"] == "http://Example.com/a"
        assert (await client.get("/readyz")).status == 503
        assert (await client.get("/healthz")).status == 200
    [segment] = segments(tmp_path / "spool")
    [line] = segment.read_bytes().splitlines()
    assert json.loads(line)["url"] == "http://example.com/a"


@pytest.mark.kafka
async def test_spool_left_by_an_earlier_process_is_delivered(
    kafka_bootstrap: str, unique: str, tmp_path: Path
) -> None:
    topic = f"clicks-leftover-{unique}"
    create_topic(kafka_bootstrap, topic)
    earlier = Spool(tmp_path / "spool")
    earlier.append([ClickEvent(f"http://example.com/{i}", 1_700_000_000_000 + i) for i in range(50)])
    earlier.seal()
    settings = gateway_settings(kafka_bootstrap, topic, tmp_path)
    async with GatewayClient(settings) as client:
        sink = client.sink
        await asyncio.to_thread(wait_for, lambda: sink.ready, "the producer to reach Kafka")
    assert segments(tmp_path / "spool") == []
    events = read_topic(kafka_bootstrap, topic)
    assert sorted(json.loads(e.value)["ts_ms"] for e in events) == [1_700_000_000_000 + i for i in range(50)]


@pytest.mark.kafka
async def test_creates_the_clicks_topic_with_its_partitions(
    kafka_bootstrap: str, unique: str, tmp_path: Path
) -> None:
    topic = f"clicks-new-{unique}"
    settings = gateway_settings(kafka_bootstrap, topic, tmp_path, partitions=3)
    async with GatewayClient(settings) as client:
        for i in range(5):
            link = f"/?u=http%3A%2F%2Fexample.com%2F{i}"
            assert (await client.get(link)).status == 302
        await asyncio.to_thread(wait_for, lambda: _partitions(kafka_bootstrap, topic) > 0, "the topic")
        delivered = lambda: client.sample("clickmuncher_gateway_clicks_produced_total") == 5  # noqa: E731
        await asyncio.to_thread(wait_for, delivered, "the clicks to be delivered")
    assert _partitions(kafka_bootstrap, topic) == 3
    assert len(read_topic(kafka_bootstrap, topic)) == 5


def _partitions(bootstrap: str, topic: str) -> int:
    metadata = kafka_clients.admin(bootstrap).list_topics(topic, timeout=10)
    found = metadata.topics.get(topic)
    return 0 if found is None or found.error is not None else len(found.partitions)

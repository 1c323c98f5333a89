"""A cluster that refuses writes for lack of in-sync replicas (NOT_ENOUGH_REPLICAS): the gateway keeps
redirecting, holds and spools the clicks, drops none, and delivers each exactly once when the replicas are
back. On the three-broker SASL_SSL cluster: the clicks topic has replication factor 3 and
``min.insync.replicas`` 3, so one broker down is enough to refuse every ``acks=all`` write."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
from confluent_kafka import KafkaError

from clickmuncher.kafka.topics import create_missing, service_topics
from gateway.spool import segments
from tests import kafka_clients
from tests.cluster import LocalCluster
from tests.gateway.helpers import SIGNING_KEY, GatewayClient, wait_for
from tests.gateway.test_outage import CLICKS, assert_exactly_once, send_clicks

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(600)]
PRODUCED = "clickmuncher_gateway_clicks_produced_total"
SPOOLED = "clickmuncher_gateway_clicks_spooled_total"


def refused(kafka_cluster: LocalCluster, topic: str) -> bool:
    """Whether an ``acks=all`` write is refused with NOT_ENOUGH_REPLICAS now (a probe without retries)."""
    errors: list[KafkaError] = []
    probe = kafka_clients.producer(
        kafka_cluster.kafka,
        {"enable.idempotence": False, "retries": 0, "message.timeout.ms": 10_000, "log_level": 0},
    )
    probe.produce(topic, b"probe", on_delivery=lambda error, _: errors.append(error))
    probe.flush(15)
    return bool(errors) and errors[0] is not None and errors[0].code() == KafkaError.NOT_ENOUGH_REPLICAS


@pytest.mark.timeout(600)
async def test_not_enough_replicas_spools_and_delivers_everything(
    kafka_cluster: LocalCluster, unique: str, tmp_path: Path
) -> None:
    settings = kafka_cluster.settings(
        clicks_topic=f"clicks-isr-{unique}",
        partitions=3,
        replication_factor=3,
        min_insync_replicas=3,
        state_dir=tmp_path,
        signing_key=SIGNING_KEY,
        allowed_hosts=["example.com"],
        gateway_linger_ms=5,
        gateway_queue_max_messages=300,
        gateway_metrics_port=0,
    )
    probe_topic = f"probe-isr-{unique}"
    probes = service_topics(settings.model_copy(update={"clicks_topic": probe_topic}), "gateway")
    create_missing(settings.kafka, [*service_topics(settings, "gateway"), *probes])
    client = GatewayClient(settings)
    await client.__aenter__()
    try:
        await asyncio.to_thread(wait_for, lambda: client.sink.ready, "the producer to reach the cluster")
        await asyncio.to_thread(kafka_cluster.kill, 2)
        await asyncio.to_thread(wait_for, lambda: refused(kafka_cluster, probe_topic), "NOT_ENOUGH_REPLICAS")
        async with aiohttp.ClientSession() as session:
            statuses = await send_clicks(session, client.base, CLICKS)
        assert statuses == [302] * CLICKS
        assert client.sample(SPOOLED) > 0 and client.sample(PRODUCED) < CLICKS
    finally:
        await asyncio.to_thread(kafka_cluster.restart)
    await asyncio.to_thread(wait_for, lambda: client.sample(PRODUCED) == CLICKS, "every click delivered", 300)
    await asyncio.to_thread(wait_for, lambda: not segments(tmp_path / "spool"), "the spool to be emptied")
    spooled = int(client.sample(SPOOLED))
    await client.close()
    assert_exactly_once(settings.kafka, settings.clicks_topic)  # type: ignore[arg-type]
    print(f"NOT_ENOUGH_REPLICAS: {CLICKS} clicks, {spooled} spooled, all delivered once")

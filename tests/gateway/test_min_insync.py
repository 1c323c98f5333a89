"""A cluster that refuses writes for lack of in-sync replicas (NOT_ENOUGH_REPLICAS): the gateway keeps
redirecting, holds and spools the clicks, drops none, and delivers each exactly once when the replicas are
back. On the three-broker SASL_SSL cluster: the clicks topic has replication factor 3 and
``min.insync.replicas`` 3, so one broker down is enough to refuse every ``acks=all`` write."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from confluent_kafka import KafkaError

from clickmuncher.kafka.topics import create_missing, service_topics
from gateway.app import METRICS, SINK, create_app
from gateway.spool import segments
from tests import kafka_clients
from tests.cluster import LocalCluster
from tests.gateway.helpers import SIGNING_KEY, wait_for
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
    )
    probe_topic = f"probe-isr-{unique}"
    probes = service_topics(settings.model_copy(update={"clicks_topic": probe_topic}), "gateway")
    create_missing(settings.kafka, [*service_topics(settings, "gateway"), *probes])
    client = TestClient(TestServer(create_app(settings)))
    await client.start_server()
    sink, metrics = client.app[SINK], client.app[METRICS]  # type: ignore[index]
    sample = metrics.registry.get_sample_value
    try:
        await asyncio.to_thread(wait_for, lambda: sink.ready, "the producer to reach the cluster")
        await asyncio.to_thread(kafka_cluster.kill, 2)
        await asyncio.to_thread(wait_for, lambda: refused(kafka_cluster, probe_topic), "NOT_ENOUGH_REPLICAS")
        statuses = await send_clicks(client.session, str(client.make_url("")).rstrip("/"), CLICKS)
        assert statuses == [302] * CLICKS
        assert (sample(SPOOLED) or 0) > 0 and (sample(PRODUCED) or 0) < CLICKS
    finally:
        await asyncio.to_thread(kafka_cluster.restart)
    await asyncio.to_thread(wait_for, lambda: sample(PRODUCED) == CLICKS, "every click delivered", 300)
    await asyncio.to_thread(wait_for, lambda: not segments(tmp_path / "spool"), "the spool to be emptied")
    await client.close()
    assert_exactly_once(settings.kafka, settings.clicks_topic)  # type: ignore[arg-type]
    print(f"NOT_ENOUGH_REPLICAS: {CLICKS} clicks, {int(sample(SPOOLED) or 0)} spooled, all delivered once")

"""The broker's answers the engine relies on: end, start and committed offsets of ``clicks`` partitions."""

from __future__ import annotations

import asyncio

import pytest
from confluent_kafka import TopicPartition

from clickmuncher.kafka.admin import ensure_topics
from clickmuncher.kafka.config import KafkaSettings
from streams.offsets import EndOffsets
from tests import kafka_clients

pytestmark = pytest.mark.kafka


def test_end_start_and_committed_offsets_come_from_the_broker(kafka_bootstrap: str, unique: str) -> None:
    topic, group = f"offsets-{unique}", f"offsets-group-{unique}"
    ensure_topics(kafka_bootstrap, {topic: {}}, 2)
    producer = kafka_clients.producer(kafka_bootstrap)
    for i in range(10):
        producer.produce(topic, value=b"x", key=str(i).encode(), partition=0)
    producer.produce(topic, value=b"y", partition=1)
    producer.flush(30)
    consumer = kafka_clients.consumer(kafka_bootstrap, group)
    consumer.commit(offsets=[TopicPartition(topic, 0, 7)], asynchronous=False)
    consumer.close()

    async def ask() -> tuple[dict[int, int], dict[int, int], int | None, int | None]:
        offsets = EndOffsets(KafkaSettings(bootstrap=kafka_bootstrap), topic)
        ends = await offsets.fetch([0, 1], 30)
        starts = await offsets.fetch([0, 1], 30, earliest=True)
        return ends, starts, await offsets.committed(group, 0, 30), await offsets.committed(group, 1, 30)

    ends, starts, committed_0, committed_1 = asyncio.run(ask())
    assert ends == {0: 10, 1: 1}
    assert starts == {0: 0, 1: 0}
    assert committed_0 == 7
    assert committed_1 is None  # nothing committed there

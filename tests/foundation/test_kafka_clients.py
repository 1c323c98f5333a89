"""The real broker round-trips records for both client libraries the services use."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from confluent_kafka import Consumer, Producer

from clickmuncher.kafka.admin import COMPACTED, ensure_topics, topic_config


def test_confluent_kafka_round_trip(kafka_bootstrap: str, unique: str) -> None:
    topic = f"rt-ck-{unique}"
    ensure_topics(kafka_bootstrap, {topic: {}}, partitions=3)
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True, "acks": "all"})
    for i in range(30):
        producer.produce(
            topic, key=f"k{i % 5}".encode(), value=str(i).encode(), timestamp=1_700_000_000_000 + i
        )
    assert producer.flush(30) == 0

    consumer = Consumer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "group.id": f"g-{unique}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    seen: dict[int, int] = {}
    for _ in range(200):
        if len(seen) == 30:
            break
        msg = consumer.poll(0.5)
        if msg is None or msg.error():
            continue
        seen[int(msg.value())] = msg.timestamp()[1]
    consumer.close()
    assert sorted(seen) == list(range(30))
    assert all(ts == 1_700_000_000_000 + i for i, ts in seen.items())


def test_aiokafka_round_trip(kafka_bootstrap: str, unique: str) -> None:
    topic = f"rt-aio-{unique}"
    ensure_topics(kafka_bootstrap, {topic: {}}, partitions=2)

    async def scenario() -> list[bytes]:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", enable_idempotence=True)
        await producer.start()
        try:
            for i in range(20):
                await producer.send_and_wait(topic, key=b"k", value=f"v{i}".encode())
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=kafka_bootstrap,
            group_id=f"g-{unique}",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        values: list[bytes] = []
        try:
            while len(values) < 20:
                batch = await consumer.getmany(timeout_ms=1000)
                for records in batch.values():
                    values.extend(r.value for r in records)
        finally:
            await consumer.stop()
        return values

    values = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert values == [f"v{i}".encode() for i in range(20)]


def test_compacted_topic_config_reads_back(kafka_bootstrap: str, unique: str) -> None:
    topic = f"compacted-{unique}"
    created = ensure_topics(kafka_bootstrap, {topic: COMPACTED}, partitions=4)
    assert created == [topic]
    assert ensure_topics(kafka_bootstrap, {topic: COMPACTED}, partitions=4) == []
    config = topic_config(kafka_bootstrap, topic)
    assert config["cleanup.policy"] == "compact"

"""What the foundation tests share: the CLI in a subprocess, and a record round trip with each client library,
every client built from one :class:`KafkaSettings`."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from confluent_kafka import Consumer, Producer

from clickmuncher.kafka.config import KafkaSettings, aiokafka_config, consumer_config, producer_config

TS_MS = 1_700_000_000_000


def cli(
    *args: str, env: dict[str, str] | None = None, timeout_s: float = 180
) -> subprocess.CompletedProcess[str]:
    """``python -m clickmuncher.cli <args>`` with this environment plus ``env``."""
    return subprocess.run(
        [sys.executable, "-m", "clickmuncher.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
        env={**os.environ, **(env or {})},
    )


def produce(kafka: KafkaSettings, topic: str, values: range) -> None:
    """Produces ``values`` (idempotent, acks=all; timestamps TS_MS + value) and asserts each was delivered."""
    errors: list[object] = []

    def on_delivery(error: object, _message: object) -> None:
        if error is not None:
            errors.append(error)

    producer = Producer(producer_config(kafka))
    for i in values:
        producer.produce(
            topic,
            key=f"k{i % 7}".encode(),
            value=str(i).encode(),
            timestamp=TS_MS + i,
            on_delivery=on_delivery,
        )
    assert producer.flush(60) == 0
    assert errors == []


def consume(kafka: KafkaSettings, topic: str, group: str, count: int) -> dict[int, int]:
    """Reads ``topic`` from the start until ``count`` records came; returns value → timestamp."""
    consumer = Consumer(
        consumer_config(kafka, group, {"auto.offset.reset": "earliest", "enable.auto.commit": False})
    )
    consumer.subscribe([topic])
    seen: dict[int, int] = {}
    try:
        for _ in range(600):
            if len(seen) >= count:
                break
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                seen[int(message.value())] = message.timestamp()[1]
    finally:
        consumer.close()
    return seen


def aiokafka_round_trip(kafka: KafkaSettings, topic: str, group: str, count: int) -> list[bytes]:
    """Sends ``count`` records with aiokafka (idempotent, acks=all) and reads them back in order."""

    async def scenario() -> list[bytes]:
        producer = AIOKafkaProducer(**aiokafka_config(kafka), acks="all", enable_idempotence=True)
        await producer.start()
        try:
            for i in range(count):
                await producer.send_and_wait(topic, key=b"k", value=f"v{i}".encode())
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            topic,
            **aiokafka_config(kafka),
            group_id=group,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        values: list[bytes] = []
        try:
            while len(values) < count:
                batch = await consumer.getmany(timeout_ms=1000)
                values.extend(record.value for records in batch.values() for record in records)
        finally:
            await consumer.stop()
        return values

    return asyncio.run(asyncio.wait_for(scenario(), 120))

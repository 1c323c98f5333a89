"""The real broker round-trips records for both client libraries the services use, each built from
:class:`KafkaSettings`."""

from __future__ import annotations

from clickmuncher.kafka.admin import COMPACTED, ensure_topics, topic_config
from clickmuncher.kafka.config import KafkaSettings
from tests.foundation.helpers import TS_MS, aiokafka_round_trip, consume, produce


def test_confluent_kafka_round_trip(kafka_bootstrap: str, unique: str) -> None:
    kafka = KafkaSettings(bootstrap=kafka_bootstrap)
    topic = f"rt-ck-{unique}"
    ensure_topics(kafka, {topic: {}}, partitions=3)
    produce(kafka, topic, range(30))
    seen = consume(kafka, topic, f"g-{unique}", 30)
    assert sorted(seen) == list(range(30))
    assert all(ts == TS_MS + i for i, ts in seen.items())


def test_aiokafka_round_trip(kafka_bootstrap: str, unique: str) -> None:
    kafka = KafkaSettings(bootstrap=kafka_bootstrap)
    topic = f"rt-aio-{unique}"
    ensure_topics(kafka, {topic: {}}, partitions=2)
    values = aiokafka_round_trip(kafka, topic, f"g-{unique}", 20)
    assert values == [f"v{i}".encode() for i in range(20)]


def test_compacted_topic_config_reads_back(kafka_bootstrap: str, unique: str) -> None:
    topic = f"compacted-{unique}"
    created = ensure_topics(kafka_bootstrap, {topic: COMPACTED}, partitions=4)
    assert created == [topic]
    assert ensure_topics(kafka_bootstrap, {topic: COMPACTED}, partitions=4) == []
    config = topic_config(kafka_bootstrap, topic)
    assert config["cleanup.policy"] == "compact"

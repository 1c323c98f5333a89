"""The tests' own Kafka clients, configured as the services' are (clickmuncher/kafka/config.py): from a
:class:`KafkaSettings`, or from a bare bootstrap address for the session's plaintext broker."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from clickmuncher.kafka.config import KafkaSettings, admin_config, consumer_config, producer_config

Cluster = KafkaSettings | str  # a bare "host:port,..." is a plaintext cluster


def kafka_of(cluster: Cluster) -> KafkaSettings:
    return cluster if isinstance(cluster, KafkaSettings) else KafkaSettings(bootstrap=cluster)


def producer(cluster: Cluster, extra: Mapping[str, Any] | None = None) -> Producer:
    """Idempotent with ``acks=all`` unless ``extra`` says otherwise."""
    return Producer(producer_config(kafka_of(cluster), extra))


def consumer(cluster: Cluster, group: str, extra: Mapping[str, Any] | None = None) -> Consumer:
    return Consumer(consumer_config(kafka_of(cluster), group, extra))


def admin(cluster: Cluster, extra: Mapping[str, Any] | None = None) -> AdminClient:
    return AdminClient(admin_config(kafka_of(cluster), extra))

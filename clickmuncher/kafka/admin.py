"""Creating the project's topics with the settings the guarantees depend on."""

from __future__ import annotations

from collections.abc import Mapping

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

COMPACTED = {"cleanup.policy": "compact"}


def ensure_topics(
    bootstrap: str, topics: Mapping[str, Mapping[str, str]], partitions: int, timeout_s: float = 30.0
) -> list[str]:
    """Creates each missing topic with ``partitions`` partitions and its config; returns those created.

    Existing topics are left as they are (their partition count is the operator's decision).
    """
    admin = AdminClient({"bootstrap.servers": bootstrap})
    existing = set(admin.list_topics(timeout=timeout_s).topics)
    wanted = [
        NewTopic(name, num_partitions=partitions, replication_factor=1, config=dict(config))
        for name, config in topics.items()
        if name not in existing
    ]
    if not wanted:
        return []
    created: list[str] = []
    for name, future in admin.create_topics(wanted, operation_timeout=timeout_s).items():
        try:
            future.result(timeout=timeout_s)
            created.append(name)
        except KafkaException as e:
            if e.args[0].name() != "TOPIC_ALREADY_EXISTS":
                raise
    return created


def topic_config(bootstrap: str, topic: str, timeout_s: float = 30.0) -> dict[str, str]:
    """The effective config of ``topic`` as strings."""
    from confluent_kafka.admin import ConfigResource

    admin = AdminClient({"bootstrap.servers": bootstrap})
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    entries = admin.describe_configs([resource])[resource].result(timeout=timeout_s)
    return {name: entry.value for name, entry in entries.items()}

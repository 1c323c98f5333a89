"""Creating the project's topics with the settings the guarantees depend on."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

COMPACTED = {"cleanup.policy": "compact"}


def ensure_topics(
    bootstrap: str, topics: Mapping[str, Mapping[str, str]], partitions: int, timeout_s: float = 30.0
) -> list[str]:
    """Creates each missing topic with ``partitions`` partitions and its config; returns those created.

    Existing topics are left as they are (their partition count is the operator's decision). Returns once
    every topic is in the broker's metadata with a leader for each partition: a client that starts right
    after sees the topic whole (Faust reads a changelog it does not see yet as "0 partitions" and stops).
    """
    admin = AdminClient({"bootstrap.servers": bootstrap})
    existing = set(admin.list_topics(timeout=timeout_s).topics)
    wanted = [
        NewTopic(name, num_partitions=partitions, replication_factor=1, config=dict(config))
        for name, config in topics.items()
        if name not in existing
    ]
    created: list[str] = []
    futures = admin.create_topics(wanted, operation_timeout=timeout_s) if wanted else {}
    for name, future in futures.items():
        try:
            future.result(timeout=timeout_s)
            created.append(name)
        except KafkaException as e:
            if e.args[0].name() != "TOPIC_ALREADY_EXISTS":
                raise
    wait_until_visible(admin, topics, timeout_s)
    return created


def wait_until_visible(admin: AdminClient, topics: Iterable[str], timeout_s: float) -> None:
    """Waits until each topic is in the metadata with every partition led; raises TimeoutError."""
    deadline = time.monotonic() + timeout_s
    for name in topics:
        while not _visible(admin, name, timeout_s):
            if time.monotonic() > deadline:
                raise TimeoutError(f"topic {name} is not visible in the broker's metadata after {timeout_s}s")
            time.sleep(0.1)


def _visible(admin: AdminClient, name: str, timeout_s: float) -> bool:
    topic = admin.list_topics(topic=name, timeout=timeout_s).topics.get(name)
    if topic is None or topic.error is not None or not topic.partitions:
        return False
    return all(partition.error is None and partition.leader >= 0 for partition in topic.partitions.values())


def topic_config(bootstrap: str, topic: str, timeout_s: float = 30.0) -> dict[str, str]:
    """The effective config of ``topic`` as strings."""
    from confluent_kafka.admin import ConfigResource

    admin = AdminClient({"bootstrap.servers": bootstrap})
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    entries = admin.describe_configs([resource])[resource].result(timeout=timeout_s)
    return {name: entry.value for name, entry in entries.items()}

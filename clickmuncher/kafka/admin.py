"""Creating topics by name and config: the helpers the services and tests used before the declarations in
:mod:`clickmuncher.kafka.topics`, now built on them (replication and ``min.insync.replicas`` follow
``CLICKMUNCHER_REPLICATION_FACTOR`` / ``_MIN_INSYNC_REPLICAS`` when given, else the cluster's defaults)."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from clickmuncher.kafka.config import KafkaSettings, admin_config
from clickmuncher.kafka.topics import TopicSpec, create_missing, describe, wait_until_visible

COMPACTED = {"cleanup.policy": "compact"}
log = logging.getLogger("clickmuncher.kafka")

__all__ = ["COMPACTED", "ensure_topics", "topic_config", "topic_id", "wait_until_visible"]


def ensure_topics(
    kafka: KafkaSettings | str,
    topics: Mapping[str, Mapping[str, str]],
    partitions: int,
    timeout_s: float = 30.0,
    *,
    replication_factor: int | None = None,
    min_insync_replicas: int | None = None,
) -> list[str]:
    """Creates each missing topic with ``partitions`` partitions and its config (only ``cleanup.policy``
    is understood); returns those created. Existing topics are left as they are.

    ``kafka`` may still be a bare bootstrap string (a PLAINTEXT cluster), as before the settings object.
    """
    settings = KafkaSettings(bootstrap=kafka) if isinstance(kafka, str) else kafka
    specs = [
        TopicSpec(name, partitions, _compacted(name, config), replication_factor, min_insync_replicas)
        for name, config in topics.items()
    ]
    return create_missing(settings, specs, timeout_s)


def _compacted(name: str, config: Mapping[str, str]) -> bool:
    unknown = set(config) - {"cleanup.policy"}
    if unknown:
        raise ValueError(f"topic {name}: only cleanup.policy can be given here, not {sorted(unknown)}")
    return config.get("cleanup.policy", "delete") == "compact"


def topic_config(kafka: KafkaSettings | str, topic: str, timeout_s: float = 30.0) -> dict[str, str]:
    """The effective config of ``topic`` as strings."""
    from confluent_kafka.admin import AdminClient

    settings = KafkaSettings(bootstrap=kafka) if isinstance(kafka, str) else kafka
    return describe(AdminClient(admin_config(settings)), "topic", [topic], timeout_s)[topic]


def topic_id(kafka: KafkaSettings, topic: str, timeout_s: float = 10.0) -> str | None:
    """The topic's id (a new one each time a topic of that name is created), or None when the cluster cannot
    say now."""
    from confluent_kafka import KafkaException, TopicCollection
    from confluent_kafka.admin import AdminClient

    admin = AdminClient(admin_config(kafka))
    try:
        description = admin.describe_topics(TopicCollection([topic]))[topic].result(timeout=timeout_s)
    except (KafkaException, TimeoutError) as e:
        log.warning("topic %s: id unknown (%r)", topic, e)
        return None
    found = getattr(description, "topic_id", None)
    return None if found is None else str(found)

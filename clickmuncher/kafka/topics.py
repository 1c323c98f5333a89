"""Every topic the pipeline uses, declared once, and how the cluster's topics compare with the declarations.

Unset replication settings mean the cluster's: a topic is created with replication factor -1 (the broker's
``default.replication.factor``, CreateTopics v4+) and without a ``min.insync.replicas`` override, and is
checked against the broker's values of both.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from clickmuncher.kafka.config import KafkaSettings, admin_config
from clickmuncher.settings import CommonSettings, ConfigError

METADATA_SETTLE_S = 2.0
CHANGELOG_TABLE = "click-window-counts"  # the streams worker's Faust table (streams/app.py), named once


@dataclass(frozen=True)
class TopicSpec:
    """A topic as the pipeline needs it. None: the cluster's default (replication, min ISR, retention)."""

    name: str
    partitions: int
    compacted: bool = False
    replication_factor: int | None = None
    min_insync_replicas: int | None = None
    retention_ms: int | None = None

    @property
    def cleanup_policy(self) -> str:
        return "compact" if self.compacted else "delete"

    def config(self) -> dict[str, str]:
        config = {"cleanup.policy": self.cleanup_policy}
        if self.min_insync_replicas is not None:
            config["min.insync.replicas"] = str(self.min_insync_replicas)
        if self.retention_ms is not None:
            config["retention.ms"] = str(self.retention_ms)
        return config


class MisconfiguredTopic(ConfigError):
    """A topic of the service differs from its declaration; the message is one line."""


def changelog_topic(settings: CommonSettings) -> str:
    """The window table's changelog, named as Faust names it."""
    return f"{settings.streams_app_id}-{CHANGELOG_TABLE}-changelog"


def declared(settings: CommonSettings) -> dict[str, TopicSpec]:
    """The pipeline's topics by role. All have ``CLICKMUNCHER_PARTITIONS`` partitions: the changelog must
    match ``clicks`` partition for partition, and the others follow the same keys."""

    def spec(name: str, *, compacted: bool = False) -> TopicSpec:
        return TopicSpec(
            name,
            settings.partitions,
            compacted,
            settings.replication_factor,
            settings.min_insync_replicas,
        )

    return {
        "clicks": spec(settings.clicks_topic),
        "windows": spec(settings.windows_topic, compacted=True),
        "live": spec(settings.live_topic, compacted=True),
        "changelog": spec(changelog_topic(settings), compacted=True),
        "clicks_dead": spec(settings.clicks_dead_topic),
        "clicks_late": spec(settings.clicks_late_topic),
        "windows_dead": spec(settings.windows_dead_topic),
    }


SERVICES = {
    "gateway": ("clicks",),
    "streams": ("clicks", "changelog", "windows", "live", "clicks_dead", "clicks_late"),
    "sink": ("windows", "windows_dead"),
    "api": ("live",),
}


def service_topics(settings: CommonSettings, service: str) -> list[TopicSpec]:
    topics = declared(settings)
    return [topics[role] for role in SERVICES[service]]


def ensure_service_topics(settings: CommonSettings, service: str, timeout_s: float = 30.0) -> list[str]:
    """At a service's start: creates its missing topics, then refuses (:class:`MisconfiguredTopic`, one
    line) when one of them differs from its declaration. Returns the topics created."""
    specs = service_topics(settings, service)
    created = create_missing(settings.kafka, specs, timeout_s)
    found = differences(settings.kafka, specs, timeout_s)
    if found:
        more = f" (and {len(found) - 1} more; see clickmuncher topics check)" if len(found) > 1 else ""
        raise MisconfiguredTopic(f"{service} refuses to start: topic {found[0]}{more}")
    return created


def create_missing(kafka: KafkaSettings, specs: Sequence[TopicSpec], timeout_s: float = 30.0) -> list[str]:
    """Creates each topic of ``specs`` that does not exist; returns those created.

    Returns once every topic is in the metadata with a leader for each partition: a client that starts
    right after sees the topic whole (Faust reads a changelog it does not see yet as "0 partitions").
    """
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient(admin_config(kafka))
    existing = set(admin.list_topics(timeout=timeout_s).topics)
    wanted = [
        NewTopic(
            s.name,
            num_partitions=s.partitions,
            replication_factor=s.replication_factor or -1,
            config=s.config(),
        )
        for s in specs
        if s.name not in existing
    ]
    created: list[str] = []
    futures = admin.create_topics(wanted, operation_timeout=timeout_s) if wanted else {}
    for name, future in futures.items():
        try:
            future.result(timeout=timeout_s)
            created.append(name)
        except KafkaException as e:
            if e.args[0].name() != "TOPIC_ALREADY_EXISTS":
                raise ConfigError(f"cannot create topic {name}: {kafka.scrub(e.args[0].str())}") from e
    wait_until_visible(admin, [s.name for s in specs], timeout_s)
    return created


def wait_until_visible(admin: Any, topics: Iterable[str], timeout_s: float) -> None:
    """Waits until each topic is in the metadata with every partition led; raises TimeoutError."""
    deadline = time.monotonic() + timeout_s
    for name in topics:
        while not _visible(admin, name, timeout_s):
            if time.monotonic() > deadline:
                raise TimeoutError(f"topic {name} is not visible in the broker's metadata after {timeout_s}s")
            time.sleep(0.1)


def _visible(admin: Any, name: str, timeout_s: float) -> bool:
    topic = admin.list_topics(topic=name, timeout=timeout_s).topics.get(name)
    if topic is None or topic.error is not None or not topic.partitions:
        return False
    return all(partition.error is None and partition.leader >= 0 for partition in topic.partitions.values())


def differences(kafka: KafkaSettings, specs: Sequence[TopicSpec], timeout_s: float = 30.0) -> list[str]:
    """Each way the cluster's topics differ from ``specs``, one line each (``<topic>: <difference>``):
    missing, fewer partitions, lower replication, another cleanup policy, another ``min.insync.replicas``
    (or one above the replication factor), another retention."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient(admin_config(kafka))
    metadata = _metadata(admin, [s.name for s in specs], timeout_s)
    present = [s for s in specs if s.name in metadata.topics]
    configs = describe(admin, "topic", [s.name for s in present], timeout_s)
    broker = _broker_config(admin, next(iter(metadata.brokers)), timeout_s) if present else {}
    found = [f"{s.name}: missing" for s in specs if s.name not in metadata.topics]
    for s in present:
        partitions = metadata.topics[s.name].partitions.values()
        actual = Actual(len(partitions), min(len(p.replicas) for p in partitions), configs[s.name])
        found += [f"{s.name}: {line}" for line in compare(s, actual, broker)]
    return found


def _metadata(admin: Any, names: Sequence[str], timeout_s: float) -> Any:
    """The cluster's metadata, asked again for up to ``METADATA_SETTLE_S`` while a topic is missing: each
    broker applies the metadata log on its own, so one that lags may not list a topic created just now."""
    deadline = time.monotonic() + METADATA_SETTLE_S
    while True:
        metadata = admin.list_topics(timeout=timeout_s)
        if all(name in metadata.topics for name in names) or time.monotonic() > deadline:
            return metadata
        time.sleep(0.2)


def _broker_config(admin: Any, broker_id: int, timeout_s: float) -> dict[str, str]:
    """A broker's effective config, or {} where describing brokers is not allowed (managed clusters):
    then only declared replication settings are checked."""
    from confluent_kafka import KafkaException

    try:
        return describe(admin, "broker", [str(broker_id)], timeout_s)[str(broker_id)]
    except KafkaException:
        return {}


@dataclass(frozen=True)
class Actual:
    partitions: int
    replication_factor: int
    config: dict[str, str]


def compare(spec: TopicSpec, actual: Actual, broker: dict[str, str]) -> list[str]:
    """How one existing topic differs from its declaration (``broker``: the broker's effective config)."""
    found: list[str] = []
    if actual.partitions < spec.partitions:
        found.append(f"{actual.partitions} partitions, declared {spec.partitions} (CLICKMUNCHER_PARTITIONS)")
    rf, rf_source = _expected(
        spec.replication_factor, broker, "default.replication.factor", "REPLICATION_FACTOR"
    )
    if rf is not None and actual.replication_factor < rf:
        found.append(f"replication factor {actual.replication_factor}, declared {rf} ({rf_source})")
    policy = actual.config.get("cleanup.policy", "delete")
    if set(policy.split(",")) != {spec.cleanup_policy}:
        found.append(f"cleanup.policy {policy}, declared {spec.cleanup_policy}")
    isr = actual.config.get("min.insync.replicas")
    want_isr, isr_source = _expected(
        spec.min_insync_replicas, broker, "min.insync.replicas", "MIN_INSYNC_REPLICAS"
    )
    if isr is not None and want_isr is not None and int(isr) != want_isr:
        found.append(f"min.insync.replicas {isr}, declared {want_isr} ({isr_source})")
    if isr is not None and int(isr) > actual.replication_factor:
        found.append(
            f"min.insync.replicas {isr} > replication factor {actual.replication_factor}: "
            "every acks=all write is refused"
        )
    retention = actual.config.get("retention.ms")
    if spec.retention_ms is not None and retention is not None and int(retention) != spec.retention_ms:
        found.append(f"retention.ms {retention}, declared {spec.retention_ms}")
    return found


def _expected(
    declared_value: int | None, broker: dict[str, str], key: str, env: str
) -> tuple[int | None, str]:
    if declared_value is not None:
        return declared_value, f"CLICKMUNCHER_{env}"
    value = broker.get(key)
    return (int(value) if value is not None else None), f"the cluster's {key}"


def describe(admin: Any, kind: str, names: Sequence[str], timeout_s: float) -> dict[str, dict[str, str]]:
    """The effective configs of topics or brokers (``kind``), as strings by name."""
    from confluent_kafka.admin import ConfigResource

    resource_type = ConfigResource.Type.TOPIC if kind == "topic" else ConfigResource.Type.BROKER
    resources = [ConfigResource(resource_type, name) for name in names]
    futures = admin.describe_configs(resources) if resources else {}
    return {
        resource.name: {key: entry.value for key, entry in future.result(timeout=timeout_s).items()}
        for resource, future in futures.items()
    }

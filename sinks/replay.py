"""``clickmuncher replay sink --from earliest|ISO-8601``: move the stopped sink back to re-apply the topic.

The sink's position lives in ``sink_offsets`` (the truth it resumes from) and in its Kafka group's committed
offsets (for tooling); both move. Writes are absolute and revision-guarded and ``clicks`` moves by deltas,
so re-applying records already in the database changes nothing, and rows deleted by an operator come back.
A replay never moves a partition forward: that would skip records.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime

import sqlalchemy as sa
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from clickmuncher.db.engines import make_engine
from clickmuncher.db.schema import upgrade
from clickmuncher.db.times import parse_iso_utc
from clickmuncher.kafka.config import admin_config, consumer_config
from clickmuncher.logs import log_start, setup_logging
from clickmuncher.settings import ConfigError, SinkSettings
from sinks import store

log = logging.getLogger("sinks.replay")
TIMEOUT_S = 30.0
EARLIEST = "earliest"


def replay_command(settings: SinkSettings, from_: str) -> None:
    """Refuses (:class:`ConfigError`) while a sink is running in the group; otherwise moves both positions."""
    setup_logging()
    log_start("replay-sink", settings, from_=from_)
    start = None if from_.strip().lower() == EARLIEST else parse_iso_utc(from_, "--from")
    positions = replay_sink(settings, start)
    shown = " ".join(f"{p}:{o}" for p, o in sorted(positions.items()))
    print(f"replay sink: {settings.windows_topic} will be re-applied from partition:offset {shown}")


def replay_sink(settings: SinkSettings, start: datetime | None) -> dict[int, int]:
    """Moves the sink back to ``start`` (None: the earliest offsets); returns the new positions."""
    admin = AdminClient(admin_config(settings.kafka))
    ensure_no_members(admin, settings.sink_group)
    targets = target_offsets(settings, start)
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        with engine.begin() as conn:
            current = store.load_offsets(conn, settings.windows_topic)
            positions = {p: min(o, current.get(p, o)) for p, o in targets.items()}
            _commit_group_offsets(admin, settings, positions)
            store.set_offsets(conn, settings.windows_topic, positions)
    except sa.exc.OperationalError as e:
        raise ConfigError(f"database unavailable, nothing moved in the DB: {e.orig}") from e
    finally:
        engine.dispose()
    return positions


def ensure_no_members(admin: AdminClient, group: str) -> None:
    """Raises :class:`ConfigError` when the consumer group has members (a sink is running)."""
    future = admin.describe_consumer_groups([group], request_timeout=TIMEOUT_S)[group]
    try:
        description = future.result(timeout=TIMEOUT_S)
    except KafkaException as e:
        if e.args[0].name() == "GROUP_ID_NOT_FOUND":
            return
        raise
    if description.members:
        hosts = ", ".join(sorted({m.host for m in description.members}))
        raise ConfigError(
            f"sink group {group!r} has {len(description.members)} running member(s) ({hosts}); "
            "stop the sink first"
        )


def target_offsets(settings: SinkSettings, start: datetime | None) -> dict[int, int]:
    """Per partition: the earliest offset, or the first offset at or after ``start`` (the end when none)."""
    topic = settings.windows_topic
    consumer = Consumer(consumer_config(settings.kafka, settings.sink_group))
    try:
        metadata = consumer.list_topics(topic, timeout=TIMEOUT_S).topics.get(topic)
        if metadata is None or metadata.error is not None or not metadata.partitions:
            raise ConfigError(f"topic {topic!r} does not exist")
        partitions = sorted(metadata.partitions)
        marks = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=TIMEOUT_S) for p in partitions
        }
        if start is None:
            return {p: int(marks[p][0]) for p in partitions}
        ms = int(start.timestamp() * 1000)
        found = consumer.offsets_for_times(
            [TopicPartition(topic, p, ms) for p in partitions], timeout=TIMEOUT_S
        )
        return {tp.partition: tp.offset if tp.offset >= 0 else int(marks[tp.partition][1]) for tp in found}
    finally:
        consumer.close()


def _commit_group_offsets(admin: AdminClient, settings: SinkSettings, positions: Mapping[int, int]) -> None:
    """Sets the group's committed offsets (Kafka refuses while the group has members)."""
    offsets = [TopicPartition(settings.windows_topic, p, o) for p, o in sorted(positions.items()) if o >= 0]
    if not offsets:
        return
    request = ConsumerGroupTopicPartitions(settings.sink_group, offsets)
    for future in admin.alter_consumer_group_offsets([request], request_timeout=TIMEOUT_S).values():
        try:
            future.result(timeout=TIMEOUT_S)
        except KafkaException as e:
            raise ConfigError(f"could not move the group's offsets (is a sink running?): {e}") from e

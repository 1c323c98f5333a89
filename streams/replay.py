"""``clickmuncher replay streams --from ISO``: recompute windows from the raw ``clicks`` topic.

With every streams worker stopped:

1. Refuse if the streams consumer group still has members.
2. ``from_ms`` = the start of the window containing the given time.
3. Delete the table's changelog topic and create it again, empty, with a *floor* record per partition
   (``~floor:<p>`` = ``from_ms``): clicks of windows before the floor are skipped, so a late click of an
   older window can never emit a partial count over the real one. Workers rebuild their local store
   from the changelog at every start, so no local state survives.
4. Reset the group's offsets on ``clicks`` to the first record at or after ``from_ms`` (offsets_for_times;
   the end of the partition if there is none).

When workers start again, every window from ``from_ms`` on is recounted from scratch and emitted once
more (revision 0, plus the same late revisions), so downstream writes converge by key.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from clickmuncher.kafka.admin import COMPACTED, wait_until_visible
from clickmuncher.kafka.config import admin_config, consumer_config, producer_config
from clickmuncher.logs import log_start, setup_logging
from clickmuncher.settings import ConfigError, Settings
from streams.app import changelog_topic
from streams.table import changelog_records
from streams.windows import floor_key

log = logging.getLogger("streams.replay")
TIMEOUT_S = 30.0


def parse_from(text: str) -> int:
    """An ISO-8601 time (naive means UTC) as epoch milliseconds."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as e:
        raise ConfigError(f"--from: not an ISO-8601 time: {text!r}") from e
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def replay_command(settings: Settings, from_: str) -> None:
    at_ms = parse_from(from_)
    setup_logging()
    log_start("replay-streams", settings, from_=from_)
    window_ms = settings.window_s * 1000
    from_ms = at_ms - at_ms % window_ms
    admin = AdminClient(admin_config(settings.kafka))
    _refuse_if_running(admin, settings.streams_app_id)
    offsets = _offsets_at(settings, from_ms)
    _reset_changelog(admin, settings, from_ms)
    _reset_group(admin, settings.streams_app_id, offsets)
    log.info(
        "replay-streams ready: from_ms=%d offsets=%s", from_ms, {tp.partition: tp.offset for tp in offsets}
    )


def _refuse_if_running(admin: AdminClient, group: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while True:  # a group's coordinator can answer "not coordinator" until it has loaded the group
        try:
            described = admin.describe_consumer_groups([group])[group].result(timeout=TIMEOUT_S)
            break
        except KafkaException as e:
            if not e.args[0].retriable() or time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    if described.members:
        raise ConfigError(f"consumer group {group} has {len(described.members)} members: stop the workers")


def _offsets_at(settings: Settings, from_ms: int) -> list[TopicPartition]:
    consumer = Consumer(consumer_config(settings.kafka, settings.streams_app_id))
    try:
        topic = settings.clicks_topic
        meta = consumer.list_topics(topic, timeout=TIMEOUT_S).topics.get(topic)
        if meta is None or not meta.partitions:
            raise ConfigError(f"topic {topic} does not exist")
        wanted = [TopicPartition(topic, p, from_ms) for p in sorted(meta.partitions)]
        found = consumer.offsets_for_times(wanted, timeout=TIMEOUT_S)
        offsets = []
        for tp in found:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, tp.partition), TIMEOUT_S)
            offset = high if tp.offset < 0 else tp.offset  # nothing at or after from_ms: start at the end
            _refuse_if_not_retained(tp.partition, offset, low)
            offsets.append(TopicPartition(topic, tp.partition, offset))
        return offsets
    finally:
        consumer.close()


def _refuse_if_not_retained(partition: int, offset: int, low: int) -> None:
    """Replaying from ``offset`` recounts its windows exactly only if nothing before it that belongs to them
    was deleted: when the replay would start at the earliest retained record and earlier records are gone,
    some clicks of the first window may be among them."""
    if low > 0 and offset <= low:
        raise ConfigError(
            f"clicks of partition {partition} before offset {low} are no longer retained, so the first "
            "replayed window could be recounted short: choose a later --from"
        )


def _reset_changelog(admin: AdminClient, settings: Settings, from_ms: int) -> None:
    topic = changelog_topic(settings)
    if topic in admin.list_topics(timeout=TIMEOUT_S).topics:
        admin.delete_topics([topic], operation_timeout=TIMEOUT_S)[topic].result(timeout=TIMEOUT_S)
    deadline = time.monotonic() + 60
    while True:  # a deleted topic disappears asynchronously
        new = NewTopic(topic, num_partitions=settings.partitions, replication_factor=1, config=COMPACTED)
        try:
            admin.create_topics([new], operation_timeout=TIMEOUT_S)[topic].result(timeout=TIMEOUT_S)
            break
        except KafkaException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    wait_until_visible(admin, [topic], TIMEOUT_S)
    producer = Producer(producer_config(settings.kafka))
    for p in range(settings.partitions):
        (floor,) = changelog_records(topic, p, [(floor_key(p), from_ms)])
        producer.produce(topic, key=floor.key, value=floor.value, partition=p)
    if producer.flush(TIMEOUT_S):
        raise ConfigError(f"could not write the replay floor to {topic}")


def _reset_group(admin: AdminClient, group: str, offsets: list[TopicPartition]) -> None:
    """Sets the group's committed offsets and reads them back until they hold.

    The broker can refuse the change per partition (a group still settling after its last member left)
    without failing the request, so the result is checked, not assumed.
    """
    wanted = {tp.partition: tp.offset for tp in offsets}
    deadline = time.monotonic() + 2 * TIMEOUT_S
    while True:
        problem = _try_reset_group(admin, group, offsets, wanted)
        if problem is None:
            return
        if time.monotonic() > deadline:
            raise ConfigError(f"could not reset the offsets of group {group}: {problem}")
        log.info("replay-streams: group offsets not set yet (%s), retrying", problem)
        time.sleep(1.0)


def _try_reset_group(
    admin: AdminClient, group: str, offsets: list[TopicPartition], wanted: dict[int, int]
) -> str | None:
    """One attempt; returns what went wrong, or None when the committed offsets are the wanted ones."""
    from confluent_kafka import ConsumerGroupTopicPartitions

    try:
        request = [ConsumerGroupTopicPartitions(group, offsets)]
        for future in admin.alter_consumer_group_offsets(request).values():
            answer = future.result(timeout=TIMEOUT_S)
            errors = [f"{tp.partition}: {tp.error}" for tp in answer.topic_partitions if tp.error]
            if errors:
                return ", ".join(errors)
        partitions = [TopicPartition(tp.topic, tp.partition) for tp in offsets]
        listed = [ConsumerGroupTopicPartitions(group, partitions)]
        for future in admin.list_consumer_group_offsets(listed).values():
            committed = {tp.partition: tp.offset for tp in future.result(timeout=TIMEOUT_S).topic_partitions}
            if committed != wanted:
                return f"committed {committed}, wanted {wanted}"
    except KafkaException as e:
        return str(e.args[0])
    return None

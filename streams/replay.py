"""``clickmuncher replay streams --from ISO``: recompute windows from the raw ``clicks`` topic.

With every streams worker stopped, in this order:

1. Look, change nothing: refuse if the streams consumer group has members; ``from_ms`` = the start of the
   window containing the given time; the replay offsets on ``clicks`` = per partition the first record at or
   after ``from_ms`` (``offsets_for_times``; the end if there is none), refused if earlier clicks of that
   window may have been deleted; describe the changelog topic to recreate it alike (partitions, replication
   factor, the configs set on the topic itself), or, if it is missing, the ``clicks`` topic (replication
   factor, ``min.insync.replicas``).
2. Mark: set the group's offsets on ``clicks`` to the replay offsets, each commit carrying the metadata
   ``replay-streams pending from_ms=<from_ms>`` (:data:`PENDING`).
3. Wipe: delete the table's changelog and create it again, empty but for a *floor* record per partition
   (``~floor:<p>`` = ``from_ms``): clicks of windows before the floor are skipped, so a late click of an
   older window can never emit a partial count over the real one. Workers rebuild their local store from
   the changelog at every start, so no local state survives.
4. Unmark: commit the same offsets without the metadata. The replay is complete.

Why every interruption is safe. A worker refuses to start while any committed offset of its group carries
the mark (:func:`check_no_pending_replay`, called by ``streams/main.py`` before the worker touches a
topic), so workers only ever start from the state before step 2 (nothing changed) or after step 4 (the
replay done). Running ``replay streams`` again repeats every step, each of which can be repeated: the mark
is set again, the changelog deleted if it exists and created again, the mark cleared. Step by step:

- stopped during 1: nothing has changed;
- during 2: some partitions may be marked, or none; with none, nothing has changed;
- between 2 and 3: old changelog, offsets moved back and marked. (Even a worker that ignored the mark would
  count exactly here: that is the state after a worker crash, changelog ahead of committed offsets, and
  the engine skips every click its state proves counted; only the replay would be missing.)
- during 3: no changelog, or one without its floor. A worker must not start now: it would recount from the
  replay offsets without the floor and emit partial counts of windows before ``from_ms``. The mark stops it;
- between 3 and 4, or during 4: the replay is done but (partly) still marked: workers refuse until a run
  finishes, which redoes it all.

When workers start again, every window from ``from_ms`` on is recounted from scratch and emitted once
more (revision 0, plus the same late revisions), so downstream writes converge by key.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from confluent_kafka import (
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource, NewTopic

from clickmuncher.kafka.admin import COMPACTED, wait_until_visible
from clickmuncher.kafka.config import admin_config, consumer_config, producer_config
from clickmuncher.kafka.topics import changelog_topic
from clickmuncher.logs import log_start, setup_logging
from clickmuncher.retry import GaveUp, Retry, kafka_transient
from clickmuncher.settings import ConfigError, StreamsSettings
from streams.table import changelog_records
from streams.windows import floor_key

log = logging.getLogger("streams.replay")
T = TypeVar("T")
TIMEOUT_S = 30.0
PENDING = "replay-streams pending from_ms="
"""Prefix of the commit metadata that marks the group's offsets while a replay is unfinished."""
KEPT_FROM_CLICKS = ("min.insync.replicas",)
"""The configs a new changelog takes from the clicks topic (when set there) if there was no changelog."""


@dataclass(frozen=True, slots=True)
class TopicShape:
    """What a recreated changelog keeps: partitions, replication factor, the configs set on the topic."""

    partitions: int
    replication_factor: int
    config: Mapping[str, str]


def parse_from(text: str) -> int:
    """An ISO-8601 time (naive means UTC) as epoch milliseconds."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as e:
        raise ConfigError(f"--from: not an ISO-8601 time: {text!r}") from e
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def replay_command(settings: StreamsSettings, from_: str) -> None:
    at_ms = parse_from(from_)
    setup_logging()
    log_start("replay-streams", settings, from_=from_)
    window_ms = settings.window_s * 1000
    from_ms = at_ms - at_ms % window_ms
    admin = AdminClient(admin_config(settings.kafka))
    group = settings.streams_app_id
    _refuse_if_running(admin, group)  # 1. look
    unfinished = pending_replay(settings)
    if unfinished is not None:
        log.info("replay-streams: finishing an interrupted replay (from_ms=%d) with this one", unfinished)
    offsets = _offsets_at(settings, from_ms)
    shape = _changelog_shape(admin, settings)
    _reset_group(admin, group, offsets, f"{PENDING}{from_ms}")  # 2. mark
    _refuse_if_running(admin, group)  # a worker that joined after step 1 is caught here, before the wipe
    _recreate_changelog(admin, settings, shape, from_ms)  # 3. wipe
    _reset_group(admin, group, offsets, "")  # 4. unmark
    log.info(
        "replay-streams ready: from_ms=%d offsets=%s", from_ms, {tp.partition: tp.offset for tp in offsets}
    )


def check_no_pending_replay(settings: StreamsSettings) -> None:
    """Raises :class:`ConfigError` when a ``replay streams`` of this app id was interrupted: a worker started
    now could count from a half-reset state (see the module docstring)."""
    from_ms = pending_replay(settings)
    if from_ms is not None:
        raise ConfigError(
            f"an interrupted `replay streams` (from_ms={from_ms}) is unfinished: run "
            "`clickmuncher replay streams --from ...` again before starting workers"
        )


def pending_replay(settings: StreamsSettings) -> int | None:
    """The ``from_ms`` of an unfinished replay marked on the streams group's committed offsets of ``clicks``.

    Read through a consumer of the group that does not join it (``committed()`` waits out a coordinator
    that is still loading, as on a broker that just started)."""
    topic, group = settings.clicks_topic, settings.streams_app_id
    consumer = Consumer(consumer_config(settings.kafka, group))
    try:
        meta = consumer.list_topics(topic, timeout=TIMEOUT_S).topics.get(topic)
        if meta is None or meta.error is not None or not meta.partitions:
            return None  # no clicks yet: nothing was ever replayed
        wanted = [TopicPartition(topic, p) for p in sorted(meta.partitions)]
        committed = _retrying(lambda: consumer.committed(wanted, timeout=TIMEOUT_S))
    except (KafkaException, GaveUp) as e:
        reason = e.args[0] if isinstance(e, KafkaException) else e
        raise ConfigError(f"cannot read the committed offsets of group {group}: {reason}") from e
    finally:
        consumer.close()
    for tp in committed:
        if tp.metadata and tp.metadata.startswith(PENDING):
            return int(tp.metadata.removeprefix(PENDING))
    return None


def _retrying(call: Callable[[], T]) -> T:
    """``call()``, retried for up to TIMEOUT_S while the broker answers with a transient error (a group's
    coordinator answers "loading", or "not coordinator" while the coordinators are still being elected, as
    on a cluster that just started); then :class:`GaveUp`."""
    return Retry("asking the streams group's coordinator", deadline_s=TIMEOUT_S, first_delay_s=0.5).call(call)


def _refuse_if_running(admin: AdminClient, group: str) -> None:
    described = _retrying(lambda: admin.describe_consumer_groups([group])[group].result(timeout=TIMEOUT_S))
    if described.members:
        raise ConfigError(f"consumer group {group} has {len(described.members)} members: stop the workers")


def _offsets_at(settings: StreamsSettings, from_ms: int) -> list[TopicPartition]:
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


def _changelog_shape(admin: AdminClient, settings: StreamsSettings) -> TopicShape:
    """The changelog as it is, to recreate it alike; if it is missing, the replication of ``clicks``."""
    existing = _shape(admin, changelog_topic(settings))
    if existing is not None:
        return TopicShape(existing.partitions, existing.replication_factor, {**existing.config, **COMPACTED})
    clicks = _shape(admin, settings.clicks_topic)
    if clicks is None:
        raise ConfigError(f"topic {settings.clicks_topic} does not exist")
    kept = {name: value for name, value in clicks.config.items() if name in KEPT_FROM_CLICKS}
    return TopicShape(settings.partitions, clicks.replication_factor, {**COMPACTED, **kept})


def _shape(admin: AdminClient, topic: str) -> TopicShape | None:
    meta = admin.list_topics(topic, timeout=TIMEOUT_S).topics.get(topic)
    if meta is None or meta.error is not None or not meta.partitions:
        return None
    replication = max(len(partition.replicas) for partition in meta.partitions.values())
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    entries = admin.describe_configs([resource])[resource].result(timeout=TIMEOUT_S)
    config = {
        name: entry.value
        for name, entry in entries.items()
        if entry.source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value and entry.value is not None
    }
    return TopicShape(len(meta.partitions), replication, config)


def _recreate_changelog(
    admin: AdminClient, settings: StreamsSettings, shape: TopicShape, from_ms: int
) -> None:
    """Deletes the changelog (if it exists) and creates it again as ``shape`` with the floor records."""
    topic = changelog_topic(settings)
    if topic in admin.list_topics(timeout=TIMEOUT_S).topics:
        admin.delete_topics([topic], operation_timeout=TIMEOUT_S)[topic].result(timeout=TIMEOUT_S)
    new = NewTopic(
        topic,
        num_partitions=shape.partitions,
        replication_factor=shape.replication_factor,
        config=dict(shape.config),
    )
    # A deleted topic disappears asynchronously: until then creating it answers "already exists".
    creating = Retry(f"creating {topic}", _deleting_or_transient, deadline_s=60, first_delay_s=0.5)
    creating.call(lambda: admin.create_topics([new], operation_timeout=TIMEOUT_S)[topic].result(TIMEOUT_S))
    wait_until_visible(admin, [topic], TIMEOUT_S)
    _write_floor(settings, topic, shape.partitions, from_ms)


def _write_floor(settings: StreamsSettings, topic: str, partitions: int, from_ms: int) -> None:
    failures: list[str] = []

    def on_delivery(error: Any, _message: Any) -> None:
        if error is not None:
            failures.append(str(error))

    producer = Producer(producer_config(settings.kafka))
    for p in range(partitions):
        (floor,) = changelog_records(topic, p, [(floor_key(p), from_ms)])
        producer.produce(topic, key=floor.key, value=floor.value, partition=p, on_delivery=on_delivery)
    if producer.flush(TIMEOUT_S) or failures:
        raise ConfigError(f"could not write the replay floor to {topic}: {failures[:1]}")


def _reset_group(admin: AdminClient, group: str, offsets: list[TopicPartition], metadata: str) -> None:
    """Sets the group's committed offsets, with ``metadata`` on each, and reads them back until they hold.

    The broker can refuse the change per partition (a group still settling after its last member left)
    without failing the request, so the result is checked, not assumed.
    """
    marked = [TopicPartition(tp.topic, tp.partition, tp.offset, metadata) for tp in offsets]
    retry = Retry(
        f"setting the offsets of group {group}",
        transient=lambda e: isinstance(e, _NotSetYet),
        deadline_s=2 * TIMEOUT_S,
        first_delay_s=1.0,
        max_delay_s=1.0,
        log_every_s=5.0,
    )
    try:
        retry.call(lambda: _try_reset_group(admin, group, marked))
    except GaveUp as e:
        raise ConfigError(f"could not reset the offsets of group {group}: {e.__cause__}") from e


class _NotSetYet(Exception):
    """The group's committed offsets are not (yet) the wanted ones; the message says how."""


def _deleting_or_transient(error: BaseException) -> bool:
    deleting = (
        isinstance(error, KafkaException)
        and isinstance(error.args[0], KafkaError)
        and error.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS
    )
    return deleting or kafka_transient(error)


def _try_reset_group(admin: AdminClient, group: str, offsets: list[TopicPartition]) -> None:
    problem = _reset_problem(admin, group, offsets)
    if problem is not None:
        raise _NotSetYet(problem)


def _reset_problem(admin: AdminClient, group: str, offsets: list[TopicPartition]) -> str | None:
    """One attempt; returns what went wrong, or None when the committed offsets and metadata are the
    wanted ones."""
    wanted = {tp.partition: (tp.offset, tp.metadata or "") for tp in offsets}
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
            answer = future.result(timeout=TIMEOUT_S)
            committed = {tp.partition: (tp.offset, tp.metadata or "") for tp in answer.topic_partitions}
            if committed != wanted:
                return f"committed {committed}, wanted {wanted}"
    except KafkaException as e:
        return str(e.args[0])
    return None

"""The Faust wiring: app, ``clicks`` topic, the window table, the idle timer, rebalance hooks.

Faust runs the consumer group, rebalances, table recovery, offset commits and timers. The clicks themselves
do not go through an agent: ``streams/drain.py`` hands whole fetched batches to the engine, and the engine's
changelog records and outputs go through our own producer (``streams/producer.py``, ``streams/table.py``).

Faust features deliberately not used (see docs/streams.md): windowed tables and ``on_window_close``,
``processing_guarantee="exactly_once"``, agents.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import faust
from faust.types import TP

from clickmuncher.health import ClusterProbe
from clickmuncher.kafka.config import faust_config
from clickmuncher.kafka.topics import CHANGELOG_TABLE
from clickmuncher.settings import StreamsSettings
from streams import drain, faust_glue
from streams.acks import BatchAcks
from streams.engine import Engine
from streams.health import BEAT_S, WorkerHealth
from streams.metrics import StreamsMetrics
from streams.offsets import EndOffsets
from streams.ports import Output, OutputTopics, wall_ms
from streams.producer import BatchProducer, LiveProducer, OutRecord, live_producer_config, producer_config
from streams.table import FaustWindowTable
from streams.windows import WindowRules

log = logging.getLogger("streams")
TICK_S = 0.5
FETCH_BYTES_PER_PARTITION = 8 * 1024 * 1024
CAUGHT_UP_TIMEOUT_S = 2.0


def rules_from(settings: StreamsSettings) -> WindowRules:
    return WindowRules(
        window_ms=settings.window_s * 1000,
        grace_ms=settings.grace_s * 1000,
        late_retention_ms=settings.effective_late_retention_s * 1000,
        max_future_ms=settings.streams_max_future_s * 1000,
    )


def state_path(settings: StreamsSettings) -> Path:
    """Where this app's local table stores live (one directory per app id)."""
    return settings.state_dir / "streams" / settings.streams_app_id


def store_on_disk(settings: StreamsSettings) -> bool:
    """Whether the table's local store outlives the process (RocksDB), so a clean stop may keep it."""
    return settings.streams_store.startswith("rocksdb")


def faust_app(settings: StreamsSettings) -> faust_glue.StreamsApp:
    return faust_glue.StreamsApp(
        settings.streams_app_id,
        **faust_config(settings.kafka),  # broker URLs and credentials (SASL, TLS context)
        store=settings.streams_store,
        datadir=str(state_path(settings)),
        topic_partitions=settings.partitions,
        table_standby_replicas=0,
        web_enabled=False,
        autodiscover=False,
        key_serializer="json",
        value_serializer="json",
        producer_acks=-1,
        # No "<app id>-__assignor-__leader" topic: it would be created with Faust's replication factor 1
        # (its leader election serves only timers with on_leader=True, which the worker does not use).
        topic_disable_leader=True,
        stream_buffer_maxsize=1024,
        # Per partition and fetch (aiokafka's max_partition_fetch_bytes; 1 MiB by default): with 1 MiB one
        # partition delivered half of what eight do, so a URL taking most clicks was capped by its fetches
        # (docs/benchmarks.md, hot URL). Up to this much per owned partition is held in memory.
        consumer_max_fetch_size=FETCH_BYTES_PER_PARTITION,
        broker_commit_interval=1.0,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=settings.streams_session_timeout_s,
        broker_heartbeat_interval=settings.streams_session_timeout_s / 5,
    )


class Worker:
    """The parts of one worker: the Faust app, the engine, and the producer the engine writes with."""

    def __init__(self, settings: StreamsSettings, metrics: StreamsMetrics) -> None:
        """Builds (does not start) the worker; no I/O here."""
        self.app = faust_app(settings)
        self.clicks_topic = settings.clicks_topic
        self.producer = BatchProducer(producer_config(settings.kafka, settings.streams_app_id))
        self.live_producer = LiveProducer(
            live_producer_config(settings.kafka, settings.streams_app_id), metrics.live_dropped.inc
        )
        clicks = self.app.topic(
            settings.clicks_topic,
            key_serializer="raw",
            value_serializer="raw",
            partitions=settings.partitions,
        )
        # Subscribed through the conductor (which also enables acks for it); read by streams/drain.py.
        self.app.topics.add(clicks)
        table = self.app.Table(CHANGELOG_TABLE, default=None, partitions=settings.partitions, key_type=str)
        self.table = table
        self.acks = BatchAcks(self.app)
        self.consumer_hooks = FaustConsumerHooks(self.app, settings.clicks_topic, self.acks)
        self.window_table = FaustWindowTable(table, self.producer)
        self.store_persists = store_on_disk(settings)
        self.engine = Engine(
            rules_from(settings),
            OutputTopics(
                windows=settings.windows_topic,
                dead=settings.clicks_dead_topic,
                late=settings.clicks_late_topic,
                live=settings.live_topic,
            ),
            self.window_table,
            _deliverer(self.producer),
            metrics,
            ack=self.acks.ack,
            idle_s=settings.streams_idle_s,
            consumer=self.consumer_hooks,
            live=self.live_producer.send if settings.live_every_s > 0 else None,
            live_every_s=settings.live_every_s,
        )
        self.end_offsets = EndOffsets(settings.kafka, settings.clicks_topic)
        self.consumer_hooks.end_offsets = self.end_offsets
        self.health = WorkerHealth(self.app, ClusterProbe(settings.kafka))
        _wire(
            self.app,
            table,
            self.engine,
            self.acks,
            settings.clicks_topic,
            self.end_offsets,
        )
        self.app.timer(BEAT_S)(self._beat)

    async def _beat(self) -> None:
        self.health.beat()

    def prepare(self) -> None:
        """Call once Faust's worker exists (the consumer needs its loop), before it starts fetching.
        Raises ConfigError if the installed Faust is not the one the worker was built for."""
        faust_glue.check(self.app, self.table.data)
        faust_glue.disable_read_offset_filter(self.app)
        drain.install(self.app, self.engine, self.acks, self.clicks_topic)
        self.producer.start()
        self.end_offsets.start()

    def store_agrees_with_changelog(self) -> bool:
        """Whether the local store may be kept for the next start (streams/kept_store.py): a store on disk,
        the engine committed every partition when it stopped, and no table write was cut short."""
        return self.store_persists and self.engine.stopped_cleanly and self.window_table.agrees_with_changelog

    def close(self) -> None:
        """After the Faust worker returned: what is still in flight was never acked, so it is redelivered."""
        self.producer.stop()
        self.live_producer.stop()


class FaustConsumerHooks:
    """The committed offset Faust sought to on assignment, the log start, and seeking one partition."""

    def __init__(self, app: faust.App, topic: str, acks: BatchAcks) -> None:
        self.app = app
        self.group = str(app.conf.id)  # Faust's consumer group is the app's id
        self.topic = topic
        self.acks = acks
        self.end_offsets: EndOffsets | None = None

    def committed(self, partition: int) -> int | None:
        return faust_glue.committed_offset(self.app, TP(self.topic, partition))

    async def group_committed(self, partition: int) -> int | None:
        known = self.committed(partition)
        if known is not None or self.end_offsets is None:
            return known
        try:
            return await self.end_offsets.committed(self.group, partition, CAUGHT_UP_TIMEOUT_S)
        except Exception as e:  # the broker is away: the caller falls back to the log start
            log.debug("partition %d: committed offset unknown (%r)", partition, e)
            return None

    async def earliest(self, partition: int) -> int | None:
        if self.end_offsets is None:
            return None
        try:
            starts = await self.end_offsets.fetch([partition], CAUGHT_UP_TIMEOUT_S, earliest=True)
        except Exception as e:  # the broker is away: not known now
            log.debug("partition %d: log start unknown (%r)", partition, e)
            return None
        return starts.get(partition)

    async def seek(self, partition: int, offset: int) -> None:
        await self.app.consumer.seek(TP(self.topic, partition), offset)

    async def position(self, partition: int) -> int | None:
        """The next offset the consumer will fetch; None when it cannot say now."""
        try:
            found = await asyncio.wait_for(
                self.app.consumer.position(TP(self.topic, partition)), CAUGHT_UP_TIMEOUT_S
            )
        except Exception as e:  # not assigned (any more), or the broker is away
            log.debug("partition %d: position unknown (%r)", partition, e)
            return None
        return None if found is None else int(found)

    def discard(self, record: Any) -> None:
        """Forgets a record without acking its offset (it will be delivered again, in order)."""
        self.acks.discard(record)


def _deliverer(producer: BatchProducer) -> Any:
    async def deliver(outputs: list[Output]) -> None:
        await producer.deliver(
            [OutRecord(topic, key, value, None, headers) for topic, key, value, headers in outputs]
        )

    return deliver


def _wire(
    app: faust_glue.StreamsApp,
    table: Any,
    engine: Engine,
    acks: BatchAcks,
    clicks_topic: str,
    end_offsets: EndOffsets,
) -> None:
    def owned() -> set[int]:
        return {tp.partition for tp in app.consumer.assignment() if tp.topic == clicks_topic}

    @table.on_recover  # type: ignore[untyped-decorator]
    async def on_recover() -> None:
        await engine.load(owned())

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def on_revoked(sender: Any, revoked: set[TP], **kwargs: Any) -> None:
        ours = [tp for tp in revoked if tp.topic == clicks_topic]
        await engine.forget(tp.partition for tp in ours)
        acks.forget(ours)

    async def caught_up(next_offsets: dict[int, int | None]) -> set[int]:
        # Asked of the broker now, not taken from the last fetch: while the broker is away (and gateways
        # hold their clicks) a stale end offset would make a partition look caught up and close windows
        # whose clicks are still on their way. Compared with what the engine handled, never with the
        # consumer's position (which counts records fetched but not handed to the engine yet).
        try:
            ends = await end_offsets.fetch(next_offsets, CAUGHT_UP_TIMEOUT_S)
            unknown = [p for p, offset in next_offsets.items() if offset is None]
            starts = await end_offsets.fetch(unknown, CAUGHT_UP_TIMEOUT_S, earliest=True)
        except Exception as e:  # the broker is unreachable or slow: not caught up, as far as anyone knows
            log.debug("end offsets unknown (%r)", e)
            return set()
        return {
            p
            for p, offset in next_offsets.items()
            if p in ends and (starts.get(p) if offset is None else offset) == ends[p]
        }

    @app.timer(TICK_S)  # type: ignore[untyped-decorator]
    async def idle_tick() -> None:
        # Shielded as the fetcher's batches are: a stop that cancels the timer in the middle of a commit lets
        # the commit finish (the engine's stop waits for it under the lock), so no table write is cut short.
        await asyncio.shield(engine.tick(wall_ms(), caught_up, rebalancing=bool(app.rebalancing)))

    async def before_wait_empty(stopping: bool) -> None:
        # Faust stopped fetching and now waits for every tracked batch to be acked: commit them (on stop,
        # for good: batches still in flight are dropped unacked and fetched again by the next owner).
        await (engine.stop() if stopping else engine.flush_all())

    app.before_wait_empty = before_wait_empty

    @app.on_before_shutdown.connect  # type: ignore[arg-type]
    async def on_shutdown(sender: Any, **kwargs: Any) -> None:
        log.info("streams stopped: %s", engine.stats.summary())

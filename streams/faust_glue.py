"""Every use of faust-streaming's, mode's and aiokafka's private attributes, in one module.

The worker leans on Faust for the consumer group, rebalances, table recovery and offset commits, but
replaces its per-message path (``streams/drain.py``), its acks (``streams/acks.py``) and its table writes
(``streams/table.py``). Those need a few private attributes. They are reached only through the functions
here, the versions they were read in are pinned exactly (``pyproject.toml``), and :func:`check` verifies at
start that the installed versions are those and that every attribute below exists, so an upgrade fails
with one line instead of miscounting.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Awaitable, Callable, Iterable
from importlib import metadata
from typing import Any

import faust
from faust.stores.memory import Store as MemoryStore
from faust.stores.rocksdb import Store as RocksDBStore
from faust.types import TP
from faust.types.tuples import ack_lock
from mode.utils.futures import notify

from clickmuncher.settings import ConfigError

log = logging.getLogger("streams")

PINNED = {"faust-streaming": "0.15.3", "mode-streaming": "0.7.1", "aiokafka": "0.14.0"}
CONSUMER_ATTRIBUTES = (
    "_drain_messages",
    "_wait_next_records",
    "_to_message",
    "_buffered_partitions",
    "_committed_offset",
    "_acked",
    "_acked_index",
    "_n_acked",
    "_unacked_messages",
    "_waiting_for_ack",
    "_read_offset",
    "_commit_every",
    "_stopped",
)
CLASS_ATTRIBUTES: tuple[tuple[type, str], ...] = (
    (faust.App, "_consumer_wait_empty"),
    (faust.Worker, "_schedule_shutdown"),
    (faust.Worker, "_signal_stop_time"),
    (RocksDBStore, "_db_for_partition"),
)


def check(app: faust.App, store: Any) -> None:
    """Raises ConfigError (one line) unless the pinned versions are installed and every private attribute
    used here exists. Call once the Faust worker exists (the consumer is built then); ``store`` is the
    table's local store."""
    for package, version in PINNED.items():
        found = metadata.version(package)
        if found != version:
            raise ConfigError(f"{package} {found} is installed; the streams worker is built for {version}")
    missing = [f"{cls.__name__}.{name}" for cls, name in CLASS_ATTRIBUTES if not hasattr(cls, name)]
    missing += [f"Consumer.{name}" for name in CONSUMER_ATTRIBUTES if not hasattr(app.consumer, name)]
    if isinstance(store, MemoryStore) and not hasattr(store, "_key_partition"):
        missing.append("MemoryStore._key_partition")
    if missing:
        raise ConfigError(f"faust internals missing: {', '.join(missing)}")


# ---- the app and the worker ----------------------------------------------------------------------------


class StreamsApp(faust.App):
    """Faust's app with one hook: the engine commits before Faust waits for acks on stop and revoke.

    Faust's stop (and revoke) stops fetching, then waits until every tracked message is acked; the
    engine's batches are acked only by its commits, so without the hook the wait never ended."""

    before_wait_empty: Callable[[bool], Awaitable[None]] | None = None
    streams_stopping = False

    async def on_stop(self) -> None:
        self.streams_stopping = True
        await super().on_stop()

    async def _consumer_wait_empty(self, consumer: Any, logger: Any) -> None:
        if self.before_wait_empty is not None:
            await self.before_wait_empty(self.streams_stopping)
        await super()._consumer_wait_empty(consumer, logger)


class StreamsWorker(faust.Worker):
    """Faust's worker; a second SIGINT or SIGTERM exits at once (the first one stops cleanly)."""

    def _schedule_shutdown(self, signum: signal.Signals) -> None:
        if self._signal_stop_time:
            log.warning("second %s: exiting at once", signum.name)
            os._exit(128 + signum.value)
        super()._schedule_shutdown(signum)


# ---- the consumer --------------------------------------------------------------------------------------


def _consumer(app: faust.App) -> Any:
    """Faust's consumer, untyped: its private attributes are not part of ``ConsumerT``."""
    return app.consumer


def install_drain(app: faust.App, drain: Callable[[Any], Awaitable[None]]) -> None:
    """Replaces the consumer's per-message loop (the fetcher runs ``drain(fetcher)``)."""
    setattr(app.consumer, "_drain_messages", drain)  # noqa: B010


def fetching_stopped(app: faust.App, fetcher: Any) -> bool:
    return bool(_consumer(app)._stopped.is_set() or fetcher._stopped.is_set())


async def next_records(app: faust.App, timeout_s: float) -> tuple[Any, Any]:
    """One fetch: ``({tp: [aiokafka records]}, active partitions)``, as Faust's ``getmany`` gets it."""
    return await _consumer(app)._wait_next_records(timeout_s)  # type: ignore[no-any-return]


def buffered_partitions(app: faust.App) -> Any:
    return _consumer(app)._buffered_partitions


def to_message(app: faust.App, tp: TP, record: Any) -> Any:
    return _consumer(app)._to_message(tp, record)


def committed_offset(app: faust.App, tp: TP) -> int | None:
    """The offset Faust committed (or found committed) for ``tp``; None when none (also for 0)."""
    offset = _consumer(app)._committed_offset.get(tp)
    return int(offset) if offset is not None else None


def commit_due(app: faust.App) -> bool:
    """Faust's ``broker_commit_every``: whether enough acks piled up for a commit now (then resets)."""
    consumer = _consumer(app)
    if consumer._commit_every is None or consumer._n_acked < consumer._commit_every:
        return False
    consumer._n_acked = 0
    return True


def record_acks(app: faust.App, tp: TP, offsets: Iterable[int]) -> None:
    """Records offsets of ``tp`` as acked, with ``Consumer.ack``'s rules: nothing below the committed
    offset, no offset twice. Call under :func:`acks_locked`."""
    consumer = _consumer(app)
    committed = consumer._committed_offset.get(tp)
    index = consumer._acked_index[tp]
    fresh = [
        offset for offset in offsets if (committed is None or offset >= committed) and offset not in index
    ]
    index.update(fresh)
    consumer._acked[tp].extend(fresh)
    consumer._n_acked += len(fresh)


def acks_locked() -> Any:
    """Faust's lock around its ack bookkeeping."""
    return ack_lock


def release_messages(app: faust.App, messages: Iterable[Any]) -> None:
    """Marks tracked messages done for Faust's waits on revoke and stop, and wakes the waiters."""
    unacked = _consumer(app)._unacked_messages
    for message in messages:
        message.acked = True
        unacked.discard(message)
    notify(_consumer(app)._waiting_for_ack)


class _NoReadOffset(dict[Any, Any]):
    """Faust's read offsets, with every lookup answering "none".

    Faust drops fetched messages below a partition's read offset. After a rebalance it seeks to the committed
    offset, but its fetch loop can still set the read offset ahead from records fetched before the seek, and
    the re-fetched records are then silently dropped: clicks never counted (seen in the kill -9 test).
    Without the filter, messages at or below what was processed arrive again, and the engine ignores them.
    """

    def __getitem__(self, key: Any) -> Any:
        return None

    def get(self, key: Any, default: Any = None) -> Any:
        return default


def disable_read_offset_filter(app: faust.App) -> None:
    setattr(app.consumer, "_read_offset", _NoReadOffset())  # noqa: B010


# ---- the table's local store -----------------------------------------------------------------------------


def rocksdb_of(store: Any, partition: int) -> Any | None:
    """The partition's RocksDB database, or None for the memory store."""
    if isinstance(store, RocksDBStore):
        return store._db_for_partition(partition)
    return None


def memory_put(store: Any, key: str, value: Any, partition: int) -> None:
    """A key written to the memory store as Faust's own table write does (None deletes it)."""
    if value is None:
        store.data.pop(key, None)
        store._key_partition.pop(key, None)
    else:
        store.data[key] = value
        store._key_partition[key] = partition

"""The window table as the engine sees it: local store writes plus changelog records we produce ourselves.

Faust writes one changelog record per ``table[key] = value`` through its producer buffer (100 messages,
hard-coded) and needs a "current event" to pick the partition. Here a batch of changes for partition ``p``
goes to the local store directly and to changelog partition ``p`` through :class:`BatchProducer`, and
``write`` returns only once the broker has acknowledged every record. The records are byte for byte what
Faust would have written (JSON keys and values as Faust's ``json`` codec encodes them, a deletion is a
record with a null value), so Faust's own recovery reads them back into the store on the next start or
assignment.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import rocksdict
from faust.types import TP

from clickmuncher.records import json_string
from streams import faust_glue
from streams.ports import Change
from streams.producer import BatchProducer, OutRecord


def encode_key(key: str) -> bytes:
    """A table key as Faust's ``json`` codec serializes it (``json.dumps``, ASCII-escaped)."""
    return json_string(key)


def encode_value(value: Any) -> bytes:
    """A table value as Faust's ``json`` codec serializes it (compact separators).

    Window states and watermarks are lists of integers, a window state's possibly ending with its sketch
    in base64, written for every touched key: they are formatted directly (``json.dumps`` with separators
    builds a new encoder per call, ten times slower)."""
    if type(value) is list and value:
        last = value[-1]
        if type(last) is str:
            ints = value[:-1]
            if ints and all(type(v) is int for v in ints):
                return b"[%s,%s]" % (",".join(map(str, ints)).encode(), json_string(last))
        elif all(type(v) is int for v in value):
            return ("[" + ",".join(map(str, value)) + "]").encode()
    return json.dumps(value, separators=(",", ":")).encode()


def changelog_records(topic: str, partition: int, changes: Sequence[Change]) -> list[OutRecord]:
    return [
        OutRecord(topic, encode_key(key), None if value is None else encode_value(value), partition)
        for key, value in changes
    ]


class FaustWindowTable:
    """Reads and writes a Faust table's local store by partition; see the module docstring.

    Works with the RocksDB store (raw bytes, one database per partition) and the memory store (decoded
    keys and values in one dict). Only partitions this worker owns are written, from the engine.
    """

    def __init__(self, table: Any, producer: BatchProducer) -> None:
        self.table = table
        self.producer = producer
        # Partitions whose last write was applied locally but not (yet) delivered and recorded: while one
        # is left, the store may hold what the changelog does not (a failed attempt is retried whole, and
        # its success removes the partition again).
        self.unfinished: set[int] = set()

    @property
    def agrees_with_changelog(self) -> bool:
        """Every local write is in the changelog, up to the persisted offsets the store records."""
        return not self.unfinished

    @property
    def topic(self) -> str:
        return str(self.table.changelog_topic.get_topic_name())

    def read(self, partition: int, key: str) -> Any:
        store = self.table.data
        db = faust_glue.rocksdb_of(store, partition)
        if db is not None:
            raw = db.get(encode_key(key))
            return None if raw is None else json.loads(raw)
        return store.data.get(key)

    def scan(self) -> Iterable[tuple[str, Any]]:
        """Every key of the owned partitions (after recovery), decoded."""
        return list(self.table.items())

    async def write(self, partition: int, changes: Sequence[Change]) -> None:
        """Applies the changes to the local store, then produces them to the changelog and waits."""
        if not changes:
            return
        records = changelog_records(self.topic, partition, changes)
        self.unfinished.add(partition)
        self._apply_locally(partition, changes, records)
        offset = await self.producer.deliver(records)
        # What Faust does when its own changelog record is sent: the store holds everything up to here,
        # so a recovery on a later assignment of this partition starts after it.
        self.table.data.set_persisted_offset(TP(self.topic, partition), offset)
        self.unfinished.discard(partition)

    def _apply_locally(self, partition: int, changes: Sequence[Change], records: list[OutRecord]) -> None:
        store = self.table.data
        db = faust_glue.rocksdb_of(store, partition)
        if db is not None:
            # One write of a batch: less than half the cost of a put per key. (rocksdict, which Faust
            # prefers; with python-rocksdb a put per key.)
            batch: Any = rocksdict.WriteBatch(raw_mode=True) if store.use_rocksdict else db
            for record in records:
                if record.value is None:
                    batch.delete(record.key)
                else:
                    batch.put(record.key, record.value)
            if batch is not db:
                db.write(batch)
            return
        for key, value in changes:
            faust_glue.memory_put(store, key, value, partition)

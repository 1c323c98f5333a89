"""End, start and committed offsets of the ``clicks`` partitions, asked of the broker directly (idle and gap
checks, the first offset of a partition after an assignment)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from clickmuncher.kafka.config import KafkaSettings, admin_config


class EndOffsets:
    """Answers "what is the end offset of these partitions now" with one ListOffsets request.

    Faust's consumer can answer it too, but its client serves one request at a time in its own thread, so
    the question waited behind the fetch in progress (up to a second per idle check).
    """

    def __init__(self, kafka: KafkaSettings, topic: str) -> None:
        self.topic = topic
        self._config = admin_config(kafka, {"client.id": "clickmuncher-streams-offsets"})
        self._admin: AdminClient | None = None

    def start(self) -> None:
        if self._admin is None:
            self._admin = AdminClient(self._config)

    async def committed(self, group: str, partition: int, timeout_s: float) -> int | None:
        """The offset ``group`` committed for the partition; None when it committed none. Raises like
        :meth:`fetch` when the broker does not answer in time."""
        self.start()
        assert self._admin is not None
        request = ConsumerGroupTopicPartitions(group, [TopicPartition(self.topic, partition)])
        futures = self._admin.list_consumer_group_offsets([request], request_timeout=timeout_s)
        try:
            answer = await asyncio.wait_for(asyncio.wrap_future(futures[group]), timeout_s)
        except Exception:
            self._admin = None
            raise
        offsets = [tp.offset for tp in answer.topic_partitions if tp.partition == partition]
        return offsets[0] if offsets and offsets[0] >= 0 else None  # -1001: nothing committed

    async def fetch(
        self, partitions: Iterable[int], timeout_s: float, earliest: bool = False
    ) -> dict[int, int]:
        """{partition: end offset} (the log start offset with ``earliest``), for the partitions whose leader
        answered; raises (e.g. ``TimeoutError``, ``KafkaException``) if the broker does not answer in time."""
        self.start()
        assert self._admin is not None
        spec = OffsetSpec.earliest() if earliest else OffsetSpec.latest()  # type: ignore[no-untyped-call]
        wanted = {TopicPartition(self.topic, p): spec for p in partitions}
        if not wanted:
            return {}
        futures = self._admin.list_offsets(wanted, request_timeout=timeout_s)
        try:
            answers = await asyncio.wait_for(
                asyncio.gather(*(asyncio.wrap_future(f) for f in futures.values())), timeout_s
            )
        except Exception:
            # A fresh client next time: after a broker restart, librdkafka's admin client kept sending the
            # old leader epoch and got FENCED_LEADER_EPOCH for minutes (seen in the end-to-end fault test:
            # no idle partition closed its windows any more).
            self._admin = None
            raise
        found = {tp.partition: int(info.offset) for tp, info in zip(futures, answers, strict=True)}
        return {p: offset for p, offset in found.items() if offset >= 0}  # -1001: its leader is down

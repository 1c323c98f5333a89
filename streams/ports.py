"""What the counting engine needs from the outside, as types: the table, the consumer, the output topics.

The engine (``streams/engine.py``) is independent of Faust and Kafka clients; ``streams/app.py`` plugs the
real ones in, the unit tests plug in their own.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

Headers = list[tuple[str, bytes]]
Output = tuple[str, bytes, bytes, Headers | None]  # topic, key, value, headers
Deliver = Callable[[list[Output]], Awaitable[object]]
# Given {partition: the next offset the engine will handle, None when nothing is known}, the partitions
# whose every record the engine has handled (that offset is at the end of the partition).
CaughtUp = Callable[[dict[int, int | None]], Awaitable[set[int]]]
Incoming = tuple[Any, int, bytes | None]  # the event (acked later), its offset, its raw value
Change = tuple[str, Any]  # a table key and its new value; None deletes it
Ack = Callable[[list[Any]], object]  # acks a partition's events, in offset order, all at once
# Sends live counts without waiting for the broker (best effort: the next publication, or the window's final
# record, supersedes a lost one).
LiveSink = Callable[[list[Output]], object]


class WindowTable(Protocol):
    """The changelog-backed table, addressed by partition (the changelog partition is the clicks one)."""

    def read(self, partition: int, key: str) -> Any: ...

    def scan(self) -> Iterable[tuple[str, Any]]: ...

    async def write(self, partition: int, changes: Sequence[Change]) -> None:
        """Applies the changes in order; returns once their changelog records are durable."""


class ConsumerHooks(Protocol):
    """What the engine needs from the consumer to keep each partition's events contiguous."""

    def committed(self, partition: int) -> int | None: ...

    async def group_committed(self, partition: int) -> int | None:
        """The group's committed offset for the partition: the consumer's if it knows it yet, else asked of
        the broker; None when nothing was committed (or the broker cannot say now)."""

    async def earliest(self, partition: int) -> int | None:
        """The partition's log start offset, asked of the broker; None when it cannot say now."""

    async def seek(self, partition: int, offset: int) -> None: ...

    def discard(self, event: Any) -> None: ...

    async def position(self, partition: int) -> int | None: ...


@dataclass(frozen=True, slots=True)
class OutputTopics:
    windows: str
    dead: str
    late: str
    live: str = "click-windows-live"


def wall_ms() -> int:
    return time.time_ns() // 1_000_000

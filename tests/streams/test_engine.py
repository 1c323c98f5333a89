"""The engine without Faust: a dict as the table, a list as the output topics, simulated crashes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from clickmuncher.records import ClickEvent, ClickWindow
from streams.engine import MAX_SEEKS, STALL_S, Engine, OffsetGapError
from streams.metrics import StreamsMetrics
from streams.ports import Change, Output, OutputTopics
from streams.windows import WindowRules

RULES = WindowRules(window_ms=2000, grace_ms=1000, late_retention_ms=2000)
TOPICS = OutputTopics("windows", "dead", "late")
NOW = 1_800_000_000_000


@dataclass
class Event:
    partition: int
    offset: int


class Changelog(dict[str, Any]):
    """A table that records its writes in order, like the changelog topic."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[tuple[str, Any]] = []

    def __setitem__(self, key: str, value: Any) -> None:
        self.log.append((key, value))
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self.log.append((key, None))
        super().__delitem__(key)

    def read(self, partition: int, key: str) -> Any:
        return self.get(key)

    def scan(self) -> Iterable[tuple[str, Any]]:
        return list(self.items())

    async def write(self, partition: int, changes: Sequence[Change]) -> None:
        for key, value in changes:
            if value is None:
                del self[key]
            else:
                self[key] = value


@dataclass
class World:
    """The durable side: table (changelog), output topics, acked and committed offsets per partition."""

    table: Changelog = field(default_factory=Changelog)
    out: list[tuple[str, bytes, bytes]] = field(default_factory=list)
    acked: dict[int, int] = field(default_factory=dict)

    async def deliver(self, outputs: list[Output]) -> None:
        self.out.extend((topic, key, value) for topic, key, value, _headers in outputs)

    def ack(self, events: list[Event]) -> None:
        for event in events:
            self.acked[event.partition] = max(self.acked.get(event.partition, -1), event.offset)

    def engine(self) -> Engine:
        metrics = StreamsMetrics()
        return Engine(RULES, TOPICS, self.table, self.deliver, metrics, self.ack, idle_s=0)

    def latest(self) -> dict[tuple[int, str], ClickWindow]:
        latest = {}
        for topic, _key, value in self.out:
            if topic == "windows":
                window = ClickWindow.decode(value)
                latest[(window.window_start_ms, window.url)] = window
        return latest


async def _always(last_offsets: dict[int, int | None]) -> set[int]:
    return set(last_offsets)


async def _never(last_offsets: dict[int, int | None]) -> set[int]:
    return set()


def test_late_click_within_retention_reemits_with_next_revision() -> None:
    async def scenario() -> World:
        world = World()
        engine = world.engine()
        await engine.load([0])
        url = "https://example.com/a"
        clicks = [ClickEvent(url, NOW), ClickEvent(url, NOW + 3500), ClickEvent(url, NOW + 100)]
        for offset, click in enumerate(clicks):
            await engine.handle(Event(0, offset), 0, offset, click.encode(), NOW + 10_000)
        await engine.flush_all()
        return world

    world = asyncio.run(scenario())
    first = [ClickWindow.decode(v) for t, _k, v in world.out if t == "windows"]
    start = RULES.start_of(NOW)
    assert [(w.window_start_ms, w.clicks, w.revision) for w in first] == [(start, 1, 0), (start, 2, 1)]


def test_bad_and_future_clicks_are_dead_lettered_and_keep_the_watermark() -> None:
    async def scenario() -> tuple[World, Engine]:
        world = World()
        engine = world.engine()
        await engine.load([0])
        await engine.handle(Event(0, 0), 0, 0, b"{", NOW)
        await engine.handle(
            Event(0, 1), 0, 1, ClickEvent("https://x.example/", NOW + 3_600_000).encode(), NOW
        )
        await engine.flush_all()
        return world, engine

    world, engine = asyncio.run(scenario())
    assert [topic for topic, _k, _v in world.out] == ["dead", "dead"]
    assert engine.parts[0].watermark_ms == -1
    assert world.acked == {0: 1}


class FakeConsumer:
    def __init__(
        self,
        committed: int | None,
        position: int | None = None,
        earliest: int = 0,
        group_committed: int | None = None,
    ) -> None:
        self._committed = committed
        self._group_committed = committed if group_committed is None else group_committed
        self._position = position
        self._earliest = earliest
        self.seeks: list[tuple[int, int]] = []
        self.discarded: list[int] = []

    def committed(self, partition: int) -> int | None:
        return self._committed

    async def group_committed(self, partition: int) -> int | None:
        return self._group_committed

    async def seek(self, partition: int, offset: int) -> None:
        self.seeks.append((partition, offset))

    def discard(self, event: Any) -> None:
        self.discarded.append(event.offset)

    async def position(self, partition: int) -> int | None:
        return self._position

    async def earliest(self, partition: int) -> int | None:
        return self._earliest


def _gap_engine(world: World, consumer: FakeConsumer) -> Engine:
    metrics = StreamsMetrics()
    return Engine(RULES, TOPICS, world.table, world.deliver, metrics, world.ack, consumer=consumer)


def test_a_gap_in_offsets_is_never_crossed() -> None:
    async def scenario() -> tuple[World, FakeConsumer, Engine]:
        world = World()
        consumer = FakeConsumer(committed=5)
        engine = Engine(
            RULES,
            TOPICS,
            world.table,
            world.deliver,
            StreamsMetrics(),
            world.ack,
            consumer=consumer,
        )
        await engine.load([0])
        click = ClickEvent("https://example.com/a", NOW).encode()
        for offset in (7, 8, 5, 6, 7, 6):  # 5 and 6 skipped by the consumer, then delivered after the seek
            await engine.handle(Event(0, offset), 0, offset, click, NOW)
        await engine.flush_all()
        return world, consumer, engine

    world, consumer, _engine = asyncio.run(scenario())
    assert consumer.seeks == [(0, 5)]
    assert consumer.discarded == [7, 8, 6]
    assert world.acked == {0: 7}
    assert world.table[f"{RULES.start_of(NOW)}:https://example.com/a"] == [3, 7, 0, 0]


def test_the_first_event_at_the_groups_committed_offset_is_no_gap() -> None:
    """Right after an assignment the consumer may not know the committed offset yet: the broker's answer
    is the start, so the partition is not sent back to its log start."""

    async def scenario() -> tuple[World, FakeConsumer]:
        world = World()
        consumer = FakeConsumer(committed=None, group_committed=5, earliest=0)
        engine = _gap_engine(world, consumer)
        await engine.load([0])
        click = ClickEvent("https://example.com/a", NOW).encode()
        for offset in (5, 6):
            await engine.handle(Event(0, offset), 0, offset, click, NOW)
        await engine.flush_all()
        return world, consumer

    world, consumer = asyncio.run(scenario())
    assert consumer.seeks == []
    assert world.acked == {0: 6}


async def _gap_after_seeks(earliest: int) -> tuple[World, FakeConsumer, Engine]:
    """Offsets 5-9 never arrive, whatever the seeks; the broker's log starts at ``earliest``."""
    world = World()
    consumer = FakeConsumer(committed=5, earliest=earliest)
    engine = _gap_engine(world, consumer)
    await engine.load([0])
    click = ClickEvent("https://example.com/a", NOW).encode()
    await engine.handle(Event(0, 10), 0, 10, click, NOW)
    for _ in range(MAX_SEEKS - 1):
        engine.parts[0].seek_mono = 0.0  # the seek is stale
        await engine.tick(NOW, _never)
    await engine.handle(Event(0, 10), 0, 10, click, NOW)
    await engine.flush_all()
    return world, consumer, engine


def test_offsets_deleted_by_retention_are_counted_as_lost_and_passed() -> None:
    world, consumer, engine = asyncio.run(_gap_after_seeks(earliest=10))
    assert consumer.seeks == [(0, 5)] * MAX_SEEKS
    assert world.acked == {0: 10}
    assert engine.metrics.offsets_lost._value.get() == 5


def test_a_gap_the_broker_still_holds_stops_the_worker() -> None:
    with pytest.raises(OffsetGapError, match="offsets 5-9 never arrived"):
        asyncio.run(_gap_after_seeks(earliest=0))


def test_a_gap_at_the_head_of_a_partition_without_committed_offsets_is_seen() -> None:
    """Nothing committed (a new group, or right after a replay reset): the first click must be the log's."""

    async def scenario() -> tuple[World, FakeConsumer]:
        world = World()
        consumer = FakeConsumer(committed=None, earliest=2)
        engine = _gap_engine(world, consumer)
        await engine.load([0])
        click = ClickEvent("https://example.com/a", NOW).encode()
        for offset in (4, 2, 3, 4):
            await engine.handle(Event(0, offset), 0, offset, click, NOW)
        await engine.flush_all()
        return world, consumer

    world, consumer = asyncio.run(scenario())
    assert consumer.seeks == [(0, 2)]
    assert world.acked == {0: 4}


@pytest.mark.parametrize(
    ("committed", "position", "handled", "seeks"),
    [
        (None, 3000, [], [(0, 0)]),  # fetched everything after a replay, saw nothing: back to the start
        (40, 90, [], [(0, 40)]),  # back to the committed offset
        (40, 90, [40, 41], [(0, 42)]),  # back to the next offset after the last one seen
        (40, 42, [40, 41], []),  # caught up: nothing lost
        (None, None, [], []),  # position unknown (broker away): nothing to do
    ],
)
def test_fetched_records_that_never_arrive_are_fetched_again(
    committed: int | None, position: int | None, handled: list[int], seeks: list[tuple[int, int]]
) -> None:
    async def scenario() -> FakeConsumer:
        world = World()
        consumer = FakeConsumer(committed=committed, position=position)
        engine = _gap_engine(world, consumer)
        await engine.load([0])
        click = ClickEvent("https://example.com/a", NOW).encode()
        for offset in handled:
            await engine.handle(Event(0, offset), 0, offset, click, NOW)
        await engine.flush_all()
        await engine.tick(NOW, _never)  # not quiet for long enough yet
        engine.parts[0].last_event_mono -= STALL_S
        engine.stats.last_mono -= STALL_S
        await engine.tick(NOW, _never)
        await engine.tick(NOW, _never)  # the seek is fresh: not repeated
        return consumer

    assert asyncio.run(scenario()).seeks == seeks


def test_a_quiet_partition_is_not_sent_back_while_others_are_busy() -> None:
    """Under a backlog the fetcher holds one partition's records while it serves the others."""

    async def scenario() -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        world = World()
        consumer = FakeConsumer(committed=40, position=90)
        engine = _gap_engine(world, consumer)
        await engine.load([0, 1])
        click = ClickEvent("https://example.com/a", NOW).encode()
        await engine.handle(Event(0, 40), 0, 40, click, NOW)
        engine.parts[0].last_event_mono -= STALL_S  # partition 0 quiet, its position ahead...
        await engine.handle(Event(1, 40), 1, 40, click, NOW)  # ...while partition 1 is busy
        await engine.flush_all()
        await engine.tick(NOW, _never)
        while_busy = list(consumer.seeks)
        engine.stats.last_mono -= STALL_S  # then the whole worker goes quiet
        await engine.tick(NOW, _never)
        return while_busy, consumer.seeks

    while_busy, after = asyncio.run(scenario())
    assert while_busy == []
    assert after == [(0, 41)]


def test_live_counts_of_open_windows_are_published_once_changed() -> None:
    async def scenario() -> tuple[list[int], list[int], list[int], World]:
        world = World()
        live: list[Output] = []
        engine = Engine(
            RULES, TOPICS, world.table, world.deliver, StreamsMetrics(), world.ack, live=live.extend
        )
        await engine.load([0])
        start = RULES.start_of(NOW)
        for offset in range(3):
            await engine.handle(
                Event(0, offset), 0, offset, ClickEvent("https://example.com/a", NOW).encode(), NOW
            )
        assert await engine.publish_live() == 0  # nothing committed yet: nothing to publish
        await engine.flush_all()
        assert await engine.publish_live() == 1
        first = [json.loads(value)["clicks"] for _topic, _key, value, _h in live]
        assert await engine.publish_live() == 0  # unchanged since
        await engine.handle(Event(0, 3), 0, 3, ClickEvent("https://example.com/a", NOW).encode(), NOW)
        await engine.flush_all()
        await engine.publish_live()
        second = [json.loads(value)["clicks"] for _topic, _key, value, _h in live[len(first) :]]
        # The window closes: its count goes to click-windows, never again to the live topic.
        await engine.handle(Event(0, 4), 0, 4, ClickEvent("https://example.com/b", NOW + 5000).encode(), NOW)
        await engine.flush_all()
        before = len(live)
        await engine.publish_live()
        closed = [json.loads(v)["window_start_ms"] for _t, _k, v, _h in live[before:]]
        assert all(json.loads(v)["final"] is False for _t, _k, v, _h in live)
        assert all(key == f"{start}:https://example.com/a".encode() for _t, key, _v, _h in live[:before])
        return first, second, closed, world

    first, second, closed, world = asyncio.run(scenario())
    assert first == [3]
    assert second == [4]
    assert RULES.start_of(NOW) not in closed
    assert [ClickWindow.decode(v).clicks for t, _k, v in world.out if t == "windows"] == [4]


@pytest.mark.parametrize(
    ("committed", "handled", "asked"),
    [
        (None, [], None),  # nothing known: the broker's log start decides (app.py)
        (7, [], 7),  # nothing handled since the load: what was committed was handled
        (7, [7, 8, 9], 10),  # the next offset the engine expects, never the consumer's position
    ],
)
def test_the_idle_check_asks_about_what_the_engine_handled(
    committed: int | None, handled: list[int], asked: int | None
) -> None:
    """The consumer's position counts records fetched but not handed to the engine yet: a partition with
    a small backlog in the fetcher must not look caught up."""
    questions: list[dict[int, int | None]] = []

    async def caught_up(next_offsets: dict[int, int | None]) -> set[int]:
        questions.append(dict(next_offsets))
        return set()

    async def scenario() -> None:
        world = World()
        engine = _gap_engine(world, FakeConsumer(committed=committed, position=10_000))
        engine.idle_s = 0
        await engine.load([0])
        click = ClickEvent("https://example.com/a", NOW).encode()
        for offset in handled:
            await engine.handle(Event(0, offset), 0, offset, click, NOW)
        await engine.flush_all()
        await engine.tick(NOW + 60_000, caught_up)

    asyncio.run(scenario())
    assert questions == [{0: asked}]


@pytest.mark.parametrize(
    ("overdue_ms", "quiet_s", "checked"),
    [
        (60_000, 0.5, True),  # a drained backlog of old clicks: checked after a moment of quiet
        (60_000, 0.0, False),  # still receiving
        (1_000, 0.5, False),  # the close is due, but not overdue by idle_s: wait for idle_s of quiet
        (1_000, 2.5, True),
    ],
)
def test_an_overdue_close_is_checked_without_waiting_idle_s(
    overdue_ms: int, quiet_s: float, checked: bool
) -> None:
    questions: list[dict[int, int | None]] = []

    async def caught_up(next_offsets: dict[int, int | None]) -> set[int]:
        questions.append(dict(next_offsets))
        return set(next_offsets)

    async def scenario() -> World:
        world = World()
        engine = world.engine()
        engine.idle_s = 2.0
        await engine.load([0])
        click = ClickEvent("https://example.com/a", NOW + 1500).encode()
        await engine.handle(Event(0, 0), 0, 0, click, NOW)
        await engine.flush_all()
        part = engine.parts[0]
        assert part.boundary_ms == RULES.closes_at(RULES.start_of(NOW))  # the next point closes its window
        part.last_event_mono -= quiet_s
        await engine.tick(part.boundary_ms + RULES.grace_ms + overdue_ms, caught_up)
        return world

    world = asyncio.run(scenario())
    assert bool(questions) == checked
    assert bool([t for t, _k, _v in world.out if t == "windows"]) == checked

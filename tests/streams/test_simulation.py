"""A model of the streams worker's world, driven at random: the engine hunted for lost and wrong counts.

The engine, its batch writer and its window rules are the real ones; only the broker is replaced, at the
engine's ports: the changelog (a log per partition, a record durable once written), the output topics, the
``clicks`` log with the consumer's committed offsets. Hypothesis interleaves clicks in any event-time order
(fresh, late, too late, malformed, far in the future), fetched batches, idle ticks of the wall clock,
flushes, offset commits, kill -9 (also in the middle of a changelog write or an output delivery: a prefix of
the records reached the broker), SIGTERM, partitions moving between two workers, and replays.

Clicks come in the four classes of SPEC §12, from a handful of visitors (and without one, as from older
gateways). The oracle is the sink's rule: per (URL, window), the record with the highest revision wins. At
the end every window holds the exact count per class of its clicks that did not go to ``clicks-late`` or
``clicks-dead``, and as many uniques as it had distinct human visitors (few: the sketch is exact then);
throughout, no revision of a window is ever emitted with two different counts, class counts or uniques.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from clickmuncher.records import BOT, HUMAN, PREFETCH, PREVIEW, ClickEvent, ClickWindow
from streams.engine import Engine
from streams.metrics import StreamsMetrics
from streams.ports import Change, Output, OutputTopics
from streams.windows import WindowRules, floor_key

RULES = WindowRules(window_ms=2000, grace_ms=1000, late_retention_ms=2000)
TOPICS = OutputTopics("windows", "dead", "late")
PARTITIONS = (0, 1)
WORKERS = ("a", "b")
URLS = [f"https://example.com/{i}" for i in range(3)]
START_MS = 1_800_000_000_000
FUTURE_MS = 86_400_000  # far beyond the engine's max future: always dead-lettered
WindowId = tuple[int, str]


class Killed(BaseException):
    """The worker process died at this point (kill -9)."""


@dataclass
class Broker:
    """What survives any process: the topics and the consumer group's committed offsets."""

    clicks: dict[int, list[bytes]] = field(default_factory=lambda: {p: [] for p in PARTITIONS})
    changelog: dict[int, dict[str, Any]] = field(default_factory=lambda: {p: {} for p in PARTITIONS})
    outputs: list[tuple[str, bytes]] = field(default_factory=list)
    live: list[bytes] = field(default_factory=list)
    committed: dict[int, int] = field(default_factory=dict)

    def timestamp(self, partition: int, offset: int) -> int:
        try:
            return ClickEvent.decode(self.clicks[partition][offset]).ts_ms
        except ValueError:
            return -1


@dataclass
class Process:
    """One streams worker process: its engine, its partitions, its consumer's fetch positions."""

    name: str
    broker: Broker
    engine: Engine | None = None
    owned: set[int] = field(default_factory=set)
    position: dict[int, int] = field(default_factory=dict)
    acked: dict[int, int] = field(default_factory=dict)
    # Armed by the model: the next changelog write or delivery gets this many records through, then dies.
    crash_after: int | None = None

    # ---- the engine's ports ------------------------------------------------------------------------------

    def read(self, partition: int, key: str) -> Any:
        return self.broker.changelog[partition].get(key)

    def scan(self) -> Iterable[tuple[str, Any]]:
        return [(k, v) for p in sorted(self.owned) for k, v in self.broker.changelog[p].items()]

    async def write(self, partition: int, changes: Sequence[Change]) -> None:
        through, dies = self._through(changes)
        table = self.broker.changelog[partition]
        for key, value in through:
            if value is None:
                table.pop(key, None)
            else:
                table[key] = value
        if dies:
            raise Killed

    async def deliver(self, outputs: list[Output]) -> None:
        through, dies = self._through(outputs)
        self.broker.outputs.extend((topic, value) for topic, _key, value, _headers in through)
        if dies:
            raise Killed

    def _through(self, records: Sequence[Any]) -> tuple[Sequence[Any], bool]:
        """The records that reach the broker, and whether the process dies right after."""
        if self.crash_after is None or self.crash_after >= len(records):
            return records, False
        through, self.crash_after = records[: self.crash_after], None
        return through, True

    def publish_live(self, outputs: list[Output]) -> None:
        self.broker.live.extend(value for _topic, _key, value, _headers in outputs)

    def ack(self, events: list[tuple[int, int]]) -> None:
        for partition, offset in events:
            assert offset == self.acked.get(partition, -1) + 1 or offset <= self.acked.get(partition, -1)
            self.acked[partition] = max(self.acked.get(partition, -1), offset)

    def committed(self, partition: int) -> int | None:
        return self.broker.committed.get(partition) or None  # Faust reports 0 as none

    async def seek(self, partition: int, offset: int) -> None:
        self.position[partition] = offset

    def discard(self, event: Any) -> None:
        pass

    async def position_of(self, partition: int) -> int | None:
        return self.position.get(partition)

    async def caught_up(self, next_offsets: dict[int, int | None]) -> set[int]:
        """What the worker's end-offset check answers: the engine handled everything up to the end."""
        return {p for p, next in next_offsets.items() if (next or 0) >= len(self.broker.clicks[p])}

    # ---- the process ----------------------------------------------------------------------------------

    def start(self) -> None:
        hooks = _Hooks(self)
        self.engine = Engine(
            RULES,
            TOPICS,
            self,
            self.deliver,
            StreamsMetrics(),
            self.ack,
            idle_s=0,
            consumer=hooks,
            live=self.publish_live,
            live_every_s=0,
        )
        self.owned = set()
        self.position = {}
        self.acked = {}
        self.crash_after = None

    async def assign(self, partitions: set[int]) -> None:
        assert self.engine is not None
        for p in partitions:
            self.owned.add(p)
            self.position[p] = self.broker.committed.get(p, 0)
            self.acked[p] = self.position[p] - 1
        await self.engine.load(partitions)

    async def revoke(self, partitions: set[int]) -> None:
        assert self.engine is not None
        await self.engine.forget(partitions)
        self.commit()
        self.owned -= partitions

    async def stop(self) -> None:
        """SIGTERM: fetching stops, the engine commits, Faust commits the acked offsets and leaves."""
        assert self.engine is not None
        await self.engine.stop()
        self.commit()

    def commit(self) -> None:
        """Faust commits the acked offsets of the partitions it owns."""
        for p in self.owned:
            if self.acked.get(p, -1) >= 0:
                self.broker.committed[p] = max(self.broker.committed.get(p, 0), self.acked[p] + 1)

    def die(self) -> set[int]:
        lost, self.owned, self.engine = set(self.owned), set(), None
        return lost


class _Hooks:
    def __init__(self, process: Process) -> None:
        self.process = process

    def committed(self, partition: int) -> int | None:
        return self.process.committed(partition)

    async def group_committed(self, partition: int) -> int | None:
        return self.process.broker.committed.get(partition)

    async def seek(self, partition: int, offset: int) -> None:
        await self.process.seek(partition, offset)

    async def earliest(self, partition: int) -> int | None:
        return 0

    def discard(self, event: Any) -> None:
        self.process.discard(event)

    async def position(self, partition: int) -> int | None:
        return await self.process.position_of(partition)


class StreamsWorld(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.broker = Broker()
        self.now_ms = START_MS
        self.sequence = 0
        self.processes = {name: Process(name, self.broker) for name in WORKERS}
        self.unowned: set[int] = set(PARTITIONS)
        # The sink's view since the last replay, and every (window, revision) → count ever emitted.
        self.epoch_start = 0
        self.revisions: dict[tuple[WindowId, int], tuple[object, ...]] = {}
        self.start_worker("a")

    def teardown(self) -> None:
        try:
            self.settle()
            self.check_final_counts()
        finally:
            self.loop.close()

    # ---- helpers ----------------------------------------------------------------------------------------

    def run(self, process: Process, coro: Any) -> None:
        """Runs one step of a process; a crash armed inside it kills the process there."""
        try:
            self.loop.run_until_complete(coro)
        except Killed:
            self.kill_process(process)

    def start_worker(self, name: str) -> None:
        process = self.processes[name]
        process.start()
        partitions, self.unowned = set(self.unowned), set()
        self.run(process, process.assign(partitions))

    def kill_process(self, process: Process) -> None:
        self.unowned |= process.die()

    def alive(self) -> list[Process]:
        return [p for p in self.processes.values() if p.engine is not None]

    def owner(self, partition: int) -> Process | None:
        return next((p for p in self.alive() if partition in p.owned), None)

    # ---- rules ------------------------------------------------------------------------------------------

    @rule(
        url=st.integers(0, len(URLS) - 1),
        kind=st.sampled_from(["fresh"] * 4 + ["late"] * 2 + ["too_late", "malformed", "future"]),
        jitter_ms=st.integers(0, 400),
        fetched=st.booleans(),
        cls=st.sampled_from([HUMAN] * 3 + [BOT, PREVIEW, PREFETCH]),
        visitor=st.none() | st.integers(0, 4),
    )
    def click(
        self, url: int, kind: str, jitter_ms: int, fetched: bool, cls: int = HUMAN, visitor: int | None = None
    ) -> None:
        """A gateway produces a click; its clock and its buffering decide how late the click is: late is
        in the window that closed last when the watermark follows the wall clock, too late in one
        released before. A caught-up worker fetches it at once."""
        self.sequence += 1
        if kind == "malformed":
            raw = b'{"v": 1, "url": "%s", "n": %d' % (URLS[url].encode(), self.sequence)
        else:
            closed_ms = self.now_ms - RULES.grace_ms - RULES.window_ms - RULES.grace_ms
            ts_ms = {
                "fresh": self.now_ms - jitter_ms,
                "late": RULES.start_of(closed_ms) + jitter_ms,
                "too_late": RULES.start_of(closed_ms - RULES.late_retention_ms - RULES.window_ms) + jitter_ms,
                "future": self.now_ms + FUTURE_MS,
            }[kind]
            vid = None if visitor is None else f"{visitor:016x}"
            raw = ClickEvent(URLS[url], ts_ms, cls, vid).encode()[:-1] + b', "n": %d}' % self.sequence
        partition = url % len(PARTITIONS)
        self.broker.clicks[partition].append(raw)
        if fetched:
            self.fetch(partition, 6)

    @rule(partition=st.sampled_from(PARTITIONS), size=st.integers(1, 6))
    def fetch(self, partition: int, size: int) -> None:
        process = self.owner(partition)
        if process is None or process.engine is None:
            return
        start = process.position[partition]
        records = self.broker.clicks[partition][start : start + size]
        if not records:
            return
        process.position[partition] = start + len(records)
        events = [((partition, start + i), start + i, raw) for i, raw in enumerate(records)]
        self.run(process, process.engine.handle_batch(partition, events, self.now_ms))

    @rule(advance_ms=st.sampled_from([0, 1000, 2500, 5000]))
    def tick(self, advance_ms: int) -> None:
        """The wall clock moves and every worker's timers run: from a second on, batches are flushed
        and Faust commits the acked offsets (before the idle check, as in ``Engine.tick``)."""
        self.now_ms += advance_ms
        for process in self.alive():
            assert process.engine is not None
            if advance_ms >= 1000:
                self.run(process, process.engine.flush_all())
                process.commit()
            if process.engine is not None:
                self.run(process, process.engine.tick(self.now_ms, process.caught_up))

    @rule(name=st.sampled_from(WORKERS), records=st.none() | st.integers(0, 3), restarted=st.booleans())
    def kill(self, name: str, records: int | None, restarted: bool) -> None:
        """kill -9, now or in the worker's next changelog write or delivery, ``records`` records into it;
        a supervisor may start the worker again at once."""
        process = self.processes[name]
        if records is not None:
            process.crash_after = records
            return
        self.kill_process(process)
        if restarted:
            self.start_worker(name)

    @rule(name=st.sampled_from(WORKERS), restarted=st.booleans())
    def sigterm(self, name: str, restarted: bool) -> None:
        process = self.processes[name]
        if process.engine is None:
            return
        owned = set(process.owned)
        self.run(process, process.stop())
        self.kill_process(process)
        self.unowned |= owned
        if restarted:
            self.start_worker(name)

    @rule(name=st.sampled_from(WORKERS))
    def take_over(self, name: str) -> None:
        """A (re)started or surviving worker takes the partitions nobody owns (a rebalance)."""
        if not self.unowned:
            return
        process = self.processes[name]
        if process.engine is None:
            self.start_worker(name)
            return
        partitions, self.unowned = set(self.unowned), set()
        self.run(process, process.assign(partitions))

    @rule(partition=st.sampled_from(PARTITIONS), replayed=st.sampled_from([False] * 4 + [True]))
    def rebalance(self, partition: int, replayed: bool) -> None:
        """A rebalance moves one partition to the other worker (revoke, commit, recover, load)."""
        if replayed:
            self.replay()
            return
        source = self.owner(partition)
        target = next((p for p in self.alive() if p is not source), None)
        if source is None or target is None:
            return
        self.run(source, source.revoke({partition}))
        if source.engine is None:  # died during the revoke
            return
        self.run(target, target.assign({partition}))

    def replay(self) -> None:
        """``replay streams`` from the first window: workers stopped, changelog wiped with a floor record,
        offsets reset; the sink is rebuilt from the windows emitted after it."""
        for process in self.alive():
            self.sigterm(process.name, restarted=False)
        clicks = [ClickEvent.decode(raw) for log in self.broker.clicks.values() for raw in log if b"}" in raw]
        # From the first window: no click the model produces later can be older than that.
        from_ms = RULES.start_of(min([c.ts_ms for c in clicks] + [self.now_ms - 20_000]))
        for p in PARTITIONS:
            self.broker.changelog[p] = {floor_key(p): from_ms}
            self.broker.committed[p] = 0
        self.epoch_start = len(self.broker.outputs)
        self.broker.live = []
        self.revisions = {}
        self.unowned = set(PARTITIONS)
        self.start_worker("a")

    # ---- the oracle -------------------------------------------------------------------------------------

    @invariant()
    def a_revision_never_has_two_counts(self) -> None:
        for topic, value in self.broker.outputs[self.epoch_start :]:
            if topic != "windows":
                continue
            window = ClickWindow.decode(value)
            ident = ((window.window_start_ms, window.url), window.revision)
            figures = (window.clicks, window.by_class, window.uniques)
            seen = self.revisions.setdefault(ident, figures)
            assert seen == figures, f"{ident}: revision emitted with {seen} and {figures}"

    def settle(self) -> None:
        """Everything restarts, every click is fetched, the clock runs far ahead: every window closes."""
        for process in self.processes.values():
            process.crash_after = None
        if self.unowned:
            dead = [p for p in self.processes.values() if p.engine is None]
            if dead:
                self.start_worker(dead[0].name)
            else:
                self.take_over("a")
        for _ in range(2):
            for p in PARTITIONS:
                while self.owner(p) is not None and self.owner(p).position[p] < len(self.broker.clicks[p]):  # type: ignore[union-attr]
                    self.fetch(p, 6)
            for advance_ms in (0, 60_000, 60_000):
                self.tick(advance_ms)

    def check_final_counts(self) -> None:
        sink: dict[WindowId, ClickWindow] = {}
        aside: set[bytes] = set()
        for topic, value in self.broker.outputs[self.epoch_start :]:
            if topic == "windows":
                window = ClickWindow.decode(value)
                ident = (window.window_start_ms, window.url)
                kept = sink.get(ident)
                if kept is None or window.revision >= kept.revision:
                    sink[ident] = window
            else:
                aside.add(value)  # clicks-late and clicks-dead: at least once, deduplicated by payload
        truth: Counter[WindowId] = Counter()
        classes: dict[WindowId, list[int]] = {}
        visitors: dict[WindowId, set[str]] = {}
        for log in self.broker.clicks.values():
            for raw in log:
                if raw not in aside:
                    click = ClickEvent.decode(raw)
                    ident = (RULES.start_of(click.ts_ms), click.url)
                    truth[ident] += 1
                    classes.setdefault(ident, [0, 0, 0, 0])[click.cls] += 1
                    if click.cls == HUMAN and click.vid is not None:
                        visitors.setdefault(ident, set()).add(click.vid)
        counted = {ident: window.clicks for ident, window in sink.items()}
        wrong = sorted(set(counted.items()) ^ set(truth.items()))
        assert not wrong, f"(window, count) counted or true, not both: {wrong}"
        for ident, window in sink.items():
            assert window.by_class == tuple(classes[ident]), f"{ident}: {window.by_class} != {classes[ident]}"
            assert window.uniques == len(visitors.get(ident, ())), f"{ident}: uniques {window.uniques}"
            assert (window.hll is None) == (ident not in visitors)
        for value in self.broker.live:  # live counts never run ahead of the truth
            live = json.loads(value)
            assert live["final"] is False and live["clicks"] <= truth[(live["window_start_ms"], live["url"])]


def test_an_idle_close_holds_through_a_stop() -> None:
    """Found by the simulation on the engine that kept an idle close in memory until the next batch: the
    window closed at revision 0 with 1 click, the stop lost the close, and after the restart the window
    re-opened and closed again at revision 0, with 2 clicks (the sink keeps the first)."""
    state = StreamsWorld()
    state.click(fetched=True, jitter_ms=1, kind="fresh", url=0)
    state.tick(advance_ms=2500)
    state.sigterm(name="a", restarted=False)
    state.click(fetched=False, jitter_ms=0, kind="late", url=0)
    state.take_over(name="a")
    state.click(fetched=True, jitter_ms=0, kind="fresh", url=0)
    state.a_revision_never_has_two_counts()
    state.teardown()


def test_late_clicks_after_an_idle_close_hold_through_a_kill() -> None:
    """The issue's report: an idle close, a late click re-emitted at once under revision 1, kill -9 before
    the next batch: the restarted worker re-opened the window and emitted revision 0 with 2 clicks."""
    state = StreamsWorld()
    state.click(fetched=True, jitter_ms=0, kind="fresh", url=0)
    state.tick(advance_ms=2500)
    state.tick(advance_ms=2500)
    state.click(fetched=True, jitter_ms=300, kind="late", url=0)
    state.kill(name="a", records=None, restarted=True)
    state.fetch(partition=0, size=6)
    state.tick(advance_ms=2500)
    state.a_revision_never_has_two_counts()
    state.teardown()


def test_released_windows_keep_their_clicks_known_as_handled() -> None:
    """Found by the simulation in the first draft of the commit protocol: a stop persisted the watermark with
    the offset of the last click it had seen since its restart, lower than the one the table proved, and
    released the window whose state proved the rest; the next restart sent a counted click to clicks-late."""
    state = StreamsWorld()
    for name, args in [
        ("click", (1, "fresh", 207, True)),
        ("click", (1, "future", 309, True)),
        ("rebalance", (1, True)),
        ("sigterm", ("a", False)),
        ("click", (1, "fresh", 158, True)),
        ("tick", (5000,)),
        ("tick", (2500,)),
        ("tick", (1000,)),
        ("take_over", ("b",)),
        ("click", (1, "late", 249, True)),
        ("kill", ("b", 0, True)),
        ("tick", (1000,)),
        ("kill", ("a", None, True)),
        ("fetch", (1, 2)),
        ("sigterm", ("a", True)),
    ]:
        getattr(state, name)(*args)
        state.a_revision_never_has_two_counts()
    state.teardown()


TestStreamsWorld = StreamsWorld.TestCase
TestStreamsWorld.settings = settings(
    max_examples=1500, stateful_step_count=80, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

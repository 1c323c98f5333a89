"""The engine's records for ``click-windows``, ``clicks-late`` and ``clicks-dead``, delivered and awaited."""

from __future__ import annotations

from clickmuncher.records import encode_window
from streams.ports import Deliver, Output, OutputTopics
from streams.retry import until_done
from streams.windows import WindowRules, WindowState

EMIT_CHUNK = 5000


class Outputs:
    """Builds the output records and delivers them, retrying until the broker has acknowledged each."""

    def __init__(self, rules: WindowRules, topics: OutputTopics, deliver: Deliver) -> None:
        self.rules = rules
        self.topics = topics
        self._deliver = deliver

    def window(self, key: str, start: int, url: str, state: WindowState) -> Output:
        """The ``click-windows`` record of a window's state (key: the table key, ``<start>:<url>``)."""
        value = encode_window(url, start, self.rules.end_of(start), state.count, state.revision)
        return (self.topics.windows, key.encode(), value, None)

    def late(self, url: str, raw: bytes | None) -> Output:
        return (self.topics.late, url.encode(), raw or b"", None)

    def dead(self, raw: bytes | None, reason: str) -> Output:
        return (self.topics.dead, b"", raw or b"", [("reason", reason.encode())])

    async def emit(self, outputs: list[Output]) -> None:
        """Delivers a closing window's records, a chunk at a time."""
        for i in range(0, len(outputs), EMIT_CHUNK):
            await self.deliver(outputs[i : i + EMIT_CHUNK])

    async def deliver(self, outputs: list[Output]) -> None:
        """Sends and waits for every delivery, retrying until done: work must never be acked unfinished."""
        await until_done(lambda: self._deliver(outputs), "delivery")

"""The engine's records for ``click-windows``, ``clicks-late`` and ``clicks-dead``, delivered and awaited."""

from __future__ import annotations

from clickmuncher.records import DEAD_LETTER_MAX_BYTES, encode_window, live_window
from streams.ports import Deliver, Output, OutputTopics
from streams.retry import until_done
from streams.windows import WindowRules, WindowState

EMIT_CHUNK = 5000


def _source(partition: int, offset: int) -> tuple[str, bytes]:
    """The header naming a record's origin on the clicks topic: ``<partition>:<offset>``."""
    return ("source", b"%d:%d" % (partition, offset))


class Outputs:
    """Builds the output records and delivers them, retrying until the broker has acknowledged each."""

    def __init__(self, rules: WindowRules, topics: OutputTopics, deliver: Deliver) -> None:
        self.rules = rules
        self.topics = topics
        self._deliver = deliver

    def window(self, key: str, start: int, url: str, state: WindowState) -> Output:
        """The ``click-windows`` record of a window's state (key: the table key, ``<start>:<url>``), with
        its clicks per class, uniques and sketch (SPEC §12).

        Clicks are validated at intake, so this cannot fail for a window the engine counted; a window that
        still cannot be encoded becomes a dead letter rather than stopping the worker."""
        try:
            return (self.topics.windows, key.encode(), self._value(start, url, state), None)
        except (UnicodeError, ValueError, OverflowError, OSError) as e:
            printable = key.encode("utf-8", "backslashreplace")
            return self.dead(printable, f"cannot encode the window of {state.count} clicks: {e}")

    def live(self, key: str, start: int, url: str, state: WindowState) -> Output:
        """The ``click-windows-live`` record of an open window's count (``"final": false``)."""
        return (self.topics.live, key.encode(), live_window(self._value(start, url, state)), None)

    def _value(self, start: int, url: str, state: WindowState) -> bytes:
        end = self.rules.end_of(start)
        uniques, hll = state.uniques(), state.hll_base64()
        return encode_window(url, start, end, state.count, state.revision, state.by_class, uniques, hll)

    def late(self, url: str, raw: bytes | None, partition: int, offset: int) -> Output:
        """A click beyond late retention, keyed by its URL; ``source`` says where it came from, so a
        consumer can drop the copy a crash may repeat."""
        return (self.topics.late, url.encode(), raw or b"", [_source(partition, offset)])

    def dead(
        self, raw: bytes | None, reason: str, partition: int | None = None, offset: int | None = None
    ) -> Output:
        """A record that cannot be counted, with headers ``reason`` and ``source``; a value over
        :data:`DEAD_LETTER_MAX_BYTES` is cut there, with header ``value-truncated-from`` = its size (the
        whole record stays on ``clicks`` at ``source`` for its retention)."""
        value = raw or b""
        headers = [("reason", reason.encode("utf-8", "backslashreplace"))]
        if partition is not None and offset is not None:
            headers.append(_source(partition, offset))
        if len(value) > DEAD_LETTER_MAX_BYTES:
            headers.append(("value-truncated-from", b"%d" % len(value)))
            value = value[:DEAD_LETTER_MAX_BYTES]
        return (self.topics.dead, b"", value, headers)

    async def emit(self, outputs: list[Output]) -> None:
        """Delivers a closing window's records, a chunk at a time."""
        for i in range(0, len(outputs), EMIT_CHUNK):
            await self.deliver(outputs[i : i + EMIT_CHUNK])

    async def deliver(self, outputs: list[Output]) -> None:
        """Sends and waits for every delivery, retrying until done: work must never be acked unfinished."""
        await until_done(lambda: self._deliver(outputs), "delivery")

"""One way to retry: only errors named transient, backoff, an optional deadline, one log line per interval.

Anything not named transient is raised at once, so a bug or a configuration error surfaces as itself
instead of becoming an endless stream of warnings. A transient error is retried with exponential backoff
(``first_delay_s`` doubling up to ``max_delay_s``) until ``deadline_s`` has passed since the first attempt,
then :class:`GaveUp` is raised from the last error; without a deadline (a running service waiting out a
broker outage) the retries go on. The first failure is logged at once, then one line per ``log_every_s``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")
log = logging.getLogger("clickmuncher.retry")

# librdkafka error names a client sees while brokers restart, leaders move or ISRs shrink; never the
# authentication, TLS or authorization errors, which no retry will mend.
KAFKA_TRANSIENT = frozenset(
    {
        "_TRANSPORT",
        "_ALL_BROKERS_DOWN",
        "_TIMED_OUT",
        "_MSG_TIMED_OUT",
        "_TIMED_OUT_QUEUE",
        "_WAIT_COORD",
        "REQUEST_TIMED_OUT",
        "NETWORK_EXCEPTION",
        "LEADER_NOT_AVAILABLE",
        "NOT_LEADER_FOR_PARTITION",
        "NOT_ENOUGH_REPLICAS",
        "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
        "NOT_CONTROLLER",
        "NOT_COORDINATOR",
        "COORDINATOR_NOT_AVAILABLE",
        "COORDINATOR_LOAD_IN_PROGRESS",
        "REBALANCE_IN_PROGRESS",
        "UNKNOWN_TOPIC_OR_PART",
        "KAFKA_STORAGE_ERROR",
    }
)


class GaveUp(RuntimeError):
    """A transient error outlasted the deadline; raised from the last error."""


def kafka_transient(error: BaseException) -> bool:
    """Whether ``error`` is one a Kafka client recovers from by trying again: a librdkafka error named in
    :data:`KAFKA_TRANSIENT` (and not fatal), an aiokafka error marked retriable, a full producer queue,
    or a connection or timeout error."""
    from confluent_kafka import KafkaError, KafkaException

    if isinstance(error, KafkaException) and isinstance(error.args[0], KafkaError):
        kafka_error: KafkaError = error.args[0]
        return not kafka_error.fatal() and kafka_error.name() in KAFKA_TRANSIENT
    if type(error).__module__.startswith("aiokafka"):
        return bool(getattr(error, "retriable", False)) or type(error).__name__ in {
            "KafkaConnectionError",
            "KafkaTimeoutError",
            "NodeNotReadyError",
        }
    return isinstance(error, BufferError | ConnectionError | TimeoutError)


@dataclass
class Retry:
    """How to retry one operation, named by ``what`` in the log lines (``"creating topics"``)."""

    what: str
    transient: Callable[[BaseException], bool] = kafka_transient
    deadline_s: float | None = None
    first_delay_s: float = 0.1
    max_delay_s: float = 5.0
    log_every_s: float = 30.0
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)

    def call(self, attempt: Callable[[], T], sleep: Callable[[float], object] = time.sleep) -> T:
        """Returns ``attempt()``'s result once it does not raise a transient error."""
        state = _Attempts(self)
        while True:
            try:
                result = attempt()
            except Exception as e:
                sleep(state.failed(e))
                continue
            state.succeeded()
            return result

    async def call_async(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """The same for a coroutine: the waits are ``asyncio.sleep``."""
        state = _Attempts(self)
        while True:
            try:
                result = await attempt()
            except Exception as e:
                await asyncio.sleep(state.failed(e))
                continue
            state.succeeded()
            return result


class _Attempts:
    """The bookkeeping of one retried call: failures, backoff, deadline and when to log next."""

    def __init__(self, policy: Retry) -> None:
        self.policy = policy
        self.started = policy.clock()
        self.failures = 0
        self.delay_s = policy.first_delay_s
        self.next_log = self.started

    def failed(self, error: Exception) -> float:
        """Re-raises a non-transient ``error``, raises :class:`GaveUp` past the deadline; else the wait."""
        policy = self.policy
        if not policy.transient(error):
            raise error
        self.failures += 1
        now = policy.clock()
        elapsed = now - self.started
        if policy.deadline_s is not None and elapsed >= policy.deadline_s:
            attempts = f"{self.failures} attempts"
            raise GaveUp(
                f"{policy.what}: still failing after {elapsed:.0f}s ({attempts}): {one_line(error)}"
            ) from error
        if now >= self.next_log:
            log.warning(
                "%s failed (%d attempts in %.0fs), retrying: %s",
                policy.what,
                self.failures,
                elapsed,
                one_line(error),
            )
            self.next_log = now + policy.log_every_s
        delay_s = self.delay_s
        if policy.deadline_s is not None:
            delay_s = min(delay_s, max(0.0, self.started + policy.deadline_s - now))
        self.delay_s = min(self.delay_s * 2, policy.max_delay_s)
        return delay_s

    def succeeded(self) -> None:
        if self.failures:
            elapsed = self.policy.clock() - self.started
            log.info(
                "%s succeeded after %d failed attempts in %.0fs", self.policy.what, self.failures, elapsed
            )


def one_line(error: BaseException) -> str:
    """``<type>: <message>`` on one line, for log lines and one-line errors."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__

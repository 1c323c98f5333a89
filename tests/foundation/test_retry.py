"""The retry helper: only named transient errors are retried, with backoff, until a deadline."""

from __future__ import annotations

import asyncio
import logging

import pytest
from confluent_kafka import KafkaError, KafkaException

from clickmuncher.retry import GaveUp, Retry, kafka_transient


class FakeTime:
    """A clock that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def failing(times: int, error: Exception) -> tuple[list[int], object]:
    calls: list[int] = []

    def attempt() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise error
        return "done"

    return calls, attempt


TRANSPORT = KafkaException(KafkaError(KafkaError._TRANSPORT, "broker down"))


def test_transient_errors_are_retried_with_backoff() -> None:
    fake = FakeTime()
    calls, attempt = failing(6, TRANSPORT)
    policy = Retry("producing", deadline_s=60, max_delay_s=1.0, clock=fake.clock)
    assert policy.call(attempt, sleep=fake.sleep) == "done"  # type: ignore[arg-type]
    assert len(calls) == 7
    assert fake.sleeps == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]


def test_other_errors_are_raised_at_once() -> None:
    fake = FakeTime()
    calls, attempt = failing(1, KafkaException(KafkaError(KafkaError._AUTHENTICATION, "wrong password")))
    with pytest.raises(KafkaException):
        Retry("producing", clock=fake.clock).call(attempt, sleep=fake.sleep)  # type: ignore[arg-type]
    assert len(calls) == 1 and fake.sleeps == []
    _, bug = failing(1, KeyError("a bug"))
    with pytest.raises(KeyError):
        Retry("producing", clock=fake.clock).call(bug, sleep=fake.sleep)  # type: ignore[arg-type]


def test_deadline_gives_up_from_the_last_error() -> None:
    fake = FakeTime()
    _, attempt = failing(1000, TRANSPORT)
    with pytest.raises(GaveUp, match=r"creating topics: still failing after 10s .*broker down") as raised:
        Retry("creating topics", deadline_s=10, clock=fake.clock).call(attempt, sleep=fake.sleep)  # type: ignore[arg-type]
    assert raised.value.__cause__ is TRANSPORT
    assert fake.now == 10  # the last wait is cut to the deadline


def test_one_log_line_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeTime()
    _, attempt = failing(40, TRANSPORT)
    policy = Retry("producing", max_delay_s=1.0, log_every_s=10.0, clock=fake.clock)
    with caplog.at_level(logging.INFO, logger="clickmuncher.retry"):
        policy.call(attempt, sleep=fake.sleep)  # type: ignore[arg-type]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert fake.now < 40 and len(warnings) == 4  # at 0 s, then every 10 s
    assert caplog.records[-1].getMessage().startswith("producing succeeded after 40 failed attempts")


def test_async_retry() -> None:
    outcomes: list[BaseException | None] = [ConnectionError("refused"), None]

    async def attempt() -> int:
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome
        return 7

    policy = Retry("connecting", first_delay_s=0.0, deadline_s=30)
    assert asyncio.run(policy.call_async(attempt)) == 7


def test_kafka_transient_names() -> None:
    assert kafka_transient(KafkaException(KafkaError(KafkaError.NOT_ENOUGH_REPLICAS)))
    assert kafka_transient(BufferError("queue full"))
    assert not kafka_transient(KafkaException(KafkaError(KafkaError._SSL)))
    assert not kafka_transient(KafkaException(KafkaError(KafkaError._TRANSPORT, fatal=True)))
    assert not kafka_transient(ValueError("bad"))

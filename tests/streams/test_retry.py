"""A commit's writes: transient broker errors are retried until done, anything else stops the worker."""

from __future__ import annotations

import asyncio
import logging

import pytest
from confluent_kafka import KafkaError

from clickmuncher.retry import kafka_transient
from streams import retry
from streams.producer import DeliveryError


class Exited(BaseException):
    pass


@pytest.fixture
def exits(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    codes: list[int] = []

    def fake_exit(code: int) -> None:
        codes.append(code)
        raise Exited

    monkeypatch.setattr(retry.os, "_exit", fake_exit)
    return codes


def attempts(errors: list[Exception]) -> tuple[list[int], object]:
    calls: list[int] = []

    async def attempt() -> None:
        calls.append(1)
        if errors:
            raise errors.pop(0)

    return calls, attempt


def test_delivery_errors_keep_their_kafka_error() -> None:
    assert kafka_transient(DeliveryError(KafkaError(KafkaError._MSG_TIMED_OUT)))
    assert kafka_transient(DeliveryError(KafkaError(KafkaError.NOT_ENOUGH_REPLICAS)))
    assert not kafka_transient(DeliveryError(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED)))


def test_transient_errors_are_retried_until_done(exits: list[int]) -> None:
    transient = [DeliveryError(KafkaError(KafkaError.NOT_ENOUGH_REPLICAS)) for _ in range(3)]
    calls, attempt = attempts([*transient, ConnectionError("refused")])
    asyncio.run(retry.until_done(attempt, "changelog write"))  # type: ignore[arg-type]
    assert len(calls) == 5 and exits == []


@pytest.mark.parametrize(
    "error",
    [DeliveryError(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED)), KeyError("a bug")],
    ids=["permanent", "bug"],
)
def test_anything_else_stops_the_worker(
    exits: list[int], error: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    calls, attempt = attempts([error])
    with caplog.at_level(logging.CRITICAL, logger="streams"), pytest.raises(Exited):
        asyncio.run(retry.until_done(attempt, "delivery"))  # type: ignore[arg-type]
    assert len(calls) == 1 and exits == [retry.EXIT_PERMANENT]
    [line] = [r.getMessage() for r in caplog.records if r.levelno == logging.CRITICAL]
    assert line.startswith("delivery failed for good, exiting to be restarted:")


def test_the_replay_mark_is_read_through_a_coordinator_change() -> None:
    """A worker starting on a cluster that just started is told NOT_COORDINATOR for a moment."""
    from confluent_kafka import KafkaException

    from streams import replay

    calls: list[int] = []

    def committed() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise KafkaException(KafkaError(KafkaError.NOT_COORDINATOR))
        return "offsets"

    assert replay._retrying(committed) == "offsets" and len(calls) == 3

"""The Kafka side of the sink's commit: dead-letter delivery waits out transient broker errors, stops the
sink on any other, and gives way to a stop request."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from confluent_kafka import KafkaError

from clickmuncher.retry import kafka_transient
from sinks.kafka_io import DeliveryError
from sinks.metrics import SinkMetrics
from sinks.sink import Sink, StopRequested
from tests.sinks.helpers import make_settings


def sink(tmp_path: Any) -> Sink:
    settings = make_settings("127.0.0.1:1", "sqlite://", "u", tmp_path)
    return Sink(
        settings,
        engine=None,  # type: ignore[arg-type]
        consumer=None,  # type: ignore[arg-type]
        producer=None,  # type: ignore[arg-type]
        metrics=SinkMetrics(),
        stop=threading.Event(),
    )


def failing_send(errors: list[Exception]) -> tuple[list[int], Any]:
    calls: list[int] = []

    def send() -> None:
        calls.append(1)
        if errors:
            raise errors.pop(0)

    return calls, send


def test_transient_delivery_failures_are_retried(tmp_path: Any) -> None:
    assert kafka_transient(DeliveryError(KafkaError(KafkaError._MSG_TIMED_OUT)))
    calls, send = failing_send([DeliveryError(KafkaError(KafkaError._MSG_TIMED_OUT)) for _ in range(2)])
    sink(tmp_path)._until_delivered(send)
    assert len(calls) == 3


def test_a_permanent_delivery_failure_stops_the_sink(tmp_path: Any) -> None:
    error = DeliveryError(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED))
    calls, send = failing_send([error])
    with pytest.raises(DeliveryError):
        sink(tmp_path)._until_delivered(send)
    assert len(calls) == 1


def test_a_stop_request_ends_the_wait(tmp_path: Any) -> None:
    stopped = sink(tmp_path)
    stopped.stop.set()
    calls, send = failing_send([DeliveryError(KafkaError(KafkaError._TRANSPORT))] * 100)
    with pytest.raises(StopRequested):
        stopped._until_delivered(send)
    assert len(calls) == 1

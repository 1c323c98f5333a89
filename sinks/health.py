"""What the sink's ``/healthz`` and ``/readyz`` say (served by :class:`clickmuncher.health.HealthServer`).

- alive: always, while the process answers: a broker or database outage is waited out, never a reason to
  restart the sink, and anything that cannot be waited out ends the process.
- ready: the sink is in its consumer group (assigned, possibly no partition: more sinks than partitions),
  its loop polled Kafka within ``POLL_STALE_S`` (not so while a batch waits for the database or for Kafka),
  and the cluster answers.
"""

from __future__ import annotations

import time

from clickmuncher.health import Probe
from sinks.sink import Sink

POLL_STALE_S = 30.0


class SinkHealth:
    def __init__(self, cluster: Probe) -> None:
        self.cluster = cluster
        self.sink: Sink | None = None  # set once the sink is open

    def alive(self) -> str | None:
        return None

    def ready(self) -> str | None:
        sink = self.sink
        if sink is None:
            return "starting: schema, cluster check, topics"
        if not sink.joined:
            return f"not in consumer group {sink.settings.sink_group} yet"
        idle_s = time.monotonic() - sink.polled_mono
        if idle_s > POLL_STALE_S:
            return f"no poll for {idle_s:.0f}s: the batch in hand waits for the database or Kafka"
        return self.cluster()

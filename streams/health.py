"""What the worker's ``/healthz`` and ``/readyz`` say (served by :class:`clickmuncher.health.HealthServer`).

- alive: the event loop runs. A Faust timer of its own (it takes no lock, so a commit waiting out a broker
  outage does not hold it) beats every second; a loop that has not run it for ``LOOP_STALL_S`` is stuck.
  Before the first beat (start-up, the first table recovery) the worker counts as alive.
- ready: started (the window table recovered, timers running), not in a rebalance or a recovery, and the
  cluster answers. A worker without partitions (more workers than partitions) is ready: it is in the group.
"""

from __future__ import annotations

import time
from typing import Any

from clickmuncher.health import Probe

BEAT_S = 1.0
LOOP_STALL_S = 60.0


class WorkerHealth:
    def __init__(self, app: Any, cluster: Probe) -> None:
        self.app = app
        self.cluster = cluster
        self.beat_mono: float | None = None

    def beat(self) -> None:
        self.beat_mono = time.monotonic()

    def alive(self) -> str | None:
        if self.beat_mono is None:
            return None
        stalled_s = time.monotonic() - self.beat_mono
        return f"event loop stalled for {stalled_s:.0f}s" if stalled_s > LOOP_STALL_S else None

    def ready(self) -> str | None:
        if self.beat_mono is None:
            return "starting: joining the group and recovering the window table"
        if self.app.rebalancing:
            return "rebalancing: partitions are being assigned and their tables recovered"
        return self.alive() or self.cluster()

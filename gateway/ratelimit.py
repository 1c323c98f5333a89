"""Log lines that an attacker or a failing disk could repeat thousands of times a second, rate-limited."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable


class RateLimitedLog:
    """Logs at most one line per ``every_s`` seconds; the next line logged says how many were dropped.

    Counters (metrics) keep the exact figures; the log only shows that something is happening, and what.
    """

    def __init__(
        self,
        logger: logging.Logger,
        level: int,
        every_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.level = level
        self.every_s = every_s
        self._clock = clock
        self._next = 0.0
        self._dropped = 0

    def __call__(self, message: str, *args: object) -> None:
        now = self._clock()
        if now < self._next:
            self._dropped += 1
            return
        if self._dropped:
            message += " (and %d more like it since the last such line)"
            args = (*args, self._dropped)
        self._dropped = 0
        self._next = now + self.every_s
        self.logger.log(self.level, message, *args)

"""Retrying a write until it is done: the engine never acks work whose records are not durable."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("streams")
FIRST_DELAY_S = 0.1
MAX_DELAY_S = 5.0


async def until_done(attempt: Callable[[], Awaitable[object]], what: str) -> None:
    """Awaits ``attempt()`` until it returns without raising, backing off from 0.1 s to 5 s."""
    delay_s = FIRST_DELAY_S
    while True:
        try:
            await attempt()
            return
        except Exception as e:
            log.warning("%s failed, retrying in %.1fs: %r", what, delay_s, e)
            await asyncio.sleep(delay_s)
            delay_s = min(delay_s * 2, MAX_DELAY_S)

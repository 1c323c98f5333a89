"""A commit's writes retried until done, or the worker stopped: the engine never acks unfinished work.

A write (the changelog records, the window records, dead letters) that fails transiently, the way a broker
outage, a leader change, too few in-sync replicas or a timeout make it fail, is tried again with
:class:`clickmuncher.retry.Retry`, however long the outage lasts. Any other failure is a bug or a permanent
error (an authorization refused, a topic deleted, a record too large, a fatal producer error): retrying it
would only log the same warning forever, so the worker logs it as critical and exits with
:data:`EXIT_PERMANENT` for its supervisor to restart it. Exiting there is safe at any moment, as a kill -9
is (docs/streams.md): nothing unwritten was acked.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable

from clickmuncher.retry import Retry, one_line

log = logging.getLogger("streams")
EXIT_PERMANENT = 71  # EX_OSERR: a write failed for good; the restarted worker redoes what was not acked


async def until_done(attempt: Callable[[], Awaitable[object]], what: str) -> None:
    """Awaits ``attempt()`` until it returns; transient Kafka errors are retried with backoff (0.1 s up to
    5 s, a warning when they start and every 30 s after), any other error stops the process."""
    try:
        await Retry(what).call_async(attempt)
    except Exception as e:
        log.critical("%s failed for good, exiting to be restarted: %s", what, one_line(e), exc_info=e)
        os._exit(EXIT_PERMANENT)

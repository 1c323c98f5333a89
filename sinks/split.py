"""Finding the windows of a batch that the database refuses (permanent errors, ``sinks/errors.py``).

When a batch's transaction fails with a permanent error, :func:`find_refused` bisects its windows inside one
transaction that is always rolled back:

- the part under test is written under a SAVEPOINT with the batch's own statements
  (:func:`sinks.store.write_windows`); a part that writes stays, so the parts after it are written on top of
  it as in the batch (a refusal that depends on earlier rows, such as a URL's total out of range, is found
  too); a refused part is rolled back to its savepoint and tried again as two halves, in order, down to
  single windows, which are the refused ones;
- k refused windows among n cost at most 1 + 2k·ceil(log2 n) attempts; a batch refused whole (a run of bad
  records) 2n - 1 attempts, writing n·log2(n) rows in all: never quadratic;
- nothing is committed here, and nothing is sent: the caller dead-letters the refused windows and commits the
  rest with their offsets through the normal commit protocol, so a crash during the search changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa

from clickmuncher.records import ClickWindow
from sinks import errors, store
from sinks.batch import WindowKey, window_key


def find_refused(engine: sa.Engine, windows: Sequence[ClickWindow]) -> dict[WindowKey, str]:
    """The windows the database refuses on their own, each with the refusal (one line); empty when it
    writes them all. Transient failures propagate (the caller retries)."""
    refused: dict[WindowKey, str] = {}
    now = datetime.now(UTC)
    with engine.connect() as conn, conn.begin() as transaction:
        parts = [windows]  # a stack: the earliest part not tried yet is on top
        while parts:
            part = parts.pop()
            reason = _refusal(conn, part, now)
            if reason is None:
                continue
            if len(part) == 1:
                refused[window_key(part[0])] = reason
                continue
            middle = len(part) // 2
            parts += [part[middle:], part[:middle]]
        transaction.rollback()
    return refused


def _refusal(conn: sa.Connection, part: Sequence[ClickWindow], now: datetime) -> str | None:
    """Writes ``part`` under a savepoint: None when it is written, else the permanent error (rolled back)."""
    try:
        with errors.permanent_as_bad_data(), conn.begin_nested():
            store.write_windows(conn, part, now)
    except errors.BadData as e:
        return str(e)
    return None

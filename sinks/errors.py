"""Which write failures are the data's fault (permanent) and which the database's (transient).

A **permanent** failure happens again, the same way, every time the same rows are written: the database or
its driver refuses a value (PostgreSQL's SQLSTATE classes 22 "data exception", e.g. a NUL or an invalid
byte sequence in text, a number out of range, and 23 "integrity constraint violation"; a Python value the
driver cannot convert: OverflowError, UnicodeEncodeError, ValueError). Retrying it would stall the sink for
good, so the sink isolates the refused windows instead (``sinks/split.py``).

Everything else is **transient** and retried as it always was: lost connections, ``OperationalError``
(serialization failures and deadlocks included), and errors that are not about data at all
(``ProgrammingError``, ``InternalError``): a bug or a misconfigured database stalls the sink visibly, with
its errors counted, rather than sending every record to the dead-letter topic.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

REASON_MAX_CHARS = 300
_DATA_SQLSTATE_CLASSES = ("22", "23")


class BadData(RuntimeError):
    """The database refused data of a write; the message is the refusal on one line (no statement, no
    parameters)."""


class NotReproduced(RuntimeError):
    """The database refused a batch's data but none of its windows on their own: not the data's fault after
    all, so the batch is retried like after a transient failure."""


def is_permanent(error: BaseException) -> bool:
    """True when writing the same rows again fails the same way (see the module docstring)."""
    if isinstance(error, sa.exc.StatementError) and not isinstance(error, sa.exc.DBAPIError):
        # A bind parameter's conversion failed inside SQLAlchemy: the cause is the value.
        return error.orig is not None and is_permanent(error.orig)
    if isinstance(error, sa.exc.DBAPIError):
        if error.connection_invalidated:
            return False
        if isinstance(error, sa.exc.DataError | sa.exc.IntegrityError):
            return True
        sqlstate = getattr(error.orig, "sqlstate", None)
        return isinstance(sqlstate, str) and sqlstate.startswith(_DATA_SQLSTATE_CLASSES)
    return isinstance(error, OverflowError | ValueError)  # UnicodeEncodeError is a ValueError


@contextmanager
def permanent_as_bad_data() -> Iterator[None]:
    """Re-raises a permanent failure inside the block as :class:`BadData`; anything else passes as it is."""
    try:
        yield
    except Exception as e:
        if is_permanent(e):
            raise BadData(one_line(e)) from e
        raise


def one_line(error: BaseException) -> str:
    """``<type>: <first line>`` of the driver's own message (SQLAlchemy's adds the statement and its
    parameters), at most :data:`REASON_MAX_CHARS` characters."""
    cause = getattr(error, "orig", None) or error
    text = str(cause).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(cause).__name__}: {first}"[:REASON_MAX_CHARS]

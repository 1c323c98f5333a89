"""Permanent (the data's) versus transient (the database's) write failures, and the one-line reasons."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from sinks.errors import BadData, is_permanent, one_line, permanent_as_bad_data


class DriverError(Exception):
    """Stands in for a DBAPI driver exception (psycopg's carry ``sqlstate``)."""

    def __init__(self, message: str, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


def wrapped(kind: type[sa.exc.DBAPIError], message: str, sqlstate: str | None = None) -> sa.exc.DBAPIError:
    statement, parameters = "INSERT INTO click_windows ...", {"url": "a parameter"}
    return kind(statement, parameters, DriverError(message, sqlstate))


PERMANENT = [
    wrapped(sa.exc.DataError, "PostgreSQL text fields cannot contain NUL (0x00) bytes"),
    wrapped(sa.exc.DataError, "bigint out of range", "22003"),
    wrapped(sa.exc.IntegrityError, "CHECK constraint failed"),
    wrapped(sa.exc.DBAPIError, 'invalid byte sequence for encoding "UTF8": 0x00', "22021"),
    wrapped(sa.exc.InternalError, "value too long", "22001"),
    sa.exc.StatementError("bind failed", "INSERT ...", {}, OverflowError("date value out of range")),
    OverflowError("Python int too large to convert to SQLite INTEGER"),
    UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"),
    ValueError("bad value"),
]
TRANSIENT = [
    wrapped(sa.exc.OperationalError, "server closed the connection unexpectedly"),
    wrapped(sa.exc.OperationalError, "could not serialize access", "40001"),
    wrapped(sa.exc.OperationalError, "deadlock detected", "40P01"),
    wrapped(sa.exc.OperationalError, "database is locked"),
    wrapped(sa.exc.InterfaceError, "connection already closed"),
    wrapped(sa.exc.ProgrammingError, "syntax error", "42601"),
    wrapped(sa.exc.InternalError, "out of memory", "53200"),
    RuntimeError("anything else"),
]


@pytest.mark.parametrize("error", PERMANENT, ids=lambda e: type(e).__name__)
def test_permanent(error: Exception) -> None:
    assert is_permanent(error)


@pytest.mark.parametrize("error", TRANSIENT, ids=lambda e: type(e).__name__)
def test_transient(error: Exception) -> None:
    assert not is_permanent(error)


def test_a_dropped_connection_is_transient_whatever_the_class() -> None:
    error = wrapped(sa.exc.DataError, "connection lost")
    error.connection_invalidated = True
    assert not is_permanent(error)


def test_permanent_failures_become_bad_data_with_the_driver_message_only() -> None:
    with pytest.raises(BadData) as raised, permanent_as_bad_data():
        raise wrapped(sa.exc.DataError, "PostgreSQL text fields cannot contain NUL (0x00) bytes\nDETAIL: x")
    assert str(raised.value) == "DriverError: PostgreSQL text fields cannot contain NUL (0x00) bytes"
    with pytest.raises(sa.exc.OperationalError), permanent_as_bad_data():
        raise wrapped(sa.exc.OperationalError, "server closed the connection")


def test_one_line_is_short() -> None:
    assert len(one_line(ValueError("x" * 10_000))) == 300
    assert one_line(ValueError("")) == "ValueError: "

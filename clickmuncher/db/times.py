"""Time conversions at the sink's boundaries: record milliseconds, DB datetimes, operator ISO-8601 input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from clickmuncher.settings import ConfigError

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def ms_to_datetime(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


def datetime_to_ms(moment: datetime) -> int:
    """Milliseconds since the epoch; SQLite gives naive datetimes, which are UTC here."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return (aware - EPOCH) // timedelta(milliseconds=1)


def parse_iso_utc(text: str, option: str) -> datetime:
    """``2026-11-24T00:30:00Z`` (or with an offset; no offset means UTC) as an aware datetime.

    Raises :class:`ConfigError` naming ``option`` when ``text`` is not ISO-8601.
    """
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as e:
        raise ConfigError(f"{option}: not an ISO-8601 time: {text!r}") from e
    return moment.astimezone(UTC) if moment.tzinfo is not None else moment.replace(tzinfo=UTC)

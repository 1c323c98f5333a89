"""Query parameters of the api, checked strictly: an unknown or repeated parameter, a malformed value, an
inverted range, a ``limit`` over 1,000 or a URL the gateway would refuse is a :class:`BadRequest`.

Times are ISO-8601 (``2026-12-03T10:00:00Z``; an offset is converted, none means UTC) and become
milliseconds since the epoch here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from multidict import MultiMapping

from clickmuncher.db.times import EPOCH
from clickmuncher.records import CLASSES
from clickmuncher.urls import Rejected, normalize_url

DAY_MS = 24 * 3600 * 1000
MAX_LIMIT = 1000
DEFAULT_LIMIT = 10


class BadRequest(ValueError):
    """A 400: ``code`` is a short name, ``detail`` the reason in words."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


CLASS_CHOICES = ("human", "all", *CLASSES[1:])
"""``cls``: human clicks by default, every class with ``all``, or one other class (SPEC §12)."""


@dataclass(frozen=True, slots=True)
class TopQuery:
    since_ms: int
    until_ms: int
    limit: int
    final: bool
    cls: str = "human"


@dataclass(frozen=True, slots=True)
class WindowsQuery:
    url: str
    from_ms: int
    to_ms: int
    cls: str = "human"


Query = MultiMapping[str]


def top_query(query: Query, now_ms: int) -> TopQuery:
    """``since``, ``until`` (default: the last 24 hours up to now), ``limit`` (10), ``final`` (0), ``cls``
    (human)."""
    values = _values(query, {"since", "until", "limit", "final", "cls"})
    since_ms, until_ms = _range(values, "since", "until", now_ms)
    limit, final = _limit(values.get("limit")), _flag(values.get("final"), "final")
    return TopQuery(since_ms, until_ms, limit, final, _class(values.get("cls")))


def windows_query(query: Query, now_ms: int) -> WindowsQuery:
    """``url`` (required), ``from``, ``to`` (default: the last 24 hours up to now), ``cls`` (human)."""
    values = _values(query, {"url", "from", "to", "cls"})
    from_ms, to_ms = _range(values, "from", "to", now_ms)
    return WindowsQuery(_url(values.get("url")), from_ms, to_ms, _class(values.get("cls")))


def uniques_query(query: Query, now_ms: int) -> WindowsQuery:
    """``url`` (required), ``from``, ``to`` (default: the last 24 hours up to now)."""
    values = _values(query, {"url", "from", "to"})
    from_ms, to_ms = _range(values, "from", "to", now_ms)
    return WindowsQuery(_url(values.get("url")), from_ms, to_ms)


def totals_query(query: Query) -> tuple[str, str]:
    """``url`` (required), normalized; ``cls`` (human)."""
    values = _values(query, {"url", "cls"})
    return _url(values.get("url")), _class(values.get("cls"))


def _class(text: str | None) -> str:
    if text is None:
        return "human"
    if text not in CLASS_CHOICES:
        raise BadRequest("bad_class", f"cls must be one of {', '.join(CLASS_CHOICES)}")
    return text


def _values(query: Query, allowed: set[str]) -> dict[str, str]:
    unknown = sorted(set(query) - allowed)
    if unknown:
        expected = ", ".join(sorted(allowed))
        raise BadRequest("unknown_parameter", f"unknown parameter {unknown[0]!r} (expected: {expected})")
    values: dict[str, str] = {}
    for name in query:
        given = query.getall(name)
        if len(given) > 1:
            raise BadRequest("repeated_parameter", f"the {name} parameter is given more than once")
        values[name] = given[0]
    return values


def _range(values: Mapping[str, str], start: str, end: str, now_ms: int) -> tuple[int, int]:
    end_ms = parse_time(values[end], end) if end in values else now_ms
    start_ms = parse_time(values[start], start) if start in values else max(0, end_ms - DAY_MS)
    if start_ms >= end_ms:
        raise BadRequest("inverted_range", f"{start} must be before {end}")
    return start_ms, end_ms


def parse_time(text: str, name: str) -> int:
    """An ISO-8601 time as milliseconds since the epoch; raises :class:`BadRequest` naming ``name``."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadRequest("bad_time", f"{name} is not an ISO-8601 time: {text[:64]!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        ms = (moment - EPOCH) // timedelta(milliseconds=1)
    except OverflowError:
        raise BadRequest("bad_time", f"{name} is out of range: {text[:64]!r}") from None
    if ms < 0:
        raise BadRequest("bad_time", f"{name} is before 1970: {text[:64]!r}")
    return ms


def _limit(text: str | None) -> int:
    if text is None:
        return DEFAULT_LIMIT
    if not text.isascii() or not text.isdigit() or len(text) > 6:
        raise BadRequest("bad_limit", f"limit must be a whole number from 1 to {MAX_LIMIT}")
    limit = int(text)
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequest("bad_limit", f"limit must be from 1 to {MAX_LIMIT}, not {limit}")
    return limit


def _flag(text: str | None, name: str) -> bool:
    if text is None or text == "0":
        return False
    if text == "1":
        return True
    raise BadRequest("bad_flag", f"{name} must be 0 or 1")


def _url(text: str | None) -> str:
    if not text:
        raise BadRequest("missing_url", "the url parameter is missing or empty")
    try:
        return normalize_url(text)
    except Rejected as e:
        raise BadRequest(f"bad_url_{e.reason}", e.detail) from None

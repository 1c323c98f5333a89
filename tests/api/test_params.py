"""The api's query parameters: defaults, normalization, and every refusal with its reason."""

from __future__ import annotations

import pytest
from multidict import MultiDict

from api.params import DAY_MS, BadRequest, parse_time, top_query, totals_query, windows_query

NOW_MS = 1_790_000_000_000


def q(*pairs: tuple[str, str]) -> MultiDict[str]:
    return MultiDict(pairs)


def test_top_defaults_to_the_last_day() -> None:
    query = top_query(q(), NOW_MS)
    assert (query.since_ms, query.until_ms, query.limit, query.final) == (NOW_MS - DAY_MS, NOW_MS, 10, False)


def test_times_are_iso_8601_with_or_without_offset() -> None:
    assert parse_time("1970-01-01T00:00:01Z", "t") == 1000
    assert parse_time("1970-01-01T01:00:01+01:00", "t") == 1000
    assert parse_time("1970-01-01T00:00:01.250", "t") == 1250
    query = top_query(q(("since", "2026-01-01T00:00:00Z"), ("limit", "1000"), ("final", "1")), NOW_MS)
    assert (query.limit, query.final) == (1000, True)


def test_urls_are_normalized_like_the_gateway_does() -> None:
    assert totals_query(q(("url", "HTTP://Google.com:80/#top"))) == ("http://google.com/", "human")
    assert totals_query(q(("url", "http://a.example/"), ("cls", "all"))) == ("http://a.example/", "all")
    query = windows_query(q(("url", "https://example.com/a/./b/../c?x=%7e")), NOW_MS)
    assert query.url == "https://example.com/a/c?x=~"


@pytest.mark.parametrize(
    ("pairs", "code"),
    [
        ([("sinse", "2026-01-01")], "unknown_parameter"),
        ([("limit", "5"), ("limit", "6")], "repeated_parameter"),
        ([("limit", "1001")], "bad_limit"),
        ([("limit", "0")], "bad_limit"),
        ([("limit", "-1")], "bad_limit"),
        ([("limit", "ten")], "bad_limit"),
        ([("limit", "٣")], "bad_limit"),
        ([("final", "yes")], "bad_flag"),
        ([("since", "yesterday")], "bad_time"),
        ([("since", "1969-12-31T23:59:59Z")], "bad_time"),
        ([("since", "2026-01-02T00:00:00Z"), ("until", "2026-01-01T00:00:00Z")], "inverted_range"),
        ([("since", "2026-01-01T00:00:00Z"), ("until", "2026-01-01T00:00:00Z")], "inverted_range"),
    ],
)
def test_bad_top_parameters_are_refused(pairs: list[tuple[str, str]], code: str) -> None:
    with pytest.raises(BadRequest) as raised:
        top_query(q(*pairs), NOW_MS)
    assert raised.value.code == code


@pytest.mark.parametrize(
    ("pairs", "code"),
    [
        ([], "missing_url"),
        ([("url", "")], "missing_url"),
        ([("url", "ftp://example.com/")], "bad_url_bad_scheme"),
        ([("url", "https://user@example.com/")], "bad_url_userinfo"),
        ([("url", "https://example.com/\r\nx")], "bad_url_crlf"),
        ([("url", "https://" + "a" * 2100 + ".com/")], "bad_url_too_long"),
        ([("url", "https://example.com/"), ("limit", "3")], "unknown_parameter"),
        ([("url", "https://example.com/"), ("from", "2026-02-01"), ("to", "2026-01-01")], "inverted_range"),
    ],
)
def test_bad_windows_parameters_are_refused(pairs: list[tuple[str, str]], code: str) -> None:
    with pytest.raises(BadRequest) as raised:
        windows_query(q(*pairs), NOW_MS)
    assert raised.value.code == code

"""The records that cross topics: JSON shapes of SPEC §6 and the decoders' reasons."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clickmuncher.records import (
    CLASSES,
    MAX_TS_MS,
    MAX_URL_CHARS,
    ClickEvent,
    ClickWindow,
    RecordError,
    click_fields,
    iso_utc,
)

# What the gateway can send: an http(s) URL, any characters but controls and lone surrogates.
urls = st.builds(
    lambda scheme, rest: scheme + rest,
    st.sampled_from(["http://", "https://"]),
    st.text(
        st.characters(blacklist_categories=["Cs", "Cc"]),
        min_size=1,
        max_size=MAX_URL_CHARS - len("https://"),
    ),
).filter(lambda url: not url.endswith("://"))  # "http://://" has no host: refused by every reader
timestamps = st.integers(min_value=0, max_value=MAX_TS_MS)
classes = st.integers(min_value=0, max_value=len(CLASSES) - 1)
visitors = st.none() | st.binary(min_size=8, max_size=8).map(bytes.hex)


@given(urls, timestamps)
def test_click_event_bytes_are_the_spec_json(url: str, ts_ms: int) -> None:
    event = ClickEvent(url=url, ts_ms=ts_ms)
    assert json.loads(event.encode()) == {"v": 1, "url": url, "ts_ms": ts_ms}
    assert ClickEvent.decode(event.encode()) == event
    assert event.key() == url.encode()


Fields = tuple[str, int, int, str | None]


@given(urls, timestamps, classes, visitors)
def test_classified_click_bytes_are_the_spec_json(url: str, ts_ms: int, cls: int, vid: str | None) -> None:
    event = ClickEvent(url, ts_ms, cls, vid)
    expected = {"v": 1, "url": url, "ts_ms": ts_ms}
    if vid is not None:
        expected.update(cls=CLASSES[cls], vid=vid)
    assert json.loads(event.encode()) == expected
    assert ClickEvent.decode(event.encode()) == (event if vid is not None else ClickEvent(url, ts_ms))


def _parsed(raw: bytes) -> Fields | str:
    """What the JSON parser and the intake rules make of ``raw``: the fields, or "error"."""
    try:
        body = json.loads(raw)
    except ValueError:
        return "error"
    if not isinstance(body, dict) or type(body.get("v")) is not int or body.get("v") != 1:
        return "error"
    url, ts_ms = body.get("url"), body.get("ts_ms")
    if not isinstance(url, str) or type(ts_ms) is not int or not 0 <= ts_ms <= MAX_TS_MS:
        return "error"
    if not url.startswith(("http://", "https://")) or url.endswith("://") or len(url) > MAX_URL_CHARS:
        return "error"
    if any(ord(c) < 0x20 or ord(c) == 0x7F or 0xD800 <= ord(c) <= 0xDFFF for c in url):
        return "error"
    cls, vid = body.get("cls", "human"), body.get("vid")
    if cls not in CLASSES:
        return "error"
    if vid is not None and (not isinstance(vid, str) or len(vid) != 16 or set(vid) - set("0123456789abcdef")):
        return "error"
    return url, ts_ms, CLASSES.index(cls), vid


def _read(raw: bytes) -> Fields | str:
    try:
        return click_fields(raw)
    except RecordError:
        return "error"


# Near misses of the gateway's own bytes: the fast path must agree with the parser on every one.
_pieces = st.sampled_from(
    [
        b'{"v": 1, "url": "',
        b'", "ts_ms": ',
        b"}",
        b'"',
        b"\\",
        b"\\u0041",
        b"\\n",
        b"\n",
        b"\x00",
        b" ",
        b"0",
        b"01",
        b"-1",
        b"1.5",
        b"1e3",
        b"123",
        b"https://e.com/a?b=c",
        b"\xc3\xa9",
        b"\x7f",
        b'"v": 2',
        b",",
        b'", "cls": "',
        b'", "vid": "',
        b"human",
        b"bot",
        b"preview",
        b"prefetch",
        b"robot",
        b"0123456789abcdef",
        b"0123456789ABCDEF",
        b"0123456789abcde",
        b"null",
    ]
)


@given(st.lists(_pieces, max_size=8).map(b"".join))
def test_click_fields_agree_with_the_json_parser(raw: bytes) -> None:
    assert _read(raw) == _parsed(raw)


@given(urls, timestamps)
def test_click_fields_read_every_gateway_click(url: str, ts_ms: int) -> None:
    raw = ClickEvent(url=url, ts_ms=ts_ms).encode()
    assert click_fields(raw) == (url, ts_ms, 0, None) == _parsed(raw)
    assert click_fields(raw + b" ") == (url, ts_ms, 0, None)  # not the gateway's bytes: parsed, same fields


@given(urls, timestamps, classes, st.binary(min_size=8, max_size=8).map(bytes.hex))
def test_click_fields_read_every_classified_click(url: str, ts_ms: int, cls: int, vid: str) -> None:
    raw = ClickEvent(url, ts_ms, cls, vid).encode()
    assert click_fields(raw) == (url, ts_ms, cls, vid) == _parsed(raw)
    assert click_fields(raw + b" ") == (url, ts_ms, cls, vid)


def test_click_window_json_and_key() -> None:
    window = ClickWindow("https://example.com/", 1_795_480_200_000, 1_795_482_000_000, 42, 1)
    body = json.loads(window.encode())
    assert body == {
        "v": 1,
        "url": "https://example.com/",
        "window_start": "2026-11-24T00:30:00Z",
        "window_end": "2026-11-24T01:00:00Z",
        "window_start_ms": 1_795_480_200_000,
        "window_end_ms": 1_795_482_000_000,
        "clicks": 42,
        "revision": 1,
    }
    assert window.key() == b"1795480200000:https://example.com/"
    assert ClickWindow.decode(window.encode()) == window


@given(
    st.text(min_size=1),
    st.integers(min_value=0, max_value=2**45),
    st.integers(min_value=1, max_value=2**40),
    st.integers(min_value=0, max_value=2**53),
    st.integers(min_value=0, max_value=2**31),
)
def test_click_window_bytes_are_json_dumps_of_its_json(
    url: str, start_ms: int, size_ms: int, clicks: int, revision: int
) -> None:
    window = ClickWindow(url, start_ms, start_ms + size_ms, clicks, revision)
    assert window.encode() == json.dumps(window.to_json()).encode()


def test_iso_keeps_milliseconds_when_present() -> None:
    assert iso_utc(0) == "1970-01-01T00:00:00Z"
    assert iso_utc(1_500) == "1970-01-01T00:00:01.500Z"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "empty value"),
        (b"not json", "not JSON"),
        (b"[1]", "not a JSON object"),
        (b'{"v": 2, "url": "u", "ts_ms": 1}', "unsupported record version"),
        (b'{"v": true, "url": "http://e/", "ts_ms": 1}', "unsupported record version"),
        (b'{"v": 1, "ts_ms": 1}', "'url'"),
        (b'{"v": 1, "url": "http://e/", "ts_ms": "1"}', "'ts_ms'"),
        (b'{"v": 1, "url": "http://e/", "ts_ms": true}', "'ts_ms'"),
        (b'{"v": 1, "url": "http://e/", "ts_ms": -5}', "'ts_ms'"),
        (b'{"v": 1, "url": "http://e/", "ts_ms": 1e3}', "'ts_ms'"),
        (b'{"v": 1, "url": "http://e/", "ts_ms": %d}' % (MAX_TS_MS + 1), "'ts_ms'"),
        (b'{"v": 1, "url": "http://e/", "ts_ms": 1%s}' % (b"0" * 5000), "not JSON"),
        (b'{"v": 1, "url": "u", "ts_ms": 1}', "not an absolute http"),
        (b'{"v": 1, "url": "http://", "ts_ms": 1}', "not an absolute http"),
        (b'{"v": 1, "url": "http://e/\\ud800", "ts_ms": 1}', "lone surrogate"),
        (b'{"v": 1, "url": "http://e/\\u0000", "ts_ms": 1}', "NUL"),
        (b'{"v": 1, "url": "http://e/\\u0007", "ts_ms": 1}', "control character"),
        (b'{"v": 1, "url": "http://e/%s", "ts_ms": 1}' % (b"a" * MAX_URL_CHARS), "characters, more than"),
        (b'{"v": 1, "url": "http://e/\xff", "ts_ms": 1}', "not UTF-8"),
        (b'{"v": 1, "url": "http://e/", "url": "http://f/", "ts_ms": 1}', "duplicate keys"),
        (b"[" * 200_000, "more than"),
        (b"[" * 10_000, "nested deeper"),
        (b'{"v": 1, "url": "http://e/", "ts_ms": 1, "x": %s}' % (b"[" * 20 + b"]" * 20), "nested deeper"),
        (b'{"v": 1, "url": "http://e/", "ts_ms": 1, "cls": "robot"}', "'cls'"),
        (b'{"v": 1, "url": "http://e/", "ts_ms": 1, "cls": 1}', "'cls'"),
        (b'{"v": 1, "url": "http://e/", "ts_ms": 1, "vid": "0123456789ABCDEF"}', "'vid'"),
        (b'{"v": 1, "url": "http://e/", "ts_ms": 1, "vid": 5}', "'vid'"),
    ],
)
def test_bad_click_events_say_why(raw: bytes | None, reason: str) -> None:
    with pytest.raises(RecordError, match=reason):
        ClickEvent.decode(raw)


def test_brackets_inside_strings_are_not_nesting() -> None:
    url = "http://[::1]/" + "[" * 40
    assert click_fields(json.dumps({"v": 1, "url": url, "ts_ms": 5}).encode()) == (url, 5, 0, None)


@given(st.binary(max_size=200) | st.text(max_size=60).map(str.encode))
def test_hostile_bytes_are_a_record_error_or_a_click(raw: bytes) -> None:
    assert _read(raw) == _parsed(raw) or _read(raw) == "error"

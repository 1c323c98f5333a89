"""The records that cross topics: JSON shapes of SPEC §6 and the decoders' reasons."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clickmuncher.records import ClickEvent, ClickWindow, RecordError, click_fields, iso_utc


@given(st.text(min_size=1), st.integers(min_value=0, max_value=2**53))
def test_click_event_bytes_are_the_spec_json(url: str, ts_ms: int) -> None:
    event = ClickEvent(url=url, ts_ms=ts_ms)
    assert json.loads(event.encode()) == {"v": 1, "url": url, "ts_ms": ts_ms}
    assert ClickEvent.decode(event.encode()) == event
    assert event.key() == url.encode()


def _parsed(raw: bytes) -> tuple[str, int] | str:
    """What the JSON parser alone makes of ``raw``: the fields, or "error"."""
    try:
        body = json.loads(raw)
    except ValueError:
        return "error"
    if not isinstance(body, dict) or body.get("v") != 1:
        return "error"
    url, ts_ms = body.get("url"), body.get("ts_ms")
    if not isinstance(url, str) or not url or type(ts_ms) is not int or ts_ms < 0:
        return "error"
    return url, ts_ms


def _read(raw: bytes) -> tuple[str, int] | str:
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
    ]
)


@given(st.lists(_pieces, max_size=8).map(b"".join))
def test_click_fields_agree_with_the_json_parser(raw: bytes) -> None:
    assert _read(raw) == _parsed(raw)


@given(st.text(min_size=1), st.integers(min_value=0, max_value=2**70))
def test_click_fields_read_every_gateway_click(url: str, ts_ms: int) -> None:
    raw = ClickEvent(url=url, ts_ms=ts_ms).encode()
    assert click_fields(raw) == (url, ts_ms) == _parsed(raw)
    assert click_fields(raw + b" ") == (url, ts_ms)  # not the gateway's bytes: parsed, same fields


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
        (b'{"v": 1, "ts_ms": 1}', "'url'"),
        (b'{"v": 1, "url": "u", "ts_ms": "1"}', "'ts_ms'"),
        (b'{"v": 1, "url": "u", "ts_ms": true}', "'ts_ms'"),
        (b'{"v": 1, "url": "u", "ts_ms": -5}', "'ts_ms'"),
    ],
)
def test_bad_click_events_say_why(raw: bytes | None, reason: str) -> None:
    with pytest.raises(RecordError, match=reason):
        ClickEvent.decode(raw)

"""Hostile ``click-windows`` values: ClickWindow.decode refuses each with a reason and never raises anything
else; what it returns fits the sink's columns and converts to timestamps."""

from __future__ import annotations

import base64
import contextlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clickmuncher import sketches
from clickmuncher.db.times import ms_to_datetime
from clickmuncher.records import (
    MAX_REVISION,
    MAX_TS_MS,
    MAX_URL_CHARS,
    MAX_WINDOW_BYTES,
    MAX_WINDOW_CLICKS,
    ClickWindow,
    RecordError,
    iso_utc,
)

START_MS = 1_795_480_200_000
GOOD = ClickWindow("https://example.com/", START_MS, START_MS + 1_800_000, 42, 1)


def _sketch_of(visitors: int) -> bytes:
    sketch = sketches.new()
    for n in range(visitors):
        sketches.update(sketch, f"{n:016x}")
    return sketches.serialize(sketch)


CLASSIFIED = ClickWindow(
    "https://example.com/", START_MS, START_MS + 1_800_000, 42, 1, (30, 5, 4, 3), 20, _sketch_of(20)
)
SKETCH_B64 = base64.b64encode(_sketch_of(20)).decode()
BIG_SKETCH = _sketch_of(100_000)


def with_classes(**changes: Any) -> bytes:
    body = CLASSIFIED.to_json()
    body.update(changes)
    return json.dumps({k: v for k, v in body.items() if v is not ...}).encode()


def with_fields(**changes: Any) -> bytes:
    body = GOOD.to_json()
    body.update(changes)
    return json.dumps({k: v for k, v in body.items() if v is not ...}).encode()


HOSTILE = [
    (with_classes(by_class={"human": 30, "bot": 5, "preview": 4}), "'by_class' is not an object"),
    (with_classes(by_class=[30, 5, 4, 3]), "'by_class' is not an object"),
    (with_classes(by_class={"human": 30, "bot": 5, "preview": 4, "prefetch": 4}), "do not add up"),
    (with_classes(by_class={"human": 30, "bot": -1, "preview": 10, "prefetch": 3}), "out of range"),
    (with_classes(by_class={"human": 30, "bot": 5.0, "preview": 4, "prefetch": 3}), "'bot'"),
    (with_classes(uniques=31), "out of range"),
    (with_classes(uniques=...), "'uniques'"),
    (with_classes(hll=...), "'uniques' without 'hll'"),
    (with_fields(uniques=3), "without 'by_class'"),
    (with_fields(hll=SKETCH_B64), "without 'by_class'"),
    (with_classes(hll="not base64!"), "not base64"),
    (with_classes(hll=SKETCH_B64.rstrip("=")), "not base64"),
    (with_classes(hll=base64.b64encode(b"\x0a" * 100).decode()), "preamble"),
    (with_classes(hll=base64.b64encode(BIG_SKETCH[:-1]).decode()), "wrong size"),
    (with_classes(hll=base64.b64encode(BIG_SKETCH + b"\0\0\0\0").decode()), "wrong size"),
    (with_classes(hll="A" * 40_000), "more than"),
    (with_classes(hll=5), "not a string"),
    (with_fields(window_start_ms=10**15, window_end_ms=10**15 + 1_800_000), "out of range"),
    (with_fields(window_start_ms=-1_800_000, window_end_ms=0), "out of range"),
    (with_fields(window_end_ms=MAX_TS_MS + 1), "out of range"),
    (with_fields(clicks=2**63), "out of range"),
    (with_fields(clicks=10**400), "out of range"),
    (with_fields(clicks=-1), "out of range"),
    (with_fields(revision=2**31), "out of range"),
    (with_fields(clicks=True), "'clicks'"),
    (with_fields(clicks=1.0), "'clicks'"),
    (with_fields(clicks="1"), "'clicks'"),
    (with_fields(clicks=None), "'clicks'"),
    (with_fields(revision=...), "'revision'"),
    (with_fields(window_end_ms=START_MS), "after window_start_ms"),
    (with_fields(window_end_ms=START_MS + 1_799_999), "not aligned"),
    (with_fields(url=""), "'url'"),
    (with_fields(url=None), "'url'"),
    (with_fields(url=["https://example.com/"]), "'url'"),
    (with_fields(url="https://example.com/" + "a" * MAX_URL_CHARS), "characters, more than 2048"),
    (with_fields(url="https://example.com/\x00"), "NUL character"),
    (with_fields(url="https://example.com/\ud800"), "lone surrogate"),
    (with_fields(url="https://example.com/\t"), "control character"),
    (with_fields(url="example.com/"), "not an absolute http"),
    (with_fields(v=True), "unsupported record version"),
    (with_fields(v=1.0), "unsupported record version"),
    (with_fields(v=2), "unsupported record version"),
    (b'{"v": 1, "v": 1, "url": "u"}', "duplicate keys"),
    (b"[" * 200_000, f"more than {MAX_WINDOW_BYTES}"),
    (b"[" * 10_000, "nested deeper than 16"),
    (b"[1, 2]", "not a JSON object"),
    (b'"a string"', "not a JSON object"),
    (b"null", "not a JSON object"),
    (b"", "not JSON"),
    (b"\xff\xfe", "not UTF-8"),
    (None, "empty value"),
]


@pytest.mark.parametrize(("raw", "reason"), HOSTILE)
def test_hostile_windows_are_refused_with_a_reason(raw: bytes | None, reason: str) -> None:
    with pytest.raises(RecordError, match=reason.replace("(", r"\(")) as refused:
        ClickWindow.decode(raw)
    assert "\n" not in str(refused.value) and len(str(refused.value)) < 300


def test_limits_are_inclusive() -> None:
    end_ms = MAX_TS_MS - MAX_TS_MS % 1000
    url = "https://example.com/".ljust(MAX_URL_CHARS, "a")
    edge = ClickWindow(url, end_ms - 1000, end_ms, MAX_WINDOW_CLICKS, MAX_REVISION)
    assert ClickWindow.decode(edge.encode()) == edge
    assert ms_to_datetime(edge.window_end_ms).year == 9999
    first = ClickWindow("https://example.com/\U0001f600", 0, 1, 0, 0)  # a surrogate pair: one character
    assert ClickWindow.decode(first.encode()) == first
    # The longest URL, every character escaped, with the largest sketch: still within MAX_WINDOW_BYTES.
    quoted = "https://example.com/".ljust(MAX_URL_CHARS, '"')
    full = ClickWindow(quoted, 0, 1, 10**6, 0, (10**6, 0, 0, 0), 10**6, BIG_SKETCH)
    assert len(full.encode()) <= MAX_WINDOW_BYTES
    assert ClickWindow.decode(full.encode()) == full


def test_classified_windows_round_trip() -> None:
    assert CLASSIFIED.encode() == json.dumps(CLASSIFIED.to_json()).encode()
    assert ClickWindow.decode(CLASSIFIED.encode()) == CLASSIFIED
    body = json.loads(CLASSIFIED.encode())
    assert body["by_class"] == {"human": 30, "bot": 5, "preview": 4, "prefetch": 3}
    assert body["uniques"] == 20 and sketches.estimate(sketches.from_base64(body["hll"])) == 20
    no_visitor = ClickWindow("https://example.com/", 0, 1, 3, 0, (3, 0, 0, 0), 0, None)
    assert "hll" not in json.loads(no_visitor.encode())
    assert ClickWindow.decode(no_visitor.encode()) == no_visitor


WINDOW_FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "v": st.sampled_from([1, 2, True, 1.0, "1", None]),
        "url": st.one_of(st.text(max_size=5), st.text(max_size=5).map("http://e/".__add__), st.none()),
        "window_start_ms": st.one_of(st.integers(), st.floats(), st.booleans(), st.none()),
        "window_end_ms": st.one_of(st.integers(), st.floats(), st.booleans(), st.none()),
        "clicks": st.one_of(st.integers(), st.floats(), st.booleans(), st.text(max_size=2)),
        "revision": st.one_of(st.integers(), st.floats(), st.booleans()),
    },
)


@settings(max_examples=300, deadline=None)
@given(WINDOW_FIELDS)
def test_decode_refuses_or_returns_a_window_that_fits(body: dict[str, Any]) -> None:
    raw = json.dumps(body).encode("utf-8", "surrogatepass")
    try:
        window = ClickWindow.decode(raw)
    except RecordError:
        return
    assert 0 < len(window.url) <= MAX_URL_CHARS
    assert 0 <= window.window_start_ms < window.window_end_ms <= MAX_TS_MS
    assert window.window_start_ms % (window.window_end_ms - window.window_start_ms) == 0
    assert 0 <= window.clicks <= MAX_WINDOW_CLICKS and 0 <= window.revision <= MAX_REVISION
    assert ms_to_datetime(window.window_start_ms).year <= 9999 and iso_utc(window.window_end_ms)
    assert window.url.encode("utf-8")
    assert ClickWindow.decode(window.encode()) == window


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_decode_of_any_bytes_raises_only_record_errors(raw: bytes) -> None:
    with contextlib.suppress(RecordError):  # any other exception fails the test
        ClickWindow.decode(raw)

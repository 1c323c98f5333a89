"""The bounded JSON reader: refuses only what it says, agrees with json.loads on the rest, raises nothing
else."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from clickmuncher.rawjson import Rejected, check_depth, load_object

MAX_BYTES = 4096
MAX_DEPTH = 5
BAD_CHAR = re.compile("[\x00\ud800-\udfff]")


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


def strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [*value, *(s for v in value.values() for s in strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return [value] if isinstance(value, str) else []


def reference(raw: bytes) -> tuple[str, Any]:
    """What json.loads makes of ``raw`` as strict UTF-8 text: ("ok", value), or ("refused", why) for each
    documented reason to refuse."""
    if len(raw) > MAX_BYTES:
        return ("refused", "size")
    if b"\x00" in raw:
        return ("refused", "NUL byte")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return ("refused", "UTF-8")
    pairs: list[list[tuple[str, Any]]] = []
    constants: list[str] = []

    def on_object(items: list[tuple[str, Any]]) -> dict[str, Any]:
        pairs.append(items)
        return dict(items)

    def on_constant(name: str) -> float:
        constants.append(name)
        return 0.0

    try:
        value = json.loads(text, object_pairs_hook=on_object, parse_constant=on_constant)
    except (ValueError, RecursionError):
        return ("refused", "not JSON")
    if constants:
        return ("refused", "NaN or Infinity")
    if any(len(dict(items)) != len(items) for items in pairs):
        return ("refused", "duplicate key")
    if depth(value) > MAX_DEPTH:
        return ("refused", "depth")
    if any(BAD_CHAR.search(s) for s in strings(value)):
        return ("refused", "NUL or surrogate")
    if not isinstance(value, dict):
        return ("refused", "not an object")
    return ("ok", value)


def bounded(raw: bytes) -> tuple[str, Any]:
    try:
        return ("ok", load_object(raw, MAX_BYTES, MAX_DEPTH))
    except Rejected as e:
        return ("refused", str(e))


def assert_agrees(raw: bytes) -> None:
    got, expected = bounded(raw), reference(raw)
    assert got[0] == expected[0], (raw, got, expected)
    if got[0] == "ok":
        assert json.dumps(got[1]) == json.dumps(expected[1])


PIECES = st.sampled_from(
    [
        b"[",
        b"]",
        b"{",
        b"}",
        b'"',
        b'"k"',
        b":",
        b",",
        b" ",
        b"\\",
        b'\\"',
        b"\\\\",
        b"\\u0000",
        b"\\ud800",
        b"\\udc00",
        b"\\ud83d\\ude00",
        b"\\n",
        b"\x00",
        b"\xff",
        b"\xed\xa0\x80",  # an encoded surrogate: not UTF-8
        b"\xc3\xa9",
        b"1",
        b"-0",
        b"1e999",
        b"NaN",
        b"Infinity",
        b"true",
        b"null",
        b'{"a": 1, "a": 2}',
    ]
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(st.lists(PIECES, max_size=14).map(b"".join))
@example(b"[" * 200_000)
@example(b"[" * 6 + b"]" * 6)
@example(b"[" * 5 + b"]" * 5)
@example(b'["[[[[[[[[[["]')
@example(b'"\\ud800"')
@example(b"\xef\xbb\xbf{}")
@example(b"1" * 5000)
def test_agrees_with_json_loads_on_pieces(raw: bytes) -> None:
    assert_agrees(raw)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=4), JSON_VALUES, max_size=4) | JSON_VALUES, st.booleans())
def test_agrees_with_json_loads_on_json(value: Any, ascii_only: bool) -> None:
    assert_agrees(json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass"))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_never_raises_anything_but_refused_on_any_bytes(raw: bytes) -> None:
    assert_agrees(raw)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"[" * 200_000, "more than 4096"),
        (b"[" * 4000, "nested deeper than 5"),
        (b"{" * 6, "nested deeper than 5"),
        (b'{"u": "a\x00"}', "NUL byte"),
        (b'{"u": "a\\u0000"}', "NUL character in a string"),
        (b'{"u": "\\ud800"}', "lone surrogate in a string"),
        (b'{"\\udfff": 1}', "lone surrogate in a string"),
        (b'{"u": "\xed\xa0\x80"}', "not UTF-8"),
        (b'{"a": 1, "a": 2}', "duplicate keys"),
        (b"[1, 2]", "not a JSON object"),
        (None, "empty value"),
        (b"[NaN]", "not JSON: NaN"),
        (b"[-Infinity]", "not JSON: -Infinity"),
        (b"", "not JSON"),
    ],
)
def test_refusals_say_why(raw: bytes | None, reason: str) -> None:
    with pytest.raises(Rejected, match=re.escape(reason)):
        load_object(raw, MAX_BYTES, MAX_DEPTH)


def test_an_integer_of_more_digits_than_python_converts_is_refused() -> None:
    with pytest.raises(Rejected, match="not JSON: Exceeds the limit"):
        load_object(b"1" * 5000, 10_000, MAX_DEPTH)


def test_depth_is_counted_outside_strings_only() -> None:
    check_depth(b'{"a": "[[[[[[[[[[[[", "b": "\\"[[[[[[[[["}', 1)
    check_depth(b'[[[[["\\\\"]]]]]', 5)
    with pytest.raises(Rejected):
        check_depth(b'[[[[[["\\\\"]]]]]]', 5)
    with pytest.raises(Rejected, match="pair up"):
        check_depth(b"[[[]" + b"x" * 10, 2)

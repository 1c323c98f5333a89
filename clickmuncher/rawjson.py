"""JSON from a topic, with the cost of a hostile value bounded before it is parsed.

:func:`loads_bounded` is ``json.loads`` that refuses, with :class:`JsonRefused` (a ``ValueError`` saying why)
and never another exception:

- before any parse, on the raw bytes: more than ``max_bytes`` bytes; a NUL byte; bytes that are not strict
  UTF-8 (which also excludes encoded surrogates); arrays and objects nested deeper than ``max_depth``, counted
  outside strings in time linear in the size (200,000 ``[`` make ``json`` raise RecursionError);
- what the parser refuses: not JSON, ``NaN`` and ``Infinity`` (not JSON either), an integer of more digits
  than Python converts;
- after the parse, since escapes can still spell them inside strings: a NUL (``\\u0000``) or a lone surrogate
  (``\\ud800``) in any key or string value, and an object with a duplicate key (readers disagree on which
  one wins).

What it accepts, ``json.loads`` accepts too and reads the same (tests/foundation/test_rawjson.py).
"""

from __future__ import annotations

import json
import re
from typing import Any

_BRACKETS = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_BAD_CHAR = re.compile("[\x00\ud800-\udfff]")


class JsonRefused(ValueError):
    """A value :func:`loads_bounded` does not parse or does not return; the message says why."""


def loads_bounded(raw: bytes, *, max_bytes: int, max_depth: int) -> Any:
    """``json.loads(raw)`` within the limits of the module docstring; raises :class:`JsonRefused`."""
    if len(raw) > max_bytes:
        raise JsonRefused(f"value of {len(raw)} bytes, more than {max_bytes}")
    if b"\x00" in raw:
        raise JsonRefused("NUL byte in the value")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise JsonRefused(f"not UTF-8: {e.reason} at byte {e.start}") from None
    check_depth(raw, max_depth)
    try:
        body = json.loads(text, object_pairs_hook=_object, parse_constant=_constant)
    except JsonRefused:
        raise
    except (ValueError, RecursionError) as e:
        raise JsonRefused(f"not JSON: {e}") from None
    if b"\\u" in raw:  # only an escape can put NUL or a surrogate into valid UTF-8 without NUL bytes
        _check_strings(body)
    return body


def check_depth(raw: bytes, max_depth: int) -> None:
    """Raises :class:`JsonRefused` when arrays and objects in ``raw`` nest deeper than ``max_depth`` outside
    strings, or their brackets do not pair up (which JSON never has). Never parses; linear in ``len(raw)``
    (at most ``max_depth`` passes of C code over the brackets)."""
    if raw.count(b"[") + raw.count(b"{") <= max_depth:
        return  # no more brackets in all than the depth allowed: the common case, two scans
    # Outside strings only: with the escaped backslashes and quotes removed (escapes pair up from the left,
    # as replace() goes), each quote left opens or closes a string, so every other piece is outside.
    unescaped = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    outside = b"".join(unescaped.split(b'"')[::2])
    brackets = outside.translate(_BRACKETS, _NOT_BRACKET)  # the kind of bracket is json's check
    for _ in range(max_depth):
        if not brackets:
            return
        shorter = brackets.replace(b"[]", b"")  # every innermost pair: one level of nesting
        if len(shorter) == len(brackets):
            break
        brackets = shorter
    if brackets:
        raise JsonRefused(f"nested deeper than {max_depth} levels (or brackets that do not pair up)")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    body = dict(pairs)
    if len(body) != len(pairs):
        seen: set[str] = set()
        for key, _value in pairs:
            if key in seen:
                raise JsonRefused(f"duplicate key {key[:40]!r}")
            seen.add(key)
    return body


def _constant(name: str) -> Any:
    raise JsonRefused(f"not JSON: {name}")


def _check_strings(value: Any) -> None:
    """Raises :class:`JsonRefused` at the first key or string holding NUL or a lone surrogate (a valid pair
    of surrogate escapes is read as one character, so any surrogate left is a lone one)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _BAD_CHAR.search(item):
                raise JsonRefused("NUL or a lone surrogate (\\ud800-\\udfff) in a string")
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)

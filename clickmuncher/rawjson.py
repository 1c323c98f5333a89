"""JSON objects read from topics and files written by someone else: bounded before they are parsed.

A record on a topic can be anything: megabytes, 200,000 nested brackets (the parser's recursion fails),
invalid UTF-8, or escapes that decode to lone surrogates or NUL (valid JSON, but no database, Kafka key or
UTF-8 encoder takes them). :func:`load_object` refuses, with :class:`Rejected` and never another exception:

- before any parse, on the raw bytes: more than ``max_bytes``; a NUL byte; bytes that are not strict UTF-8
  (which excludes encoded surrogates too); arrays and objects nested deeper than ``max_depth``, counted
  outside strings in time linear in the size, in C (:func:`check_depth`);
- what the parser refuses: not JSON, ``NaN`` and ``Infinity`` (not JSON either), an integer of more digits
  than Python converts; duplicate keys (two parsers could read different values); a value that is not an
  object;
- after the parse, since escapes can still spell them: a NUL (``\\u0000``) or a lone surrogate (``\\ud800``)
  in any key or string.

What it accepts, ``json.loads`` accepts too and reads the same (tests/foundation/test_rawjson.py).
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 16
_BRACKETS = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_SURROGATE = re.compile("[\ud800-\udfff]")


class Rejected(ValueError):
    """The raw bytes are not an acceptable JSON object; the message says why, in one short line."""


def load_object(raw: bytes | None, max_bytes: int, max_depth: int = MAX_DEPTH) -> dict[str, Any]:
    """The JSON object in ``raw``, within the limits of the module docstring; raises :class:`Rejected`."""
    if raw is None:
        raise Rejected("empty value")
    if len(raw) > max_bytes:
        raise Rejected(f"{len(raw)} bytes, more than {max_bytes}")
    if b"\x00" in raw:
        raise Rejected("NUL byte in the value")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise Rejected(f"not UTF-8: {e.reason} at byte {e.start}") from None
    check_depth(raw, max_depth)
    try:
        body = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except Rejected:
        raise
    except (ValueError, RecursionError) as e:
        raise Rejected(f"not JSON: {e}") from None
    if not isinstance(body, dict):
        raise Rejected("not a JSON object")
    if b"\\u" in raw:  # only an escape can put NUL or a surrogate into strict UTF-8 without NUL bytes
        _check_strings(body)
    return body


def check_depth(raw: bytes, max_depth: int) -> None:
    """Raises :class:`Rejected` when arrays and objects in ``raw`` nest deeper than ``max_depth`` outside
    strings, or their brackets do not pair up (which JSON never has). Never parses; linear in ``len(raw)``:
    at most ``max_depth`` passes of C code over the brackets."""
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
        raise Rejected(f"nested deeper than {max_depth} (or brackets that do not pair up)")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    body = dict(pairs)
    if len(body) != len(pairs):
        raise Rejected("duplicate keys")
    return body


def _no_constant(name: str) -> Any:
    raise Rejected(f"not JSON: {name}")


def _check_strings(value: Any) -> None:
    """Every string (keys too) holds no NUL and no lone surrogate (a valid pair of surrogate escapes is read
    as one character, so any surrogate left is a lone one)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise Rejected("NUL character in a string")
            if _SURROGATE.search(item):
                raise Rejected("lone surrogate in a string")
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)

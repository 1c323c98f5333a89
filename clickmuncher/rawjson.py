"""JSON objects read from topics and files written by someone else: bounded before they are parsed.

A record on a topic can be anything: megabytes, 200,000 nested brackets (the parser's recursion fails),
invalid UTF-8, or escapes that decode to lone surrogates or NUL (valid JSON, but no database, Kafka key or
UTF-8 encoder takes them). :func:`load_object` checks size and nesting on the raw bytes first, parses
strict UTF-8, refuses duplicate keys (two parsers could read different values) and refuses strings that
cannot be encoded back.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 16
_OPENERS = (ord("["), ord("{"))
_CLOSERS = (ord("]"), ord("}"))
_QUOTE = ord('"')
_BACKSLASH = ord("\\")


class Rejected(ValueError):
    """The raw bytes are not an acceptable JSON object; the message says why, in one short line."""


def load_object(raw: bytes | None, max_bytes: int, max_depth: int = MAX_DEPTH) -> dict[str, Any]:
    if raw is None:
        raise Rejected("empty value")
    if len(raw) > max_bytes:
        raise Rejected(f"{len(raw)} bytes, more than {max_bytes}")
    if raw.count(b"[") + raw.count(b"{") > max_depth and nesting(raw) > max_depth:
        raise Rejected(f"nested deeper than {max_depth}")
    try:
        body = json.loads(raw.decode("utf-8"), object_pairs_hook=_unique_keys)
    except UnicodeDecodeError as e:
        raise Rejected(f"not UTF-8: {e.reason} at byte {e.start}") from e
    except Rejected:
        raise
    except (ValueError, RecursionError) as e:
        raise Rejected(f"not JSON: {e}") from e
    if not isinstance(body, dict):
        raise Rejected("not a JSON object")
    _check_strings(body)
    return body


def nesting(raw: bytes) -> int:
    """The deepest nesting of arrays and objects, brackets inside strings not counted."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == _BACKSLASH:
                escaped = True
            elif byte == _QUOTE:
                in_string = False
        elif byte == _QUOTE:
            in_string = True
        elif byte in _OPENERS:
            depth += 1
            deepest = max(deepest, depth)
        elif byte in _CLOSERS:
            depth -= 1
    return deepest


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    body = dict(pairs)
    if len(body) != len(pairs):
        raise Rejected("duplicate keys")
    return body


def _check_strings(value: Any) -> None:
    """Every string (keys too) encodes to UTF-8 and holds no NUL."""
    if isinstance(value, str):
        if "\x00" in value:
            raise Rejected("NUL character in a string")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as e:
            raise Rejected("lone surrogate in a string") from e
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_strings(key)
            _check_strings(item)
    elif isinstance(value, list):
        for item in value:
            _check_strings(item)

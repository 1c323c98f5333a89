"""The records that cross topics: ``ClickEvent`` on ``clicks``, ``ClickWindow`` on ``click-windows``.

Both sides of a topic use these encoders and decoders, so the JSON shape (SPEC §6) is pinned in one place.
Decoders raise :class:`RecordError` with a short reason; callers dead-letter the raw bytes with it.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii
from typing import Any

from clickmuncher.rawjson import JsonRefused, loads_bounded

RECORD_VERSION = 1
_GATEWAY_CLICK = re.compile(
    rb'\{"v": %d, "url": "([\x20\x21\x23-\x5b\x5d-\x7e]+)", "ts_ms": (0|[1-9][0-9]*)\}' % RECORD_VERSION
)


class RecordError(ValueError):
    """A record that cannot be decoded; the message is the reason put in the dead-letter header."""


@dataclass(frozen=True, slots=True)
class ClickEvent:
    url: str
    ts_ms: int

    def key(self) -> bytes:
        return self.url.encode()

    def encode(self) -> bytes:
        # The same bytes as json.dumps of the dict, built without it: this runs once per redirect.
        return b'{"v": %d, "url": %s, "ts_ms": %d}' % (
            RECORD_VERSION,
            json_string(self.url),
            self.ts_ms,
        )

    @classmethod
    def decode(cls, raw: bytes | None) -> ClickEvent:
        url, ts_ms = click_fields(raw)
        return cls(url, ts_ms)


def click_fields(raw: bytes | None) -> tuple[str, int]:
    """The URL and timestamp of a ``clicks`` record, without building a ClickEvent (the streams worker
    reads one per click); raises RecordError."""
    if raw is not None:
        # The gateway's own encoding (see ClickEvent.encode), read without a JSON parser: less than half
        # the cost. It matches only records json.loads reads as exactly these two fields (a URL of
        # printable ASCII without quotes or backslashes, a JSON integer); anything else takes the parser.
        ours = _GATEWAY_CLICK.fullmatch(raw)
        if ours is not None:
            return ours[1].decode("ascii"), int(ours[2])
    body = _json_object(raw)
    url = body.get("url")
    ts_ms = body.get("ts_ms")
    if not isinstance(url, str) or not url:
        raise RecordError("missing or non-string field 'url'")
    if not isinstance(ts_ms, int) or isinstance(ts_ms, bool) or ts_ms < 0:
        raise RecordError("missing or non-integer field 'ts_ms'")
    return url, ts_ms


def encode_window(url: str, start_ms: int, end_ms: int, clicks: int, revision: int) -> bytes:
    """A ClickWindow's bytes, the same as ``json.dumps`` of its JSON, built without it or the object: a
    closing window emits one per URL."""
    return (
        b'{"v": %d, "url": %s, "window_start": "%s", "window_end": "%s", "window_start_ms": %d, '
        b'"window_end_ms": %d, "clicks": %d, "revision": %d}'
        % (
            RECORD_VERSION,
            json_string(url),
            iso_utc(start_ms).encode(),
            iso_utc(end_ms).encode(),
            start_ms,
            end_ms,
            clicks,
            revision,
        )
    )


def json_string(text: str) -> bytes:
    """``json.dumps(text).encode()``: the standard library's own C escaper, without the encoder around it."""
    return encode_basestring_ascii(text).encode()


@functools.lru_cache(maxsize=1024)
def iso_utc(ms: int) -> str:
    """Milliseconds since the epoch as ISO-8601 UTC with a ``Z``, e.g. ``2026-11-24T00:30:00Z``.

    Cached: a closing window formats the same start and end for every one of its URLs."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    text = moment.isoformat(timespec="milliseconds" if ms % 1000 else "seconds")
    return text.replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class ClickWindow:
    url: str
    window_start_ms: int
    window_end_ms: int
    clicks: int
    revision: int

    def key(self) -> bytes:
        return f"{self.window_start_ms}:{self.url}".encode()

    def to_json(self) -> dict[str, Any]:
        return {
            "v": RECORD_VERSION,
            "url": self.url,
            "window_start": iso_utc(self.window_start_ms),
            "window_end": iso_utc(self.window_end_ms),
            "window_start_ms": self.window_start_ms,
            "window_end_ms": self.window_end_ms,
            "clicks": self.clicks,
            "revision": self.revision,
        }

    def encode(self) -> bytes:
        return encode_window(self.url, self.window_start_ms, self.window_end_ms, self.clicks, self.revision)

    @classmethod
    def decode(cls, raw: bytes | None) -> ClickWindow:
        """The window in ``raw``, or :class:`RecordError` with the reason, for any bytes whatever (a hostile
        value costs at most a scan of :data:`WINDOW_MAX_BYTES`). A window returned fits the sink's columns
        and every reader's clock: its URL is 1 to ``MAX_URL_CHARS + 1`` characters of valid Unicode without
        NUL; start and end are milliseconds from the epoch to :data:`MAX_WINDOW_MS`, the window epoch-aligned
        (start a multiple of its length, SPEC §6); ``clicks`` at most :data:`MAX_WINDOW_CLICKS`, ``revision``
        at most :data:`MAX_REVISION`. The ISO-8601 fields and unknown ones are not read."""
        body = _window_body(raw)
        start_ms = _int_field(body, "window_start_ms", MAX_WINDOW_MS)
        end_ms = _int_field(body, "window_end_ms", MAX_WINDOW_MS)
        clicks = _int_field(body, "clicks", MAX_WINDOW_CLICKS)
        revision = _int_field(body, "revision", MAX_REVISION)
        url = body.get("url")
        if not isinstance(url, str) or not url:
            raise RecordError("missing or non-string field 'url'")
        if len(url) > MAX_URL_CHARS + 1:  # normalization may add the root "/" to the gateway's limit
            raise RecordError(f"url of {len(url)} characters, more than {MAX_URL_CHARS + 1}")
        if end_ms <= start_ms:
            raise RecordError("window_end_ms must be after window_start_ms")
        if start_ms % (end_ms - start_ms):
            raise RecordError("window not aligned: window_start_ms is not a multiple of its length")
        return cls(url, start_ms, end_ms, clicks, revision)


MAX_URL_CHARS = 2048
"""The gateway's limit on a destination URL (SPEC §5)."""
MAX_WINDOW_MS = 32_503_680_000_000
"""3000-01-01T00:00:00Z: no window starts or ends later (later years are corruption, not clicks)."""
MAX_WINDOW_CLICKS = 2**53 - 1
"""The largest count every JSON reader keeps exact (JavaScript's safe integers); it also leaves a URL's total
in ``clicks`` (bigint) room for 1,024 windows at that count."""
MAX_REVISION = 2**31 - 1
"""``click_windows.revision`` is a 32-bit integer."""
WINDOW_MAX_BYTES = 64 * 1024
"""Largest ``click-windows`` value read: the longest URL escaped, the fields of SPEC §6 and §12 (a HyperLogLog
sketch of a few KiB) and room to spare."""
WINDOW_MAX_DEPTH = 8
"""Deepest nesting of a ``click-windows`` value read (the record and ``by_class``: 2)."""


def _window_body(raw: bytes | None) -> dict[str, Any]:
    if raw is None:
        raise RecordError("empty value")
    try:
        body = loads_bounded(raw, max_bytes=WINDOW_MAX_BYTES, max_depth=WINDOW_MAX_DEPTH)
    except JsonRefused as e:
        raise RecordError(str(e)) from None
    if not isinstance(body, dict):
        raise RecordError("not a JSON object")
    version = body.get("v")
    if type(version) is not int or version != RECORD_VERSION:  # true and 1.0 equal 1
        raise RecordError(f"unsupported record version {version!r}")
    return body


def _int_field(body: dict[str, Any], name: str, maximum: int) -> int:
    value = body.get(name)
    if type(value) is not int:  # bool is a subclass of int, a float is not one
        raise RecordError(f"missing or invalid integer field '{name}'")
    if not 0 <= value <= maximum:
        raise RecordError(f"integer field '{name}' out of range 0..{maximum}")
    return value


def _json_object(raw: bytes | None) -> dict[str, Any]:
    if raw is None:
        raise RecordError("empty value")
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as e:
        raise RecordError(f"not JSON: {e}") from e
    if not isinstance(body, dict):
        raise RecordError("not a JSON object")
    if body.get("v") != RECORD_VERSION:
        raise RecordError(f"unsupported record version {body.get('v')!r}")
    return body

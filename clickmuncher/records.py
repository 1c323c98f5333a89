"""The records that cross topics: ``ClickEvent`` on ``clicks``, ``ClickWindow`` on ``click-windows``.

Both sides of a topic use these encoders and decoders, so the JSON shape (SPEC §6) is pinned in one place.
Decoders raise :class:`RecordError` with a short reason; callers dead-letter the raw bytes with it.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii
from typing import Any

from clickmuncher import rawjson

RECORD_VERSION = 1
MAX_URL_CHARS = 2048  # the gateway's limit (SPEC §5)
MAX_TS_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z: later instants have no ISO-8601 form here
MAX_CLICK_BYTES = 16_384  # a URL at its limit with every character escaped, and room for more fields
MAX_WINDOW_BYTES = 16_384
_URL_SCHEMES = ("http://", "https://")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_GATEWAY_CLICK = re.compile(
    rb'\{"v": %d, "url": "(https?://[\x20\x21\x23-\x5b\x5d-\x7e]+)", "ts_ms": (0|[1-9][0-9]{0,14})\}'
    % RECORD_VERSION
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
    reads one per click); raises RecordError.

    Everything is checked here, at intake, so that nothing counted can fail later: at most
    ``MAX_CLICK_BYTES`` and 16 levels of nesting (before any parse), strict UTF-8 without lone surrogates
    or NUL, version 1, an ``http(s)`` URL of at most 2048 characters without control characters, and an
    integer ``ts_ms`` from 0 to the year 9999."""
    if raw is not None:
        # The gateway's own encoding (see ClickEvent.encode), read without a JSON parser: less than half
        # the cost. It matches only records json.loads reads as exactly these two fields (an http(s) URL
        # of printable ASCII without quotes or backslashes, a JSON integer); anything else takes the parser.
        ours = _GATEWAY_CLICK.fullmatch(raw)
        if ours is not None:
            fast_ts_ms = int(ours[2])
            if len(ours[1]) <= MAX_URL_CHARS and fast_ts_ms <= MAX_TS_MS:
                return ours[1].decode("ascii"), fast_ts_ms
    body = _json_object(raw, MAX_CLICK_BYTES)
    url = body.get("url")
    ts_ms = body.get("ts_ms")
    if not isinstance(url, str) or not url:
        raise RecordError("missing or non-string field 'url'")
    _check_url(url)
    if type(ts_ms) is not int or not 0 <= ts_ms <= MAX_TS_MS:
        raise RecordError(f"field 'ts_ms' is not an integer from 0 to {MAX_TS_MS}")
    return url, ts_ms


def _check_url(url: str) -> None:
    if len(url) > MAX_URL_CHARS:
        raise RecordError(f"url of {len(url)} characters, more than {MAX_URL_CHARS}")
    if not url.startswith(_URL_SCHEMES) or url.endswith("://"):
        raise RecordError("url is not an absolute http(s) URL")
    if _CONTROL.search(url):
        raise RecordError("control character in url")


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


def encode_live_window(url: str, start_ms: int, end_ms: int, clicks: int, revision: int) -> bytes:
    """A live count of an open window (``click-windows-live``, SPEC §11): the ClickWindow bytes plus
    ``"final": false``."""
    return encode_window(url, start_ms, end_ms, clicks, revision)[:-1] + b', "final": false}'


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
        value costs at most a scan of ``MAX_WINDOW_BYTES``). A window returned fits the sink's columns and
        every reader's clock: its URL passes the checks of a click's; start and end are milliseconds from 0 to
        ``MAX_TS_MS``, the window epoch-aligned (start a multiple of its length, SPEC §6); ``clicks`` at most
        :data:`MAX_WINDOW_CLICKS`, ``revision`` at most :data:`MAX_REVISION`. The ISO-8601 fields and unknown
        ones are not read."""
        body = _json_object(raw, MAX_WINDOW_BYTES)
        start_ms = _int_field(body, "window_start_ms", MAX_TS_MS)
        end_ms = _int_field(body, "window_end_ms", MAX_TS_MS)
        clicks = _int_field(body, "clicks", MAX_WINDOW_CLICKS)
        revision = _int_field(body, "revision", MAX_REVISION)
        url = body.get("url")
        if not isinstance(url, str) or not url:
            raise RecordError("missing or non-string field 'url'")
        _check_url(url)
        if end_ms <= start_ms:
            raise RecordError("window_end_ms must be after window_start_ms")
        if start_ms % (end_ms - start_ms):
            raise RecordError("window not aligned: window_start_ms is not a multiple of its length")
        return cls(url, start_ms, end_ms, clicks, revision)


MAX_WINDOW_CLICKS = 2**53 - 1
"""The largest count every JSON reader keeps exact (JavaScript's safe integers); it also leaves a URL's total
in ``clicks`` (bigint) room for 1,024 windows at that count."""
MAX_REVISION = 2**31 - 1
"""``click_windows.revision`` is a 32-bit integer."""


def _int_field(body: dict[str, Any], name: str, maximum: int) -> int:
    value = body.get(name)
    if type(value) is not int:  # bool is a subclass of int, a float is not one
        raise RecordError(f"missing or invalid integer field '{name}'")
    if not 0 <= value <= maximum:
        raise RecordError(f"integer field '{name}' out of range 0..{maximum}")
    return value


def _json_object(raw: bytes | None, max_bytes: int) -> dict[str, Any]:
    try:
        body = rawjson.load_object(raw, max_bytes)
    except rawjson.Rejected as e:
        raise RecordError(str(e)) from e
    version = body.get("v")
    if type(version) is not int or version != RECORD_VERSION:
        raise RecordError(f"unsupported record version {str(version)[:20]!r}")
    return body

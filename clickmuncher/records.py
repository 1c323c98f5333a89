"""The records that cross topics: ``ClickEvent`` on ``clicks``, ``ClickWindow`` on ``click-windows``.

Both sides of a topic use these encoders and decoders, so the JSON shape (SPEC §6) is pinned in one place.
Decoders raise :class:`RecordError` with a short reason; callers dead-letter the raw bytes with it.
"""

from __future__ import annotations

import base64
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
MAX_WINDOW_BYTES = 32_768  # a URL at its limit, escaped, and the largest sketch in base64 (about 11 KiB)
# The largest key or value a service puts on a dead-letter topic: a hostile record can be as large as its
# topic allows, more than a producer sends (1 MB by default). Longer ones are cut, a header gives the size.
DEAD_LETTER_MAX_BYTES = 256 * 1024
_URL_SCHEMES = ("http://", "https://")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
CLASSES = ("human", "bot", "preview", "prefetch")
"""The click classes (SPEC §12), in the order of every per-class tuple: a click's ``cls`` is an index."""
HUMAN, BOT, PREVIEW, PREFETCH = range(4)
_CLASS_INDEX = {name: i for i, name in enumerate(CLASSES)}
_CLASS_BYTES = {name.encode(): i for i, name in enumerate(CLASSES)}
_VID = re.compile(r"[0-9a-f]{16}")
_GATEWAY_CLICK = re.compile(
    rb'\{"v": %d, "url": "(https?://[\x20\x21\x23-\x5b\x5d-\x7e]+)", "ts_ms": (0|[1-9][0-9]{0,14})'
    rb'(?:, "cls": "(human|bot|preview|prefetch)", "vid": "([0-9a-f]{16})")?\}' % RECORD_VERSION
)


class RecordError(ValueError):
    """A record that cannot be decoded; the message is the reason put in the dead-letter header."""


@dataclass(frozen=True, slots=True)
class ClickEvent:
    """One click: ``cls`` an index into :data:`CLASSES`; ``vid`` the visitor id (16 hex digits), None for
    clicks of gateways older than SPEC §12 (which are human)."""

    url: str
    ts_ms: int
    cls: int = HUMAN
    vid: str | None = None

    def key(self) -> bytes:
        return self.url.encode()

    def encode(self) -> bytes:
        # The same bytes as json.dumps of the dict, built without it: this runs once per redirect.
        if self.vid is None:
            return b'{"v": %d, "url": %s, "ts_ms": %d}' % (RECORD_VERSION, json_string(self.url), self.ts_ms)
        return b'{"v": %d, "url": %s, "ts_ms": %d, "cls": "%s", "vid": "%s"}' % (
            RECORD_VERSION,
            json_string(self.url),
            self.ts_ms,
            CLASSES[self.cls].encode(),
            self.vid.encode(),
        )

    @classmethod
    def decode(cls, raw: bytes | None) -> ClickEvent:
        return cls(*click_fields(raw))


ClickFields = tuple[str, int, int, str | None]
"""(url, ts_ms, class index, visitor id or None)."""


def click_fields(raw: bytes | None) -> ClickFields:
    """The URL, timestamp, class and visitor of a ``clicks`` record, without building a ClickEvent (the
    streams worker reads one per click); raises RecordError.

    Everything is checked here, at intake, so that nothing counted can fail later: at most
    ``MAX_CLICK_BYTES`` and 16 levels of nesting (before any parse), strict UTF-8 without lone surrogates
    or NUL, version 1, an ``http(s)`` URL of at most 2048 characters without control characters, an
    integer ``ts_ms`` from 0 to the year 9999, ``cls`` one of :data:`CLASSES` (absent: human) and ``vid``
    16 lowercase hex digits (absent or null: no visitor)."""
    if raw is not None:
        # The gateway's own encoding (see ClickEvent.encode), read without a JSON parser: less than half
        # the cost. It matches only records json.loads reads as exactly these fields (an http(s) URL of
        # printable ASCII without quotes or backslashes, a JSON integer, a class name and 16 hex digits);
        # anything else takes the parser.
        ours = _GATEWAY_CLICK.fullmatch(raw)
        if ours is not None:
            fast_url, fast_ts, fast_cls, fast_vid = ours.groups()
            fast_ts_ms = int(fast_ts)
            # (a URL ending in "://", such as "http://://", is refused by the parser's rules: so here too)
            if len(fast_url) <= MAX_URL_CHARS and fast_ts_ms <= MAX_TS_MS and not fast_url.endswith(b"://"):
                if fast_vid is None:
                    return fast_url.decode("ascii"), fast_ts_ms, HUMAN, None
                return fast_url.decode("ascii"), fast_ts_ms, _CLASS_BYTES[fast_cls], fast_vid.decode("ascii")
    body = _json_object(raw, MAX_CLICK_BYTES)
    url = body.get("url")
    ts_ms = body.get("ts_ms")
    if not isinstance(url, str) or not url:
        raise RecordError("missing or non-string field 'url'")
    _check_url(url)
    if type(ts_ms) is not int or not 0 <= ts_ms <= MAX_TS_MS:
        raise RecordError(f"field 'ts_ms' is not an integer from 0 to {MAX_TS_MS}")
    return url, ts_ms, _click_class(body.get("cls", "human")), _visitor(body.get("vid"))


def _click_class(name: object) -> int:
    index = _CLASS_INDEX.get(name) if isinstance(name, str) else None
    if index is None:
        raise RecordError(f"field 'cls' is not one of {', '.join(CLASSES)}")
    return index


def _visitor(vid: object) -> str | None:
    if vid is None:
        return None
    if not isinstance(vid, str) or not _VID.fullmatch(vid):
        raise RecordError("field 'vid' is not 16 lowercase hex digits")
    return vid


def _check_url(url: str) -> None:
    if len(url) > MAX_URL_CHARS:
        raise RecordError(f"url of {len(url)} characters, more than {MAX_URL_CHARS}")
    if not url.startswith(_URL_SCHEMES) or url.endswith("://"):
        raise RecordError("url is not an absolute http(s) URL")
    if _CONTROL.search(url):
        raise RecordError("control character in url")


ByClass = tuple[int, int, int, int]
"""Clicks per class, in the order of :data:`CLASSES`."""


def encode_window(
    url: str,
    start_ms: int,
    end_ms: int,
    clicks: int,
    revision: int,
    by_class: ByClass | None = None,
    uniques: int = 0,
    hll: str | None = None,
) -> bytes:
    """A ClickWindow's bytes, the same as ``json.dumps`` of its JSON, built without it or the object: a
    closing window emits one per URL. ``by_class`` None: a window of the first record version's shape;
    ``hll``: the sketch in base64, left out when there is none (no human visitor)."""
    head = (
        b'{"v": %d, "url": %s, "window_start": "%s", "window_end": "%s", "window_start_ms": %d, '
        b'"window_end_ms": %d, "clicks": %d, "revision": %d'
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
    if by_class is None:
        return head + b"}"
    head += b', "by_class": {"human": %d, "bot": %d, "preview": %d, "prefetch": %d}, "uniques": %d' % (
        *by_class,
        uniques,
    )
    return head + (b', "hll": "%s"}' % hll.encode() if hll else b"}")


def live_window(window: bytes) -> bytes:
    """A live count of an open window (``click-windows-live``, SPEC §11): the bytes of
    :func:`encode_window` plus ``"final": false``."""
    return window[:-1] + b', "final": false}'


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
    """One window's count. ``by_class`` (clicks per class), ``uniques`` (estimated distinct human visitors)
    and ``hll`` (the sketch, compact bytes; None without human visitors) are None in windows written before
    SPEC §12."""

    url: str
    window_start_ms: int
    window_end_ms: int
    clicks: int
    revision: int
    by_class: ByClass | None = None
    uniques: int | None = None
    hll: bytes | None = None

    def key(self) -> bytes:
        return f"{self.window_start_ms}:{self.url}".encode()

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "v": RECORD_VERSION,
            "url": self.url,
            "window_start": iso_utc(self.window_start_ms),
            "window_end": iso_utc(self.window_end_ms),
            "window_start_ms": self.window_start_ms,
            "window_end_ms": self.window_end_ms,
            "clicks": self.clicks,
            "revision": self.revision,
        }
        if self.by_class is not None:
            body["by_class"] = dict(zip(CLASSES, self.by_class, strict=True))
            body["uniques"] = self.uniques or 0
            if self.hll:
                body["hll"] = base64.b64encode(self.hll).decode("ascii")
        return body

    def encode(self) -> bytes:
        hll = base64.b64encode(self.hll).decode("ascii") if self.hll else None
        return encode_window(
            self.url,
            self.window_start_ms,
            self.window_end_ms,
            self.clicks,
            self.revision,
            self.by_class,
            self.uniques or 0,
            hll,
        )

    @classmethod
    def decode(cls, raw: bytes | None) -> ClickWindow:
        """The window in ``raw``, or :class:`RecordError` with the reason, for any bytes whatever (a hostile
        value costs at most a scan of ``MAX_WINDOW_BYTES``). A window returned fits the sink's columns and
        every reader's clock: its URL passes the checks of a click's; start and end are milliseconds from 0 to
        ``MAX_TS_MS``, the window epoch-aligned (start a multiple of its length, SPEC §6); ``clicks`` at most
        :data:`MAX_WINDOW_CLICKS`, ``revision`` at most :data:`MAX_REVISION`. The ISO-8601 fields and unknown
        ones are not read. SPEC §12's fields are optional, together (see :func:`_classes`)."""
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
        by_class, uniques, hll = _classes(body, clicks)
        return cls(url, start_ms, end_ms, clicks, revision, by_class, uniques, hll)


def _classes(body: dict[str, Any], clicks: int) -> tuple[ByClass | None, int | None, bytes | None]:
    """``by_class``, ``uniques`` and ``hll``: all absent (an older window), or ``by_class`` an object of
    the four classes' counts adding up to ``clicks``, ``uniques`` an integer from 0 to the human clicks, and
    ``hll`` (only with human clicks; absent means no visitor, and then ``uniques`` is 0) a sketch that passes
    :func:`clickmuncher.sketches.from_base64`."""
    given = body.get("by_class")
    if given is None:
        if "uniques" in body or "hll" in body:
            raise RecordError("'uniques' or 'hll' without 'by_class'")
        return None, None, None
    if not isinstance(given, dict) or set(given) != set(CLASSES):
        raise RecordError(f"field 'by_class' is not an object of {', '.join(CLASSES)}")
    counts = tuple(_int_field(given, name, MAX_WINDOW_CLICKS) for name in CLASSES)
    if sum(counts) != clicks:
        raise RecordError("the counts of 'by_class' do not add up to 'clicks'")
    uniques = _int_field(body, "uniques", counts[HUMAN])
    if "hll" not in body:
        if uniques:
            raise RecordError("'uniques' without 'hll'")
        return (counts[0], counts[1], counts[2], counts[3]), 0, None
    from clickmuncher import sketches  # here: the gateway, which reads no window, never loads the library

    try:
        sketch = sketches.checked_base64(body["hll"])
    except sketches.SketchError as e:
        raise RecordError(f"field 'hll': {e}") from None
    return (counts[0], counts[1], counts[2], counts[3]), uniques, sketch


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

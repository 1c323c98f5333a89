"""Live counts of open windows (SPEC §11): the records of ``click-windows-live`` checked as hostile input, and
the in-memory store the api answers from.

A live record is a click-windows value plus ``"final": false``, keyed ``<window_start_ms>:<url>``. Anything
else on the topic is skipped with a reason (a metric label), never trusted: the size is bounded before
parsing, the nesting after, and every field the api uses is type-checked.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from clickmuncher.records import CLASSES, MAX_WINDOW_BYTES, ByClass
from clickmuncher.urls import Rejected, normalize_url

MAX_RECORD_BYTES = MAX_WINDOW_BYTES  # a sketch in base64 is most of it (SPEC §12)
MAX_KEY_BYTES = 2100  # "<20 digits>:" + a URL of at most 2048 characters
MAX_DEPTH = 4  # the record is flat; §12 adds one level ("by_class")
MAX_WINDOW_MS = 7 * 24 * 3600 * 1000
MAX_FUTURE_MS = 24 * 3600 * 1000
MAX_CLICKS = 2**63 - 1  # the database's bigint
INT_FIELDS = ("window_start_ms", "window_end_ms", "clicks", "revision")

Key = tuple[str, int]  # (url, window_start_ms): the primary key of click_windows


class Skipped(ValueError):
    """A record the api does not use; ``reason`` is a short code, the label of the skipped metric."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class LiveWindow:
    """The latest count of one open window: ``url`` normalized, times in milliseconds since the epoch."""

    url: str
    window_start_ms: int
    window_end_ms: int
    clicks: int
    revision: int
    by_class: ByClass | None = None  # None: a record without classes (an older streams worker)
    uniques: int | None = None

    @property
    def key(self) -> Key:
        return (self.url, self.window_start_ms)

    def count(self, cls: str) -> int:
        """Clicks of class ``cls`` (``all``: every class; a record without classes counts as human)."""
        return class_count(self.clicks, self.by_class, cls)


def class_count(clicks: int, by_class: ByClass | None, cls: str) -> int:
    """The clicks of ``cls`` among ``clicks`` split as ``by_class`` (None: unknown, read as all human)."""
    if cls == "all":
        return clicks
    if by_class is None:
        return clicks if cls == "human" else 0
    return by_class[CLASSES.index(cls)]


def parse_key(raw: bytes | None) -> Key:
    """``<window_start_ms>:<url>`` as (url, window_start_ms); raises :class:`Skipped`."""
    if raw is None or len(raw) > MAX_KEY_BYTES:
        raise Skipped("bad_key")
    start, sep, url = raw.partition(b":")
    if not sep or not start.isdigit() or not url:
        raise Skipped("bad_key")
    try:
        return url.decode("ascii"), int(start)
    except UnicodeDecodeError:
        raise Skipped("bad_key") from None


def parse_live(key: bytes | None, value: bytes, now_ms: int) -> LiveWindow:
    """The live window of one record, checked field by field; raises :class:`Skipped` with the reason."""
    if len(value) > MAX_RECORD_BYTES:
        raise Skipped("too_large")
    body = _json_object(value)
    if body.get("v") != 1:
        raise Skipped("bad_version")
    if body.get("final") is not False:
        raise Skipped("not_live")
    ints = [body.get(name) for name in INT_FIELDS]
    if not all(type(n) is int and 0 <= n <= MAX_CLICKS for n in ints):
        raise Skipped("bad_field")
    start_ms, end_ms, clicks, revision = ints
    assert start_ms is not None and end_ms is not None and clicks is not None and revision is not None
    if not start_ms < end_ms <= start_ms + MAX_WINDOW_MS:
        raise Skipped("bad_window")
    if start_ms > now_ms + MAX_FUTURE_MS:
        raise Skipped("future")
    url = _normalized_url(body.get("url"))
    if parse_key(key) != (url, start_ms):
        raise Skipped("bad_key")
    by_class, uniques = _classes(body, clicks)
    return LiveWindow(url, start_ms, end_ms, clicks, revision, by_class, uniques)


def _classes(body: dict[str, Any], clicks: int) -> tuple[ByClass | None, int | None]:
    """``by_class`` and ``uniques`` when the record has them (the sketch is not kept: ranges of uniques are
    merged from the database's sketches)."""
    given = body.get("by_class")
    if given is None:
        return None, None
    if not isinstance(given, dict) or set(given) != set(CLASSES):
        raise Skipped("bad_field")
    counts = [given[name] for name in CLASSES]
    uniques = body.get("uniques")
    if not all(type(n) is int and 0 <= n <= MAX_CLICKS for n in [*counts, uniques]) or sum(counts) != clicks:
        raise Skipped("bad_field")
    assert isinstance(uniques, int)
    return (counts[0], counts[1], counts[2], counts[3]), uniques


def _json_object(value: bytes) -> dict[str, Any]:
    try:
        body = json.loads(value)
    except RecursionError:
        raise Skipped("too_deep") from None
    except (UnicodeDecodeError, ValueError):
        raise Skipped("not_json") from None
    if not isinstance(body, dict):
        raise Skipped("not_object")
    if _depth(body) > MAX_DEPTH:
        raise Skipped("too_deep")
    return body


def _depth(value: object) -> int:
    """Nesting depth of a parsed JSON value, without recursion (a scalar is 0, ``{}`` is 1)."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        children: Iterable[object]
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level + 1)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest


def _normalized_url(url: object) -> str:
    """The URL if the gateway would have produced it as a click's key (accepted and normalized)."""
    if not isinstance(url, str):
        raise Skipped("bad_url")
    try:
        normal = normalize_url(url)
    except Rejected:
        raise Skipped("bad_url") from None
    if normal != url:
        raise Skipped("bad_url")
    return url


class LiveCounts:
    """The latest live count per (url, window), for at most ``max_entries`` entries; thread-safe.

    The reader thread offers records, request handlers and the pruner read copies. A record replaces the
    stored one only with a higher (revision, clicks): redelivered or reordered records never lower a count.
    """

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._by_window: dict[int, dict[str, LiveWindow]] = {}
        self._size = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self._size

    def offer(self, window: LiveWindow) -> bool:
        """Stores ``window`` unless a newer or larger count is held; returns whether it was stored."""
        with self._lock:
            urls = self._by_window.setdefault(window.window_start_ms, {})
            held = urls.get(window.url)
            if held is not None and (held.revision, held.clicks) >= (window.revision, window.clicks):
                return False
            urls[window.url] = window
            self._size += held is None
            return True

    def remove(self, keys: Iterable[Key]) -> int:
        """Drops the entries of ``keys``; returns how many were held."""
        removed = 0
        with self._lock:
            for url, start_ms in keys:
                urls = self._by_window.get(start_ms)
                if urls is not None and urls.pop(url, None) is not None:
                    removed += 1
                    if not urls:
                        del self._by_window[start_ms]
            self._size -= removed
        return removed

    def in_range(self, since_ms: int, until_ms: int) -> list[LiveWindow]:
        """Entries of windows starting in ``[since_ms, until_ms)``."""
        with self._lock:
            return [
                window
                for start_ms, urls in self._by_window.items()
                if since_ms <= start_ms < until_ms
                for window in urls.values()
            ]

    def for_url(self, url: str) -> list[LiveWindow]:
        with self._lock:
            found = (urls.get(url) for urls in self._by_window.values())
            return [window for window in found if window is not None]

    def ended_before(self, end_ms: int) -> list[LiveWindow]:
        """Entries of windows that ended before ``end_ms`` (the candidates for pruning)."""
        with self._lock:
            return [w for urls in self._by_window.values() for w in urls.values() if w.window_end_ms < end_ms]

    def shrink(self) -> int:
        """Drops whole windows, oldest first, until at most ``max_entries`` remain; returns how many went."""
        dropped = 0
        with self._lock:
            for start_ms in sorted(self._by_window):
                if self._size - dropped <= self.max_entries:
                    break
                dropped += len(self._by_window.pop(start_ms))
            self._size -= dropped
        return dropped

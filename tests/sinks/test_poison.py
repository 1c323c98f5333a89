"""Hostile ``click-windows`` records against the real broker, on both databases: every good window is written
exactly, every bad record lands on ``click-windows-dead`` with its reason, and the sink keeps running."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from clickmuncher import sketches
from clickmuncher.records import DEAD_LETTER_MAX_BYTES, ClickWindow
from clickmuncher.settings import Settings
from sinks import store
from sinks.sink import Sink
from tests.sinks.helpers import (
    T0_MS,
    WINDOW_MS,
    DeadLetters,
    RawPair,
    assert_consistent,
    committed_offsets,
    dead_letters,
    expected_state,
    make_settings,
    produce,
    read_clicks,
    read_offsets,
    read_windows,
    run_until_caught_up,
    sink_in_thread,
    wait_for,
    window,
)


def hostile(**changes: Any) -> bytes:
    """A window's JSON with fields changed (``...`` removes one); json.dumps escapes NUL and surrogates."""
    body = window("https://example.com/hostile", 0, 1).to_json()
    body.update(changes)
    return json.dumps({name: value for name, value in body.items() if value is not ...}).encode()


def classified(**changes: Any) -> bytes:
    """A window with classes (1 human click by one visitor) with fields changed."""
    sketch = sketches.new()
    sketches.update(sketch, "0123456789abcdef")
    body = window("https://example.com/hostile", 0, 1).to_json()
    body.update(by_class={"human": 1, "bot": 0, "preview": 0, "prefetch": 0}, uniques=1)
    body.update({"hll": sketches.to_base64(sketch), **changes})
    return json.dumps(body).encode()


# (key, value) -> a piece of the reason the dead letter must carry
DECODE_POISON: list[tuple[RawPair, str]] = [
    ((b"k1", hostile(window_start_ms=10**15, window_end_ms=10**15 + WINDOW_MS)), "out of range"),
    ((b"k2", hostile(url="https://example.com/\x00")), "NUL character"),
    ((b"k3", hostile(url="https://example.com/\ud800")), "lone surrogate"),
    ((b"k4", b"[" * 300_000), "more than 32768"),
    ((b"k5", b"[" * 10_000), "nested deeper than 16"),
    ((b"k6", b"[1, 2, 3]"), "not a JSON object"),
    ((b"k7", hostile(clicks=-5)), "out of range"),
    ((b"k8", hostile(clicks=True)), "'clicks'"),
    ((b"k9", hostile(clicks=2.5)), "'clicks'"),
    ((b"k10", hostile(clicks=2**64)), "out of range"),
    ((b"k11", hostile(revision=2**40)), "out of range"),
    ((b"k12", hostile(window_end_ms=T0_MS + WINDOW_MS + 1)), "not aligned"),
    (
        (b"k13", hostile(window_start_ms=253_402_300_800_000, window_end_ms=253_402_300_802_000)),
        "out of range",
    ),
    ((b"k14", hostile(url="https://example.com/" + "a" * 2100)), "more than 2048"),
    ((b"k15", hostile(url=...)), "'url'"),
    ((b"k16", b'{"v": 1, "url": "https://example.com/a", "url": "https://example.com/b"}'), "duplicate keys"),
    ((b"k17", b"\xff\xfe{}"), "not UTF-8"),
    ((b"", b""), "not JSON"),  # a compacted topic refuses a record without a key: an empty one
    ((b"k18", None), "empty value"),  # a tombstone
    # SPEC §12: hostile sketches and class counts, refused before the database (and the sketch library)
    ((b"k19", classified(hll="not base64!")), "'hll': sketch is not base64"),
    ((b"k20", classified(hll=base64.b64encode(b"\x0a\x01\x07" + b"\xff" * 400).decode())), "'hll'"),
    ((b"k21", classified(hll="A" * 30_000)), "'hll': sketch of 30000 base64 characters"),
    ((b"k22", classified(uniques=2)), "out of range"),
    ((b"k23", classified(by_class={"human": 1, "bot": 0, "preview": 0, "prefetch": 1})), "do not add up"),
]


def assert_dead_lettered(letters: DeadLetters, poison: list[tuple[RawPair, str]], prefix: str = "") -> None:
    """Each poison value is among ``letters`` with a reason holding its expected piece (after ``prefix``)."""
    reasons: dict[bytes | None, list[str]] = {}
    for value, headers in letters:
        reasons.setdefault(value, []).append(headers["reason"].decode())
    for (_key, value), piece in poison:
        found = reasons.get(value and value[:DEAD_LETTER_MAX_BYTES], [])
        assert any(r.startswith(prefix) and piece in r for r in found), (value and value[:80], piece, found)


def test_poison_records_never_stop_the_sink(
    kafka_bootstrap: str, db_url: str, unique: str, tmp_path: Path
) -> None:
    settings = make_settings(kafka_bootstrap, db_url, unique, tmp_path, sink_batch_size=7)
    good = [window(f"https://example.com/{i % 5}", i // 5, i + 1) for i in range(2 * len(DECODE_POISON))]
    mixed: list[ClickWindow | RawPair] = []
    for i, (record, _reason) in enumerate(DECODE_POISON):
        mixed += [good[i], record]
    more = good[len(DECODE_POISON) :]
    with sink_in_thread(settings) as sink:
        produce(settings, mixed)
        wait_for(lambda: applied(db_url, settings) == len(mixed), "the first records")
        produce(settings, [*more[:5], *(record for record, _ in DECODE_POISON[:3]), *more[5:]])
        total = len(mixed) + len(more) + 3
        wait_for(lambda: applied(db_url, settings) == total, "the records after the poison")
        assert sink.summary.dead_letters == len(DECODE_POISON) + 3
        assert sink.metrics.dead_letters._value.get() == len(DECODE_POISON) + 3

    assert (read_windows(db_url), read_clicks(db_url)) == expected_state(good)
    assert_consistent(db_url)
    assert sum(committed_offsets(settings).values()) == total
    letters = dead_letters(settings, len(DECODE_POISON) + 3)
    assert len(letters) == len(DECODE_POISON) + 3
    assert_dead_lettered(letters, DECODE_POISON)
    huge = next(headers for value, headers in letters if value and value.startswith(b"[" * 100_000))
    assert huge["value-truncated-from"] == b"300000" and huge["error"] == huge["reason"]


def applied(db_url: str, settings: Settings) -> int:
    return sum(max(offset, 0) for offset in read_offsets(db_url, settings.windows_topic).values())


def raw_window(w: ClickWindow) -> bytes:
    """The window's JSON without the ISO-8601 fields (which year 33658 does not have)."""
    fields = ("url", "window_start_ms", "window_end_ms", "clicks", "revision")
    return json.dumps({"v": 1, **{name: getattr(w, name) for name in fields}}).encode()


def lenient_decode(cls: type[ClickWindow], raw: bytes | None) -> ClickWindow:
    """The decoder without its checks: lets values the database refuses reach it."""
    assert raw is not None
    body = json.loads(raw)
    return cls(body["url"], body["window_start_ms"], body["window_end_ms"], body["clicks"], body["revision"])


def test_windows_the_database_refuses_are_isolated(
    kafka_bootstrap: str, db_url: str, unique: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    postgresql = db_url.startswith("postgresql")
    settings = make_settings(kafka_bootstrap, db_url, unique, tmp_path, partitions=1, sink_batch_size=10)
    nul = window("https://example.com/nul\x00", 0, 3)  # SQLite stores it, PostgreSQL refuses it
    surrogate = window("https://example.com/\ud800", 0, 4)  # no UTF-8 for it: refused by both
    far = ClickWindow("https://example.com/far", 10**15, 10**15 + WINDOW_MS, 5, 0)  # no datetime for it
    big_revision = window("https://example.com/rev", 0, 6, revision=2**40)  # PostgreSQL's int is 32 bits
    big_clicks = window("https://example.com/big", 0, 2**64)  # beyond 64 bits
    total_ok = window("https://example.com/total", 0, 2**62)
    total_over = window("https://example.com/total", 1, 2**62)  # the URL's total leaves 64 bits
    good = [window(f"https://example.com/{i % 4}", i // 4, i + 1) for i in range(16)]
    records = [
        *good[:3],
        nul,
        *good[3:5],
        surrogate,
        far,
        big_revision,
        big_clicks,  # a run of refused windows, across a batch boundary
        *good[5:9],
        total_ok,
        total_over,
        *good[9:],
    ]
    refused = [surrogate, far, big_clicks, total_over] + ([nul, big_revision] if postgresql else [])
    monkeypatch.setattr(ClickWindow, "decode", classmethod(lenient_decode))
    produce(settings, [(b"k%d" % i, raw_window(record)) for i, record in enumerate(records)])
    opened: list[Sink] = []
    summary = run_until_caught_up(settings, opened.append)

    written = [r for r in records if r not in refused]
    assert (read_windows(db_url), read_clicks(db_url)) == expected_state(written)
    assert_consistent(db_url)
    assert applied(db_url, settings) == len(records)
    assert summary.refused_windows == len(refused) and summary.dead_letters == len(refused)
    assert opened[0].metrics.split_batches._value.get() >= 2
    letters = dead_letters(settings, len(refused))
    expected = [((None, raw_window(w)), "database refused: ") for w in refused]
    assert_dead_lettered(letters, expected, prefix="database refused: ")
    by_value = {value: headers["reason"].decode() for value, headers in letters}
    assert "surrogates not allowed" in by_value[raw_window(surrogate)]
    if postgresql:
        assert "NUL" in by_value[raw_window(nul)] and "out of range" in by_value[raw_window(big_revision)]


def test_a_refusal_no_window_repeats_on_its_own_is_retried_as_transient(
    kafka_bootstrap: str, db_url: str, unique: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(kafka_bootstrap, db_url, unique, tmp_path, sink_batch_size=50)
    records = [window(f"https://example.com/{i % 4}", i // 4, i + 1) for i in range(12)]
    write_batch = store.write_batch
    calls: list[int] = []

    def refused_once(*args: Any) -> int | None:
        calls.append(1)
        if len(calls) == 1:
            raise sa.exc.DataError("INSERT ...", {}, Exception("refused once, never again"))
        return write_batch(*args)

    monkeypatch.setattr(store, "write_batch", refused_once)
    produce(settings, records)
    opened: list[Sink] = []
    summary = run_until_caught_up(settings, opened.append)
    assert (read_windows(db_url), read_clicks(db_url)) == expected_state(records)
    assert (summary.refused_windows, summary.dead_letters, summary.db_errors) == (0, 0, 1)
    assert opened[0].metrics.split_batches._value.get() >= 1

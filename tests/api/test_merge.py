"""Merging closed windows with live counts: exact, whatever the data (property test against brute force)."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from api.encode import windows_json
from api.live import LiveWindow
from api.merge import UrlCount, merge_top, merge_windows
from api.queries import WindowCount
from clickmuncher.records import iso_utc

URLS = [f"https://example.com/{c}" for c in "abcdef"]


@given(
    st.dictionaries(st.sampled_from(URLS), st.integers(1, 50)),
    st.dictionaries(st.tuples(st.sampled_from(URLS), st.integers(0, 3)), st.integers(1, 50)),
    st.integers(1, 7),
)
def test_merge_top_is_the_top_of_the_full_sums(
    closed: dict[str, int], live: dict[tuple[str, int], int], limit: int
) -> None:
    live_windows = [LiveWindow(url, n * 60_000, (n + 1) * 60_000, c, 0) for (url, n), c in live.items()]
    ranked = sorted(closed.items(), key=lambda item: (-item[1], item[0]))
    db_top = ranked[:limit]  # what the database answers with LIMIT
    db_sums = {url: n for url, n in closed.items() if url not in dict(db_top)}
    got = merge_top(db_top, db_sums, live_windows, limit)

    expected: dict[str, tuple[int, int]] = {url: (n, 0) for url, n in closed.items()}
    for w in live_windows:
        n, part = expected.get(w.url, (0, 0))
        expected[w.url] = (n + w.clicks, part + w.clicks)
    want = sorted(
        (UrlCount(u, n, part) for u, (n, part) in expected.items()), key=lambda r: (-r.clicks, r.url)
    )
    assert got == want[:limit]


def test_a_final_window_wins_over_its_live_entry() -> None:
    rows = [WindowCount(0, 60_000, 10, 1, True), WindowCount(60_000, 120_000, 4, 0, True)]
    live = [LiveWindow("u", 60_000, 120_000, 99, 0), LiveWindow("u", 120_000, 180_000, 3, 0)]
    merged = merge_windows(rows, live)
    assert [(w.window_start_ms, w.clicks, w.final) for w in merged] == [
        (0, 10, True),
        (60_000, 4, True),
        (120_000, 3, False),
    ]


def test_the_windows_json_is_what_json_dumps_would_write() -> None:
    rows = [
        WindowCount(1_790_000_000_000 + i * 60_000, 1_790_000_060_000 + i * 60_000, i, 1, i < 2)
        for i in range(3)
    ]
    rows.append(WindowCount(1_790_000_000_123, 1_790_000_000_456, 7, 0, False))
    url = 'https://example.com/a?q="x"&y=%7E'
    parsed = json.loads(windows_json(url, 0, 1_790_000_500_000, rows))
    assert parsed == {
        "url": url,
        "from": iso_utc(0),
        "to": iso_utc(1_790_000_500_000),
        "cls": "human",
        "windows": [
            {
                "window_start": iso_utc(w.window_start_ms),
                "window_end": iso_utc(w.window_end_ms),
                "clicks": w.clicks,
                "revision": w.revision,
                "final": w.final,
                "by_class": None,
                "uniques": None,
            }
            for w in rows
        ],
    }

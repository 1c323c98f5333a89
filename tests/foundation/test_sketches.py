"""Unique visitors (clickmuncher/sketches.py): the error at a million visitors, idempotent unions, and bytes
from outside that never reach the library's deserializer unless they are a sketch of our shape."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clickmuncher import sketches


def _sketch(first: int, count: int) -> sketches.Sketch:
    sketch = sketches.new()
    for n in range(first, first + count):
        sketches.update(sketch, f"{n * 0x9E3779B97F4A7C15 % 2**64:016x}")
    return sketch


def test_error_at_a_million_visitors_is_within_two_percent() -> None:
    # Twenty windows of 50,000 distinct visitors each, half of them seen again in the next window: the
    # union of the windows' sketches against the exact count of distinct visitors.
    windows = [_sketch(n * 50_000 - (25_000 if n else 0), 50_000 + (25_000 if n else 0)) for n in range(20)]
    exact = 20 * 50_000
    merged = sketches.merge(sketches.from_base64(sketches.to_base64(w)) for w in windows)
    assert abs(sketches.estimate(merged) - exact) / exact <= 0.02
    one = _sketch(0, exact)
    assert abs(sketches.estimate(one) - exact) / exact <= 0.02


def test_small_counts_are_exact() -> None:
    for count in (0, 1, 7, 8, 100, 1000):
        assert sketches.estimate(_sketch(0, count)) == count


def test_union_is_idempotent() -> None:
    a, b = _sketch(0, 30_000), _sketch(20_000, 30_000)
    once = sketches.merge([a, b])
    again = sketches.merge([a, b, b, a, once])  # a redelivered window merged twice, and the union itself
    assert sketches.serialize(again) == sketches.serialize(once)
    assert sketches.estimate(again) == sketches.estimate(once)
    b_again = sketches.deserialize(sketches.serialize(b))
    for n in range(20_000, 50_000):  # the same visitors added once more
        sketches.update(b_again, f"{n * 0x9E3779B97F4A7C15 % 2**64:016x}")
    assert sketches.serialize(b_again) == sketches.serialize(b)


BASES = [sketches.serialize(_sketch(0, n)) for n in (0, 1, 8, 300, 1536, 1537, 20_000)]


@pytest.mark.parametrize("raw", BASES)
def test_our_sketches_are_accepted(raw: bytes) -> None:
    assert sketches.serialize(sketches.deserialize(raw)) and sketches.checked_base64(
        sketches.to_base64(sketches.deserialize(raw))
    )


@settings(max_examples=1500, deadline=None)
@given(
    st.sampled_from(BASES),
    st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=4),
    st.integers(-50, 50),
)
def test_corrupted_sketches_are_refused_or_sound(raw: bytes, flips: list[tuple[int, int]], cut: int) -> None:
    """Before these checks, the library crashed the process on such bytes (heap corruption, SIGSEGV)."""
    data = bytearray(raw)
    for at, value in flips:
        data[at % len(data)] = value
    data = data[:cut] if cut < 0 else data + random.Random(cut).randbytes(cut)
    try:
        sketch = sketches.deserialize(bytes(data))
    except sketches.SketchError:
        return
    sketches.merge([sketch, sketch])
    sketches.update(sketch, "0123456789abcdef")
    assert sketches.estimate(sketch) >= 0


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (None, "not a string"),
        ("abc", "not base64"),
        ("ab=c", "not base64"),
        ("A" * (sketches.MAX_BASE64_CHARS + 4), "more than"),
        ("AQIDBA==", "preamble"),
        ("AgEHDgMEAAA=", "flags"),  # the empty sketch, but updatable
    ],
)
def test_bad_base64_says_why(text: object, reason: str) -> None:
    with pytest.raises(sketches.SketchError, match=reason):
        sketches.from_base64(text)

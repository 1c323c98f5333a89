"""Unique visitors: HyperLogLog sketches of Apache DataSketches (``datasketches``), behind five functions.

Every sketch of the project has the same shape, :data:`LG_K` = 14 (16,384 registers) and 4-bit registers
(``HLL_4``), so any two merge without loss. Its relative standard error is 1.04/√k ≈ 0.81 %: an estimate is
within 2 % of the exact count in about 99 % of cases (2.5 standard errors), at any cardinality; up to a few
hundred visitors the sketch keeps the hashed visitors themselves (its list and set modes) and is exact in
practice. Serialized compact it takes 8 + 4 bytes per visitor up to 1,536 visitors, then about 8.3 KB.

A union is idempotent: merging the same sketch twice (a redelivered window) gives the same registers, hence
the same estimate; counts of distinct visitors over any range are the union of the windows' sketches.

**Hostile bytes.** The library's deserializer trusts the counts and sizes inside the bytes: fed corrupted
sketches it corrupts the heap or crashes the process (found by fuzzing; see tests). So bytes from a topic or
a table are checked here first, field by field against the serialization format, and only sketches of our own
shape are accepted: at most :data:`MAX_SKETCH_BYTES`, compact, lg_k 14, HLL_4, the exact length of their
mode, every coupon and exception in range and unique, every exception register marked; then the library reads
them and must write back the same bytes (a set's coupons in any order). Anything else raises
:class:`SketchError`.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import struct
from collections.abc import Iterable
from typing import TypeAlias

import numpy as np
from datasketches import hll_sketch, hll_union, tgt_hll_type

LG_K = 14
K = 1 << LG_K
Sketch: TypeAlias = hll_sketch
TARGET = tgt_hll_type.HLL_4
MAX_SKETCH_BYTES: int = Sketch.get_max_updatable_serialization_bytes(LG_K, TARGET)
MAX_BASE64_CHARS = 4 * math.ceil(MAX_SKETCH_BYTES / 3)

_SER_VER, _FAMILY = 1, 7
_LIST, _SET, _HLL = 0, 1, 2
_PREINTS = {_LIST: 2, _SET: 3, _HLL: 10}
_EMPTY_FLAG, _COMPACT_FLAG, _OUT_OF_ORDER_FLAG = 4, 8, 16
_LIST_CAPACITY = 8  # LG_INIT_LIST_SIZE = 3
_SET_MAX = 3 * (1 << (LG_K - 3)) // 4  # a set holding more is promoted to HLL mode
_HLL_ARRAY_BYTES = K // 2
_HLL_HEADER = 40
_AUX_TOKEN = 15
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")


class SketchError(ValueError):
    """Bytes that are not a sketch of this project's shape; the message says why, in one line."""


def new() -> Sketch:
    """An empty sketch."""
    return Sketch(LG_K, TARGET)


def update(sketch: Sketch, visitor: str) -> None:
    """Adds one visitor id (adding it again changes nothing)."""
    sketch.update(visitor)


def merge(sketches: Iterable[Sketch]) -> Sketch:
    """The union of ``sketches`` (an empty sketch for none)."""
    union = hll_union(LG_K)
    for sketch in sketches:
        union.update(sketch)
    return union.get_result(TARGET)


def estimate(sketch: Sketch) -> int:
    """The estimated number of distinct visitors, rounded."""
    return round(float(sketch.get_estimate()))


def serialize(sketch: Sketch) -> bytes:
    """The compact form (what topics and tables hold)."""
    return bytes(sketch.serialize_compact())


def to_base64(sketch: Sketch) -> str:
    return base64.b64encode(serialize(sketch)).decode("ascii")


def from_base64(text: object) -> Sketch:
    """The sketch in standard, padded base64 ``text``; raises :class:`SketchError`."""
    return deserialize(_base64_bytes(text))


def checked_base64(text: object) -> bytes:
    """The bytes of the sketch in base64 ``text``, once :func:`from_base64` accepts it; raises
    :class:`SketchError`."""
    raw = _base64_bytes(text)
    deserialize(raw)
    return raw


def _base64_bytes(text: object) -> bytes:
    if not isinstance(text, str):
        raise SketchError("sketch is not a string")
    if len(text) > MAX_BASE64_CHARS:
        raise SketchError(f"sketch of {len(text)} base64 characters, more than {MAX_BASE64_CHARS}")
    if len(text) % 4 or not _BASE64.fullmatch(text):
        raise SketchError("sketch is not base64")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise SketchError("sketch is not base64") from None
    if base64.b64encode(raw).decode("ascii") != text:
        raise SketchError("sketch is not in canonical base64")
    return raw


def deserialize(raw: bytes) -> Sketch:
    """The sketch in ``raw`` after the checks of the module docstring; raises :class:`SketchError`."""
    check_bytes(raw)
    try:
        sketch = Sketch.deserialize(raw)
    except (RuntimeError, ValueError, IndexError, OverflowError) as e:
        raise SketchError(f"not a sketch: {e}") from None
    if _canonical(serialize(sketch)) != _canonical(raw):
        raise SketchError("not a sketch in its canonical form")
    return sketch


def _canonical(raw: bytes) -> bytes:
    """``raw`` with a set's coupons sorted: a set is written in its hash table's order, which a read can
    change (the same set, other bytes)."""
    if raw[7] & 3 != _SET:
        return raw
    coupons = sorted(struct.unpack(f"<{(len(raw) - 12) // 4}I", raw[12:]))
    return raw[:12] + struct.pack(f"<{len(coupons)}I", *coupons)


def check_bytes(raw: bytes) -> None:
    """Raises :class:`SketchError` unless ``raw`` is, structurally, a compact sketch of our shape."""
    if not isinstance(raw, bytes):
        raise SketchError("sketch is not bytes")
    if len(raw) > MAX_SKETCH_BYTES:
        raise SketchError(f"sketch of {len(raw)} bytes, more than {MAX_SKETCH_BYTES}")
    if len(raw) < 8:
        raise SketchError("sketch shorter than its preamble")
    pre_ints, ser_ver, family, lg_k, _lg_arr, flags, _count, mode_byte = raw[:8]
    mode = mode_byte & 3
    if ser_ver != _SER_VER or family != _FAMILY or mode not in _PREINTS or pre_ints != _PREINTS[mode]:
        raise SketchError("not an HLL sketch (preamble)")
    if lg_k != LG_K or mode_byte >> 2 != 0:  # type bits 0: HLL_4; no other bit set
        raise SketchError(f"not a sketch of lg_k {LG_K} and 4-bit registers")
    if not flags & _COMPACT_FLAG or flags & ~(_EMPTY_FLAG | _COMPACT_FLAG | _OUT_OF_ORDER_FLAG):
        raise SketchError("sketch flags are not those of a compact sketch")
    if mode == _LIST:
        _check_list(raw, flags)
    elif mode == _SET:
        _check_set(raw)
    else:
        _check_hll(raw)


def _check_coupons(data: bytes) -> None:
    coupons = struct.unpack(f"<{len(data) // 4}I", data)
    if len(set(coupons)) != len(coupons):
        raise SketchError("sketch holds a coupon twice")
    if any(not 1 <= coupon >> 26 <= 63 for coupon in coupons):
        raise SketchError("sketch holds an invalid coupon")


def _check_list(raw: bytes, flags: int) -> None:
    count = raw[6]
    if count >= _LIST_CAPACITY or len(raw) != 8 + 4 * count:
        raise SketchError("sketch list of a wrong size")
    if bool(flags & _EMPTY_FLAG) != (count == 0):
        raise SketchError("sketch empty flag disagrees with its size")
    _check_coupons(raw[8:])


def _check_set(raw: bytes) -> None:
    if len(raw) < 12:
        raise SketchError("sketch set shorter than its preamble")
    (count,) = struct.unpack_from("<I", raw, 8)
    if not _LIST_CAPACITY <= count <= _SET_MAX or len(raw) != 12 + 4 * count:
        raise SketchError("sketch set of a wrong size")
    _check_coupons(raw[12:])


def _check_hll(raw: bytes) -> None:
    if len(raw) < _HLL_HEADER + _HLL_ARRAY_BYTES:
        raise SketchError("sketch array shorter than its registers")
    cur_min = raw[6]
    hip, kxq0, kxq1 = struct.unpack_from("<3d", raw, 8)
    at_cur_min, aux_count = struct.unpack_from("<2I", raw, 32)
    if (
        cur_min > 63 - _AUX_TOKEN
        or at_cur_min > K
        or not all(math.isfinite(x) and x >= 0 for x in (hip, kxq0, kxq1))
    ):
        raise SketchError("sketch array header out of range")
    if len(raw) != _HLL_HEADER + _HLL_ARRAY_BYTES + 4 * aux_count:
        raise SketchError("sketch array of a wrong size")
    registers = np.frombuffer(raw, dtype=np.uint8, count=_HLL_ARRAY_BYTES, offset=_HLL_HEADER)
    marked = np.empty(K, dtype=bool)
    marked[0::2] = (registers & 0x0F) == _AUX_TOKEN
    marked[1::2] = (registers >> 4) == _AUX_TOKEN
    aux = np.frombuffer(raw, dtype="<u4", offset=_HLL_HEADER + _HLL_ARRAY_BYTES)
    slots = aux & 0x03FFFFFF
    values = aux >> 26
    if aux_count and (slots.max() >= K or values.min() < cur_min + _AUX_TOKEN or values.max() > 63):
        raise SketchError("sketch exception out of range")
    if len(np.unique(slots)) != aux_count or int(marked.sum()) != aux_count or not marked[slots].all():
        raise SketchError("sketch exceptions disagree with its registers")

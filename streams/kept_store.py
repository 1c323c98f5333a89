"""The local store kept across a clean stop, instead of rebuilt from the whole changelog at every start.

A worker that stopped with every table write delivered (store and changelog agree up to the store's persisted
offsets) leaves a marker beside its store; the next start takes the marker away at once (so a crash of that
run leaves none) and keeps the store when the marker is sound: written for the same changelog topic (its
topic id: ``replay streams`` or an operator recreating the topic makes a new one) and recent enough that
compaction cannot have dropped a deletion the store still holds (``KEEP_MAX_AGE_S``, far below the
changelog's ``delete.retention.ms``). Faust's recovery then reads each partition's changelog from the
store's persisted offset: only what other workers wrote meanwhile. Without a sound marker (a kill -9, an
exit on a fatal error, a write cut short, a new topic, an old stop), the store is deleted and rebuilt.

The marker is a file the worker did not necessarily write (a copied state directory, a hand edit): anything
in it that is not exactly what :func:`write_marker` writes makes the store rebuilt, never a crash.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

MARKER_NAME = "clean-stop.json"
KEEP_MAX_AGE_S = 3600.0  # a restart or a rolling deploy; the changelog keeps deletions for 24 h by default
MARKER_MAX_BYTES = 4096


@dataclass(frozen=True)
class CleanStop:
    """What a clean stop leaves: the changelog topic and its id, and when it stopped."""

    changelog: str
    topic_id: str
    stopped_ms: int

    def encode(self) -> bytes:
        fields = {"changelog": self.changelog, "topic_id": self.topic_id, "stopped_ms": self.stopped_ms}
        return json.dumps(fields).encode()

    @classmethod
    def decode(cls, raw: bytes) -> CleanStop | None:
        """The marker, or None for anything else."""
        if len(raw) > MARKER_MAX_BYTES:
            return None
        try:
            fields = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return None
        if not isinstance(fields, dict) or set(fields) != {"changelog", "topic_id", "stopped_ms"}:
            return None
        changelog, topic_id, stopped_ms = fields["changelog"], fields["topic_id"], fields["stopped_ms"]
        if not (isinstance(changelog, str) and isinstance(topic_id, str)):
            return None
        if type(stopped_ms) is not int or stopped_ms < 0:
            return None
        return cls(changelog, topic_id, stopped_ms)


def marker_path(store_dir: Path) -> Path:
    return store_dir / MARKER_NAME


def write_marker(store_dir: Path, stop: CleanStop) -> None:
    """Written whole or not at all (a temporary file, synced, then renamed)."""
    path = marker_path(store_dir)
    temporary = path.with_suffix(".tmp")
    with temporary.open("wb") as file:
        file.write(stop.encode())
        file.flush()
        os.fsync(file.fileno())
    temporary.replace(path)


def take_marker(store_dir: Path) -> CleanStop | None:
    """The marker of the last stop, removed: whatever this run does, the next start must not trust it."""
    path = marker_path(store_dir)
    try:
        raw = path.read_bytes()[: MARKER_MAX_BYTES + 1]
    except OSError:
        return None
    path.unlink(missing_ok=True)
    return CleanStop.decode(raw)


def why_rebuilt(stop: CleanStop | None, changelog: str, topic_id: str | None, now_ms: int) -> str | None:
    """Why the store must be rebuilt from the changelog, or None when it can be kept."""
    if stop is None:
        return "no clean stop recorded (first start, or the last run did not stop cleanly)"
    if topic_id is None:
        return "the changelog's topic id is unknown"
    if stop.changelog != changelog or stop.topic_id != topic_id:
        return f"the changelog {changelog} is not the topic the store was written for (recreated?)"
    age_s = (now_ms - stop.stopped_ms) / 1000
    if not 0 <= age_s <= KEEP_MAX_AGE_S:
        return f"the clean stop was {age_s:.0f} s ago (kept only within {KEEP_MAX_AGE_S:.0f} s)"
    return None

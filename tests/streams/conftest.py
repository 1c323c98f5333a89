"""Fixtures of the streams tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.streams.support import Worker


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    """Streams worker subprocesses a test starts; any still running are killed after it."""
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.kill()

"""What every benchmark shares: a broker of its own unless one is given."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from clickmuncher.kafka import broker


@contextmanager
def bootstrap_or_local(bootstrap: str | None) -> Iterator[broker.BrokerInfo | str]:
    """Yields ``bootstrap`` when given, else the info of a broker started for this run and stopped after."""
    if bootstrap is not None:
        yield bootstrap
        return
    data_dir = Path(tempfile.mkdtemp(prefix="cm-bench-kafka-"))
    info = broker.start(data_dir, port=broker.free_port(), quiet=True)
    try:
        yield info
    finally:
        broker.stop(data_dir)


def address(target: broker.BrokerInfo | str) -> str:
    return target if isinstance(target, str) else target.bootstrap

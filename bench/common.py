"""What every benchmark shares: a broker of its own unless one is given."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from confluent_kafka import Consumer, KafkaException, TopicPartition

from clickmuncher.devstack.kafka import broker
from clickmuncher.kafka.config import KafkaSettings, consumer_config


def directory_mb(path: Path) -> float:
    """Megabytes of the files under ``path`` (a worker's RocksDB store)."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


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


def kafka(bootstrap: str) -> KafkaSettings:
    """The benchmark's plaintext broker as the settings its clients are built from
    (clickmuncher/kafka/config.py), like every client of the services."""
    return KafkaSettings(bootstrap=bootstrap)


class StreamsWorker:
    """``python -m streams`` with ``env``; its output goes to ``worker.log`` in its state directory."""

    def __init__(self, env: dict[str, str]) -> None:
        self.log_path = Path(env["CLICKMUNCHER_STATE_DIR"]) / "worker.log"
        root = Path(__file__).resolve().parents[1]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "streams"], env=env, cwd=root, stdout=log, stderr=subprocess.STDOUT
            )

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(
                f"the streams worker exited with {self.process.returncode}; see {self.log_path}"
            )

    def stop(self) -> None:
        self.request_stop()
        self.wait()

    def request_stop(self) -> None:
        """SIGTERM: the worker drains, commits and logs its summary line (several can stop at once)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait(self) -> None:
        self.process.wait(timeout=120)


def committed_total(bootstrap: str, group: str, topic: str, partitions: int = 8) -> int:
    """The sum of ``group``'s committed offsets on ``topic`` (0 while its coordinator is not ready)."""
    consumer = Consumer(consumer_config(kafka(bootstrap), group))
    try:
        offsets = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=30)
    except KafkaException:
        return 0
    finally:
        consumer.close()
    return sum(max(tp.offset, 0) for tp in offsets)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` and all its descendants (every thread), from /proc."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        child = int(stat.parent.name)
        parents[child] = int(fields[1])
        times[child] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    tree, grown = {pid}, True
    while grown:
        found = {child for child, parent in parents.items() if parent in tree} - tree
        tree |= found
        grown = bool(found)
    return sum(times.get(member, 0.0) for member in tree)


SUMMARY_ENV = "CLICKMUNCHER_BENCH_SUMMARY"


def record_summary(benchmark: str, ours: str, peer: str, ratio: str, target: str, met: bool | None) -> None:
    """Adds one row to the summary table ``make bench`` prints at the end (bench/summary.py), when the
    file named by ``CLICKMUNCHER_BENCH_SUMMARY`` is set; ``met`` None: a figure reported, no target."""
    path = os.environ.get(SUMMARY_ENV)
    if not path:
        return
    row = {"benchmark": benchmark, "ours": ours, "peer": peer, "ratio": ratio, "target": target, "met": met}
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps(row) + "\n")

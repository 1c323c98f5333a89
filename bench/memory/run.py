"""Memory benchmark: peak RSS of one streams worker holding 1,000,000 distinct URLs in one open window,
with the memory store and with RocksDB, side by side in one run; then RocksDB again with clicks that carry a
class and a visitor id (SPEC §12: each state holds class counts and a sketch). Prints the RocksDB store's
size on disk at the end too.

    python -m bench.memory.run [--urls 1000000] [--bootstrap B]

The clicks are timestamped now and the window is an hour long, so the window stays open: the worker holds
every URL's state. Peak RSS is the kernel's high-water mark (VmHWM) once the worker's committed offsets
reach the end of the topic.
"""

from __future__ import annotations

import argparse
import time
import uuid
from pathlib import Path

from confluent_kafka import Producer

from bench.common import (
    StreamsWorker,
    address,
    bootstrap_or_local,
    committed_total,
    directory_mb,
    kafka,
    record_summary,
)
from bench.streams.worker import worker_env
from clickmuncher.kafka.admin import ensure_topics
from clickmuncher.kafka.config import producer_config
from clickmuncher.records import HUMAN, ClickEvent

ROOT = Path(__file__).resolve().parents[2]
WINDOW_S = 3600


def load(bootstrap: str, topic: str, urls: int, classes: bool = False) -> None:
    ensure_topics(bootstrap, {topic: {}}, 8)
    producer = Producer(
        producer_config(
            kafka(bootstrap),
            {
                "enable.idempotence": False,  # a load generator: as fast as the broker takes it
                "linger.ms": 50,
                "compression.type": "lz4",
                "queue.buffering.max.messages": 500_000,
            },
        )
    )
    now_ms = int(time.time() * 1000)
    for n in range(urls):
        event = ClickEvent(url=f"https://site{n % 997}.example.com/article/{n}", ts_ms=now_ms)
        if classes:  # a human visitor each
            event = ClickEvent(event.url, now_ms, HUMAN, f"{n * 0x9E3779B97F4A7C15 % 2**64:016x}")
        while True:
            try:
                producer.produce(topic, key=event.key(), value=event.encode(), timestamp=now_ms)
                break
            except BufferError:
                producer.poll(0.1)
    producer.flush(120)


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def measure(bootstrap: str, topic: str, urls: int, store: str) -> tuple[float, float, float]:
    """Peak RSS (MB), seconds, and the store's size on disk (MB) at the end."""
    app_id = f"bench-mem-{uuid.uuid4().hex[:8]}"
    env = dict(worker_env(bootstrap, topic, app_id, window_s=WINDOW_S), CLICKMUNCHER_STREAMS_STORE=store)
    state_dir = Path(env["CLICKMUNCHER_STATE_DIR"])
    began = time.monotonic()
    worker = StreamsWorker(env)
    try:
        while committed_total(bootstrap, app_id, topic) < urls:
            worker.check_alive()
            time.sleep(2)
        return peak_rss_mb(worker.process.pid), time.monotonic() - began, directory_mb(state_dir)
    finally:
        worker.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", default=None, help="an existing broker; default: start one")
    parser.add_argument("--urls", type=int, default=1_000_000)
    args = parser.parse_args()
    topic = f"bench-mem-clicks-{uuid.uuid4().hex[:8]}"
    with bootstrap_or_local(args.bootstrap) as target:
        bootstrap = address(target)
        load(bootstrap, topic, args.urls)
        load(bootstrap, f"{topic}-classes", args.urls, classes=True)
        results = {
            store: measure(bootstrap, topic, args.urls, store) for store in ("memory://", "rocksdb://")
        }
        results["rocksdb, sketches"] = measure(bootstrap, f"{topic}-classes", args.urls, "rocksdb://")
    print(f"{'store':>18} {'peak RSS MB':>12} {'seconds':>8} {'on disk MB':>11}")
    for store, (rss_mb, seconds, disk_mb) in results.items():
        print(f"{store:>18} {rss_mb:>12.0f} {seconds:>8.1f} {disk_mb:>11.1f}")
    print(
        f"RocksDB / memory: {results['rocksdb://'][0] / results['memory://'][0]:.2f} "
        f"(target: RocksDB under 1024 MB at {args.urls} open URLs)"
    )
    rocksdb_mb, memory_mb = results["rocksdb://"][0], results["memory://"][0]
    sketched_mb = results["rocksdb, sketches"][0]
    record_summary(
        f"memory, {args.urls} open URLs, classes and sketches",
        f"RocksDB {sketched_mb:.0f} MB",
        f"without them {rocksdb_mb:.0f} MB",
        f"{sketched_mb / rocksdb_mb:.2f}",
        "RocksDB < 1024 MB",
        sketched_mb < 1024,
    )
    record_summary(
        f"memory, {args.urls} open URLs",
        f"RocksDB {rocksdb_mb:.0f} MB",
        f"memory store {memory_mb:.0f} MB",
        f"{rocksdb_mb / memory_mb:.2f}",
        "RocksDB < 1024 MB",
        rocksdb_mb < 1024,
    )


if __name__ == "__main__":
    main()

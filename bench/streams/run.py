"""Streams benchmark: the same pre-loaded topic (1,000,000 clicks over 100,000 Zipf-distributed URLs, 8
partitions) drained by one clickmuncher streams worker, by Quix Streams, and by a plain confluent-kafka
consumer counting in a dict (the ceiling for Python), one after the other in one run.

    python -m bench.streams.run [--clicks 1000000] [--urls 100000] [--bootstrap B]

clickmuncher's time runs from process start to its last window emitted (every click counted in a record on
click-windows); the peers' from process start to their last event processed. Also prints the changelog
messages and bytes clickmuncher wrote per click and the size of its RocksDB store at the end. Quix runs in
its own virtualenv (.venv-bench-quix, made on first use).

"with sketches" drains a second topic of the same clicks carrying a class and a visitor id (SPEC §12: half
human from Zipf-distributed visitors, bench/streams/load.py --classes): class counts and a HyperLogLog sketch
per (URL, window) in the state, the sketch in every changelog record and window record. The other runs read
clicks of the first record version (human, no visitor: no sketch).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from bench.common import StreamsWorker, address, bootstrap_or_local, directory_mb, kafka, record_summary
from clickmuncher.kafka.admin import COMPACTED, ensure_topics
from clickmuncher.kafka.config import admin_config, consumer_config

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
QUIX_VENV = ROOT / ".venv-bench-quix"
WINDOW_S = 60


def run_json(command: list[str], env: dict[str, str] | None = None) -> dict[str, float]:
    out = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def quix_python() -> str:
    python = QUIX_VENV / "bin" / "python"
    if not python.exists():
        print("bench: creating .venv-bench-quix with quixstreams (once)", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(QUIX_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "quixstreams"], check=True)
    return str(python)


def changelog_messages(bootstrap: str, app_id: str) -> int:
    """Messages on the worker's changelog topics: the sum of their partitions' end offsets."""
    admin = AdminClient(admin_config(kafka(bootstrap)))
    topics = [t for t in admin.list_topics(timeout=30).topics if t.startswith(app_id) and "changelog" in t]
    consumer = Consumer(consumer_config(kafka(bootstrap), f"bench-audit-{uuid.uuid4().hex[:6]}"))
    total = 0
    for topic in topics:
        for partition in admin.list_topics(topic, timeout=30).topics[topic].partitions:
            total += consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=30)[1]
    consumer.close()
    return total


def changelog_bytes(bootstrap: str, app_id: str) -> int:
    """Bytes of keys and values on the worker's changelog topics, read to their ends."""
    admin = AdminClient(admin_config(kafka(bootstrap)))
    topics = [t for t in admin.list_topics(timeout=30).topics if t.startswith(app_id) and "changelog" in t]
    consumer = Consumer(consumer_config(kafka(bootstrap), f"bench-bytes-{uuid.uuid4().hex[:6]}"))
    ends = {
        (topic, p): consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]
        for topic in topics
        for p in admin.list_topics(topic, timeout=30).topics[topic].partitions
    }
    consumer.assign([TopicPartition(topic, p, 0) for (topic, p), end in ends.items() if end > 0])
    total, left = 0, sum(ends.values())
    while left > 0:
        for message in consumer.consume(10_000, 1.0):
            if message.error() is None:
                total += len(message.key() or b"") + len(message.value() or b"")
                left -= 1
    consumer.close()
    return total


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (all its threads) so far: a figure the other work on
    the machine moves far less than the wall clock."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def clickmuncher_worker(
    bootstrap: str, topic: str, clicks: int, live_every_s: float = 5.0
) -> dict[str, float]:
    suffix = uuid.uuid4().hex[:8]
    state_dir = Path(tempfile.mkdtemp(prefix="cm-bench-streams-"))
    windows_topic = f"bench-windows-{suffix}"
    ensure_topics(bootstrap, {windows_topic: COMPACTED}, 8)
    env = dict(
        os.environ,
        CLICKMUNCHER_KAFKA_BOOTSTRAP=bootstrap,
        CLICKMUNCHER_CLICKS_TOPIC=topic,
        CLICKMUNCHER_WINDOWS_TOPIC=windows_topic,
        CLICKMUNCHER_STREAMS_APP_ID=f"bench-{suffix}",
        CLICKMUNCHER_WINDOW_S=str(WINDOW_S),
        CLICKMUNCHER_GRACE_S="1",
        CLICKMUNCHER_PARTITIONS="8",
        CLICKMUNCHER_STATE_DIR=str(state_dir),
        CLICKMUNCHER_STREAMS_METRICS_PORT="0",
        CLICKMUNCHER_LIVE_EVERY_S=str(live_every_s),
        CLICKMUNCHER_LIVE_TOPIC=f"bench-live-{suffix}",
    )
    reading = {"auto.offset.reset": "earliest", "enable.auto.commit": False}
    consumer = Consumer(consumer_config(kafka(bootstrap), f"bench-out-{suffix}", reading))
    consumer.subscribe([windows_topic])
    began = time.monotonic()
    worker = StreamsWorker(env)
    latest: dict[bytes, int] = {}
    counted = 0
    try:
        while counted < clicks:
            worker.check_alive()
            for message in consumer.consume(10_000, 1.0):
                key, value = message.key(), message.value()
                if message.error() or key is None or value is None:
                    continue
                latest[key] = json.loads(value)["clicks"]
            counted = sum(latest.values())
        elapsed = time.monotonic() - began
        cpu_s = process_cpu_s(worker.process.pid)
    finally:
        worker.stop()
        consumer.close()
    return {
        "events": clicks,
        "seconds": round(elapsed, 2),
        "events_per_s": round(clicks / elapsed),
        "cpu_us_per_click": cpu_s / clicks * 1e6,
        "window_records": len(latest),
        "changelog_per_click": changelog_messages(bootstrap, f"bench-{suffix}") / clicks,
        "changelog_bytes_per_click": changelog_bytes(bootstrap, f"bench-{suffix}") / clicks,
        "rocksdb_mb": directory_mb(state_dir),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", default=None, help="an existing broker; default: start one")
    parser.add_argument("--clicks", type=int, default=1_000_000)
    parser.add_argument("--urls", type=int, default=100_000)
    args = parser.parse_args()
    topic = f"bench-clicks-{uuid.uuid4().hex[:8]}"
    with bootstrap_or_local(args.bootstrap) as target:
        bootstrap = address(target)
        common = ["--bootstrap", bootstrap, "--topic", topic, "--clicks", str(args.clicks)]
        loaded = run_json(
            [
                sys.executable,
                str(HERE / "load.py"),
                *common,
                "--urls",
                str(args.urls),
                "--window-s",
                str(WINDOW_S),
            ]
        )
        classified_topic = f"{topic}-classes"
        run_json(
            [
                *(
                    sys.executable,
                    str(HERE / "load.py"),
                    "--bootstrap",
                    bootstrap,
                    "--topic",
                    classified_topic,
                ),
                *("--clicks", str(args.clicks), "--urls", str(args.urls), "--window-s", str(WINDOW_S)),
                "--classes",
            ]
        )
        print(
            f"bench: loaded {args.clicks} clicks, {loaded['window_records']} (url, window) pairs", flush=True
        )
        results = {
            "clickmuncher": clickmuncher_worker(bootstrap, topic, args.clicks),
            "no live counts": clickmuncher_worker(bootstrap, topic, args.clicks, live_every_s=0),
            "with sketches": clickmuncher_worker(bootstrap, classified_topic, args.clicks),
            "quixstreams": run_json(
                [quix_python(), str(HERE / "quix_peer.py"), *common, "--window-s", str(WINDOW_S)]
            ),
            "plain dict": run_json(
                [sys.executable, str(HERE / "plain_peer.py"), *common, "--window-s", str(WINDOW_S)]
            ),
        }
    ours = results["clickmuncher"]["events_per_s"]
    print(f"{'consumer':>14} {'seconds':>8} {'events/s':>9} {'clickmuncher is':>16}")
    for name, figures in results.items():
        print(
            f"{name:>14} {figures['seconds']:>8.1f} {figures['events_per_s']:>9.0f} "
            f"{ours / figures['events_per_s']:>15.2f}x"
        )
    for name in ("clickmuncher", "with sketches"):
        figures = results[name]
        print(
            f"{name}: {figures['window_records']:.0f} window records (expected {loaded['window_records']}), "
            f"{figures['changelog_per_click']:.3f} changelog messages and "
            f"{figures['changelog_bytes_per_click']:.1f} bytes per click, "
            f"RocksDB {figures['rocksdb_mb']:.1f} MB, CPU {figures['cpu_us_per_click']:.1f} µs per click"
        )
    print("targets: >= 2x quixstreams; share of the plain-dict ceiling shown above")
    quix, plain = results["quixstreams"]["events_per_s"], results["plain dict"]["events_per_s"]
    unpublished = results["no live counts"]["events_per_s"]
    print(f"live counts (every 5 s) cost {1 - ours / unpublished:.1%} of the throughput without them")
    record_summary(
        "streams, live counts on vs off",
        f"{ours:.0f} events/s",
        f"off {unpublished:.0f} events/s",
        f"{1 - ours / unpublished:.1%} cost",
        "< 10 %",
        1 - ours / unpublished < 0.10,
    )
    record_summary(
        "streams, 1 worker",
        f"{ours:.0f} events/s",
        f"Quix Streams {quix:.0f} events/s",
        f"{ours / quix:.2f}x",
        ">= 2x",
        ours / quix >= 2,
    )
    sketched = results["with sketches"]["events_per_s"]
    cpu_ratio = results["with sketches"]["cpu_us_per_click"] / results["clickmuncher"]["cpu_us_per_click"]
    print(
        f"classes and sketches cost {1 - sketched / ours:.1%} of the throughput without them, "
        f"{cpu_ratio - 1:.1%} more CPU per click"
    )
    record_summary(
        "streams with classes and sketches, 1 worker",
        f"{sketched:.0f} events/s",
        f"Quix Streams {quix:.0f} events/s",
        f"{sketched / quix:.2f}x",
        ">= 2x",
        sketched / quix >= 2,
    )
    record_summary(
        "streams vs Python ceiling",
        f"{ours:.0f} events/s",
        f"plain dict {plain:.0f} events/s",
        f"{ours / plain:.0%}",
        "report",
        None,
    )


if __name__ == "__main__":
    main()

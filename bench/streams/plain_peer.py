"""The ceiling for Python: a plain confluent-kafka batch consumer counting (url, window) in a dict.

    python bench/streams/plain_peer.py --bootstrap B --topic T --clicks N --window-s W

Prints one JSON line with the drain time (from process start to the last event counted), events/s, and the
process's CPU time until then (every thread).
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from collections import Counter

from confluent_kafka import Consumer

from clickmuncher.kafka.config import KafkaSettings, consumer_config


def main() -> None:
    began = time.monotonic()
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--clicks", type=int, required=True)
    parser.add_argument("--window-s", type=int, default=60)
    args = parser.parse_args()
    group = f"plain-{uuid.uuid4().hex}"
    reading = {"auto.offset.reset": "earliest", "enable.auto.commit": False}
    consumer = Consumer(consumer_config(KafkaSettings(bootstrap=args.bootstrap), group, reading))
    consumer.subscribe([args.topic])
    width_ms = args.window_s * 1000
    counts: Counter[tuple[bytes, int]] = Counter()
    seen = 0
    while seen < args.clicks:
        for message in consumer.consume(10_000, 1.0):
            key, value = message.key(), message.value()
            if message.error() or key is None or value is None:
                continue
            ts_ms = json.loads(value)["ts_ms"]
            counts[(key, ts_ms - ts_ms % width_ms)] += 1
            seen += 1
    elapsed, cpu_s = time.monotonic() - began, time.process_time()
    consumer.close()
    print(
        json.dumps(
            {
                "peer": "plain confluent-kafka",
                "events": seen,
                "seconds": round(elapsed, 2),
                "events_per_s": round(seen / elapsed),
                "cpu_s": round(cpu_s, 2),
                "events_per_cpu_s": round(seen / cpu_s),
                "window_records": len(counts),
            }
        )
    )


if __name__ == "__main__":
    main()

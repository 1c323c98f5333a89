"""A downstream consumer of click-windows: validates each record and keeps the latest revision per key.

    pip install jsonschema  # next to clickmuncher, whose Kafka settings it uses
    python examples/consume_windows.py --topic click-windows

The cluster and its security come from the ``CLICKMUNCHER_KAFKA_*`` settings (environment or ``.env``, see
docs/operations.md), so the same lines read a local broker or a secured production cluster.

Records of one key arrive in order on one partition, so "higher revision wins, equal revision: later record
wins" gives the current count of each (URL, window). Stop with Ctrl-C; it prints the top URLs.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import jsonschema
from confluent_kafka import Consumer

from clickmuncher.kafka.config import consumer_config
from clickmuncher.settings import load_settings

SCHEMA = json.loads((Path(__file__).parent.parent / "docs" / "click-window.schema.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--topic", default="click-windows")
    parser.add_argument("--group", default="click-windows-example")
    args = parser.parse_args()
    kafka = load_settings().kafka
    consumer = Consumer(consumer_config(kafka, args.group, {"auto.offset.reset": "earliest"}))
    consumer.subscribe([args.topic])
    latest: dict[bytes, dict[str, object]] = {}
    try:
        while True:
            message = consumer.poll(1.0)
            if message is None or message.error():
                continue
            record = json.loads(message.value())
            jsonschema.validate(record, SCHEMA)
            current = latest.get(message.key())
            if current is None or record["revision"] >= current["revision"]:  # type: ignore[operator]
                latest[message.key()] = record
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()
    totals: Counter[str] = Counter()
    for record in latest.values():
        totals[str(record["url"])] += int(record["clicks"])  # type: ignore[call-overload]
    for url, clicks in totals.most_common(10):
        print(f"{clicks:>10}  {url}")


if __name__ == "__main__":
    main()

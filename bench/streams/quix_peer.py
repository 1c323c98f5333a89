"""The closest peer: Quix Streams counting the same tumbling windows on the same topic.

Runs in its own virtualenv (Quix pins its own confluent-kafka). Quix closes a window only when a newer
message of the same key arrives, so its finish line is "every input event processed", which favours it.

    python bench/streams/quix_peer.py --bootstrap B --topic T --clicks N --window-s W
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
import uuid
from datetime import timedelta
from typing import Any

from quixstreams import Application


def main() -> None:
    began = time.monotonic()
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--clicks", type=int, required=True)
    parser.add_argument("--window-s", type=int, default=60)
    args = parser.parse_args()
    app = Application(
        broker_address=args.bootstrap,
        consumer_group=f"quix-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        state_dir=tempfile.mkdtemp(prefix="quix-state-"),
        loglevel="WARNING",
        auto_create_topics=True,
    )
    source = app.topic(args.topic, value_deserializer="json")
    output = app.topic(f"{args.topic}-quix-windows-{uuid.uuid4().hex[:6]}", value_serializer="json")
    seen = {"events": 0, "done_at": 0.0, "cpu_s": 0.0}

    def count_input(value: Any) -> Any:
        seen["events"] += 1
        if seen["events"] >= args.clicks and not seen["done_at"]:
            seen["done_at"], seen["cpu_s"] = time.monotonic(), time.process_time()
            threading.Thread(target=app.stop, daemon=True).start()
        return value

    sdf = app.dataframe(source).update(count_input)
    sdf = sdf.tumbling_window(timedelta(seconds=args.window_s)).count().final()
    sdf.to_topic(output)
    app.run()
    elapsed = (seen["done_at"] or time.monotonic()) - began
    print(
        json.dumps(
            {
                "peer": "quixstreams",
                "events": seen["events"],
                "seconds": round(elapsed, 2),
                "events_per_s": round(seen["events"] / elapsed),
                "cpu_s": round(seen["cpu_s"], 2),
                "events_per_cpu_s": round(seen["events"] / max(seen["cpu_s"], 1e-9)),
            }
        )
    )


if __name__ == "__main__":
    main()

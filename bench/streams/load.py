"""Pre-loads the benchmark topic: clicks over Zipf-distributed URLs, event times spread over closed windows.

    python bench/streams/load.py --bootstrap B --topic bench-clicks --clicks 1000000 --urls 100000
        [--expected FILE] [--sentinel-copy TOPIC ...] [--hot-share 0.5] [--hot-shards 8] [--classes]

Prints one JSON line: the topic, the counts, and the expected number of (url, window) records.
``--expected`` writes every expected window as ``{"<window_start_ms>:<url>": clicks}`` (the key of a
``click-windows`` record). Each ``--sentinel-copy`` topic gets the same clicks, then one sentinel click per
partition one window after the last (Kafka Streams closes a window only when a later record arrives).
``--hot-share``: that share of the clicks goes to one URL; ``--hot-shards K`` writes its clicks as K URLs
(``#0`` to ``#K-1``), shard ``k`` on partition ``k``, the load a hot URL split across partitions would give.

With ``--classes`` the clicks are those of a gateway of SPEC §12: half human, from Zipf-distributed visitors
(200,000 of them), the rest bots, link previews and prefetches (with visitor ids too); without it, the
clicks of the first record version (no class, no visitor: human without a visitor for the worker). The URLs
and times are the same either way (the visitors have a random generator of their own), and so are the
expected counts.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from bisect import bisect
from collections import Counter
from itertools import accumulate
from pathlib import Path

from confluent_kafka import Producer

from clickmuncher.kafka.admin import ensure_topics
from clickmuncher.kafka.config import KafkaSettings, producer_config
from clickmuncher.records import HUMAN, ClickEvent

VISITORS = 200_000


def zipf_sampler(n_urls: int, seed: int) -> tuple[random.Random, list[float]]:
    rng = random.Random(seed)
    cumulative = list(accumulate(1 / (rank + 1) for rank in range(n_urls)))
    return rng, cumulative


POISON = [
    b'{"v": 1, "url": "https://example.com/\\ud800", "ts_ms": 1}',
    b"[" * 2000,
    b"not json",
    b'{"v": 1, "url": "javascript:alert(1)", "ts_ms": 1}',
    b'{"v": 2, "url": "https://example.com/", "ts_ms": 1}',
]


def produce_poison(producer: Producer, topic: str, key: bytes, count: int) -> int:
    """``count`` malformed records in a row, with the key of a click (so on one partition)."""
    for i in range(count):
        while True:
            try:
                producer.produce(topic, key=key, value=POISON[i % len(POISON)])
                break
            except BufferError:
                producer.poll(0.1)
    return count


HOT_URL = "https://hot.example.com/"
SENTINEL_URL = "https://sentinel.example.com/partition/"


def produce(producer: Producer, topic: str, event: ClickEvent, partition: int = -1) -> None:
    while True:
        try:
            # Positional (topic, value, key, partition, on_delivery, callback, timestamp): the event time.
            producer.produce(topic, event.encode(), event.key(), partition, None, None, event.ts_ms)
            return
        except BufferError:
            producer.poll(0.1)


def produce_sentinels(producer: Producer, topic: str, partitions: int, ts_ms: int) -> None:
    """One click per partition at ``ts_ms``: it moves every partition's stream time past the load."""
    for partition in range(partitions):
        produce(producer, topic, ClickEvent(f"{SENTINEL_URL}{partition}", ts_ms), partition)


def classified(event: ClickEvent, rng: random.Random, visitors: list[float]) -> ClickEvent:
    """``event`` with a class (human half the time, else bot, preview or prefetch) and a visitor id (a
    Zipf-distributed visitor: some click often, most once)."""
    draw = rng.random()
    cls = HUMAN if draw < 0.5 else 1 + int((draw - 0.5) * 6)
    visitor = bisect(visitors, rng.random() * visitors[-1])
    return ClickEvent(event.url, event.ts_ms, cls, f"{visitor * 0x9E3779B97F4A7C15 % 2**64:016x}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--clicks", type=int, default=1_000_000)
    parser.add_argument("--urls", type=int, default=100_000)
    parser.add_argument("--windows", type=int, default=10)
    parser.add_argument("--window-s", type=int, default=60)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--poison-every", type=int, default=0, help="after every N clicks, a run of poison")
    parser.add_argument("--poison-run", type=int, default=1000, help="poison records in a row, one partition")
    parser.add_argument("--expected", type=Path, default=None, help="write the expected counts here")
    parser.add_argument("--sentinel-copy", action="append", default=[], help="a copy ending in sentinels")
    parser.add_argument("--hot-share", type=float, default=0.0, help="share of the clicks on one URL")
    parser.add_argument("--hot-shards", type=int, default=0, help="the hot URL split into K URLs")
    parser.add_argument("--classes", action="store_true", help="clicks with a class and a visitor id")
    args = parser.parse_args()
    topics = [args.topic, *args.sentinel_copy]
    ensure_topics(args.bootstrap, {topic: {} for topic in topics}, args.partitions)
    rng, cumulative = zipf_sampler(args.urls, seed=42)
    total = cumulative[-1]
    visitor_rng, visitor_weights = zipf_sampler(VISITORS, seed=43)
    width_ms = args.window_s * 1000
    # Windows that all closed well before now, so every worker can close them by event time or wall clock.
    first_ms = (int(time.time() * 1000) // width_ms - args.windows - 2) * width_ms
    span_ms = args.windows * width_ms
    producer = Producer(
        producer_config(
            KafkaSettings(bootstrap=args.bootstrap),
            {
                # Idempotent (producer_config's default) even here: without it a batch retried after the
                # new topic's first produce requests lands behind later ones, and the worker, its partition's
                # watermark already past them, drops the earliest clicks as too late.
                "linger.ms": 50,
                "batch.size": 1_000_000,
                "compression.type": "lz4",
                "queue.buffering.max.messages": 500_000,
            },
        )
    )
    expected: Counter[str] = Counter()
    poisoned = 0
    for i in range(args.clicks):
        ts_ms = first_ms + (i * span_ms) // args.clicks
        partition = -1
        if args.hot_share and rng.random() < args.hot_share:
            url = HOT_URL
            if args.hot_shards:
                url, partition = f"{HOT_URL}#{i % args.hot_shards}", i % args.hot_shards % args.partitions
        else:
            rank = bisect(cumulative, rng.random() * total)
            url = f"https://site{rank % 97}.example.com/page/{rank}"
        event = ClickEvent(url=url, ts_ms=ts_ms)
        if args.classes:
            event = classified(event, visitor_rng, visitor_weights)
        expected[f"{ts_ms - ts_ms % width_ms}:{url}"] += 1
        for topic in topics:
            produce(producer, topic, event, partition)
        if i % 10_000 == 0:
            producer.poll(0)
        if args.poison_every and (i + 1) % args.poison_every == 0:
            poisoned += produce_poison(producer, args.topic, event.key(), args.poison_run)
    for topic in args.sentinel_copy:
        produce_sentinels(producer, topic, args.partitions, first_ms + span_ms + width_ms)
    producer.flush(120)
    if args.expected is not None:
        args.expected.write_text(json.dumps(expected))
    print(
        json.dumps(
            {
                "topic": args.topic,
                "clicks": args.clicks,
                "urls": args.urls,
                "window_records": len(expected),
                "window_s": args.window_s,
                "poison": poisoned,
            }
        )
    )


if __name__ == "__main__":
    main()

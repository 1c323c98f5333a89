"""Sending signed clicks through the load balancer, and reading back what was counted."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from urllib.parse import quote

import aiohttp
import sqlalchemy as sa
from confluent_kafka import TopicPartition

from clickmuncher.records import ClickEvent
from gateway.signing import signature
from tests import kafka_clients
from tests.kafka_clients import Cluster

WindowKey = tuple[str, int]
READ_FROM_START = {"enable.auto.commit": False, "auto.offset.reset": "earliest"}


def zipf_urls(count: int, n_urls: int, seed: int = 7, tag: str = "e2e") -> list[str]:
    rng = random.Random(seed)
    urls = [f"https://shop{n % 17}.example.com/item/{n}?ref={tag}" for n in range(n_urls)]
    weights = [1 / (rank + 1) for rank in range(n_urls)]
    return rng.choices(urls, weights, k=count)


async def send_clicks(port: int, urls: list[str], key: str, concurrency: int = 32) -> Counter[str]:
    """GETs each URL's signed link once; returns how many 302s each URL got."""
    redirected: Counter[str] = Counter()
    queue: asyncio.Queue[str] = asyncio.Queue()
    for url in urls:
        queue.put_nowait(url)
    timeout = aiohttp.ClientTimeout(total=30)

    async def worker(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            url = queue.get_nowait()
            path = f"/?u={quote(url, safe='')}&s={signature(url, key)}"
            try:
                async with session.get(f"http://127.0.0.1:{port}{path}", allow_redirects=False) as response:
                    await response.read()
                    if response.status == 302:
                        redirected[url] += 1
            except (TimeoutError, aiohttp.ClientError):
                pass

    async with aiohttp.ClientSession(timeout=timeout) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return redirected


def produced_windows(
    cluster: Cluster, topic: str, window_s: int, expected: int, timeout_s: float = 120
) -> Counter[WindowKey]:
    """Reads the whole clicks topic; counts events per (url, window_start_ms)."""
    consumer = kafka_clients.consumer(cluster, f"audit-{topic}", READ_FROM_START)
    metadata = consumer.list_topics(topic, timeout=30)
    consumer.assign([TopicPartition(topic, p, 0) for p in metadata.topics[topic].partitions])
    counts: Counter[WindowKey] = Counter()
    deadline = time.monotonic() + timeout_s
    seen = 0
    width_ms = window_s * 1000
    while seen < expected and time.monotonic() < deadline:
        for message in consumer.consume(1000, 1.0):
            if message.error():
                continue
            event = ClickEvent.decode(message.value())
            counts[(event.url, event.ts_ms - event.ts_ms % width_ms)] += 1
            seen += 1
    consumer.close()
    return counts


def db_windows(database_url: str) -> Counter[WindowKey]:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT url, window_start, clicks FROM click_windows")).all()
    finally:
        engine.dispose()
    counts: Counter[WindowKey] = Counter()
    for url, window_start, clicks in rows:
        if isinstance(window_start, str):
            from datetime import datetime

            window_start = datetime.fromisoformat(window_start)
        if window_start.tzinfo is None:
            from datetime import UTC

            window_start = window_start.replace(tzinfo=UTC)
        counts[(url, round(window_start.timestamp() * 1000))] += clicks
    return counts


def per_url(windows: Counter[WindowKey]) -> Counter[str]:
    """Each URL's clicks over all its windows."""
    totals: Counter[str] = Counter()
    for (url, _), clicks in windows.items():
        totals[url] += clicks
    return totals


def db_totals(database_url: str) -> Counter[str]:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT url, click_count FROM clicks")).all()
    except sa.exc.OperationalError:
        return Counter()
    except sa.exc.ProgrammingError:
        return Counter()
    finally:
        engine.dispose()
    return Counter({url: count for url, count in rows if count})


def wait_for_total(database_url: str, expected: int, timeout_s: float = 180) -> Counter[str]:
    """Polls the DB until the total count reaches ``expected`` (or the timeout); returns the totals."""
    deadline = time.monotonic() + timeout_s
    totals = db_totals(database_url)
    while sum(totals.values()) < expected and time.monotonic() < deadline:
        time.sleep(1)
        totals = db_totals(database_url)
    time.sleep(3)  # anything more arriving now would be a double count
    return db_totals(database_url)


def latest_revisions(cluster: Cluster, topic: str) -> Counter[WindowKey]:
    """Reads click-windows from the beginning as a downstream consumer would, validating every record
    against the published JSON Schema; returns the latest revision's count per (url, window_start_ms)."""
    import json
    from pathlib import Path

    import jsonschema

    schema_path = Path(__file__).resolve().parents[2] / "docs" / "click-window.schema.json"
    validator = jsonschema.Draft202012Validator(json.loads(schema_path.read_text()))
    consumer = kafka_clients.consumer(cluster, f"downstream-{topic}", READ_FROM_START)
    partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
    ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1] for p in partitions}
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    latest: dict[bytes, tuple[int, dict[str, int | str]]] = {}
    positions = dict.fromkeys(partitions, 0)
    while any(positions[p] < ends[p] for p in partitions):
        for message in consumer.consume(1000, 1.0):
            if message.error():
                continue
            record = json.loads(message.value())
            validator.validate(record)
            assert message.key() == f"{record['window_start_ms']}:{record['url']}".encode()
            known = latest.get(message.key())
            if known is None or record["revision"] >= known[0]:
                latest[message.key()] = (record["revision"], record)
            positions[message.partition()] = message.offset() + 1
    consumer.close()
    counts: Counter[WindowKey] = Counter()
    for _, record in latest.values():
        counts[(str(record["url"]), int(record["window_start_ms"]))] = int(record["clicks"])
    return counts


def clicks_on_topic(
    cluster: Cluster, topic: str, window_s: int, urls: set[str], expected: int, timeout_s: float = 240
) -> Counter[WindowKey]:
    """Reads the clicks topic from the start until ``expected`` clicks of ``urls`` came (or the timeout),
    then on to the end of every partition, so a duplicate is seen too; counts them per (url, window)."""
    consumer = kafka_clients.consumer(cluster, f"audit-{topic}", READ_FROM_START)
    partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    counts: Counter[WindowKey] = Counter()
    positions = dict.fromkeys(partitions, 0)
    ends: dict[int, int] | None = None
    deadline = time.monotonic() + timeout_s
    width_ms = window_s * 1000
    while time.monotonic() < deadline:
        if ends is None and sum(counts.values()) >= expected:
            ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), 30)[1] for p in partitions}
        if ends is not None and all(positions[p] >= ends[p] for p in partitions):
            break
        for message in consumer.consume(1000, 1.0):
            if message.error():
                continue
            event = ClickEvent.decode(message.value())
            positions[message.partition()] = message.offset() + 1
            if event.url in urls:
                counts[(event.url, event.ts_ms - event.ts_ms % width_ms)] += 1
    consumer.close()
    return counts


def topic_size(bootstrap: str, topic: str) -> int:
    """Records on a topic (the sum of its partitions' end offsets; 0 if it does not exist)."""
    consumer = kafka_clients.consumer(bootstrap, f"size-{topic}")
    try:
        meta = consumer.list_topics(topic, timeout=30).topics.get(topic)
        partitions = meta.partitions if meta is not None and meta.error is None else {}
        ends = [consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1] for p in partitions]
        return sum(ends)
    finally:
        consumer.close()

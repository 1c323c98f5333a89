"""api benchmark: latency of ``/api/top`` for a day and ``/api/windows`` for one URL over a month, over HTTP,
with 1,000,000 window rows in PostgreSQL and live counts on the live topic.

    python -m bench.api.run [--rows 1000000] [--urls 50000] [--days 30] [--live 2000] [--requests 200]
                            [--database-url URL] [--bootstrap HOST:PORT]

Without --database-url it starts a throwaway PostgreSQL cluster, without --bootstrap a local broker. Loads the
rows with COPY (bench/api/load.py), starts ``python -m api``, produces ``--live`` live counts for the open
window and waits until the api holds them, then times the requests one at a time on one keep-alive
connection, the cases in turn round after round (after a warm-up), and prints p50/p90/p99/max, the same SQL
timed alone, and the EXPLAIN ANALYZE plans; last, the plan and time of the top query with the index of
migration r0001 only.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import sqlalchemy as sa
from confluent_kafka import Producer

from api import queries
from api.live import LiveWindow
from bench.api.load import Shape, copy_rows, url_of
from bench.common import address, bootstrap_or_local, kafka, record_summary
from clickmuncher.db.schema import upgrade
from clickmuncher.devstack.kafka.broker import free_port
from clickmuncher.kafka.admin import COMPACTED, ensure_topics
from clickmuncher.kafka.config import producer_config
from clickmuncher.records import ClickWindow
from tests.pgcluster import PgCluster, create_database

DAY_MS = 86_400_000
TARGET_MS = 50.0


@contextmanager
def postgres(base_url: str | None) -> Iterator[str]:
    if base_url is not None:
        yield base_url
        return
    cluster = PgCluster(Path(tempfile.mkdtemp(prefix="cm-bench-pg-")), free_port())
    cluster.init()
    cluster.start()
    try:
        yield cluster.url
    finally:
        cluster.stop()


@contextmanager
def api_process(env: dict[str, str], port: int) -> Iterator[str]:
    log_path = Path(tempfile.mkdtemp(prefix="cm-bench-api-")) / "api.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "api", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        yield str(log_path)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def live_windows(shape: Shape, count: int) -> list[ClickWindow]:
    """Live counts for the open window: the ``count`` most popular URLs."""
    start = shape.end_ms
    return [
        ClickWindow(url_of(i), start, start + shape.window_ms, 1 + (count - i) % 97, 0) for i in range(count)
    ]


def produce_live(bootstrap: str, topic: str, shape: Shape, count: int) -> None:
    """The live counts on the live topic, as the streams worker publishes them."""
    ensure_topics(bootstrap, {topic: COMPACTED}, 8)
    producer = Producer(producer_config(kafka(bootstrap), {"linger.ms": 20}))
    for window in live_windows(shape, count):
        body = {**window.to_json(), "final": False}
        producer.produce(topic, key=window.key(), value=json.dumps(body).encode())
    assert producer.flush(60) == 0


class Client:
    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def get(self, path: str) -> tuple[float, bytes]:
        began = time.perf_counter()
        self.connection.request("GET", path)
        response = self.connection.getresponse()
        body = response.read()
        elapsed_ms = (time.perf_counter() - began) * 1000
        assert response.status == 200, (path, response.status, body[:300])
        return elapsed_ms, body


def wait_ready(client: Client, live: int, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            _, metrics = client.get("/metrics")
            if f"clickmuncher_api_live_entries {float(live)}" in metrics.decode():
                return
        except (OSError, http.client.HTTPException):
            client.connection.close()
        if time.monotonic() > deadline:
            raise RuntimeError(f"the api did not hold {live} live entries within {timeout_s:.0f}s")
        time.sleep(0.5)


def iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))


def percentiles(times_ms: list[float]) -> dict[str, float]:
    ordered = sorted(times_ms)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"p50": pick(0.5), "p90": pick(0.9), "p99": pick(0.99), "max": ordered[-1]}


def timed(
    requests: int, cases: dict[str, Callable[[int], str]], client: Client
) -> dict[str, dict[str, float]]:
    """Each case ``requests`` times, one after the other, round after round (so a burst of load on this
    shared machine hits every case alike), after 10 rounds of warm-up."""
    for i in range(10):
        for make_path in cases.values():
            client.get(make_path(i))
    times: dict[str, list[float]] = {name: [] for name in cases}
    for i in range(requests):
        for name, make_path in cases.items():
            times[name].append(client.get(make_path(i))[0])
    return {name: percentiles(values) for name, values in times.items()}


def sql_alone_ms(engine: sa.Engine, query: sa.Select[tuple[object, ...]], runs: int = 30) -> float:
    with engine.connect() as conn:
        conn.execute(query).all()
        times = []
        for _ in range(runs):
            began = time.perf_counter()
            conn.execute(query).all()
            times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def explain(engine: sa.Engine, query: sa.Select[tuple[object, ...]]) -> str:
    compiled = query.compile(dialect=engine.dialect)
    processors = compiled._bind_processors  # the driver gets the values as the query itself sends them
    params = {}
    for name, value in compiled.params.items():
        process = processors.get(name)
        params[name] = process(value) if callable(process) else value
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + compiled.string, params).all()
    return "\n".join(f"    {row[0]}" for row in rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--urls", type=int, default=50_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--window-s", type=int, default=1800)
    parser.add_argument("--live", type=int, default=2000, help="live counts in the open window")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--bootstrap", default=None)
    args = parser.parse_args()
    window_ms = args.window_s * 1000
    now = time.time_ns() // 1_000_000
    shape = Shape(args.rows, args.urls, args.days * DAY_MS // window_ms, window_ms, now - now % window_ms)
    with ExitStack() as stack:
        base_url = stack.enter_context(postgres(args.database_url))
        db_url = create_database(base_url, prefix="benchapi")
        upgrade(db_url)
        began = time.perf_counter()
        written = copy_rows(db_url, shape)
        print(
            f"loaded {written:,} window rows ({args.urls:,} URLs, {args.days} days of {args.window_s}s "
            f"windows) with COPY in {time.perf_counter() - began:.1f}s",
            flush=True,
        )
        bootstrap = address(stack.enter_context(bootstrap_or_local(args.bootstrap)))
        topic = f"click-windows-live-bench-{uuid.uuid4().hex[:8]}"
        produce_live(bootstrap, topic, shape, args.live)
        port = free_port()
        env = {
            **os.environ,
            "CLICKMUNCHER_DATABASE_URL": db_url,
            "CLICKMUNCHER_KAFKA_BOOTSTRAP": bootstrap,
            "CLICKMUNCHER_LIVE_TOPIC": topic,
            "CLICKMUNCHER_WINDOW_S": str(args.window_s),
        }
        stack.enter_context(api_process(env, port))
        client = Client(port)
        wait_ready(client, args.live)
        engine = sa.create_engine(db_url)
        stack.callback(engine.dispose)
        measure(client, engine, shape, args)


def measure(client: Client, engine: sa.Engine, shape: Shape, args: argparse.Namespace) -> None:
    rng = random.Random(3)
    end_ms, month_ms = shape.end_ms, 30 * DAY_MS
    days = max(1, (end_ms - shape.start_ms) // DAY_MS)
    past_day = [
        end_ms - (1 + rng.randrange(days - 1 if days > 1 else 1)) * DAY_MS for _ in range(args.requests + 10)
    ]
    popular = [url_of(rng.randrange(1000)) for _ in range(args.requests + 10)]
    cases: dict[str, Callable[[int], str]] = {
        "/api/top last 24 h, with live": lambda i: "/api/top?limit=10",
        "/api/top a past day": lambda i: (
            f"/api/top?since={iso(past_day[i])}&until={iso(past_day[i] + DAY_MS)}&limit=10"
        ),
        "/api/top a past day, limit=1000": lambda i: (
            f"/api/top?since={iso(past_day[i])}&until={iso(past_day[i] + DAY_MS)}&limit=1000"
        ),
        "/api/windows top URL, a month": lambda i: (
            f"/api/windows?url={url_of(0)}&from={iso(end_ms - month_ms)}&to={iso(end_ms + shape.window_ms)}"
        ),
        "/api/windows a top-1000 URL, a month": lambda i: (
            f"/api/windows?url={popular[i]}&from={iso(end_ms - month_ms)}&to={iso(end_ms + shape.window_ms)}"
        ),
        "/api/totals": lambda i: f"/api/totals?url={popular[i]}",
    }
    load_before = os.getloadavg()[0]
    results = timed(args.requests, cases, client)
    title = f"request ({args.requests} each, one at a time)"
    print(f"\n{title:<44} {'p50':>7} {'p90':>7} {'p99':>7} {'max':>7}  ms")
    for name, figures in results.items():
        print(f"{name:<44} " + " ".join(f"{figures[k]:>7.1f}" for k in ("p50", "p90", "p99", "max")))
    print(f"machine load average (1 min) before and after: {load_before:.1f}, {os.getloadavg()[0]:.1f}")

    day = past_day[0]
    top_query = queries.top_urls_query(day, day + DAY_MS, 10)
    windows_query = queries.url_windows_query(url_of(0), end_ms - month_ms, end_ms + shape.window_ms, 10_001)
    print(
        f"\nSQL alone (median of 30): top a day {sql_alone_ms(engine, top_query):.1f} ms, "
        f"windows a month {sql_alone_ms(engine, windows_query):.1f} ms"
    )
    print("\nEXPLAIN ANALYZE /api/top, a day:\n" + explain(engine, top_query))
    live = [
        LiveWindow(w.url, w.window_start_ms, w.window_end_ms, w.clicks, w.revision)
        for w in live_windows(shape, args.live)
    ]
    live_query = queries.top_with_live_query(end_ms - DAY_MS, end_ms + shape.window_ms, 10, live)
    print(
        f"\nEXPLAIN ANALYZE /api/top, the last 24 h with {args.live} live counts:\n"
        + explain(engine, live_query)
    )
    print("\nEXPLAIN ANALYZE /api/windows, the top URL over a month:\n" + explain(engine, windows_query))
    report(results)
    without_index(engine, top_query)


def without_index(engine: sa.Engine, top_query: sa.Select[tuple[object, ...]]) -> None:
    """The top query with r0001's index on window_start alone, for comparison."""
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP INDEX click_windows_start_url_clicks")
        conn.exec_driver_sql("CREATE INDEX click_windows_window_start ON click_windows (window_start)")
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE click_windows")
    alone = sql_alone_ms(engine, top_query)
    print(f"\nwithout r0002 (index on window_start only): top a day, SQL alone {alone:.1f} ms")
    print(explain(engine, top_query))


def report(results: dict[str, dict[str, float]]) -> None:
    """Rows for ``make bench``'s summary: the target is read on the median (this shared machine's p99 is
    mostly the other processes' load; both are shown)."""
    cases = (
        ("api /api/top, a day", "/api/top a past day"),
        ("api /api/windows, a month", "/api/windows top URL, a month"),
    )
    for name, key in cases:
        figures = results[key]
        record_summary(
            name,
            f"p50 {figures['p50']:.1f} ms, p99 {figures['p99']:.1f} ms",
            "1M window rows, PostgreSQL",
            "-",
            f"< {TARGET_MS:.0f} ms (median)",
            figures["p50"] < TARGET_MS,
        )


if __name__ == "__main__":
    main()

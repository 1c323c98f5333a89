"""Sink throughput through poison: the real sink (Kafka consumer, dead letters, commit protocol) on clean
windows and on runs of hostile records, side by side in one run.

    python -m bench.sink.poison [--records 10000] [--refused 1000] [--database sqlite|postgresql|both]
                                [--bootstrap HOST:PORT] [--database-url URL]

Each variant gets a topic of one partition (so "in a row" is the order the sink reads) and a fresh
database, is produced in full first, then read by one sink until it has caught up. Records/s counts from the
start of the sink's first batch to the end of its last, so group join, start-up and the final check that it
has caught up are left out:

- clean: ``--records`` good windows;
- poison (decode): ``--records`` hostile records, a dozen kinds in turn (not JSON, NUL and surrogate URLs,
  times and counts out of range, unaligned windows, duplicate keys, deep nesting, a 70 KB value, ...),
  all refused before the database;
- refused (database): ``--refused`` windows that decode but that the database refuses on its own (a trigger
  raising a data exception, as a constraint would), all in a row: the bisection's worst case;
- refused run in clean: a run of ``--refused`` such windows in the middle of ``--records`` clean ones.

Clean and poison run in alternating rounds (``--rounds``), each round's ratio from two runs back to back; the
refused variants run once. Prints records/s of each run and its ratio to clean (the target: poison at least
half as fast as clean, the median of the rounds' ratios).
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from confluent_kafka import Producer

from bench.common import address, bootstrap_or_local, kafka, record_summary
from clickmuncher.db.schema import upgrade
from clickmuncher.devstack.kafka.broker import free_port
from clickmuncher.kafka.admin import COMPACTED, ensure_topics
from clickmuncher.kafka.config import producer_config
from clickmuncher.records import ClickWindow
from clickmuncher.settings import Settings
from sinks.batch import Batch
from sinks.sink import open_sink
from tests.pgcluster import PgCluster, create_database

WINDOW_MS = 1_800_000
START_MS = 1_795_000_000_000 - 1_795_000_000_000 % WINDOW_MS
Record = tuple[bytes, bytes]


def window(url: str, n: int) -> ClickWindow:
    start = START_MS + (n % 48) * WINDOW_MS
    return ClickWindow(url, start, start + WINDOW_MS, 1 + n % 50, 0)


def clean(count: int, prefix: str = "https://site.example.com/p/") -> list[Record]:
    return [(w.key(), w.encode()) for w in (window(f"{prefix}{i}", i) for i in range(count))]


def hostile(n: int) -> bytes:
    good = window(f"https://site.example.com/bad/{n}", n)
    body = good.to_json()
    kind = n % 12
    changes: list[dict[str, object]] = [
        {"url": f"https://site.example.com/{n}\x00"},
        {"url": f"https://site.example.com/{n}\ud800"},
        {"window_start_ms": 10**15, "window_end_ms": 10**15 + WINDOW_MS},
        {"clicks": 2**64},
        {"clicks": True},
        {"window_end_ms": good.window_end_ms + 1},
        {"url": "https://site.example.com/" + "a" * 2100},
        {"revision": -1},
    ]
    if kind < len(changes):
        body.update(changes[kind])
        return json.dumps(body).encode()
    return [b"not json %d" % n, b"[" * 1000, b'{"v": 1, "v": 1, "n": %d}' % n, b"[" * 70_000][
        kind - len(changes)
    ]


def poison(count: int) -> list[Record]:
    return [(b"poison-%d" % i, hostile(i)) for i in range(count)]


def refused(count: int) -> list[Record]:
    return clean(count, prefix="https://site.example.com/poison/")


def refuse_poison_urls(database_url: str) -> None:
    """The database refuses every window whose URL holds ``/poison/``, as a constraint would: a data
    exception (DataError) on PostgreSQL, an abort (IntegrityError) on SQLite. Also used by the tests."""
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(
                "CREATE FUNCTION refuse_poison() RETURNS trigger AS $$ BEGIN IF NEW.url LIKE '%%/poison/%%' "
                "THEN RAISE EXCEPTION 'poisoned window' USING ERRCODE = 'data_exception'; END IF; "
                "RETURN NEW; END $$ LANGUAGE plpgsql"
            )
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse_poison BEFORE INSERT OR UPDATE ON click_windows "
                "FOR EACH ROW EXECUTE FUNCTION refuse_poison()"
            )
        else:
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse_poison BEFORE INSERT ON click_windows WHEN NEW.url LIKE '%/poison/%' "
                "BEGIN SELECT RAISE(ABORT, 'poisoned window'); END"
            )
    engine.dispose()


def produce(bootstrap: str, topic: str, records: list[Record]) -> None:
    ensure_topics(bootstrap, {topic: COMPACTED}, 1)
    producer = Producer(producer_config(kafka(bootstrap), {"linger.ms": 50}))
    for key, value in records:
        while True:
            try:
                producer.produce(topic, key=key, value=value)
                break
            except BufferError:
                producer.poll(0.1)
    assert producer.flush(120) == 0


def measure(
    bootstrap: str, fresh: Callable[[str], str], kind: str, records: list[Record]
) -> tuple[float, str]:
    """Records/s of one sink reading ``records`` from a new topic into a fresh database of ``kind``; and its
    summary line."""
    unique = uuid.uuid4().hex[:10]
    settings = Settings(
        kafka_bootstrap=bootstrap,
        database_url=fresh(kind),
        windows_topic=f"bench-poison-{unique}",
        sink_group=f"bench-poison-{unique}",
        partitions=1,
        sink_metrics_port=0,
        sink_poll_timeout_s=0.2,
        state_dir=Path(tempfile.mkdtemp(prefix="cm-bench-sink-")),
    )
    produce(bootstrap, settings.windows_topic, records)
    with open_sink(settings) as sink:
        began: list[float] = []
        ended: list[float] = []
        apply = sink._apply

        def timed(batch: Batch) -> None:
            began.append(time.perf_counter())
            apply(batch)
            ended.append(time.perf_counter())

        sink._apply = timed  # type: ignore[method-assign]
        summary = sink.run(until_caught_up=True)
    assert summary.records == len(records), summary
    return len(records) / (ended[-1] - began[0]), summary.line()


@contextmanager
def databases(which: str, given_url: str | None) -> Iterator[Callable[[str], str]]:
    """Yields a function making a fresh, migrated database of a kind ("sqlite" or "postgresql")."""
    cluster = None
    if given_url is None and which != "sqlite":
        cluster = PgCluster(Path(tempfile.mkdtemp(prefix="cm-bench-pg-")), free_port())
        cluster.init()
        cluster.start()
    base = given_url or (cluster.url if cluster else "")

    def fresh(kind: str) -> str:
        url = f"sqlite:///{tempfile.mkdtemp(prefix='cm-bench-')}/sink.db"
        if kind == "postgresql":
            url = create_database(base, prefix="bench")
        upgrade(url)
        refuse_poison_urls(url)
        return url

    try:
        yield fresh
    finally:
        if cluster is not None:
            cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--refused", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=3, help="clean and poison runs, alternating")
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--database-url", default=None, help="a PostgreSQL server to create databases on")
    parser.add_argument("--bootstrap", default=None)
    args = parser.parse_args()
    kinds = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    with bootstrap_or_local(args.bootstrap) as target, databases(args.database, args.database_url) as fresh:
        for kind in kinds:
            compare(kind, args, functools.partial(measure, address(target), fresh, kind))


def compare(kind: str, args: argparse.Namespace, run: Callable[[list[Record]], tuple[float, str]]) -> None:
    """Clean and poison in alternating rounds (the machine's speed drifts; each round's ratio is of two
    runs back to back), then the database-refused variants once."""
    print(f"\n{kind}: {'variant':>22} {'records':>8} {'records/s':>10} {'vs clean':>9}")
    cleans, ratios = [], []
    for _ in range(args.rounds):
        rate, summary = run(clean(args.records))
        cleans.append(rate)
        print(f"{kind}: {'clean':>22} {args.records:>8} {rate:>10.0f} {1:>8.2f}x  {summary}")
        rate, summary = run(poison(args.records))
        ratios.append(rate / cleans[-1])
        print(
            f"{kind}: {'poison (decode)':>22} {args.records:>8} {rate:>10.0f} {ratios[-1]:>8.2f}x  {summary}"
        )
    base, ratio = statistics.median(cleans), statistics.median(ratios)
    half = args.records // 2
    refused_variants = {
        "refused (database)": refused(args.refused),
        "refused run in clean": [
            *clean(half),
            *refused(args.refused),
            *clean(args.records - half, "https://b/"),
        ],
    }
    for name, records in refused_variants.items():
        rate, summary = run(records)
        print(f"{kind}: {name:>22} {len(records):>8} {rate:>10.0f} {rate / base:>8.2f}x  {summary}")
    print(f"{kind}: poison (decode) vs clean, median of {args.rounds} rounds: {ratio:.2f}x (target >= 0.5x)")
    record_summary(
        f"sink through poison, {kind}",
        f"{ratio * base:.0f} poison records/s",
        f"clean {base:.0f}/s",
        f"{ratio:.2f}x",
        ">= 0.5x",
        ratio >= 0.5,
    )


if __name__ == "__main__":
    main()

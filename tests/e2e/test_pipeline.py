"""End to end over HTTP: two gateways behind nginx, two streams workers, one sink on PostgreSQL.

Every click that got a 302 must be in ``clicks.click_count`` and ``click_windows``, per URL and per window,
with and without faults injected while the traffic flows.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter

import pytest

from tests.conftest import LocalBroker
from tests.e2e.harness import SIGNING_KEY, Pipeline, gateway_port, nginx, pipeline, wait_for_port
from tests.e2e.traffic import (
    db_windows,
    latest_revisions,
    per_url,
    produced_windows,
    send_clicks,
    topic_size,
    wait_for_total,
    zipf_urls,
)

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(600)]

CLICKS = 20_000
URLS = 1_000


def start_pipeline(run: Pipeline, ports: list[int]) -> None:
    run.start("streams-1", "streams")
    run.start("streams-2", "streams")
    run.start("sink", "sink")
    for n, port in enumerate(ports, start=1):
        run.start(f"gateway-{n}", "gateway", "--host", "127.0.0.1", "--port", str(port))
    for port in ports:
        wait_for_port(port)


def inject_faults(run: Pipeline, kafka: LocalBroker, ports: list[int]) -> None:
    """While traffic flows: kill -9 a streams worker and the sink, bounce the broker, SIGTERM a gateway.

    Every step runs even when the traffic ends first: recovery after the traffic is tested too.
    """
    steps = [
        lambda: run.kill("streams-1"),
        lambda: run.start("streams-1", "streams"),
        lambda: run.kill("sink"),
        lambda: run.start("sink", "sink"),
        kafka.stop,
        kafka.start,
        lambda: run.terminate("gateway-2"),
        lambda: run.start("gateway-2", "gateway", "--host", "127.0.0.1", "--port", str(ports[1])),
    ]
    for step in steps:
        time.sleep(1.5)
        step()


def differences(got: Counter[str], want: Counter[str]) -> dict[str, tuple[int, int]]:
    return {key: (got[key], want[key]) for key in set(got) | set(want) if got[key] != want[key]}


def assert_exact(run: Pipeline, redirected: Counter[str]) -> None:
    expected_total = sum(redirected.values())
    assert expected_total > CLICKS * 0.9, "the load balancer answered too few redirects"
    # The gateways: one event on the clicks topic per 302, no more, no less.
    produced = produced_windows(run.bootstrap, f"clicks-{run.suffix}", 2, expected_total)
    wrong = differences(per_url(produced), redirected)
    assert not wrong, f"clicks topic (got, want) per URL: {sorted(wrong.items())[:10]}"
    # Streams and sink: the database holds exactly what is on the topic, per URL and per window.
    totals = wait_for_total(run.database_url, expected_total)
    wrong = differences(totals, redirected)
    if wrong:
        emitted = per_url(latest_revisions(run.bootstrap, f"click-windows-{run.suffix}"))
        on_topic = differences(emitted, redirected)
        logs = "\n".join(f"--- {name}\n{run.log_tail(name, 15)}" for name in run.processes)
        aside = {
            topic: topic_size(run.bootstrap, f"clicks-{run.suffix}-{topic}") for topic in ("late", "dead")
        }
        raise AssertionError(
            f"clicks table (got, want): {sorted(wrong.items())[:5]}\n"
            f"click-windows topic (got, want): {sorted(on_topic.items())[:5]}\n"
            f"records on clicks-late and clicks-dead: {aside}\n{logs}"
        )
    in_db = db_windows(run.database_url)
    assert in_db == produced
    # A downstream consumer of click-windows sees the same counts, every record valid against the schema.
    assert latest_revisions(run.bootstrap, f"click-windows-{run.suffix}") == in_db


@pytest.mark.parametrize("faults", [False, True], ids=["calm", "faults"])
def test_exact_counts_through_nginx(kafka: LocalBroker, pg_db_url: str, unique: str, faults: bool) -> None:
    database_url = pg_db_url
    ports = [gateway_port(), gateway_port()]
    with pipeline(kafka.bootstrap, database_url, unique) as run, nginx(ports) as lb_port:
        start_pipeline(run, ports)
        urls = zipf_urls(CLICKS, URLS)
        injector = threading.Thread(target=inject_faults, args=(run, kafka, ports)) if faults else None
        if injector:
            injector.start()
        try:
            redirected = asyncio.run(send_clicks(lb_port, urls, SIGNING_KEY))
        finally:
            if injector:
                injector.join()
                kafka.start()  # idempotent: a no-op when the broker already runs
        for name in run.processes:
            assert run.alive(name), f"{name} died:\n{run.log_tail(name)}"
        assert_exact(run, redirected)

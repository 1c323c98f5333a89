"""Broker failures on a three-broker SASL_SSL cluster (replication factor 3, min.insync.replicas 2), exact to
the click through the whole pipeline: two gateways behind nginx, two streams workers and the sink on
PostgreSQL, started once for the module. Each scenario sends its own URLs while it breaks the cluster, then
checks that every 302 is on the clicks topic once and in the database once, per URL and per window:

1. kill -9 of one broker in the middle of the traffic (its leaderships move), restarted later;
2. a rolling restart of the three brokers (controlled shutdown, start, fully replicated again, next);
3. two of the three brokers down for 20 s: no quorum, writes refused; the gateways hold and spool clicks.

And without the pipeline: 4. a wrong password and an untrusted CA end every service (gateway, streams, sink,
api) with its one-line reason.

Each scenario prints its figures (clicks sent, counted, spooled, seconds to recover); docs/operations.md
has those of a run.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from clickmuncher.devstack.kafka.broker import free_port
from tests.cluster import LocalCluster
from tests.e2e.harness import SIGNING_KEY, Pipeline, gateway_port, nginx, pipeline, wait_for_port
from tests.e2e.traffic import (
    WindowKey,
    clicks_on_topic,
    db_windows,
    latest_revisions,
    per_url,
    send_clicks,
    zipf_urls,
)
from tests.pgcluster import create_database

pytestmark = [pytest.mark.cluster, pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(900)]

CHUNK = 400  # clicks sent at a time, until the faults are over
RATE_PER_S = 1000  # at most; what a loaded 2-core machine serves beside the brokers and the pipeline
URLS = 300
LEAD_S = 3.0  # traffic before the first fault
OUTAGE_S = 20.0
READY_S = 180.0
RECOVERY_S = 240.0
SERVICES = ("streams-1", "streams-2", "sink", "gateway-1", "gateway-2")


@dataclass
class Running:
    run: Pipeline
    cluster: LocalCluster
    lb_port: int
    metrics_ports: list[int]  # the gateways'


@dataclass
class Figures:
    scenario: str
    sent: int
    redirected: int
    counted: int
    spooled: int
    fault_s: float  # from the first fault until every broker is back
    topic_s: float  # from then until every click is on the clicks topic
    db_s: float  # from then until the database counts every click

    def line(self) -> str:
        return (
            f"{self.scenario}: sent={self.sent} redirected={self.redirected} counted={self.counted} "
            f"spooled={self.spooled} faults={self.fault_s:.1f}s on_topic_after={self.topic_s:.1f}s "
            f"in_db_after={self.db_s:.1f}s"
        )


def check_ready(run: Pipeline, name: str, command: str) -> bool:
    """``clickmuncher <command> --check`` with the process's own settings (its metrics port)."""
    args = [sys.executable, "-m", "clickmuncher.cli", command, "--check"]
    result = subprocess.run(args, env=run.env(name), capture_output=True, text=True, timeout=60, check=False)
    return result.returncode == 0


def wait_until(condition: Callable[[], bool], what: str, deadline_s: float) -> float:
    """Polls ``condition``; returns the seconds it took (a generous deadline, not a speed assertion)."""
    began = time.monotonic()
    while not condition():
        if time.monotonic() - began > deadline_s:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.5)
    return time.monotonic() - began


@pytest.fixture(scope="module")
def running(kafka_cluster: LocalCluster, pg_url: str) -> Iterator[Running]:
    env = {
        **kafka_cluster.env(),
        "CLICKMUNCHER_REPLICATION_FACTOR": "3",
        "CLICKMUNCHER_MIN_INSYNC_REPLICAS": "2",
        # A small producer queue: an outage of a few seconds already sends clicks to the spool.
        "CLICKMUNCHER_GATEWAY_QUEUE_MAX_MESSAGES": "500",
    }
    suffix = f"bf-{uuid.uuid4().hex[:8]}"
    ports = [gateway_port(), gateway_port()]
    metrics_ports = [free_port(), free_port()]
    with pipeline(kafka_cluster.kafka.bootstrap, create_database(pg_url), suffix, env) as run:
        run.env_by_name = {
            "streams-1": {"CLICKMUNCHER_STREAMS_METRICS_PORT": str(free_port())},
            "streams-2": {"CLICKMUNCHER_STREAMS_METRICS_PORT": str(free_port())},
            "sink": {"CLICKMUNCHER_SINK_METRICS_PORT": str(free_port())},
            **{
                f"gateway-{n}": {"CLICKMUNCHER_GATEWAY_METRICS_PORT": str(port)}
                for n, port in enumerate(metrics_ports, start=1)
            },
        }
        for name in ("streams-1", "streams-2", "sink"):
            run.start(name, name.split("-")[0])
        for n, port in enumerate(ports, start=1):
            run.start(f"gateway-{n}", "gateway", "--host", "127.0.0.1", "--port", str(port))
        with nginx(ports) as lb_port:
            for port in ports:
                wait_for_port(port)
            for name, command in (("streams-1", "streams"), ("streams-2", "streams"), ("sink", "sink")):
                wait_until(lambda: check_ready(run, name, command), f"{name} to be ready", READY_S)  # noqa: B023
            yield Running(run, kafka_cluster, lb_port, metrics_ports)
    kafka_cluster.restart()  # whatever a failed scenario left down


def spooled(ports: list[int]) -> int:
    total = 0
    for port in ports:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            for line in response.read().decode().splitlines():
                if line.startswith("clickmuncher_gateway_clicks_spooled_total "):
                    total += int(float(line.split()[1]))
    return total


def send_during(
    running: Running, urls: list[str], faults: Callable[[LocalCluster], None]
) -> tuple[Counter[str], int, float, float]:
    """Sends clicks a chunk at a time while ``faults`` runs in a thread, and one chunk after it.
    Returns (redirected per URL, clicks sent, seconds the faults took, when the cluster was back)."""
    done = threading.Event()
    times: dict[str, float] = {}
    failed: list[BaseException] = []

    def inject() -> None:
        time.sleep(LEAD_S)
        times["began"] = time.monotonic()
        try:
            faults(running.cluster)
        except BaseException as e:  # the scenario did not happen as written: the test must say so
            failed.append(e)
        finally:
            times["back"] = time.monotonic()
            done.set()

    injector = threading.Thread(target=inject, name="faults")
    injector.start()
    redirected: Counter[str] = Counter()
    sent = 0
    began = time.monotonic()
    try:
        while True:
            last = done.is_set()
            time.sleep(max(0.0, began + sent / RATE_PER_S - time.monotonic()))
            chunk = urls[sent : sent + CHUNK]
            redirected += asyncio.run(send_clicks(running.lb_port, chunk, SIGNING_KEY, concurrency=16))
            sent += len(chunk)
            if last:
                break
    finally:
        injector.join()
    if failed:
        raise AssertionError(f"the faults were not injected as written: {failed[0]!r}") from failed[0]
    return redirected, sent, times["back"] - times["began"], times["back"]


def scenario(running: Running, name: str, seed: int, faults: Callable[[LocalCluster], None]) -> Figures:
    run = running.run
    spooled_before = spooled(running.metrics_ports)
    urls = zipf_urls(200_000, URLS, seed, tag=name)
    redirected, sent, fault_s, back = send_during(running, urls, faults)
    expected = sum(redirected.values())
    assert expected == sent, f"{sent - expected} clicks got no redirect during the faults"
    keys = set(redirected)
    clicks_topic = f"clicks-{run.suffix}"
    on_topic = clicks_on_topic(running.cluster.kafka, clicks_topic, 2, keys, expected, RECOVERY_S)
    topic_s = time.monotonic() - back
    assert per_url(on_topic) == redirected, "the clicks topic holds each redirected click once"
    in_db = wait_for_db(run, keys, expected)
    db_s = time.monotonic() - back
    problems = {url: (in_db[url], want) for url, want in redirected.items() if in_db[url] != want}
    logs = "\n".join(f"--- {n}\n{run.log_tail(n, 15)}" for n in run.processes)
    assert not problems, f"database (got, want) per URL: {sorted(problems.items())[:5]}\n{logs}"
    windows = only(db_windows(run.database_url), keys)
    assert windows == on_topic
    assert only(latest_revisions(running.cluster.kafka, f"click-windows-{run.suffix}"), keys) == windows
    for service in SERVICES:
        assert run.alive(service), f"{service} died:\n{run.log_tail(service)}"
    counted = sum(in_db.values())
    spooled_now = spooled(running.metrics_ports) - spooled_before
    figures = Figures(name, sent, expected, counted, spooled_now, fault_s, topic_s, db_s)
    print(figures.line())
    return figures


def only(windows: Counter[WindowKey], urls: set[str]) -> Counter[WindowKey]:
    return Counter({key: clicks for key, clicks in windows.items() if key[0] in urls})


def wait_for_db(run: Pipeline, urls: set[str], expected: int) -> Counter[str]:
    """The database's totals of ``urls`` once they add up to ``expected`` (and a little after: anything
    arriving then would be a double count)."""

    def totals() -> Counter[str]:
        return per_url(only(db_windows(run.database_url), urls))

    wait_until(lambda: sum(totals().values()) >= expected, "the database to count every click", RECOVERY_S)
    time.sleep(3)
    return totals()


# ---- the scenarios ---------------------------------------------------------------------------------------


def kill_one_broker(cluster: LocalCluster) -> None:
    cluster.kill(1)
    time.sleep(10)  # traffic goes on with two brokers: leaders moved, the ISR shrank to two
    cluster.restart()


def rolling_restart(cluster: LocalCluster) -> None:
    for index in range(cluster.brokers):
        cluster.stop_broker(index)
        cluster.restart()
        wait_until(cluster.fully_replicated, f"broker {index} to be back in sync", RECOVERY_S)


def two_brokers_down(cluster: LocalCluster) -> None:
    cluster.kill(1)
    cluster.kill(2)
    time.sleep(OUTAGE_S)
    cluster.restart()


def test_kill_9_of_one_broker(running: Running) -> None:
    scenario(running, "kill-one", 11, kill_one_broker)


def test_rolling_restart(running: Running) -> None:
    scenario(running, "rolling", 12, rolling_restart)


def test_two_of_three_brokers_down(running: Running) -> None:
    figures = scenario(running, "two-down", 13, two_brokers_down)
    assert figures.spooled > 0, "writes were refused for 20 s: the gateways must have spooled"


# ---- wrong credentials -----------------------------------------------------------------------------------


def test_wrong_password_and_untrusted_ca_end_every_service_in_one_line(
    kafka_cluster: LocalCluster, tmp_path: Path
) -> None:
    base = {
        **os.environ,
        **kafka_cluster.env(),
        "CLICKMUNCHER_SIGNING_KEY": SIGNING_KEY,
        "CLICKMUNCHER_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
        "CLICKMUNCHER_STATE_DIR": str(tmp_path / "state"),
        "CLICKMUNCHER_STREAMS_METRICS_PORT": "0",
        "CLICKMUNCHER_SINK_METRICS_PORT": "0",
        "CLICKMUNCHER_GATEWAY_METRICS_PORT": "0",
    }
    wrong = {
        "password": ({"CLICKMUNCHER_KAFKA_SASL_PASSWORD": "not-the-password"}, "SASL authentication failed"),
        "ca": ({"CLICKMUNCHER_KAFKA_SSL_CA_FILE": str(kafka_cluster.foreign_ca())}, "is not trusted by"),
    }
    services = {
        "gateway": ["gateway", "--port", str(free_port())],
        "streams": ["streams"],
        "sink": ["sink"],
        "api": ["api", "--port", str(free_port())],
    }
    started = {}
    for case, (override, _) in wrong.items():
        for service, args in services.items():
            process = subprocess.Popen(
                [sys.executable, "-m", "clickmuncher.cli", *args],
                env={**base, **override},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            started[(case, service)] = (process, time.monotonic())
    for (case, service), (process, began) in started.items():
        stdout, stderr = process.communicate(timeout=120)
        elapsed_s = time.monotonic() - began
        reasons = [line for line in stderr.splitlines() if line.startswith("clickmuncher: ")]
        assert process.returncode == 2, f"{service} with a wrong {case}: exit {process.returncode}\n{stderr}"
        assert len(reasons) == 1 and wrong[case][1] in reasons[0], stderr
        assert elapsed_s < 60, f"{service} took {elapsed_s:.0f}s to give up"
        assert "not-the-password" not in stdout + stderr
        print(f"wrong {case}: {service} exit {process.returncode} after {elapsed_s:.1f}s: {reasons[0]}")

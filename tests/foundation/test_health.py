"""The health endpoints of streams and sink: answers, the ``--check`` exit codes, the cluster probe."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Counter

from clickmuncher.devstack.kafka.broker import free_port
from clickmuncher.health import ClusterProbe, HealthServer, check
from clickmuncher.kafka.config import KafkaSettings
from clickmuncher.settings import ConfigError


class Probes:
    def __init__(self) -> None:
        self.alive: str | None = None
        self.ready: str | None = "starting: recovering"


@pytest.fixture
def served() -> Iterator[tuple[HealthServer, Probes]]:
    registry = CollectorRegistry()
    Counter("clickmuncher_test_things", "Things", registry=registry).inc(3)
    probes = Probes()
    server = HealthServer(
        free_port(), registry, alive=lambda: probes.alive, ready=lambda: probes.ready, setting="TEST_PORT"
    )
    server.start()
    yield server, probes
    server.stop()


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_endpoints_answer_one_line(served: tuple[HealthServer, Probes]) -> None:
    server, probes = served
    assert get(server.port, "/healthz") == (200, "ok\n")
    assert get(server.port, "/readyz") == (503, "starting: recovering\n")
    probes.ready = None
    assert get(server.port, "/readyz") == (200, "ready\n")
    probes.alive = "event loop stalled for 61s"
    assert get(server.port, "/healthz") == (503, "event loop stalled for 61s\n")
    status, body = get(server.port, "/metrics")
    assert status == 200 and "clickmuncher_test_things_total 3.0" in body
    assert get(server.port, "/nope")[0] == 404


def test_a_failing_probe_is_a_503_not_a_dead_server(served: tuple[HealthServer, Probes]) -> None:
    server, _ = served

    def broken() -> str | None:
        raise RuntimeError("boom")

    server.ready = broken
    assert get(server.port, "/readyz") == (503, "health probe failed: RuntimeError: boom\n")
    assert get(server.port, "/healthz")[0] == 200


def test_check_exit_codes(served: tuple[HealthServer, Probes], capsys: pytest.CaptureFixture[str]) -> None:
    server, probes = served
    assert check("sink", server.port, "TEST_PORT") == 1
    assert capsys.readouterr().out == "sink: starting: recovering\n"
    probes.ready = None
    assert check("sink", server.port, "TEST_PORT") == 0
    assert capsys.readouterr().out == "sink: ready\n"
    assert check("sink", free_port(), "TEST_PORT") == 1
    assert "no sink answers on 127.0.0.1:" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="sink --check needs TEST_PORT"):
        check("sink", 0, "TEST_PORT")


def test_a_taken_port_is_a_config_error(served: tuple[HealthServer, Probes]) -> None:
    server, _ = served
    twin = HealthServer(server.port, CollectorRegistry(), alive=lambda: None, ready=lambda: None, setting="P")
    with pytest.raises(ConfigError, match="P: cannot listen on"):
        twin.start()


def test_cluster_probe_says_why_and_asks_at_most_every_interval() -> None:
    with socket.socket() as bound:  # bound, never listening: connections are refused
        bound.bind(("127.0.0.1", 0))
        probe = ClusterProbe(
            KafkaSettings(bootstrap=f"127.0.0.1:{bound.getsockname()[1]}"), every_s=3600, timeout_s=0.5
        )
        first = probe()
        assert first is not None and "does not answer" in first
        assert probe() is first  # kept, not asked again


@pytest.mark.kafka
def test_cluster_probe_against_the_broker(kafka_bootstrap: str) -> None:
    assert ClusterProbe(KafkaSettings(bootstrap=kafka_bootstrap))() is None

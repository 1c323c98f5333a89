"""Shared fixtures: a real Kafka broker and a throwaway PostgreSQL cluster per test session, and for the
tests marked ``cluster`` a three-broker SASL_SSL Kafka cluster.

``CLICKMUNCHER_TEST_KAFKA_BOOTSTRAP`` / ``CLICKMUNCHER_TEST_DATABASE_URL`` / ``CLICKMUNCHER_TEST_CLUSTER_DIR``
point the tests at services that already run. When ``CI`` is set, a service that cannot be started fails the
run; it never skips.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clickmuncher.devstack.kafka import broker
from tests.cluster import LocalCluster
from tests.pgcluster import PgCluster, create_database

IN_CI = bool(os.environ.get("CI"))


def _unavailable(what: str, error: Exception) -> None:
    if IN_CI:
        pytest.fail(f"{what} is required under CI but could not be started: {error}", pytrace=False)
    pytest.skip(f"{what} unavailable: {error}")


class LocalBroker:
    """The session's broker; ``restart`` and ``stop``/``start`` simulate broker outages."""

    def __init__(self, data_dir: Path | None, bootstrap: str) -> None:
        self.data_dir = data_dir
        self.bootstrap = bootstrap

    @property
    def port(self) -> int:
        return int(self.bootstrap.rsplit(":", 1)[1])

    def stop(self) -> None:
        assert self.data_dir is not None, "cannot stop an external broker"
        broker.stop(self.data_dir)

    def start(self) -> None:
        assert self.data_dir is not None, "cannot start an external broker"
        broker.start(self.data_dir, port=self.port, quiet=True)


@pytest.fixture(scope="session")
def kafka() -> Iterator[LocalBroker]:
    external = os.environ.get("CLICKMUNCHER_TEST_KAFKA_BOOTSTRAP")
    if external:
        yield LocalBroker(None, external)
        return
    data_dir = Path(tempfile.mkdtemp(prefix="cm-test-kafka-"))
    try:
        info = broker.start(data_dir, port=broker.free_port(), quiet=True)
    except Exception as e:
        _unavailable("Kafka broker", e)
    yield LocalBroker(data_dir, info.bootstrap)
    broker.stop(data_dir)


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka: LocalBroker) -> str:
    return kafka.bootstrap


@pytest.fixture(scope="session")
def kafka_cluster() -> Iterator[LocalCluster]:
    """Three brokers with SASL_SSL (SCRAM-SHA-512, a generated CA): replication factor 3 and
    min.insync.replicas 2 by default. Tests that kill a broker restart it before they end."""
    existing = os.environ.get("CLICKMUNCHER_TEST_CLUSTER_DIR")
    if existing:
        yield LocalCluster.attach(Path(existing))
        return
    try:
        started = LocalCluster.start(brokers=3, security="sasl_ssl")
    except Exception as e:
        _unavailable("Kafka cluster", e)
    yield started
    started.stop()
    shutil.rmtree(started.data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster | None]:
    if os.environ.get("CLICKMUNCHER_TEST_DATABASE_URL"):
        yield None
        return
    cluster = PgCluster(Path(tempfile.mkdtemp(prefix="cm-test-pg-")), broker.free_port())
    try:
        cluster.init()
        cluster.start()
    except Exception as e:
        _unavailable("PostgreSQL", e)
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def pg_url(pg_cluster: PgCluster | None) -> str:
    return os.environ.get("CLICKMUNCHER_TEST_DATABASE_URL") or (pg_cluster.url if pg_cluster else "")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'clickmuncher.db'}"


@pytest.fixture
def pg_db_url(pg_url: str) -> str:
    """A fresh, empty database in the session's PostgreSQL cluster."""
    return create_database(pg_url)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each DB test runs on both: a fresh SQLite file, and a fresh database in the PostgreSQL cluster."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'clickmuncher.db'}"
    base_url: str = request.getfixturevalue("pg_url")
    return create_database(base_url)


@pytest.fixture
def browser() -> Iterator[Any]:
    """Headless Chromium (tests/api/browser.py); under CI a missing browser fails, never skips."""
    from tests.api.browser import chromium, missing

    absent = missing()
    if absent:
        message = f"{', '.join(absent)} missing (apt-get install chromium chromium-driver)"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    driver = chromium()
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def unique() -> str:
    """A short unique suffix for topic names and group ids."""
    return uuid.uuid4().hex[:10]

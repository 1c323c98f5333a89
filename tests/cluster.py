"""A local multi-broker cluster for tests: started in a temporary directory on free ports, its client
settings, and one broker killed or restarted at a time.

``CLICKMUNCHER_TEST_CLUSTER_DIR`` names the data directory of a cluster started with
``clickmuncher kafka up --brokers N [--security sasl_ssl] --data-dir D``: the tests use it as it is (and
restart what they kill) instead of starting their own.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from clickmuncher.devstack.kafka import broker, certs, cluster
from clickmuncher.kafka.config import KafkaSettings, admin_config
from clickmuncher.settings import Settings, load_settings

PORT_BLOCK_TRIES = 50


def free_port_block(count: int) -> int:
    """A port P such that P..P+count-1 are all free now (the cluster's client ports)."""
    for _ in range(PORT_BLOCK_TRIES):
        first = broker.free_port()
        if not any(broker.port_taken(first + i) for i in range(count)):
            return first
    raise RuntimeError(f"no {count} consecutive free ports found")


class LocalCluster:
    """A cluster in ``data_dir``; ``start`` makes a new one, ``attach`` uses one that runs already."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.layout = cluster.load(self.data_dir)

    @classmethod
    def start(
        cls, brokers: int = 3, security: str = "sasl_ssl", data_dir: Path | None = None
    ) -> LocalCluster:
        directory = data_dir or Path(tempfile.mkdtemp(prefix="cm-test-cluster-"))
        cluster.up(directory, brokers, free_port_block(brokers), security)
        return cls(directory)

    @classmethod
    def attach(cls, data_dir: Path) -> LocalCluster:
        found = cls(data_dir)
        found.restart()
        return found

    @property
    def brokers(self) -> int:
        return self.layout.brokers

    @property
    def client_env(self) -> Path:
        """``D/client.env``: the ``CLICKMUNCHER_KAFKA_*`` lines a client needs."""
        return self.data_dir / "client.env"

    @property
    def kafka(self) -> KafkaSettings:
        return self.settings().kafka

    def settings(self, **overrides: Any) -> Settings:
        """The settings a service would load with ``client.env`` as its ``.env`` file, plus ``overrides``."""
        return load_settings(Settings, _env_file=self.client_env, **overrides)

    def env(self) -> dict[str, str]:
        """``client.env`` as a dict, for the environment of a subprocess."""
        pairs = (line.split("=", 1) for line in self.client_env.read_text().splitlines() if "=" in line)
        return dict(pairs)

    def foreign_ca(self) -> Path:
        """The PEM of a CA that did not sign the brokers' certificates."""
        path = self.data_dir / "foreign-ca.pem"
        if not path.exists():
            path.write_bytes(certs.new_authority("not the cluster's CA").pem())
        return path

    def kill(self, index: int) -> None:
        """SIGKILLs broker ``index`` (0-based)."""
        cluster.kill(self.data_dir, index)

    def stop_broker(self, index: int) -> None:
        """Stops broker ``index`` with SIGTERM: a controlled shutdown, its leaderships handed over first."""
        broker.stop(self.layout.node_dir(self.data_dir, index))

    def fully_replicated(self) -> bool:
        """Whether every partition of every topic has all its replicas in sync (a rolling restart waits for
        this before the next broker)."""
        from confluent_kafka.admin import AdminClient

        try:
            metadata = AdminClient(admin_config(self.kafka, {"log_level": 0})).list_topics(timeout=5)
        except Exception:
            return False
        partitions = [p for t in metadata.topics.values() for p in t.partitions.values()]
        return len(metadata.brokers) == self.brokers and all(
            p.error is None and set(p.isrs) == set(p.replicas) for p in partitions
        )

    def restart(self) -> None:
        """Starts every broker that is not running and returns once all are registered again."""
        cluster.up(self.data_dir, self.layout.brokers, None, self.layout.security)

    def running(self) -> list[bool]:
        return [node.pid is not None for node in cluster.status(self.data_dir)]

    def stop(self) -> None:
        """Kills every broker at once (the data is thrown away; a controlled shutdown takes longer)."""
        dirs = [self.layout.node_dir(self.data_dir, i) for i in range(self.layout.brokers)]
        broker.stop_all(dirs, hard=True)

"""Local multi-broker KRaft clusters (SPEC §10), plain or with SASL_SSL, in one data directory.

Layout of ``data_dir``: ``cluster.json`` (the shape, ports and passwords; owner-only), ``broker-<i>/`` per
node (the same files as a single broker's data directory: ``server.properties``, ``log/``, ``logs/``,
``stdout.log``, ``broker.pid``), ``tls/`` (CA and broker keystore, with ``sasl_ssl``) and ``client.env``
(the ``CLICKMUNCHER_KAFKA_*`` lines of a client). The first three nodes are combined broker+controller
nodes forming the KRaft quorum; any further node is a broker only. A data directory keeps its cluster for
its whole life: ``up`` again starts whichever nodes are not running, on the same ports.

A one-broker cluster without ``--security`` is not made here: it is the single data directory of
:mod:`clickmuncher.devstack.kafka.broker`, as it always was.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from clickmuncher.devstack.kafka import broker, certs
from clickmuncher.devstack.kafka.jars import BrokerError
from clickmuncher.devstack.kafka.properties import BROKER_USER, SCRAM_MECHANISM, Node, Tls
from clickmuncher.kafka.config import KafkaSettings, admin_config

SECURITY = ("plaintext", "sasl_ssl")
CLIENT_USER = "clickmuncher"
MAX_VOTERS = 3
LAYOUT_FILE = "cluster.json"


@dataclass(frozen=True)
class Layout:
    """What ``cluster.json`` records: enough to restart any node and to connect a client."""

    brokers: int
    port: int
    security: str
    cluster_id: str
    controller_ports: list[int]
    client_password: str = ""
    broker_password: str = ""

    def node_dir(self, data_dir: Path, index: int) -> Path:
        return data_dir / f"broker-{index}"

    def address(self, index: int) -> str:
        return f"127.0.0.1:{self.port + index}"

    @property
    def bootstrap(self) -> str:
        return ",".join(self.address(i) for i in range(self.brokers))

    @property
    def voters(self) -> list[tuple[int, int]]:
        return [(i + 1, port) for i, port in enumerate(self.controller_ports)]

    def client(self, data_dir: Path, bootstrap: str | None = None) -> KafkaSettings:
        """A client's settings for the whole cluster, or for one node's ``bootstrap`` address."""
        if self.security == "plaintext":
            return KafkaSettings(bootstrap=bootstrap or self.bootstrap)
        return KafkaSettings(
            bootstrap=bootstrap or self.bootstrap,
            security_protocol="SASL_SSL",
            sasl_mechanism=SCRAM_MECHANISM,
            sasl_username=CLIENT_USER,
            sasl_password=SecretStr(self.client_password),
            ssl_ca_file=data_dir / "tls" / "ca.pem",
        )

    def node(self, data_dir: Path, index: int) -> Node:
        tls = None
        if self.security == "sasl_ssl":
            tls = Tls(data_dir / "tls" / "broker.pem", data_dir / "tls" / "ca.pem", self.broker_password)
        controller_port = self.controller_ports[index] if index < len(self.controller_ports) else None
        log_dir = self.node_dir(data_dir, index) / "log"
        rf = min(self.brokers, MAX_VOTERS)
        return Node(index + 1, self.port + index, controller_port, self.voters, log_dir, rf, tls)


@dataclass(frozen=True)
class NodeStatus:
    index: int
    address: str
    pid: int | None


def is_cluster(data_dir: Path) -> bool:
    return (data_dir / LAYOUT_FILE).exists()


def load(data_dir: Path) -> Layout:
    return Layout(**json.loads((data_dir / LAYOUT_FILE).read_text()))


def up(
    data_dir: Path,
    brokers: int,
    port: int | None,
    security: str,
    *,
    timeout_s: float = broker.START_TIMEOUT_S,
) -> Layout:
    """Creates the cluster on first use, starts every node not running (in parallel) and returns once
    each started node answers and all ``brokers`` are registered (so a topic of replication factor
    ``min(brokers, 3)`` can be created). Raises :class:`BrokerError` with one line."""
    data_dir = data_dir.resolve()
    layout = _existing(data_dir, brokers, port, security) or _create(
        data_dir, brokers, port or 9092, security
    )
    stopped = [i for i in range(layout.brokers) if broker.broker_pid(layout.node_dir(data_dir, i)) is None]
    if not stopped:
        return layout
    _check_ports_free(layout, stopped)
    libs = broker.prepare()
    dirs = [layout.node_dir(data_dir, i) for i in stopped]
    broker.format_storage(libs, dirs, layout.cluster_id, _scram(layout))
    started = {d: broker.launch(libs, d) for d in dirs}
    nodes = [admin_config(layout.client(data_dir, layout.address(i))) for i in stopped]
    cluster = admin_config(layout.client(data_dir))

    def ready() -> bool:
        return all(broker.answers(node) for node in nodes) and _registered(cluster) == layout.brokers

    broker.wait_ready(started, ready, timeout_s)
    return layout


def down(data_dir: Path) -> int:
    """Stops every node at once; returns how many were running."""
    layout = load(data_dir)
    return broker.stop_all([layout.node_dir(data_dir, i) for i in range(layout.brokers)])


def kill(data_dir: Path, index: int) -> bool:
    """SIGKILLs node ``index`` (0-based); False when it was not running."""
    layout = load(data_dir)
    if not 0 <= index < layout.brokers:
        raise BrokerError(f"--broker {index}: the cluster in {data_dir} has brokers 0..{layout.brokers - 1}")
    return broker.stop(layout.node_dir(data_dir, index), hard=True)


def status(data_dir: Path) -> list[NodeStatus]:
    layout = load(data_dir)
    return [
        NodeStatus(i, layout.address(i), broker.broker_pid(layout.node_dir(data_dir.resolve(), i)))
        for i in range(layout.brokers)
    ]


def _existing(data_dir: Path, brokers: int, port: int | None, security: str) -> Layout | None:
    if (data_dir / "server.properties").exists():
        raise BrokerError(f"{data_dir} holds a single broker; use another --data-dir for a cluster")
    if not is_cluster(data_dir):
        return None
    layout = load(data_dir)
    if (layout.brokers, layout.security) != (brokers, security):
        raise BrokerError(
            f"{data_dir} holds a {layout.brokers}-broker {layout.security} cluster: "
            f"start it with --brokers {layout.brokers} --security {layout.security} or use another --data-dir"
        )
    if port is not None and port != layout.port:
        raise BrokerError(f"{data_dir}'s cluster listens on ports from {layout.port}: drop --port or use it")
    return layout


def _create(data_dir: Path, brokers: int, port: int, security: str) -> Layout:
    if brokers < 1:
        raise BrokerError("--brokers must be at least 1")
    if security not in SECURITY:
        raise BrokerError(f"--security must be one of {', '.join(SECURITY)}")
    layout = Layout(
        brokers=brokers,
        port=port,
        security=security,
        cluster_id=broker.cluster_id(),
        controller_ports=[broker.free_port() for _ in range(min(brokers, MAX_VOTERS))],
        client_password=secrets.token_urlsafe(18) if security == "sasl_ssl" else "",
        broker_password=secrets.token_urlsafe(18) if security == "sasl_ssl" else "",
    )
    _check_ports_free(layout, range(brokers))
    if security == "sasl_ssl":
        _write_tls(data_dir / "tls")
    for i in range(brokers):
        node_dir = layout.node_dir(data_dir, i)
        (node_dir / "logs").mkdir(parents=True, exist_ok=True)
        certs.write_private(node_dir / "server.properties", layout.node(data_dir, i).text().encode())
    _write_client_env(data_dir, layout.client(data_dir))
    # Written last: a directory with cluster.json is a complete cluster.
    certs.write_private(data_dir / LAYOUT_FILE, json.dumps(asdict(layout), indent=2).encode())
    return layout


def _write_tls(tls_dir: Path) -> None:
    authority = certs.new_authority()
    tls_dir.mkdir(parents=True, exist_ok=True)
    (tls_dir / "ca.pem").write_bytes(authority.pem())
    certs.write_private(tls_dir / "ca-key.pem", certs.key_pem(authority.key))
    certs.write_private(tls_dir / "broker.pem", certs.issue(authority, "clickmuncher broker", server=True))


def _write_client_env(data_dir: Path, kafka: KafkaSettings) -> None:
    lines = [
        f"CLICKMUNCHER_KAFKA_BOOTSTRAP={kafka.bootstrap}",
        f"CLICKMUNCHER_KAFKA_SECURITY_PROTOCOL={kafka.security_protocol}",
    ]
    if kafka.uses_sasl:
        lines += [
            f"CLICKMUNCHER_KAFKA_SASL_MECHANISM={kafka.sasl_mechanism}",
            f"CLICKMUNCHER_KAFKA_SASL_USERNAME={kafka.sasl_username}",
            f"CLICKMUNCHER_KAFKA_SASL_PASSWORD={kafka.password()}",
            f"CLICKMUNCHER_KAFKA_SSL_CA_FILE={kafka.ssl_ca_file}",
        ]
    certs.write_private(data_dir / "client.env", ("\n".join(lines) + "\n").encode())


def _scram(layout: Layout) -> list[str]:
    if layout.security != "sasl_ssl":
        return []
    users = {CLIENT_USER: layout.client_password, BROKER_USER: layout.broker_password}
    return [f"{SCRAM_MECHANISM}=[name={user},password={password}]" for user, password in users.items()]


def _check_ports_free(layout: Layout, indexes: range | list[int]) -> None:
    for i in indexes:
        ports = [layout.port + i] + ([layout.controller_ports[i]] if i < len(layout.controller_ports) else [])
        taken = [port for port in ports if broker.port_taken(port)]
        if taken:
            raise BrokerError(
                f"port 127.0.0.1:{taken[0]} of broker {i} is already taken (try another --port)"
            )


def _registered(config: dict[str, Any]) -> int:
    """How many brokers the cluster's metadata lists (KRaft lists registered, unfenced brokers)."""
    from confluent_kafka.admin import AdminClient

    try:
        return len(AdminClient({**config, "log_level": 0}).list_topics(timeout=1.0).brokers)
    except Exception:
        return 0

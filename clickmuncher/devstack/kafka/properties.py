"""``server.properties`` of a local KRaft node: one text for the single broker and each cluster node."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

SCRAM_MECHANISM = "SCRAM-SHA-512"
BROKER_USER = "broker"

# {rf} and {min_isr}: the replication defaults; the rest is what a small machine needs (docs/development.md).
COMMON = """\
log.dirs={log_dir}
num.partitions=1
default.replication.factor={rf}
min.insync.replicas={min_isr}
offsets.topic.replication.factor={rf}
offsets.topic.num.partitions=4
transaction.state.log.replication.factor={rf}
transaction.state.log.min.isr={min_isr}
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor={rf}
share.coordinator.state.topic.min.isr={min_isr}
group.initial.rebalance.delay.ms=0
log.cleaner.dedupe.buffer.size=2097152
log.cleaner.backoff.ms=2000
num.network.threads=2
num.io.threads=2
auto.create.topics.enable=false
"""

# The client listener is also the inter-broker one, so replication is authenticated and encrypted like
# clients are. The controller listener stays PLAINTEXT on 127.0.0.1: SCRAM credentials live in the metadata
# the controllers serve, so securing it would take PLAIN or client certificates (not worth it on loopback).
SASL_SSL = """\
sasl.enabled.mechanisms={mechanism}
sasl.mechanism.inter.broker.protocol={mechanism}
listener.name.sasl_ssl.{mechanism_lower}.sasl.jaas.config=\
org.apache.kafka.common.security.scram.ScramLoginModule required username="{user}" password="{password}";
ssl.keystore.type=PEM
ssl.keystore.location={keystore}
ssl.truststore.type=PEM
ssl.truststore.location={truststore}
"""


@dataclass(frozen=True)
class Tls:
    """What a SASL_SSL node needs: its PEM keystore, the CA, and the inter-broker SCRAM password."""

    keystore: Path
    truststore: Path
    broker_password: str


@dataclass(frozen=True)
class Node:
    """One KRaft node. ``controller_port`` None: a broker only; ``voters``: (node id, controller port)."""

    node_id: int
    port: int
    controller_port: int | None
    voters: Sequence[tuple[int, int]]
    log_dir: Path
    replication_factor: int = 1
    tls: Tls | None = None

    @property
    def listener(self) -> str:
        return "PLAINTEXT" if self.tls is None else "SASL_SSL"

    def text(self) -> str:
        roles = "broker" if self.controller_port is None else "broker,controller"
        listeners = f"{self.listener}://127.0.0.1:{self.port}"
        if self.controller_port is not None:
            listeners += f",CONTROLLER://127.0.0.1:{self.controller_port}"
        voters = ",".join(f"{node_id}@127.0.0.1:{port}" for node_id, port in self.voters)
        head = (
            f"process.roles={roles}\nnode.id={self.node_id}\ncontroller.quorum.voters={voters}\n"
            f"listeners={listeners}\nadvertised.listeners={self.listener}://127.0.0.1:{self.port}\n"
            f"inter.broker.listener.name={self.listener}\ncontroller.listener.names=CONTROLLER\n"
            f"listener.security.protocol.map=CONTROLLER:PLAINTEXT,{self.listener}:{self.listener}\n"
        )
        rf = self.replication_factor
        text = head + COMMON.format(log_dir=self.log_dir, rf=rf, min_isr=max(1, rf - 1))
        if self.tls is not None:
            text += SASL_SSL.format(
                mechanism=SCRAM_MECHANISM,
                mechanism_lower=SCRAM_MECHANISM.lower(),
                user=BROKER_USER,
                password=self.tls.broker_password,
                keystore=self.tls.keystore,
                truststore=self.tls.truststore,
            )
        return text


def read(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs}

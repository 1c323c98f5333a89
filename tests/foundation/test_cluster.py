"""A three-broker SASL_SSL cluster: clients built from `client.env` round-trip records with replication
factor 3 and min.insync.replicas 2, writes go on with a broker killed, the topic commands see the
cluster's topics, and a wrong password or CA is told in one line."""

from __future__ import annotations

import dataclasses
import socket

import pytest
from confluent_kafka.admin import AdminClient
from pydantic import SecretStr

from clickmuncher.kafka.admin import ensure_topics, topic_config
from clickmuncher.kafka.check import KafkaUnavailable, check_cluster
from clickmuncher.kafka.config import KafkaSettings, admin_config
from tests.cluster import LocalCluster
from tests.foundation.helpers import aiokafka_round_trip, cli, consume, produce

pytestmark = pytest.mark.cluster
CHECK_TIMEOUT_S = 60.0


def replicated_topic(kafka: KafkaSettings, name: str) -> None:
    """A topic with the cluster's defaults, which must be replication factor 3 and min ISR 2."""
    ensure_topics(kafka, {name: {}}, partitions=3)
    metadata = AdminClient(admin_config(kafka)).list_topics(name, timeout=30).topics[name]
    assert {len(p.replicas) for p in metadata.partitions.values()} == {3}
    assert topic_config(kafka, name)["min.insync.replicas"] == "2"


def test_client_env_holds_what_a_client_needs(kafka_cluster: LocalCluster) -> None:
    env = kafka_cluster.env()
    assert env["CLICKMUNCHER_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert env["CLICKMUNCHER_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert len(env["CLICKMUNCHER_KAFKA_BOOTSTRAP"].split(",")) == kafka_cluster.brokers
    assert {"CLICKMUNCHER_KAFKA_SASL_USERNAME", "CLICKMUNCHER_KAFKA_SASL_PASSWORD"} <= set(env)
    assert kafka_cluster.kafka.ssl_ca_file is not None and kafka_cluster.kafka.ssl_ca_file.is_file()


def test_confluent_kafka_round_trip(kafka_cluster: LocalCluster, unique: str) -> None:
    kafka = kafka_cluster.kafka
    topic = f"rt-cluster-ck-{unique}"
    replicated_topic(kafka, topic)
    produce(kafka, topic, range(50))
    assert sorted(consume(kafka, topic, f"g-{unique}", 50)) == list(range(50))


def test_aiokafka_round_trip(kafka_cluster: LocalCluster, unique: str) -> None:
    kafka = kafka_cluster.kafka
    topic = f"rt-cluster-aio-{unique}"
    replicated_topic(kafka, topic)
    values = aiokafka_round_trip(kafka, topic, f"g-{unique}", 20)
    assert values == [f"v{i}".encode() for i in range(20)]


def test_writes_go_on_with_a_broker_killed(kafka_cluster: LocalCluster, unique: str) -> None:
    kafka = kafka_cluster.kafka
    topic = f"kill-one-{unique}"
    replicated_topic(kafka, topic)
    leader = (
        AdminClient(admin_config(kafka)).list_topics(topic, timeout=30).topics[topic].partitions[0].leader
    )
    kafka_cluster.kill(leader - 1)  # node ids are 1-based, broker indexes 0-based
    try:
        produce(kafka, topic, range(100))
        assert sorted(consume(kafka, topic, f"g-{unique}", 100)) == list(range(100))
    finally:
        kafka_cluster.restart()
    assert kafka_cluster.running() == [True] * kafka_cluster.brokers


def test_kill_status_and_up_restart_from_the_cli(kafka_cluster: LocalCluster) -> None:
    directory = str(kafka_cluster.data_dir)
    try:
        killed = cli("kafka", "kill", "--broker", "1", "--data-dir", directory)
        assert killed.returncode == 0 and "broker 1 killed" in killed.stdout
        status = cli("kafka", "status", "--data-dir", directory)
        assert status.returncode == 1 and "broker 1 not running" in status.stdout
        up = cli("kafka", "up", "--brokers", "3", "--security", "sasl_ssl", "--data-dir", directory)
        assert up.returncode == 0, up.stderr
        assert up.stdout.strip().splitlines()[-1] == kafka_cluster.kafka.bootstrap
        assert cli("kafka", "status", "--data-dir", directory).returncode == 0
    finally:
        kafka_cluster.restart()


def test_topics_create_then_check(kafka_cluster: LocalCluster, unique: str) -> None:
    env = {
        **kafka_cluster.env(),
        "CLICKMUNCHER_CLICKS_TOPIC": f"clicks-{unique}",
        "CLICKMUNCHER_WINDOWS_TOPIC": f"click-windows-{unique}",
        "CLICKMUNCHER_LIVE_TOPIC": f"click-windows-live-{unique}",
        "CLICKMUNCHER_STREAMS_APP_ID": f"app-{unique}",
        "CLICKMUNCHER_PARTITIONS": "3",
    }
    missing = cli("topics", "check", env=env)
    assert missing.returncode == 1 and f"clicks-{unique}: missing" in missing.stdout
    created = cli("topics", "create", env=env)
    assert created.returncode == 0, created.stderr
    assert created.stdout.count("topics: created") == 7
    checked = cli("topics", "check", env=env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # A topic created by hand with one replica and the wrong cleanup policy.
    wrong = {**env, "CLICKMUNCHER_CLICKS_TOPIC": f"clicks-wrong-{unique}"}
    ensure_topics(
        kafka_cluster.kafka,
        {f"clicks-wrong-{unique}": {"cleanup.policy": "compact"}},
        3,
        replication_factor=1,
    )
    differing = cli("topics", "check", env=wrong)
    assert differing.returncode == 1
    lines = [line for line in differing.stdout.splitlines() if line.startswith(f"clicks-wrong-{unique}:")]
    assert any("replication factor 1, declared 3" in line for line in lines), differing.stdout
    assert any("cleanup.policy compact, declared delete" in line for line in lines), differing.stdout


def test_wrong_password_is_one_line(kafka_cluster: LocalCluster) -> None:
    wrong = dataclasses.replace(kafka_cluster.kafka, sasl_password=SecretStr("not-the-password"))
    with pytest.raises(KafkaUnavailable, match="SASL authentication failed") as raised:
        check_cluster(wrong, timeout_s=CHECK_TIMEOUT_S)
    assert "not-the-password" not in str(raised.value) and "\n" not in str(raised.value)
    env = {**kafka_cluster.env(), "CLICKMUNCHER_KAFKA_SASL_PASSWORD": "not-the-password"}
    result = cli("topics", "check", env=env)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("clickmuncher:")]
    assert len(errors) == 1 and "SASL authentication failed" in errors[0]
    assert "not-the-password" not in result.stderr + result.stdout


def test_untrusted_certificate_is_one_line(kafka_cluster: LocalCluster) -> None:
    wrong = dataclasses.replace(kafka_cluster.kafka, ssl_ca_file=kafka_cluster.foreign_ca())
    with pytest.raises(KafkaUnavailable, match=r"SSL handshake failed .* not trusted") as raised:
        check_cluster(wrong, timeout_s=CHECK_TIMEOUT_S)
    assert "\n" not in str(raised.value)


def test_no_reachable_broker_is_one_line(kafka_cluster: LocalCluster) -> None:
    with socket.socket() as bound:  # bound, never listening: connections to it are refused
        bound.bind(("127.0.0.1", 0))
        wrong = dataclasses.replace(kafka_cluster.kafka, bootstrap=f"127.0.0.1:{bound.getsockname()[1]}")
        with pytest.raises(KafkaUnavailable, match=r"no Kafka broker reachable .* within 3s: .*refused"):
            check_cluster(wrong, timeout_s=3)

"""Kafka settings (SPEC §10): validation in one line, secrets masked, and each client kind's config."""

from __future__ import annotations

import ssl
from pathlib import Path

import faust
import pytest
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from clickmuncher.devstack.kafka import certs
from clickmuncher.kafka.config import (
    AIOKAFKA_BOOTSTRAP_SERVERS,
    BOOTSTRAP_SERVERS,
    KafkaSettings,
    admin_config,
    aiokafka_config,
    consumer_config,
    faust_config,
    producer_config,
)
from clickmuncher.logs import start_line
from clickmuncher.settings import ConfigError, Settings, load_settings

SASL_SSL = {
    "CLICKMUNCHER_KAFKA_BOOTSTRAP": "b1.example.net:9096,b2.example.net:9096",
    "CLICKMUNCHER_KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
    "CLICKMUNCHER_KAFKA_SASL_MECHANISM": "scram-sha-512",
    "CLICKMUNCHER_KAFKA_SASL_USERNAME": "clicker",
    "CLICKMUNCHER_KAFKA_SASL_PASSWORD": "s3cret-pw",
}


@pytest.fixture
def tls_files(tmp_path: Path) -> dict[str, Path]:
    """A CA file, and a client certificate and key it signed (mutual TLS)."""
    authority = certs.new_authority()
    ca = tmp_path / "ca.pem"
    ca.write_bytes(authority.pem())
    bundle = certs.issue(authority, "client", server=False)
    key_end = bundle.index(b"-----END PRIVATE KEY-----") + len(b"-----END PRIVATE KEY-----\n")
    key, cert = tmp_path / "client.key", tmp_path / "client.pem"
    key.write_bytes(bundle[:key_end])
    cert.write_bytes(bundle[key_end:])
    return {"ca": ca, "cert": cert, "key": key}


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    import os

    for name in list(os.environ):
        if name.startswith("CLICKMUNCHER_"):
            monkeypatch.delenv(name)
    return monkeypatch


def env_settings(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> KafkaSettings:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return load_settings(Settings, _env_file=None).kafka


def test_default_is_plaintext_localhost(clean_env: pytest.MonkeyPatch) -> None:
    kafka = env_settings(clean_env, {})
    assert (kafka.bootstrap, kafka.security_protocol) == ("127.0.0.1:9092", "PLAINTEXT")
    assert admin_config(kafka) == {BOOTSTRAP_SERVERS: "127.0.0.1:9092", "security.protocol": "plaintext"}


@pytest.mark.parametrize(
    ("env", "reason"),
    [
        ({"CLICKMUNCHER_KAFKA_SECURITY_PROTOCOL": "TLS"}, "SECURITY_PROTOCOL: 'TLS' is not one of"),
        (
            {**SASL_SSL, "CLICKMUNCHER_KAFKA_SASL_MECHANISM": "GSSAPI"},
            "SASL_MECHANISM: 'GSSAPI' is not one of",
        ),
        ({**SASL_SSL, "CLICKMUNCHER_KAFKA_SASL_PASSWORD": ""}, "needs CLICKMUNCHER_KAFKA_SASL_PASSWORD"),
        (
            {"CLICKMUNCHER_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"},
            "needs CLICKMUNCHER_KAFKA_SASL_MECHANISM",
        ),
        (
            {"CLICKMUNCHER_KAFKA_SASL_USERNAME": "u"},
            "SASL_USERNAME is set but .*=PLAINTEXT does not use SASL",
        ),
        (
            {"CLICKMUNCHER_KAFKA_SSL_CA_FILE": "/etc/hosts"},
            "SSL_CA_FILE is set but .*=PLAINTEXT does not use TLS",
        ),
        (
            {
                "CLICKMUNCHER_KAFKA_SECURITY_PROTOCOL": "SSL",
                "CLICKMUNCHER_KAFKA_SSL_CA_FILE": "/no/such/ca.pem",
            },
            "SSL_CA_FILE: no such file: /no/such/ca.pem",
        ),
        (
            {"CLICKMUNCHER_KAFKA_SECURITY_PROTOCOL": "SSL", "CLICKMUNCHER_KAFKA_SSL_CERT_FILE": "/etc/hosts"},
            "SSL_CERT_FILE and CLICKMUNCHER_KAFKA_SSL_KEY_FILE go together",
        ),
        (
            {"CLICKMUNCHER_KAFKA_BOOTSTRAP": "broker-without-port"},
            "BOOTSTRAP: 'broker-without-port' is not host:port",
        ),
        ({"CLICKMUNCHER_REPLICATION_FACTOR": "0"}, "CLICKMUNCHER_REPLICATION_FACTOR"),
    ],
)
def test_bad_settings_are_one_line_config_errors(
    clean_env: pytest.MonkeyPatch, env: dict[str, str], reason: str
) -> None:
    with pytest.raises(ConfigError, match=reason) as raised:
        env_settings(clean_env, env)
    assert "\n" not in str(raised.value)
    assert "s3cret-pw" not in str(raised.value)


def test_password_masked_in_start_line_and_repr(clean_env: pytest.MonkeyPatch) -> None:
    for name, value in SASL_SSL.items():
        clean_env.setenv(name, value)
    settings = load_settings(Settings, _env_file=None)
    line = start_line("gateway", settings)
    assert "s3cret-pw" not in line and "kafka_sasl_password=***" in line
    assert "s3cret-pw" not in repr(settings.kafka) and "s3cret-pw" not in str(settings.kafka.masked())
    assert settings.kafka.scrub("auth failed with s3cret-pw") == "auth failed with ***"


def test_confluent_configs_for_sasl_ssl(clean_env: pytest.MonkeyPatch, tls_files: dict[str, Path]) -> None:
    kafka = env_settings(clean_env, {**SASL_SSL, "CLICKMUNCHER_KAFKA_SSL_CA_FILE": str(tls_files["ca"])})
    common = {
        BOOTSTRAP_SERVERS: "b1.example.net:9096,b2.example.net:9096",
        "security.protocol": "sasl_ssl",
        "sasl.mechanisms": "SCRAM-SHA-512",
        "sasl.username": "clicker",
        "sasl.password": "s3cret-pw",
        "ssl.ca.location": str(tls_files["ca"]),
    }
    assert admin_config(kafka) == common
    assert producer_config(kafka, {"linger.ms": 50}) == {
        **common,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 50,
    }
    assert consumer_config(kafka, "group-1") == {**common, "group.id": "group-1"}


def test_mutual_tls_files_reach_every_client(
    clean_env: pytest.MonkeyPatch, tls_files: dict[str, Path]
) -> None:
    kafka = env_settings(
        clean_env,
        {
            "CLICKMUNCHER_KAFKA_SECURITY_PROTOCOL": "SSL",
            "CLICKMUNCHER_KAFKA_SSL_CA_FILE": str(tls_files["ca"]),
            "CLICKMUNCHER_KAFKA_SSL_CERT_FILE": str(tls_files["cert"]),
            "CLICKMUNCHER_KAFKA_SSL_KEY_FILE": str(tls_files["key"]),
        },
    )
    config = admin_config(kafka)
    assert config["ssl.certificate.location"] == str(tls_files["cert"])
    assert config["ssl.key.location"] == str(tls_files["key"])
    context = aiokafka_config(kafka)["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert [ca["subject"] for ca in context.get_ca_certs()] == [((("commonName", "clickmuncher local CA"),),)]
    faust_auth = credentials_to_aiokafka_auth(faust_config(kafka)["broker_credentials"])
    assert faust_auth == {"security_protocol": "SSL", "ssl_context": faust_auth["ssl_context"]}


def test_aiokafka_and_faust_arguments_for_sasl(
    clean_env: pytest.MonkeyPatch, tls_files: dict[str, Path]
) -> None:
    kafka = env_settings(clean_env, {**SASL_SSL, "CLICKMUNCHER_KAFKA_SSL_CA_FILE": str(tls_files["ca"])})
    config = aiokafka_config(kafka)
    assert config[AIOKAFKA_BOOTSTRAP_SERVERS] == ["b1.example.net:9096", "b2.example.net:9096"]
    assert (config["security_protocol"], config["sasl_mechanism"]) == ("SASL_SSL", "SCRAM-SHA-512")
    assert (config["sasl_plain_username"], config["sasl_plain_password"]) == ("clicker", "s3cret-pw")
    faust_kwargs = faust_config(kafka)
    assert faust_kwargs["broker"] == ["kafka://b1.example.net:9096", "kafka://b2.example.net:9096"]
    assert isinstance(faust_kwargs["broker_credentials"], faust.SASLCredentials)
    # What Faust hands to every aiokafka client it makes from these credentials.
    auth = credentials_to_aiokafka_auth(faust_kwargs["broker_credentials"])
    assert auth["security_protocol"] == "SASL_SSL" and auth["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (auth["sasl_plain_username"], auth["sasl_plain_password"]) == ("clicker", "s3cret-pw")
    assert isinstance(auth["ssl_context"], ssl.SSLContext)


def test_sasl_plaintext_has_no_tls_anywhere(clean_env: pytest.MonkeyPatch) -> None:
    env = {
        **SASL_SSL,
        "CLICKMUNCHER_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "CLICKMUNCHER_KAFKA_SASL_MECHANISM": "PLAIN",
    }
    kafka = env_settings(clean_env, env)
    assert aiokafka_config(kafka)["ssl_context"] is None
    auth = credentials_to_aiokafka_auth(faust_config(kafka)["broker_credentials"])
    assert (auth["security_protocol"], auth["sasl_mechanism"], auth["ssl_context"]) == (
        "SASL_PLAINTEXT",
        "PLAIN",
        None,
    )
    assert faust_config(KafkaSettings())["broker_credentials"] is None

"""The Kafka connection settings (SPEC §10) and the configuration of every kind of client built from them.

This module is the one place that spells the client libraries' connection keys: confluent-kafka (librdkafka)
producers, consumers and admin clients, aiokafka clients, and Faust apps all get their bootstrap servers,
security protocol, SASL credentials and TLS files from one :class:`KafkaSettings`.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from clickmuncher.settings import ConfigError

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
ENV = "CLICKMUNCHER_KAFKA_"
# The client libraries' names for the bootstrap list, spelled here and nowhere else.
BOOTSTRAP_SERVERS = "bootstrap.servers"  # librdkafka
AIOKAFKA_BOOTSTRAP_SERVERS = "bootstrap_servers"  # aiokafka's keyword argument


@dataclass(frozen=True)
class KafkaSettings:
    """Where the cluster is and how to authenticate to it; validated on construction.

    Raises :class:`ConfigError` (one line, naming the ``CLICKMUNCHER_KAFKA_*`` variable) for an unknown
    protocol or mechanism, SASL without a mechanism or credentials, SASL or TLS settings that the protocol
    would ignore, a client certificate without its key, or a file that does not exist.
    """

    bootstrap: str = "127.0.0.1:9092"
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = field(default=None, repr=False)
    ssl_ca_file: Path | None = None
    ssl_cert_file: Path | None = None
    ssl_key_file: Path | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "security_protocol", self.security_protocol.strip().upper())
        if self.sasl_mechanism is not None:
            object.__setattr__(self, "sasl_mechanism", self.sasl_mechanism.strip().upper())
        _check_bootstrap(self.bootstrap)
        _check_choice("SECURITY_PROTOCOL", self.security_protocol, PROTOCOLS)
        if self.sasl_mechanism is not None:
            _check_choice("SASL_MECHANISM", self.sasl_mechanism, MECHANISMS)
        self._check_sasl()
        self._check_tls()

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol.endswith("SSL")

    @property
    def servers(self) -> list[str]:
        return [server.strip() for server in self.bootstrap.split(",") if server.strip()]

    def password(self) -> str | None:
        return None if self.sasl_password is None else self.sasl_password.get_secret_value()

    def masked(self) -> dict[str, str]:
        """The settings for a start line: the password as ``***``, unset values as ``-``."""
        shown = {
            "bootstrap": self.bootstrap,
            "security_protocol": self.security_protocol,
            "sasl_mechanism": self.sasl_mechanism,
            "sasl_username": self.sasl_username,
            "sasl_password": None if self.sasl_password is None else "***",
            "ssl_ca_file": self.ssl_ca_file,
            "ssl_cert_file": self.ssl_cert_file,
            "ssl_key_file": self.ssl_key_file,
        }
        return {f"kafka_{key}": "-" if value is None else str(value) for key, value in shown.items()}

    def scrub(self, text: str) -> str:
        """``text`` (a client library's error message, say) with the password replaced by ``***``."""
        secret = self.password()
        return text.replace(secret, "***") if secret else text

    def _check_sasl(self) -> None:
        given = [name for name, value in self._sasl_fields().items() if value is not None]
        if not self.uses_sasl:
            if given:
                raise ConfigError(f"{ENV}{given[0]} is set but {self._protocol_line()} does not use SASL")
            return
        missing = [name for name, value in self._sasl_fields().items() if value is None]
        if missing:
            names = [f"{ENV}{name}" for name in missing]
            wanted = " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)
            raise ConfigError(f"{self._protocol_line()} needs {wanted}")

    def _sasl_fields(self) -> dict[str, object]:
        return {
            "SASL_MECHANISM": self.sasl_mechanism,
            "SASL_USERNAME": self.sasl_username or None,
            "SASL_PASSWORD": self.sasl_password if self.password() else None,
        }

    def _check_tls(self) -> None:
        files = {"SSL_CA_FILE": self.ssl_ca_file, "SSL_CERT_FILE": self.ssl_cert_file}
        files["SSL_KEY_FILE"] = self.ssl_key_file
        given = [name for name, path in files.items() if path is not None]
        if given and not self.uses_tls:
            raise ConfigError(f"{ENV}{given[0]} is set but {self._protocol_line()} does not use TLS")
        if (self.ssl_cert_file is None) != (self.ssl_key_file is None):
            raise ConfigError(f"{ENV}SSL_CERT_FILE and {ENV}SSL_KEY_FILE go together (mutual TLS)")
        for name in given:
            path = files[name]
            if path is not None and not path.is_file():
                raise ConfigError(f"{ENV}{name}: no such file: {path}")

    def _protocol_line(self) -> str:
        return f"{ENV}SECURITY_PROTOCOL={self.security_protocol}"


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{ENV}{name}: {value!r} is not one of {', '.join(choices)}")


def _check_bootstrap(bootstrap: str) -> None:
    servers = [server.strip() for server in bootstrap.split(",") if server.strip()]
    if not servers:
        raise ConfigError(f"{ENV}BOOTSTRAP is empty")
    for server in servers:
        host, sep, port = server.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ConfigError(f"{ENV}BOOTSTRAP: {server!r} is not host:port")


# --- confluent-kafka (librdkafka) ---------------------------------------------------------------------


def _librdkafka(kafka: KafkaSettings) -> dict[str, Any]:
    """The connection part every librdkafka client shares. An unset CA file leaves ``ssl.ca.location``
    unset: the confluent-kafka wheels then probe the system's CA locations."""
    config: dict[str, Any] = {
        BOOTSTRAP_SERVERS: ",".join(kafka.servers),
        "security.protocol": kafka.security_protocol.lower(),
    }
    if kafka.uses_sasl:
        config["sasl.mechanisms"] = kafka.sasl_mechanism
        config["sasl.username"] = kafka.sasl_username
        config["sasl.password"] = kafka.password()
    optional = {
        "ssl.ca.location": kafka.ssl_ca_file,
        "ssl.certificate.location": kafka.ssl_cert_file,
        "ssl.key.location": kafka.ssl_key_file,
    }
    config.update({key: str(path) for key, path in optional.items() if path is not None})
    return config


def producer_config(kafka: KafkaSettings, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A confluent-kafka ``Producer`` config: idempotent with ``acks=all`` unless ``extra`` says otherwise,
    so a record is acknowledged only once ``min.insync.replicas`` replicas have it."""
    return {**_librdkafka(kafka), "enable.idempotence": True, "acks": "all", **(extra or {})}


def consumer_config(
    kafka: KafkaSettings, group_id: str, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """A confluent-kafka ``Consumer`` config in the consumer group ``group_id``."""
    return {**_librdkafka(kafka), "group.id": group_id, **(extra or {})}


def admin_config(kafka: KafkaSettings, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A confluent-kafka ``AdminClient`` config."""
    return {**_librdkafka(kafka), **(extra or {})}


# --- aiokafka and Faust -------------------------------------------------------------------------------


def ssl_context(kafka: KafkaSettings) -> ssl.SSLContext | None:
    """The client TLS context for aiokafka and Faust (None without TLS): the CA file or the system CAs,
    host names checked, and the client certificate and key for mutual TLS."""
    if not kafka.uses_tls:
        return None
    from aiokafka.helpers import create_ssl_context

    try:
        context: ssl.SSLContext = create_ssl_context(
            cafile=kafka.ssl_ca_file, certfile=kafka.ssl_cert_file, keyfile=kafka.ssl_key_file
        )
    except (ssl.SSLError, OSError) as e:
        raise ConfigError(f"{ENV}SSL_* files cannot be loaded: {e}") from e
    return context


def aiokafka_config(kafka: KafkaSettings) -> dict[str, Any]:
    """Keyword arguments for ``AIOKafkaProducer``, ``AIOKafkaConsumer`` and ``AIOKafkaAdminClient``."""
    config: dict[str, Any] = {
        AIOKAFKA_BOOTSTRAP_SERVERS: kafka.servers,
        "security_protocol": kafka.security_protocol,
        "ssl_context": ssl_context(kafka),
    }
    if kafka.uses_sasl:
        config["sasl_mechanism"] = kafka.sasl_mechanism
        config["sasl_plain_username"] = kafka.sasl_username
        config["sasl_plain_password"] = kafka.password()
    return config


def faust_config(kafka: KafkaSettings) -> dict[str, Any]:
    """Keyword arguments for ``faust.App``: ``broker`` URLs and ``broker_credentials``.

    Faust turns its credentials into aiokafka's arguments for every client it makes (consumer, producer,
    topic creation): ``SASLCredentials`` with an ``ssl_context`` is SASL_SSL, without one SASL_PLAINTEXT;
    ``SSLCredentials`` is SSL (with a client certificate when the context holds one).
    """
    import faust

    credentials: Any = None
    context = ssl_context(kafka)
    if kafka.uses_sasl:
        credentials = faust.SASLCredentials(
            username=kafka.sasl_username,
            password=kafka.password(),
            mechanism=kafka.sasl_mechanism,
            ssl_context=context,
        )
    elif context is not None:
        credentials = faust.SSLCredentials(context)
    return {"broker": [f"kafka://{server}" for server in kafka.servers], "broker_credentials": credentials}

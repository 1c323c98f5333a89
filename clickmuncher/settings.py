"""Settings from ``CLICKMUNCHER_*`` environment variables (and a ``.env`` file).

Each service builds one frozen settings object of its own class at its entry point (:class:`GatewaySettings`,
:class:`StreamsSettings`, :class:`SinkSettings`, :class:`ApiSettings`: the shared :class:`CommonSettings` plus
its own fields, so it sees and prints only those) and passes it down; the command line's tools and the local
stack use :class:`Settings`, all of them. No other module reads ``os.environ``. Units are in the names:
``*_s`` seconds, ``*_ms`` milliseconds.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Self, TypeVar

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

if TYPE_CHECKING:
    from clickmuncher.kafka.config import KafkaSettings


S = TypeVar("S", bound="CommonSettings")


class ConfigError(ValueError):
    """Bad configuration: the CLI prints the message as one line and exits non-zero."""


def _split_csv(raw: Any) -> Any:
    if isinstance(raw, str):
        return [part.strip() for part in raw.split(",") if part.strip()]
    return raw


class CommonSettings(BaseSettings):
    """What every service shares: the Kafka connection, the pipeline's topics and windows, the state dir."""

    model_config = SettingsConfigDict(
        env_prefix="CLICKMUNCHER_", env_file=".env", extra="ignore", frozen=True
    )

    kafka_bootstrap: str = "127.0.0.1:9092"
    # Kafka security and the replication of the topics the project creates (SPEC §10). Every Kafka client is
    # built from `settings.kafka` (clickmuncher/kafka/config.py), which checks these fields together; unset
    # replication settings mean the cluster's defaults.
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_ca_file: Path | None = None
    kafka_ssl_cert_file: Path | None = None
    kafka_ssl_key_file: Path | None = None
    replication_factor: int | None = Field(default=None, ge=1)
    min_insync_replicas: int | None = Field(default=None, ge=1)
    # The pipeline's topics (the streams app id names the table's changelog) and windows.
    clicks_topic: str = "clicks"
    windows_topic: str = "click-windows"
    live_topic: str = "click-windows-live"
    partitions: int = Field(default=8, ge=1)
    streams_app_id: str = "clickmuncher-streams"
    window_s: int = Field(default=1800, ge=1)
    grace_s: int = Field(default=30, ge=0)
    late_retention_s: int | None = Field(default=None, ge=0)
    state_dir: Path = Path(".clickmuncher")
    # How often the streams worker publishes live counts of open windows (0: never); the api polls as often.
    live_every_s: float = Field(default=5.0, ge=0)

    @model_validator(mode="after")
    def _kafka_settings_valid(self) -> Self:
        _ = self.kafka  # raises ConfigError, which load_settings passes on as it is
        return self

    @property
    def kafka(self) -> KafkaSettings:
        """The Kafka connection settings every client is built from (made afresh on each use, so a
        ``model_copy`` never carries a stale one)."""
        from clickmuncher.kafka.config import KafkaSettings

        return KafkaSettings(
            bootstrap=self.kafka_bootstrap,
            security_protocol=self.kafka_security_protocol,
            sasl_mechanism=self.kafka_sasl_mechanism,
            sasl_username=self.kafka_sasl_username,
            sasl_password=self.kafka_sasl_password,
            ssl_ca_file=self.kafka_ssl_ca_file,
            ssl_cert_file=self.kafka_ssl_cert_file,
            ssl_key_file=self.kafka_ssl_key_file,
        )

    @property
    def clicks_dead_topic(self) -> str:
        return f"{self.clicks_topic}-dead"

    @property
    def clicks_late_topic(self) -> str:
        return f"{self.clicks_topic}-late"

    @property
    def windows_dead_topic(self) -> str:
        return f"{self.windows_topic}-dead"

    @property
    def effective_late_retention_s(self) -> int:
        """How long after its close a window still accepts late clicks (default: one window)."""
        return self.window_s if self.late_retention_s is None else self.late_retention_s

    def masked(self) -> dict[str, str]:
        """The effective settings for the start line (this class's fields only), secrets masked."""
        shown: dict[str, str] = {}
        for name, value in self.model_dump().items():
            if isinstance(value, SecretStr):
                shown[name] = "***"
            elif value is None:
                shown[name] = "-"
            elif isinstance(value, list):
                shown[name] = ",".join(str(v) for v in value) or "-"
            elif name == "database_url":
                shown[name] = mask_url_password(str(value))
            else:
                shown[name] = str(value)
        return shown


class GatewaySettings(CommonSettings):
    signing_key: SecretStr | None = None
    allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # clicks the producer holds in memory before new ones go to the disk spool (also the kill -9 loss bound),
    # its linger (50 ms: far less producer and broker work per click than 5 ms, docs/gateway.md), and how long
    # SIGTERM waits for Kafka before spooling what is left.
    gateway_queue_max_messages: int = Field(default=10_000, ge=1)
    gateway_linger_ms: int = Field(default=50, ge=0)
    gateway_drain_timeout_s: float = Field(default=5.0, ge=0)
    # hardening (docs/gateway.md): retired signing keys still verified (comma list, a secret), the spool's
    # size cap, the HTTP server's limits (time to send a request's head, idle keep-alive, open connections per
    # process), the metrics listener (0: none; worker i of --workers N listens on port + i), normalization +
    # signature verdicts cached per process, and uvloop when it is installed.
    signing_keys_old: SecretStr | None = None
    gateway_spool_max_bytes: int = Field(default=1 << 30, ge=1)
    gateway_header_timeout_s: float = Field(default=10.0, gt=0)
    gateway_keepalive_timeout_s: float = Field(default=75.0, gt=0)
    gateway_max_connections: int = Field(default=1000, ge=1)
    gateway_metrics_port: int = Field(default=9100, ge=0, le=65535)
    gateway_verdict_cache: int = Field(default=10_000, ge=0)
    gateway_uvloop: bool = True
    # click classes and unique visitors (SPEC §12, docs/gateway.md): the secret visitor ids are keyed with
    # (unset: derived from the signing key; the gateway refuses to start with neither), and how many
    # User-Agents' classes each gateway process caches.
    visitor_key: SecretStr | None = None
    gateway_agent_cache: int = Field(default=10_000, ge=0)

    @field_validator("allowed_hosts", "trusted_proxies", mode="before")
    @classmethod
    def _csv(cls, raw: Any) -> Any:
        return _split_csv(raw)

    @field_validator("trusted_proxies")
    @classmethod
    def _cidrs(cls, cidrs: list[str]) -> list[str]:
        for cidr in cidrs:
            ipaddress.ip_network(cidr, strict=False)
        return cidrs


class StreamsSettings(CommonSettings):
    # table store URL ("rocksdb://" or "memory://"), Prometheus port (0: off), how long a caught-up partition
    # stays silent before its watermark follows the wall clock, how far ahead of the wall clock a click
    # timestamp may be before it is dead-lettered, and the consumer group session timeout.
    streams_store: str = "rocksdb://"
    streams_metrics_port: int = Field(default=9101, ge=0)
    streams_idle_s: float = Field(default=2.0, gt=0)
    streams_max_future_s: int = Field(default=300, ge=0)
    streams_session_timeout_s: float = Field(default=30.0, ge=6)


class SinkSettings(CommonSettings):
    database_url: str = "sqlite:///clickmuncher.db"
    sink_group: str = "clickmuncher-sink"
    sink_batch_size: int = Field(default=500, ge=1, le=5000)
    sink_poll_timeout_s: float = Field(default=1.0, gt=0)
    sink_session_timeout_s: float = Field(default=45.0, ge=6)
    sink_retry_max_s: float = Field(default=30.0, gt=0)
    sink_metrics_port: int = Field(default=9102, ge=0, le=65535)
    sink_crash_after_db_commit: bool = False
    sink_crash_after_dead_letters: bool = False


class ApiSettings(CommonSettings):
    # the api's port, how long after its end a live window is kept while the database has no final row for
    # it, and how many live entries the api holds at most (the oldest windows go first)
    database_url: str = "sqlite:///clickmuncher.db"
    api_port: int = Field(default=8090, ge=0, le=65535)
    api_live_retention_s: int = Field(default=3600, ge=0)
    api_live_max_entries: int = Field(default=1_000_000, ge=1)


class Settings(GatewaySettings, StreamsSettings, SinkSettings, ApiSettings):
    """Every setting: for the command line's tools and the local stack, which start all the services."""


def mask_url_password(url: str) -> str:
    """``postgresql://u:secret@h/db`` → ``postgresql://u:***@h/db``."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    creds, _, host = rest.rpartition("@")
    if ":" not in creds:
        return url
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"


def load_settings(kind: type[S], **overrides: Any) -> S:
    """Builds a service's settings (``kind``: its class, or :class:`Settings` for every setting) from the
    environment, turning validation errors into one-line :class:`ConfigError`."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    try:
        return kind(**overrides)
    except SettingsError as e:
        raise ConfigError(str(e)) from e
    except ValidationError as e:
        first = e.errors()[0]
        cause = first.get("ctx", {}).get("error")
        if isinstance(cause, ConfigError):  # a check across fields, already one line
            raise cause from e
        field = ".".join(str(p) for p in first["loc"]) or "settings"
        raise ConfigError(f"CLICKMUNCHER_{field.upper()}: {first['msg']}") from e

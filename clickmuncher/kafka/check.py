"""The check a service makes at start: can it reach the cluster and is it let in (SPEC §10)?

Clients retry forever on their own, so without this a wrong password or CA would look like a Kafka outage:
a service that never gets going, logging the same connection error. The check tells the three apart in one
line within ``timeout_s``: rejected credentials and an untrusted certificate at the first answer, an
unreachable cluster when the time is up.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from typing import Any

from clickmuncher.kafka.config import ENV, KafkaSettings, admin_config
from clickmuncher.settings import CommonSettings, ConfigError

log = logging.getLogger("clickmuncher.kafka")
START_CHECK_TIMEOUT_S = 30.0
TOPICS_TIMEOUT_S = 20.0  # after the check: the cluster answered, so creating and describing topics is quick
# librdkafka's error texts: "<proto>://<host:port>/<id>: <text> (after Nms in state X...)".
_ORIGIN = re.compile(r"^\w+://(?P<broker>[^/\s]+)/\S*: ")
_AFTER = re.compile(r" \(after \d+ms in state \w+.*\)$")


class KafkaUnavailable(ConfigError):
    """The cluster cannot be used with these settings; the message is one line, secrets scrubbed."""


@dataclass(frozen=True)
class ClusterInfo:
    cluster_id: str | None
    brokers: int


def check_cluster(kafka: KafkaSettings, timeout_s: float = START_CHECK_TIMEOUT_S) -> ClusterInfo:
    """Returns once a broker answers a metadata request with these settings.

    Raises :class:`KafkaUnavailable`: at once when a broker rejects the SASL credentials or the TLS handshake
    fails (an untrusted certificate, most often); after ``timeout_s`` when no broker could be reached.
    """
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient

    errors: list[Any] = []
    admin = AdminClient(admin_config(kafka, {"error_cb": errors.append, "log_level": 0}))
    deadline = time.monotonic() + timeout_s
    while True:
        remaining = deadline - time.monotonic()
        try:
            metadata = admin.list_topics(timeout=max(0.1, min(1.0, remaining)))
            if metadata.brokers:
                return ClusterInfo(metadata.cluster_id, len(metadata.brokers))
        except KafkaException as e:
            errors.append(e.args[0])
        admin.poll(0)  # serves error_cb
        for error in errors:
            if error.code() in (KafkaError._AUTHENTICATION, KafkaError._SSL):
                raise KafkaUnavailable(kafka.scrub(refusal(error, kafka)))
        if remaining <= 0:
            raise KafkaUnavailable(kafka.scrub(unreachable(errors, kafka, timeout_s)))


def unreachable(errors: list[Any], kafka: KafkaSettings, timeout_s: float) -> str:
    """One line for a cluster that did not answer: the last connection error librdkafka reported."""
    from confluent_kafka import KafkaError

    reported = [e for e in errors if e.code() == KafkaError._TRANSPORT and _broker(e)]
    # Connections were accepted but never answered: most often a listener of another protocol.
    last = (
        _text(reported[-1])
        if reported
        else f"no answer; is {kafka.security_protocol} the listener's protocol?"
    )
    return f"no Kafka broker reachable at {kafka.bootstrap} within {timeout_s:.0f}s: {last}"


def refusal(error: Any, kafka: KafkaSettings) -> str:
    """One line for an authentication or TLS error of librdkafka."""
    from confluent_kafka import KafkaError

    broker = _broker(error) or kafka.bootstrap
    text = _text(error)
    if error.code() == KafkaError._AUTHENTICATION:
        return (
            f"SASL authentication failed at {broker} for user {kafka.sasl_username!r} "
            f"({kafka.sasl_mechanism}): check {ENV}SASL_USERNAME and {ENV}SASL_PASSWORD ({text})"
        )
    if "certificate verify failed" in text:
        trust = f"{ENV}SSL_CA_FILE={kafka.ssl_ca_file}" if kafka.ssl_ca_file else "the system's CAs"
        return f"SSL handshake failed at {broker}: its certificate is not trusted by {trust} ({text})"
    return f"SSL handshake failed at {broker}: {text}"


def _broker(error: Any) -> str | None:
    match = _ORIGIN.match(error.str())
    return match.group("broker") if match else None


def _text(error: Any) -> str:
    """The error's text without librdkafka's origin prefix and timing suffix, on one line."""
    text = _AFTER.sub("", _ORIGIN.sub("", error.str()))
    return " ".join(text.split())


def check_at_start(settings: CommonSettings, service: str) -> ClusterInfo:
    """What every service does at start, before it opens its own clients: the cluster lets it in
    (:func:`check_cluster`), then each of its topics exists as declared (:func:`ensure_topics_at_start`).
    Raises :class:`ConfigError` with one line (secrets scrubbed), so the service exits non-zero instead of
    retrying forever: within about ``START_CHECK_TIMEOUT_S`` when no broker answers, at the first answer for
    rejected credentials or an untrusted certificate."""
    info = check_cluster(settings.kafka)
    ensure_topics_at_start(settings, service, info)
    return info


def ensure_topics_at_start(settings: CommonSettings, service: str, info: ClusterInfo) -> None:
    """``ensure_service_topics`` (creates the service's missing topics, refuses a misconfigured one) with
    its failures as one line, then the service's line saying the cluster and its topics are fine."""
    from confluent_kafka import KafkaException

    from clickmuncher.kafka.topics import ensure_service_topics

    try:
        created = ensure_service_topics(settings, service, timeout_s=TOPICS_TIMEOUT_S)
    except (KafkaException, TimeoutError) as e:
        text = e.args[0].str() if isinstance(e, KafkaException) else str(e)
        raise KafkaUnavailable(settings.kafka.scrub(f"{service}: cannot ensure its topics: {text}")) from e
    log.info(
        "%s: Kafka cluster %s answers with %d brokers; topics as declared%s",
        service,
        info.cluster_id or "-",
        info.brokers,
        f" (created {', '.join(created)})" if created else "",
    )

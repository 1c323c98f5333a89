"""Health of the streams worker and the sink, on their metrics port, and the ``--check`` that asks it.

``/metrics`` serves the service's Prometheus registry, ``/healthz`` says whether the process is alive (a
liveness probe restarts it on 503), ``/readyz`` whether it does its work now: connected to the cluster and
consuming (503 with the reason otherwise; outages make it 503, never ``/healthz``). Each answer is one line
of text. The server runs in a daemon thread, so it answers while the service's own loop waits on Kafka or
the database; what it reports comes from plain attributes the loop sets, and from :class:`ClusterProbe`.
"""

from __future__ import annotations

import http.client
import logging
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from clickmuncher.kafka.config import KafkaSettings, admin_config
from clickmuncher.settings import ConfigError

log = logging.getLogger("clickmuncher.health")
Probe = Callable[[], str | None]  # None: fine; otherwise why not, in one line
CHECK_TIMEOUT_S = 5.0
EXIT_NOT_READY = 1


class HealthServer:
    """``/metrics``, ``/healthz`` and ``/readyz`` on ``port`` (all interfaces), from :meth:`start` on."""

    def __init__(
        self, port: int, registry: CollectorRegistry, *, alive: Probe, ready: Probe, setting: str
    ) -> None:
        self.port = port
        self.registry = registry
        self.alive = alive
        self.ready = ready
        self.setting = setting  # the variable that names the port, for the error line
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        """Raises :class:`ConfigError` (one line) when the port cannot be listened on."""
        try:
            self._server = ThreadingHTTPServer(("0.0.0.0", self.port), _handler(self))
        except OSError as e:
            raise ConfigError(f"{self.setting}: cannot listen on {self.port}: {e.strerror}") from e
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="health", daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def answer(self, path: str) -> tuple[int, str, bytes]:
        """(status, content type, body) for a GET of ``path``."""
        if path == "/metrics":
            return 200, CONTENT_TYPE_LATEST, generate_latest(self.registry)
        probes = {"/healthz": (self.alive, "ok"), "/readyz": (self.ready, "ready")}
        if path not in probes:
            return 404, "text/plain", b"not found: /metrics, /healthz and /readyz are served here\n"
        probe, fine = probes[path]
        try:
            problem = probe()
        except Exception as e:  # a probe that fails says so; it never takes the server down
            problem = f"health probe failed: {type(e).__name__}: {e}"
        status = 200 if problem is None else 503
        return status, "text/plain; charset=utf-8", f"{problem or fine}\n".encode()


def serve(port: int, registry: CollectorRegistry, alive: Probe, ready: Probe, setting: str) -> None:
    """Starts a :class:`HealthServer` on ``port`` for the rest of the process; 0 serves nothing."""
    if port > 0:
        HealthServer(port, registry, alive=alive, ready=ready, setting=setting).start()


def _handler(server: HealthServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, content_type, body = server.answer(self.path.split("?", 1)[0])
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # probes every few seconds would drown the service's log

    return Handler


class ClusterProbe:
    """Whether the cluster answers a metadata request, from an admin client of its own: asked at most once
    per ``every_s`` (the answer is kept in between), each time waiting up to ``timeout_s``."""

    def __init__(self, kafka: KafkaSettings, every_s: float = 5.0, timeout_s: float = 2.0) -> None:
        self.kafka = kafka
        self.every_s = every_s
        self.timeout_s = timeout_s
        self._admin: Any = None
        self._lock = threading.Lock()
        self._asked = -float("inf")
        self._problem: str | None = None

    def __call__(self) -> str | None:
        with self._lock:
            if time.monotonic() - self._asked >= self.every_s:
                self._problem = self._ask()
                self._asked = time.monotonic()
            return self._problem

    def _ask(self) -> str | None:
        from confluent_kafka.admin import AdminClient

        if self._admin is None:
            self._admin = AdminClient(admin_config(self.kafka, {"log_level": 0}))
        try:
            brokers = self._admin.list_topics(timeout=self.timeout_s).brokers
        except Exception as e:
            return self.kafka.scrub(f"Kafka cluster at {self.kafka.bootstrap} does not answer: {e}")
        return None if brokers else f"Kafka cluster at {self.kafka.bootstrap} lists no broker"


def check(service: str, port: int, setting: str) -> int:
    """``--check``: asks the instance serving on 127.0.0.1:``port`` whether it is ready; prints its one-line
    answer and returns the exit code (0 ready, :data:`EXIT_NOT_READY` otherwise)."""
    if port <= 0:
        raise ConfigError(f"{service} --check needs {setting} (0 serves no health endpoints)")
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=CHECK_TIMEOUT_S)
    try:
        connection.request("GET", "/readyz")
        response = connection.getresponse()
        text = response.read().decode(errors="replace").strip()
        status = response.status
    except (OSError, http.client.HTTPException) as e:
        text, status = f"no {service} answers on 127.0.0.1:{port} ({e})", 0
    finally:
        connection.close()
    print(f"{service}: {text}", flush=True)
    return 0 if status == 200 else EXIT_NOT_READY

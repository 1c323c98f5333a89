"""Running the real services as subprocesses, behind a real nginx, for end-to-end tests."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from clickmuncher.devstack.kafka.broker import free_port

SIGNING_KEY = "e2e-signing-key-of-at-least-32-bytes"  # the gateway refuses keys under 32 bytes


@dataclass
class Pipeline:
    """Environment and processes of one test's pipeline; every name in it is unique to the test."""

    bootstrap: str
    database_url: str
    suffix: str
    work_dir: Path
    extra_env: Mapping[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    env_by_name: dict[str, dict[str, str]] = field(default_factory=dict)  # one process's own settings

    def env(self, name: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "CLICKMUNCHER_KAFKA_BOOTSTRAP": self.bootstrap,
                "CLICKMUNCHER_DATABASE_URL": self.database_url,
                "CLICKMUNCHER_CLICKS_TOPIC": f"clicks-{self.suffix}",
                "CLICKMUNCHER_WINDOWS_TOPIC": f"click-windows-{self.suffix}",
                "CLICKMUNCHER_STREAMS_APP_ID": f"streams-{self.suffix}",
                "CLICKMUNCHER_SINK_GROUP": f"sink-{self.suffix}",
                "CLICKMUNCHER_PARTITIONS": "8",
                "CLICKMUNCHER_WINDOW_S": "2",
                "CLICKMUNCHER_GRACE_S": "1",
                # The broker outage of the fault test lasts several 2 s windows; clicks the gateways held
                # meanwhile arrive late and correct their windows (revision + 1) within this retention.
                "CLICKMUNCHER_LATE_RETENTION_S": "120",
                "CLICKMUNCHER_SIGNING_KEY": SIGNING_KEY,
                "CLICKMUNCHER_TRUSTED_PROXIES": "127.0.0.1/32",
                "CLICKMUNCHER_STATE_DIR": str(self.work_dir / name),
                "CLICKMUNCHER_STREAMS_METRICS_PORT": "0",
                "CLICKMUNCHER_SINK_METRICS_PORT": "0",
                "CLICKMUNCHER_GATEWAY_METRICS_PORT": "0",  # two gateways on one host: no fixed port
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.extra_env)
        env.update(self.env_by_name.get(name, {}))
        return env

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        """Starts ``clickmuncher <args>`` as ``name``; its output goes to ``<work_dir>/<name>.log``."""
        old = self.processes.get(name)
        assert old is None or old.poll() is not None, f"{name} is still running"
        log = open(self.work_dir / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
        process = subprocess.Popen(
            [sys.executable, "-m", "clickmuncher.cli", *args],
            env=self.env(name),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        self.processes[name] = process
        return process

    def start_one_of_each(self, port: int) -> None:
        """A sink, a streams worker and a gateway on ``port`` (once it listens)."""
        self.start("sink", "sink")
        self.start("streams-1", "streams")
        self.start("gateway-1", "gateway", "--host", "127.0.0.1", "--port", str(port))
        wait_for_port(port)

    def kill(self, name: str) -> None:
        process = self.processes[name]
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)

    def terminate(self, name: str, timeout_s: float = 60) -> int:
        process = self.processes[name]
        process.send_signal(signal.SIGTERM)
        return process.wait(timeout=timeout_s)

    def alive(self, name: str) -> bool:
        return self.processes[name].poll() is None

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.work_dir / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def pipeline(
    bootstrap: str, database_url: str, suffix: str, extra_env: Mapping[str, str] | None = None
) -> Iterator[Pipeline]:
    work_dir = Path(tempfile.mkdtemp(prefix=f"cm-e2e-{suffix}-"))
    running = Pipeline(bootstrap, database_url, suffix, work_dir, dict(extra_env or {}))
    try:
        yield running
    finally:
        running.stop_all()


NGINX_CONF = """\
daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream gateways {{
{servers}
        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://gateways;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_next_upstream error;
        }}
    }}
}}
"""


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if found is None:
        raise RuntimeError("nginx not found (apt-get install -y nginx-light)")
    return found


@contextmanager
def nginx(upstream_ports: list[int]) -> Iterator[int]:
    """Runs nginx on a free port, round-robin over the gateways; yields its port."""
    work_dir = Path(tempfile.mkdtemp(prefix="cm-nginx-"))
    port = free_port()
    servers = "\n".join(f"        server 127.0.0.1:{p} max_fails=0;" for p in upstream_ports)
    conf = work_dir / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=work_dir, port=port, servers=servers))
    process = subprocess.Popen(
        [nginx_binary(), "-c", str(conf), "-p", str(work_dir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def wait_for_port(port: int, timeout_s: float = 60) -> None:
    import socket

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def gateway_port() -> int:
    return free_port()

"""``clickmuncher up``: the whole pipeline on this machine, as child processes with prefixed logs.

Starts the local broker when none answers at the bootstrap address, creates the topics, keeps a development
signing key in the state directory when none is configured, then runs sink, api, streams and gateway and
prints the address of the api's page. Ctrl-C (or
SIGTERM) stops every child; a child that exits on its own is reported and stops the rest.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr

from clickmuncher.devstack.kafka import broker
from clickmuncher.health import ClusterProbe
from clickmuncher.kafka.check import check_cluster
from clickmuncher.kafka.config import KafkaSettings
from clickmuncher.settings import Settings

SERVICES = ("sink", "api", "streams", "gateway")  # start order; stopped in reverse
STOP_TIMEOUT_S = 20.0
BROKER_PROBE_S = 3.0  # whether a broker answers at the bootstrap address before one is started there


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    pump: threading.Thread = field(init=False)

    def __post_init__(self) -> None:
        self.pump = threading.Thread(target=self._copy_output, daemon=True)
        self.pump.start()

    def _copy_output(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            line = raw.decode(errors="replace").rstrip()
            print(f"{self.name:<8}| {line}", flush=True)


def dev_signing_key(state_dir: Path, name: str = "signing.key") -> str:
    """The development signing key kept in ``state_dir/signing.key`` (or another secret, in ``name``); made
    on first use."""
    path = state_dir / name
    if path.exists():
        return path.read_text().strip()
    state_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    path.write_text(key + "\n")
    path.chmod(0o600)
    return key


def local_broker_port(bootstrap: str) -> int | None:
    """The port of a bootstrap address this machine can serve itself, else None."""
    host, _, port = bootstrap.partition(":")
    if "," in bootstrap or host not in ("127.0.0.1", "localhost") or not port.isdigit():
        return None
    return int(port)


def broker_answers(kafka: KafkaSettings) -> bool:
    return ClusterProbe(kafka, timeout_s=BROKER_PROBE_S)() is None


def ensure_broker(settings: Settings) -> Path | None:
    """Starts the local broker if none answers; returns its data dir when this call started it.

    A cluster that is not a local plaintext broker is never started here: then the start check says in one
    line why it cannot be used (unreachable, wrong password, untrusted certificate)."""
    port = local_broker_port(settings.kafka_bootstrap)
    if port is None or settings.kafka.security_protocol != "PLAINTEXT" or broker_answers(settings.kafka):
        check_cluster(settings.kafka)  # raises KafkaUnavailable with the reason
        print(f"up: using the Kafka cluster at {settings.kafka_bootstrap}", flush=True)
        return None
    data_dir = broker.default_data_dir(settings.state_dir)
    print(f"up: starting a local Kafka broker on 127.0.0.1:{port} ({data_dir})", flush=True)
    broker.start(data_dir, port=port)
    return data_dir


def child_env(settings: Settings, signing_key: str | None, visitor_key: str | None = None) -> dict[str, str]:
    env = dict(os.environ)
    if signing_key is not None:
        env["CLICKMUNCHER_SIGNING_KEY"] = signing_key
    if visitor_key is not None:
        env["CLICKMUNCHER_VISITOR_KEY"] = visitor_key
    env["PYTHONUNBUFFERED"] = "1"
    return env


def start_children(env: dict[str, str], gateway_port: int, api_port: int) -> list[Child]:
    commands = {
        "streams": ["streams"],
        "sink": ["sink"],
        "api": ["api", "--host", "127.0.0.1", "--port", str(api_port)],
        "gateway": ["gateway", "--host", "127.0.0.1", "--port", str(gateway_port)],
    }
    children = []
    for name in SERVICES:
        command = [sys.executable, "-m", "clickmuncher.cli", *commands[name]]
        # Own process groups: Ctrl-C reaches only this supervisor, which stops the children in order.
        process = subprocess.Popen(
            command,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            process_group=0,
        )
        children.append(Child(name, process))
    return children


def stop_children(children: list[Child]) -> None:
    """SIGTERM one by one in reverse start order: the gateway hands over its clicks first, the sink stops
    last, so what the others flushed on the way out is still written."""
    for child in reversed(children):
        asked = time.monotonic()
        if child.process.poll() is None:
            child.process.send_signal(signal.SIGTERM)
        try:
            code = child.process.wait(timeout=STOP_TIMEOUT_S)
            print(f"up: {child.name} stopped (exit {code}) in {time.monotonic() - asked:.1f}s", flush=True)
        except subprocess.TimeoutExpired:
            print(f"up: {child.name} did not stop in {STOP_TIMEOUT_S:.0f}s; killing it", flush=True)
            child.process.kill()
            child.process.wait()
        child.pump.join(timeout=2)


class StopRequested(Exception):
    """Raised in the main thread by the SIGTERM handler so the stack shuts down like on Ctrl-C."""


def _request_stop(signum: int, frame: object) -> None:
    raise StopRequested


def run_stack(settings: Settings, *, demo: bool, gateway_port: int, api_port: int) -> None:
    from clickmuncher.devstack.setup import create_topics, print_examples
    from clickmuncher.logs import start_line

    key = None
    if settings.signing_key is None and not settings.allowed_hosts:
        key = dev_signing_key(settings.state_dir)
        settings = settings.model_copy(update={"signing_key": SecretStr(key)})
    # Allow-listed hosts and no key at all: visitor ids still need a secret (docs/gateway.md).
    visitors = None
    if settings.signing_key is None and settings.visitor_key is None:
        visitors = dev_signing_key(settings.state_dir, "visitor.key")
    print(start_line("up", settings, gateway_port=gateway_port, api_port=api_port, demo=demo), flush=True)
    started_broker = ensure_broker(settings)
    create_topics(settings)
    children = start_children(child_env(settings, key, visitors), gateway_port, api_port)
    signal.signal(signal.SIGTERM, _request_stop)
    exit_code = 0
    try:
        base = f"http://127.0.0.1:{gateway_port}/"
        page = f"http://127.0.0.1:{api_port}/"
        print_examples(settings, base)
        print(f"up: the page, with top URLs and live counts: {page}", flush=True)
        exit_code = supervise(children, settings, (base, page) if demo else None)
    except (KeyboardInterrupt, StopRequested):
        print("\nup: stopping", flush=True)
    finally:
        stop_children(children)
        if started_broker is not None:
            broker.stop(started_broker)
        print("up: stopped", flush=True)
    if exit_code:
        sys.exit(exit_code)


def supervise(children: list[Child], settings: Settings, demo_bases: tuple[str, str] | None) -> int:
    """Waits until a child exits (reported, returns 1) or the user stops the stack; with ``demo_bases``
    (the gateway's and the api's addresses) it also runs the demo."""
    demo = None
    if demo_bases is not None:
        from clickmuncher.devstack.demo import Demo

        demo = Demo(settings, *demo_bases)
    while True:
        for child in children:
            code = child.process.poll()
            if code is not None:
                print(f"up: {child.name} exited with code {code}; stopping the others", flush=True)
                return 1
        if demo is not None:
            demo.step()
        time.sleep(0.5)

"""Starting, stopping and inspecting one local KRaft broker whose files all live in one data directory.

Layout of ``data_dir``: ``server.properties``, ``log/`` (the broker's log.dirs), ``logs/server.log``,
``stdout.log``, ``broker.pid``. A data directory holds one cluster for its whole life: a restart reuses its
properties and storage, so a stopped broker comes back with its topics and offsets.
"""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from clickmuncher.kafka.jars import BrokerError, classpath, ensure_jars, require_tool

JVM_OPTS = [
    "-Xms256m",
    "-Xmx512m",
    "-server",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-XX:MaxInlineLevel=15",
    "-Djava.awt.headless=true",
    "-XX:TieredStopAtLevel=1",
]
START_TIMEOUT_S = 90.0

PROPERTIES = """\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller_port}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs={log_dir}
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.cleaner.dedupe.buffer.size=2097152
log.cleaner.backoff.ms=2000
num.network.threads=2
num.io.threads=2
auto.create.topics.enable=false
"""


@dataclass(frozen=True)
class BrokerInfo:
    data_dir: Path
    port: int
    pid: int | None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.pid is not None


def default_data_dir(state_dir: Path) -> Path:
    return state_dir / "kafka"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_taken(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _cluster_id() -> str:
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def _read_properties(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs}


def _broker_pid(data_dir: Path) -> int | None:
    """The pid in ``broker.pid`` if that process is alive and is this data dir's broker."""
    pid_file = data_dir / "broker.pid"
    try:
        pid = int(pid_file.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except (OSError, ValueError):
        return None
    if "kafka.Kafka" not in cmdline or str(data_dir.resolve()) not in cmdline:
        return None
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return None
    return None if state == "Z" else pid


def status(data_dir: Path) -> BrokerInfo:
    data_dir = data_dir.resolve()
    props_path = data_dir / "server.properties"
    port = 0
    if props_path.exists():
        port = int(_read_properties(props_path)["advertised.listeners"].rsplit(":", 1)[1])
    return BrokerInfo(data_dir=data_dir, port=port, pid=_broker_pid(data_dir))


def _write_properties(data_dir: Path, port: int) -> Path:
    props_path = data_dir / "server.properties"
    if props_path.exists():
        controller_port = int(_read_properties(props_path)["controller.quorum.voters"].rsplit(":", 1)[1])
        if port_taken(controller_port):
            controller_port = free_port()
    else:
        controller_port = free_port()
    text = PROPERTIES.format(port=port, controller_port=controller_port, log_dir=data_dir / "log")
    props_path.write_text(text)
    return props_path


def _format_storage(libs: Path, data_dir: Path, props_path: Path) -> None:
    if (data_dir / "log" / "meta.properties").exists():
        return
    command = [
        require_tool("java"),
        "-cp",
        classpath(libs),
        "kafka.tools.StorageTool",
        "format",
        "-t",
        _cluster_id(),
        "-c",
        str(props_path),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        reason = (result.stderr or result.stdout).strip().splitlines()
        raise BrokerError(f"formatting Kafka storage failed: {reason[-1] if reason else result.returncode}")


def _wait_ready(process: subprocess.Popen[bytes], info: BrokerInfo, timeout_s: float) -> None:
    from confluent_kafka.admin import AdminClient

    deadline = time.monotonic() + timeout_s
    admin = AdminClient({"bootstrap.servers": info.bootstrap, "log_level": 0})
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = info.data_dir / "stdout.log"
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
            raise BrokerError(
                f"Kafka exited during start (code {process.returncode}): "
                f"{tail[0] if tail else 'see ' + str(log)}"
            )
        try:
            admin.list_topics(timeout=1.0)
            return
        except Exception:
            time.sleep(0.2)
    stop(info.data_dir)
    raise BrokerError(f"Kafka did not answer a metadata request within {timeout_s:.0f}s")


def start(
    data_dir: Path, port: int = 9092, *, quiet: bool = False, timeout_s: float = START_TIMEOUT_S
) -> BrokerInfo:
    """Starts the broker in the background and returns once it answers a metadata request.

    Raises :class:`BrokerError` when Java or Maven is missing, the port is taken, or the broker exits.
    """
    data_dir = data_dir.resolve()
    current = status(data_dir)
    if current.running:
        return current
    if port_taken(port):
        raise BrokerError(f"port 127.0.0.1:{port} is already taken (another broker? try --port)")
    libs = ensure_jars(quiet=quiet)
    (data_dir / "logs").mkdir(parents=True, exist_ok=True)
    props_path = _write_properties(data_dir, port)
    _format_storage(libs, data_dir, props_path)
    log4j = resources.files("clickmuncher.kafka").joinpath("log4j2.yaml")
    command = [
        require_tool("java"),
        *JVM_OPTS,
        f"-Dlog4j2.configurationFile={log4j}",
        f"-Dkafka.logs.dir={data_dir / 'logs'}",
        f"-Dclickmuncher.data.dir={data_dir}",
        "-cp",
        classpath(libs),
        "kafka.Kafka",
        str(props_path),
    ]
    with open(data_dir / "stdout.log", "ab") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    (data_dir / "broker.pid").write_text(str(process.pid))
    info = BrokerInfo(data_dir=data_dir, port=port, pid=process.pid)
    _wait_ready(process, info, timeout_s)
    return info


def stop(data_dir: Path, *, timeout_s: float = 30.0, hard: bool = False) -> bool:
    """Stops the broker of ``data_dir``; returns False when none was running.

    ``hard`` sends SIGKILL at once (tests use it to simulate a crash).
    """
    data_dir = data_dir.resolve()
    pid = _broker_pid(data_dir)
    if pid is None:
        return False
    os.kill(pid, signal.SIGKILL if hard else signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while _broker_pid(data_dir) is not None:
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
        time.sleep(0.1)
        _reap(pid)
    (data_dir / "broker.pid").unlink(missing_ok=True)
    return True


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)

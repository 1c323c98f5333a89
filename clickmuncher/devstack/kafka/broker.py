"""Starting, stopping and inspecting one local KRaft broker whose files all live in one data directory.

Layout of ``data_dir``: ``server.properties``, ``log/`` (the broker's log.dirs), ``logs/server.log``,
``stdout.log``, ``broker.pid``. A data directory holds one cluster for its whole life: a restart reuses its
properties and storage, so a stopped broker comes back with its topics and offsets.
"""

from __future__ import annotations

import base64
import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clickmuncher.devstack.kafka import jvm, properties
from clickmuncher.devstack.kafka.jars import BrokerError, ensure_jars
from clickmuncher.kafka.config import KafkaSettings, admin_config

START_TIMEOUT_S = 90.0


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


LISTEN_PORTS_FROM = 10_000
BLOCK_ROOM = 16  # room above a picked port for a cluster's consecutive client ports
_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def free_port() -> int:
    """A port free now, for a listener: below the kernel's range of ephemeral ports, so that while the
    listener is down (a broker stopped in a fault test) no outgoing connection can take its port as a
    local port and keep it from starting again (seen: "port ... of broker 2 is already taken" in a
    rolling restart)."""
    below = _ephemeral_start() - BLOCK_ROOM
    for _ in range(200):
        port = random.randrange(LISTEN_PORTS_FROM, below)
        if not port_taken(port):
            return port
    with socket.socket() as sock:  # a crowded range: any free port
        sock.bind(("127.0.0.1", 0))
        found: int = sock.getsockname()[1]
        return found


def _ephemeral_start() -> int:
    try:
        start = int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768  # Linux's default
    return max(start, LISTEN_PORTS_FROM + 2 * BLOCK_ROOM)


def port_taken(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def cluster_id() -> str:
    """A fresh KRaft cluster id: 16 random bytes, URL-safe base64 without padding, not starting with '-'."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def broker_pid(data_dir: Path) -> int | None:
    """The pid in ``broker.pid`` if that process is alive and is this data dir's broker."""
    pid_file = data_dir / "broker.pid"
    try:
        pid = int(pid_file.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except (OSError, ValueError):
        return None
    if "kafka.Kafka" not in cmdline or f"-Dclickmuncher.data.dir={data_dir.resolve()}\0" not in cmdline:
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
        port = int(properties.read(props_path)["advertised.listeners"].rsplit(":", 1)[1])
    return BrokerInfo(data_dir=data_dir, port=port, pid=broker_pid(data_dir))


def _write_properties(data_dir: Path, port: int) -> Path:
    props_path = data_dir / "server.properties"
    if props_path.exists():
        controller_port = int(properties.read(props_path)["controller.quorum.voters"].rsplit(":", 1)[1])
        if port_taken(controller_port):
            controller_port = free_port()
    else:
        controller_port = free_port()
    node = properties.Node(1, port, controller_port, [(1, controller_port)], data_dir / "log")
    props_path.write_text(node.text())
    return props_path


def format_storage(libs: Path, data_dirs: Sequence[Path], cluster: str, scram: Sequence[str] = ()) -> None:
    """Formats the storage of each data dir not formatted yet, all at once (one JVM each).

    ``scram``: ``SCRAM-SHA-512=[name=…,password=…]`` credentials written into the cluster's first metadata.
    """
    pending = [d for d in data_dirs if not (d / "log" / "meta.properties").exists()]
    extra = [arg for credential in scram for arg in ("--add-scram", credential)]
    processes = [
        subprocess.Popen(
            jvm.storage_tool_command(
                libs, "format", "-t", cluster, "-c", str(d / "server.properties"), *extra
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for d in pending
    ]
    for process in processes:
        output, _ = process.communicate()
        if process.returncode != 0:
            reason = output.strip().splitlines()
            raise BrokerError(
                f"formatting Kafka storage failed: {reason[-1] if reason else process.returncode}"
            )


def launch(libs: Path, data_dir: Path, record_to: Path | None = None) -> subprocess.Popen[bytes]:
    """Starts the JVM of ``data_dir``'s node in the background; its pid goes to ``broker.pid``."""
    (data_dir / "logs").mkdir(parents=True, exist_ok=True)
    with open(data_dir / "stdout.log", "ab") as out:
        process = subprocess.Popen(
            jvm.broker_command(libs, data_dir, record_to),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    (data_dir / "broker.pid").write_text(str(process.pid))
    return process


def prepare(*, quiet: bool = False) -> Path:
    """The jars (fetched once) and, recorded once beside them, the class archive; returns the jars' dir.

    A JDK that cannot write one (a broker that answered left no archive) is noted in ``<archive>.none``, so
    later starts do not try again; a recording broker that did not answer is simply tried at the next start.
    """
    libs = ensure_jars(quiet=quiet)
    archive = jvm.archive_path(libs)
    unsupported = archive.with_name(archive.name + ".none")
    if archive.exists() or unsupported.exists():
        return libs
    if not quiet:
        print("kafka: recording a class archive for faster broker starts (once)", file=sys.stderr, flush=True)
    partial = archive.with_name(f"{archive.name}.{os.getpid()}.partial")
    with tempfile.TemporaryDirectory(prefix="cm-kafka-cds-") as tmp:
        data_dir = Path(tmp)
        port = free_port()
        _write_properties(data_dir, port)
        format_storage(libs, [data_dir], cluster_id())
        process = launch(libs, data_dir, record_to=partial)
        config = admin_config(KafkaSettings(bootstrap=f"127.0.0.1:{port}"))
        try:
            wait_ready({data_dir: process}, lambda: answers(config), START_TIMEOUT_S)
        except BrokerError:
            return libs  # no archive this time: every start is just slower
        stop(data_dir)
    if partial.exists():
        os.replace(partial, archive)
    else:
        unsupported.write_text("this JDK wrote no class archive; delete this file to try again\n")
    return libs


def answers(config: Mapping[str, Any]) -> bool:
    """Whether the brokers of an admin ``config`` answer a metadata request within a second."""
    from confluent_kafka.admin import AdminClient

    try:
        AdminClient({**config, "log_level": 0}).list_topics(timeout=1.0)
    except Exception:
        return False
    return True


def wait_ready(
    started: Mapping[Path, subprocess.Popen[bytes]], ready: Callable[[], bool], timeout_s: float
) -> None:
    """Polls ``ready()`` until it holds; raises :class:`BrokerError` when a started JVM exits or on timeout
    (then the started JVMs are stopped)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for data_dir, process in started.items():
            if process.poll() is not None:
                stop_all(list(started))
                raise BrokerError(_exit_reason(process, data_dir))
        if ready():
            return
        time.sleep(0.2)
    stop_all(list(started))
    raise BrokerError(f"Kafka did not answer a metadata request within {timeout_s:.0f}s")


def _exit_reason(process: subprocess.Popen[bytes], data_dir: Path) -> str:
    log = data_dir / "stdout.log"
    lines = log.read_text(errors="replace").strip().splitlines() if log.exists() else []
    errors = [line for line in lines if " ERROR " in line or "Exception" in line]
    tail = (errors or lines)[-1:]
    return f"Kafka exited during start (code {process.returncode}): {tail[0] if tail else 'see ' + str(log)}"


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
    libs = prepare(quiet=quiet)
    (data_dir / "logs").mkdir(parents=True, exist_ok=True)
    _write_properties(data_dir, port)
    format_storage(libs, [data_dir], cluster_id())
    process = launch(libs, data_dir)
    info = BrokerInfo(data_dir=data_dir, port=port, pid=process.pid)
    config = admin_config(KafkaSettings(bootstrap=info.bootstrap))
    wait_ready({data_dir: process}, lambda: answers(config), timeout_s)
    return info


def stop(data_dir: Path, *, timeout_s: float = 30.0, hard: bool = False) -> bool:
    """Stops the broker of ``data_dir``; returns False when none was running.

    ``hard`` sends SIGKILL at once (tests use it to simulate a crash).
    """
    return stop_all([data_dir], timeout_s=timeout_s, hard=hard) == 1


def stop_all(data_dirs: Sequence[Path], *, timeout_s: float = 30.0, hard: bool = False) -> int:
    """Signals every running broker of ``data_dirs`` at once, then waits for all (SIGKILL after
    ``timeout_s``); returns how many were running."""
    pids = {d.resolve(): pid for d in data_dirs if (pid := broker_pid(d.resolve())) is not None}
    for pid in pids.values():
        os.kill(pid, signal.SIGKILL if hard else signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while any(broker_pid(d) is not None for d in pids):
        if time.monotonic() > deadline:
            for d, pid in pids.items():
                if broker_pid(d) is not None:
                    os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
        time.sleep(0.1)
        for pid in pids.values():
            _reap(pid)
    for d in pids:
        (d / "broker.pid").unlink(missing_ok=True)
    return len(pids)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)

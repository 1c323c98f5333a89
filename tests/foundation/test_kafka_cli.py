"""`clickmuncher kafka up | status | down` against its own data directory, twice in a row."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from clickmuncher.devstack.kafka.broker import free_port, status
from clickmuncher.devstack.kafka.jars import package_file
from clickmuncher.devstack.kafka.jvm import broker_command
from tests.foundation.helpers import cli


def test_broker_files_are_found_where_the_code_looks() -> None:
    """The Maven template of the jars and the broker's log configuration ship beside the code that reads
    them: a jar cache left by an earlier run would hide a missing template until the first fetch on a new
    machine."""
    assert "@KAFKA_VERSION@" in package_file("pom.xml").read_text()
    command = broker_command(Path("libs"), Path("data"))
    (setting,) = [arg for arg in command if arg.startswith("-Dlog4j2.configurationFile=")]
    assert Path(setting.partition("=")[2]).is_file()


def test_up_status_down_twice(tmp_path: Path) -> None:
    data_dir = tmp_path / "kafka"
    port = free_port()
    for attempt in range(2):
        up = cli("kafka", "up", "--port", str(port), "--data-dir", str(data_dir))
        assert up.returncode == 0, up.stderr
        assert up.stdout.strip().splitlines()[-1] == f"127.0.0.1:{port}"
        if attempt == 1:
            assert "fetching" not in up.stderr  # the first `up` (or the session broker) cached the jars
        running = cli("kafka", "status", "--data-dir", str(data_dir))
        assert running.returncode == 0
        assert f"bootstrap=127.0.0.1:{port}" in running.stdout
        pid = status(data_dir).pid
        assert pid is not None
        down = cli("kafka", "down", "--data-dir", str(data_dir))
        assert down.returncode == 0 and "stopped" in down.stdout
        assert not Path(f"/proc/{pid}").exists() or status(data_dir).pid is None
        stopped = cli("kafka", "status", "--data-dir", str(data_dir))
        assert stopped.returncode == 1 and "not running" in stopped.stdout


def test_port_taken_is_one_line_error(tmp_path: Path, kafka_bootstrap: str) -> None:
    port = kafka_bootstrap.rsplit(":", 1)[1]
    result = cli("kafka", "up", "--port", port, "--data-dir", str(tmp_path / "k"))
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("clickmuncher:")]
    assert len(errors) == 1 and "already taken" in errors[0]


def test_missing_java_is_one_line_error(tmp_path: Path) -> None:
    env = dict(os.environ, PATH=str(tmp_path), XDG_CACHE_HOME=str(tmp_path / "cache"))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "clickmuncher.cli",
            "kafka",
            "up",
            "--port",
            str(free_port()),
            "--data-dir",
            str(tmp_path / "k"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert result.returncode == 2
    assert "not found on PATH" in result.stderr

"""``python -m api`` / ``clickmuncher api`` as commands: help; a port that is taken is one line, exit 2."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest


def test_python_m_api_help() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "api", "--help"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0
    assert "--port" in done.stdout and "stats API" in done.stdout


@pytest.mark.kafka
def test_a_port_in_use_is_one_line_and_exit_2(kafka_bootstrap: str, tmp_path: Path, unique: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {
            **os.environ,
            "CLICKMUNCHER_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
            "CLICKMUNCHER_KAFKA_BOOTSTRAP": kafka_bootstrap,
            "CLICKMUNCHER_LIVE_TOPIC": f"live-{unique}",
        }
        done = subprocess.run(
            [sys.executable, "-m", "clickmuncher.cli", "api", "--port", str(port)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"clickmuncher: cannot listen on 127.0.0.1:{port}: Address already in use"
    )

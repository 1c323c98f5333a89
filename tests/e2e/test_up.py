"""``clickmuncher up --demo`` runs the whole pipeline with the api, shows counts, and Ctrl-C leaves no child
behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from clickmuncher.devstack.kafka.broker import free_port

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(300)]


def children_of(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        text = (task / "children").read_text() if (task / "children").exists() else ""
        found.update(int(child) for child in text.split())
    for child in list(found):
        found |= children_of(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def stats(env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "clickmuncher.cli", "stats"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result.stdout


def test_up_demo_counts_and_stops_cleanly(kafka_bootstrap: str, tmp_path: Path, unique: str) -> None:
    env = dict(os.environ)
    env.update(
        {
            "CLICKMUNCHER_KAFKA_BOOTSTRAP": kafka_bootstrap,
            "CLICKMUNCHER_DATABASE_URL": f"sqlite:///{tmp_path / 'up.db'}",
            "CLICKMUNCHER_STATE_DIR": str(tmp_path / "state"),
            "CLICKMUNCHER_CLICKS_TOPIC": f"clicks-{unique}",
            "CLICKMUNCHER_WINDOWS_TOPIC": f"click-windows-{unique}",
            "CLICKMUNCHER_STREAMS_APP_ID": f"streams-{unique}",
            "CLICKMUNCHER_SINK_GROUP": f"sink-{unique}",
            "CLICKMUNCHER_WINDOW_S": "2",
            "CLICKMUNCHER_GRACE_S": "1",
            "CLICKMUNCHER_STREAMS_METRICS_PORT": "0",
            "CLICKMUNCHER_SINK_METRICS_PORT": "0",
            "CLICKMUNCHER_GATEWAY_METRICS_PORT": "0",
        }
    )
    env.pop("CLICKMUNCHER_SIGNING_KEY", None)
    env.pop("CLICKMUNCHER_ALLOWED_HOSTS", None)
    log = tmp_path / "up.log"
    api_port = free_port()
    env["CLICKMUNCHER_LIVE_TOPIC"] = f"click-windows-live-{unique}"
    with open(log, "wb") as out:
        up = subprocess.Popen(
            [
                *(sys.executable, "-m", "clickmuncher.cli", "up", "--demo"),
                *("--port", str(free_port()), "--api-port", str(api_port)),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 150
        table = ""
        while time.monotonic() < deadline and up.poll() is None:
            time.sleep(2)
            table = stats(env)
            # Live counts show up in stats within seconds; wait for the demo's line on closed windows too.
            if "example.com" in table and "final (closed windows)" in log.read_text():
                break
        output = log.read_text()
        assert up.poll() is None, output[-3000:]
        assert "curl -si" in output, "no example links printed"
        assert (tmp_path / "state" / "signing.key").exists(), "no development signing key kept"
        children = children_of(up.pid)
        assert len(children) >= 4, output[-3000:]
        assert f"up: the page, with top URLs and live counts: http://127.0.0.1:{api_port}/" in output
        with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/api/top", timeout=10) as response:
            top = json.loads(response.read())
        assert any("example" in row["url"] for row in top["urls"]), top
        assert "demo: sent" in output and "final (closed windows)" in output, output[-3000:]
        totals = [line for line in table.splitlines() if "example" in line]
        assert totals, f"stats shows no counted URL:\n{table}\n{output[-3000:]}"
    finally:
        up.send_signal(signal.SIGINT)
        code = up.wait(timeout=60)
    assert code == 0, log.read_text()[-3000:]
    assert "up: stopped" in log.read_text()
    # Every service stopped on its own (none was killed), each with exit code 0.
    assert "killing it" not in log.read_text(), log.read_text()[-3000:]
    for service in ("gateway", "sink", "streams"):
        assert f"up: {service} stopped (exit 0)" in log.read_text(), log.read_text()[-3000:]
    assert not [pid for pid in children if alive(pid)]

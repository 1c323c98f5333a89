"""Gateway benchmark: wrk against one gateway producing to the real broker, and against the same app with
producing switched off, side by side in one run; then the same with --workers 2.

    python -m bench.gateway.run [--bootstrap B] [--duration 10] [--connections 64]

Prints redirects/s and latency p50/p99 of each, and the ratios (producing / no-Kafka).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import quote

from bench.common import address, bootstrap_or_local
from clickmuncher.kafka import broker
from gateway.signing import signature

ROOT = Path(__file__).resolve().parents[2]
KEY = "bench-signing-key"
UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def pinned(command: list[str], cpu: int | None) -> list[str]:
    return command if cpu is None else ["taskset", "-c", str(cpu), *command]


def wrk(port: int, duration_s: int, connections: int, cpu: int | None) -> dict[str, float]:
    url = "https://example.com/landing?campaign=bench"
    target = f"http://127.0.0.1:{port}/?u={quote(url, safe='')}&s={signature(url, KEY)}"
    out = subprocess.run(
        pinned(["wrk", "-t2", f"-c{connections}", f"-d{duration_s}s", "--latency", target], cpu),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    latency = {}
    for pct in ("50", "99"):
        value, unit = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)", out, re.M).groups()  # type: ignore[union-attr]
        latency[pct] = float(value) * UNITS_MS[unit]
    non_3xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {
        "rps": rps,
        "p50_ms": latency["50"],
        "p99_ms": latency["99"],
        "errors": float(non_3xx.group(1)) if non_3xx else 0.0,
    }


def wait_port(port: int) -> None:
    import socket

    for _ in range(300):
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def start(command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


def measure(
    workers: int, env: dict[str, str], duration_s: int, connections: int
) -> dict[str, dict[str, float]]:
    results = {}
    variants = {
        "kafka": [sys.executable, "-m", "gateway", "--port", "{port}", "--workers", str(workers)],
        "no-kafka": [
            sys.executable,
            "bench/gateway/noop_gateway.py",
            "--port",
            "{port}",
            "--workers",
            str(workers),
        ],
    }
    # One worker: the gateway alone on core 0, wrk (and the broker) on core 1, so the ratio shows the
    # gateway's own cost of producing rather than the broker's CPU taken from it on a small machine.
    gateway_cpu, load_cpu = (0, 1) if workers == 1 and (os.cpu_count() or 1) > 1 else (None, None)
    for name, template in variants.items():
        port = broker.free_port()
        process = start(pinned([part.format(port=port) for part in template], gateway_cpu), env)
        try:
            wait_port(port)
            wrk(port, 2, connections, load_cpu)  # warm-up
            results[name] = wrk(port, duration_s, connections, load_cpu)
        finally:
            stop(process)
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", default=None, help="an existing broker; default: start one")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench/gateway: wrk not found (apt-get install -y wrk)")
    with bootstrap_or_local(args.bootstrap) as target:
        if not isinstance(target, str) and (os.cpu_count() or 1) > 1:
            # The broker shares core 1 with wrk, away from the gateway (see measure).
            subprocess.run(
                ["taskset", "-a", "-p", "-c", "1", str(target.pid)], capture_output=True, check=False
            )
        run_all(address(target), args.duration, args.connections)


def run_all(bootstrap: str, duration_s: int, connections: int) -> None:
    env = dict(
        os.environ,
        CLICKMUNCHER_KAFKA_BOOTSTRAP=bootstrap,
        CLICKMUNCHER_SIGNING_KEY=KEY,
        CLICKMUNCHER_CLICKS_TOPIC=f"bench-gw-{uuid.uuid4().hex[:8]}",
        CLICKMUNCHER_STATE_DIR=tempfile.mkdtemp(prefix="cm-bench-gw-"),
    )
    print(f"{'workers':>7} {'variant':>9} {'redirects/s':>12} {'p50 ms':>8} {'p99 ms':>8} {'non-3xx':>8}")
    for workers in (1, 2):
        results = measure(workers, env, duration_s, connections)
        for name, figures in results.items():
            print(
                f"{workers:>7} {name:>9} {figures['rps']:>12.0f} {figures['p50_ms']:>8.2f} "
                f"{figures['p99_ms']:>8.2f} {figures['errors']:>8.0f}"
            )
        ratio = results["kafka"]["rps"] / results["no-kafka"]["rps"]
        p99 = results["kafka"]["p99_ms"] / results["no-kafka"]["p99_ms"]
        print(f"{workers:>7} {'ratio':>9} {ratio:>11.0%} {'':>8} {p99:>7.2f}x  (target >=85%, p99 <=1.5x)")


if __name__ == "__main__":
    main()

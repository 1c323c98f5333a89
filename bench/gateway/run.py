"""Gateway benchmark: wrk against one gateway producing to the real broker, and against the same app with
producing switched off, side by side in one run; then the same with --workers 2.

    python -m bench.gateway.run [--bootstrap B] [--duration 3] [--rounds 10] [--connections 64]

Both variants run at once and wrk alternates between them, round after round; prints the median round's
redirects/s and latency p50/p99 of each, and the ratios (producing / no-Kafka): the median of the ratios of
each round's back-to-back pair.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import quote

from bench.common import address, bootstrap_or_local, record_summary
from clickmuncher.kafka import broker
from clickmuncher.kafka.admin import ensure_topics
from gateway.signing import signature

ROOT = Path(__file__).resolve().parents[2]
KEY = "bench-signing-key"
PARTITIONS = 8
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
    workers: int, env: dict[str, str], duration_s: int, connections: int, rounds: int
) -> dict[str, dict[str, float]]:
    """Both variants run side by side; wrk alternates between them, ``rounds`` times each, and the median
    round of each is kept (these machines drift by tens of percent within a minute)."""
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
    # One worker: the gateways on core 0, wrk (and the broker) on core 1, so the ratio shows the gateway's
    # own cost of producing rather than the broker's CPU taken from it on a small machine. The idle
    # variant waits in epoll meanwhile.
    gateway_cpu, load_cpu = (0, 1) if workers == 1 and (os.cpu_count() or 1) > 1 else (None, None)
    ports = {name: broker.free_port() for name in variants}
    processes = [
        start(pinned([part.format(port=ports[name]) for part in template], gateway_cpu), env)
        for name, template in variants.items()
    ]
    rounds_of: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
    try:
        for port in ports.values():
            wait_port(port)
        wait_ready(ports["kafka"])  # measured from the first click on: producing, not spooling
        for port in ports.values():
            wrk(port, 2, connections, load_cpu)  # warm-up
        for _ in range(rounds):
            for name, port in ports.items():
                rounds_of[name].append(wrk(port, duration_s, connections, load_cpu))
        spooled = spooled_clicks(ports["kafka"])
    finally:
        for process in processes:
            stop(process)
    results = {name: median_round(found) for name, found in rounds_of.items()}
    results["kafka"]["spooled"] = spooled
    results["no-kafka"]["spooled"] = 0.0
    # Each round's pair ran back to back: their ratios drift less than the figures themselves.
    pairs = list(zip(rounds_of["kafka"], rounds_of["no-kafka"], strict=True))
    results["ratio"] = {
        "rps": statistics.median(k["rps"] / n["rps"] for k, n in pairs),
        "p99": statistics.median(k["p99_ms"] / n["p99_ms"] for k, n in pairs),
    }
    results["rounds"] = {f"rps{i}": k["rps"] / n["rps"] for i, (k, n) in enumerate(pairs)}
    return results


def median_round(rounds: list[dict[str, float]]) -> dict[str, float]:
    """Each figure's median over the rounds (errors: the total)."""
    figures = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
    figures["errors"] = sum(r["errors"] for r in rounds)
    return figures


def wait_ready(port: int) -> None:
    """Until the gateway's producer reaches the broker (``/readyz`` answers 200)."""
    for _ in range(300):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    raise RuntimeError(f"the gateway on {port} never became ready")


def spooled_clicks(port: int) -> float:
    """Clicks the gateway put in its disk spool because the producer's queue was full (0 when healthy):
    a spooling gateway does other work than a producing one, so the figure is printed with the result."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    found = re.search(r"^clickmuncher_gateway_clicks_spooled_total (\S+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", default=None, help="an existing broker; default: start one")
    parser.add_argument("--duration", type=int, default=3, help="seconds per round")
    parser.add_argument("--rounds", type=int, default=10, help="rounds per variant, alternating")
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
        run_all(address(target), args.duration, args.connections, args.rounds)


def run_all(bootstrap: str, duration_s: int, connections: int, rounds: int) -> None:
    env = dict(
        os.environ,
        CLICKMUNCHER_KAFKA_BOOTSTRAP=bootstrap,
        CLICKMUNCHER_SIGNING_KEY=KEY,
        CLICKMUNCHER_CLICKS_TOPIC=f"bench-gw-{uuid.uuid4().hex[:8]}",
        CLICKMUNCHER_STATE_DIR=tempfile.mkdtemp(prefix="cm-bench-gw-"),
        CLICKMUNCHER_PARTITIONS=str(PARTITIONS),
    )
    # Created up front, as `clickmuncher up` and any deployment do: a gateway facing a topic that does not
    # exist yet holds its clicks (and spools them once its queue is full) until it has created it.
    ensure_topics(bootstrap, {env["CLICKMUNCHER_CLICKS_TOPIC"]: {}}, PARTITIONS)
    print(
        f"{'workers':>7} {'variant':>9} {'redirects/s':>12} {'p50 ms':>8} {'p99 ms':>8} {'non-3xx':>8}"
        f" {'spooled':>8}"
    )
    for workers in (1, 2):
        results = measure(workers, env, duration_s, connections, rounds)
        for name in ("kafka", "no-kafka"):
            figures = results[name]
            print(
                f"{workers:>7} {name:>9} {figures['rps']:>12.0f} {figures['p50_ms']:>8.2f} "
                f"{figures['p99_ms']:>8.2f} {figures['errors']:>8.0f} {figures['spooled']:>8.0f}"
            )
        ratio = results["ratio"]
        each = " ".join(f"{value:.0%}" for value in results["rounds"].values())
        print(
            f"{workers:>7} {'ratio':>9} {ratio['rps']:>11.0%} {'':>8} {ratio['p99']:>7.2f}x"
            f"  (median of the rounds' ratios: {each}; target >=85%, p99 <=1.5x)"
        )
        kafka, plain = results["kafka"], results["no-kafka"]
        record_summary(
            f"gateway, {workers} worker{'s' if workers > 1 else ''}",
            f"{kafka['rps']:.0f} redirects/s, p99 {kafka['p99_ms']:.1f} ms",
            f"no Kafka: {plain['rps']:.0f}/s, p99 {plain['p99_ms']:.1f} ms",
            f"{ratio['rps']:.0%}, p99 {ratio['p99']:.2f}x",
            ">= 85 %, p99 <= 1.5x" if workers == 1 else "-",
            (ratio["rps"] >= 0.85 and ratio["p99"] <= 1.5) if workers == 1 else None,
        )


if __name__ == "__main__":
    main()

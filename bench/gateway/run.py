"""Gateway benchmark: wrk against the gateway producing to the real broker, the same gateway with producing
switched off, and a bare aiohttp handler (302 to ``u``, nothing else), side by side in one run; then the same
with --workers 2.

    python -m bench.gateway.run [--bootstrap B] [--duration 3] [--rounds 10] [--connections 64]
                                [--before CHECKOUT]

The three variants run at once and wrk alternates between them, round after round; prints the median round's
redirects/s and latency p50/p99 of each, and the ratios (producing / bare handler, the target; producing /
no-Kafka; no-Kafka / bare): each the median of the ratios of the rounds' back-to-back pairs. Every request
carries a browser's User-Agent (the gateway classifies clicks by it, SPEC §12). ``--before`` adds the
producing gateway of another checkout (e.g. the main branch) as one more variant, measured in the same rounds.
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
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote

from bench.common import address, bootstrap_or_local, cpu_seconds, record_summary
from clickmuncher.devstack.kafka import broker
from clickmuncher.kafka.admin import ensure_topics
from gateway.signing import signature

ROOT = Path(__file__).resolve().parents[2]
KEY = "bench-signing-key-of-at-least-32-bytes"
PARTITIONS = 8
UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}
TARGET_RPS = 0.80  # of the bare aiohttp handler's throughput
TARGET_P99 = 1.5  # times its p99
AGENT = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def pinned(command: list[str], cpu: int | None) -> list[str]:
    return command if cpu is None else ["taskset", "-c", str(cpu), *command]


def wrk(port: int, duration_s: int, connections: int, cpu: int | None) -> dict[str, float]:
    url = "https://example.com/landing?campaign=bench"
    target = f"http://127.0.0.1:{port}/?u={quote(url, safe='')}&s={signature(url, KEY)}"
    out = subprocess.run(
        pinned(
            [
                "wrk",
                "-t2",
                f"-c{connections}",
                f"-d{duration_s}s",
                "--latency",
                "-H",
                f"User-Agent: {AGENT}",
                target,
            ],
            cpu,
        ),
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
        "requests": float(re.search(r"(\d+) requests in", out).group(1)),  # type: ignore[union-attr]
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


def start(command: list[str], env: dict[str, str], cwd: Path = ROOT) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


# name: (what runs, environment it runs with on top of the run's own)
VARIANTS: dict[str, tuple[list[str], dict[str, str]]] = {
    "kafka": (["-m", "gateway"], {}),
    "no-kafka": (["-m", "bench.gateway.noop_gateway"], {}),
    "bare": (["-m", "bench.gateway.bare_handler"], {}),
    # the same bare handler on uvloop, the gateway's default loop: what the gateway's own work costs, like
    # for like (the target above is against the bare handler as aiohttp runs it out of the box)
    "bare uvloop": (["-m", "bench.gateway.bare_handler", "--uvloop"], {}),
}
# --steps: the producing gateway without each of its speed-ups, to show what each gives (docs/benchmarks.md)
STEPS: dict[str, tuple[list[str], dict[str, str]]] = {
    "kafka asyncio": (["-m", "gateway"], {"CLICKMUNCHER_GATEWAY_UVLOOP": "false"}),
    "kafka no cache": (["-m", "gateway"], {"CLICKMUNCHER_GATEWAY_VERDICT_CACHE": "0"}),
}


def measure(
    workers: int,
    env: dict[str, str],
    duration_s: int,
    connections: int,
    rounds: int,
    variants: dict[str, tuple[list[str], dict[str, str]]],
) -> dict[str, dict[str, float]]:
    """The three variants run side by side; wrk alternates between them, ``rounds`` times each, and the
    median round of each is kept (these machines drift by tens of percent within a minute)."""
    # One worker: the gateways on core 0, wrk (and the broker) on core 1, so the ratio shows the gateway's
    # own cost rather than the broker's CPU taken from it on a small machine. The idle variants wait in
    # epoll meanwhile.
    gateway_cpu, load_cpu = (0, 1) if workers == 1 and (os.cpu_count() or 1) > 1 else (None, None)
    ports = {name: broker.free_port() for name in variants}
    processes = [
        start(
            pinned(
                [sys.executable, *args, "--port", str(ports[name]), "--workers", str(workers)], gateway_cpu
            ),
            # only the first producing variant serves metrics (its spooled count is printed)
            {**env, **extra, **({} if name == "kafka" else {"CLICKMUNCHER_GATEWAY_METRICS_PORT": "0"})},
            Path(extra.get("CHECKOUT", ROOT)),  # --before: the modules of that checkout come first
        )
        for name, (args, extra) in variants.items()
    ]
    rounds_of: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
    try:
        for port in ports.values():
            wait_port(port)
        wait_ready(ports["kafka"])  # measured from the first click on: producing, not spooling
        for port in ports.values():
            wrk(port, 2, connections, load_cpu)  # warm-up
        for _ in range(rounds):
            for process, (name, port) in zip(processes, ports.items(), strict=True):
                cpu_before = cpu_seconds(process.pid)
                found = wrk(port, duration_s, connections, load_cpu)
                found["cpu_us"] = (cpu_seconds(process.pid) - cpu_before) / found.pop("requests") * 1e6
                rounds_of[name].append(found)
        spooled = spooled_clicks(env)
    finally:
        for process in processes:
            stop(process)
    results = {name: median_round(found) for name, found in rounds_of.items()}
    for name in variants:
        results[name]["spooled"] = spooled if name == "kafka" else 0.0
    for name in variants:
        if name != "bare":
            results[f"{name}/bare"] = ratios(rounds_of[name], rounds_of["bare"])
    results["kafka/no-kafka"] = ratios(rounds_of["kafka"], rounds_of["no-kafka"])
    results["kafka/bare uvloop"] = ratios(rounds_of["kafka"], rounds_of["bare uvloop"])
    if "kafka before" in variants:
        results["kafka/kafka before"] = ratios(rounds_of["kafka"], rounds_of["kafka before"])
    return results


def ratios(ours: list[dict[str, float]], peer: list[dict[str, float]]) -> dict[str, float]:
    """Each round's pair ran back to back: their ratios drift less than the figures themselves. The
    medians of the throughput, p99 and CPU-per-request ratios, and every round's throughput ratio
    (``rps<i>``). ``cpu`` is the peer's CPU time per request over ours: the throughput ratio the two would
    have on a core of their own, which other work on the machine moves much less."""
    pairs = list(zip(ours, peer, strict=True))
    found = {
        "rps": statistics.median(o["rps"] / p["rps"] for o, p in pairs),
        "p99": statistics.median(o["p99_ms"] / p["p99_ms"] for o, p in pairs),
        "cpu": statistics.median(p["cpu_us"] / o["cpu_us"] for o, p in pairs),
    }
    found.update({f"rps{i}": o["rps"] / p["rps"] for i, (o, p) in enumerate(pairs)})
    return found


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


def spooled_clicks(env: dict[str, str]) -> float:
    """Clicks the gateway put in its disk spool because the producer's queue was full (0 when healthy):
    a spooling gateway does other work than a producing one, so the figure is printed with the result."""
    port = env["CLICKMUNCHER_GATEWAY_METRICS_PORT"]
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
    parser.add_argument("--workers", default="1,2", help="comma list of --workers values to measure")
    parser.add_argument("--steps", action="store_true", help="also the gateway without each speed-up")
    parser.add_argument("--before", type=Path, help="also the producing gateway of this checkout")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench/gateway: wrk not found (apt-get install -y wrk)")
    with bootstrap_or_local(args.bootstrap) as target:
        if not isinstance(target, str) and (os.cpu_count() or 1) > 1:
            # The broker shares core 1 with wrk, away from the gateway (see measure).
            subprocess.run(
                ["taskset", "-a", "-p", "-c", "1", str(target.pid)], capture_output=True, check=False
            )
        workers = [int(n) for n in args.workers.split(",")]
        variants = {**VARIANTS, **STEPS} if args.steps else dict(VARIANTS)
        if args.before is not None:
            variants["kafka before"] = (["-m", "gateway"], {"CHECKOUT": str(args.before.resolve())})
        run_all(address(target), args.duration, args.connections, args.rounds, workers, variants)


def run_all(
    bootstrap: str,
    duration_s: int,
    connections: int,
    rounds: int,
    workers_runs: list[int],
    variants: dict[str, tuple[list[str], dict[str, str]]],
) -> None:
    env = dict(
        os.environ,
        CLICKMUNCHER_KAFKA_BOOTSTRAP=bootstrap,
        CLICKMUNCHER_SIGNING_KEY=KEY,
        CLICKMUNCHER_CLICKS_TOPIC=f"bench-gw-{uuid.uuid4().hex[:8]}",
        CLICKMUNCHER_STATE_DIR=tempfile.mkdtemp(prefix="cm-bench-gw-"),
        CLICKMUNCHER_PARTITIONS=str(PARTITIONS),
        CLICKMUNCHER_GATEWAY_METRICS_PORT=str(broker.free_port()),
    )
    # Created up front, as `clickmuncher up` and any deployment do: a gateway facing a topic that does not
    # exist yet holds its clicks (and spools them once its queue is full) until it has created it.
    ensure_topics(bootstrap, {env["CLICKMUNCHER_CLICKS_TOPIC"]: {}}, PARTITIONS)
    print(
        f"{'workers':>7} {'variant':>19} {'redirects/s':>12} {'p50 ms':>8} {'p99 ms':>8} {'CPU us/req':>11}"
        f" {'non-3xx':>8} {'spooled':>8}"
    )
    for workers in workers_runs:
        results = measure(workers, env, duration_s, connections, rounds, variants)
        print_results(workers, variants, results)
        kafka, bare, ratio = results["kafka"], results["bare"], results["kafka/bare"]
        met = ratio["rps"] >= TARGET_RPS and ratio["p99"] <= TARGET_P99
        record_summary(
            f"gateway, {workers} worker{'s' if workers > 1 else ''}",
            f"{kafka['rps']:.0f} redirects/s, p99 {kafka['p99_ms']:.1f} ms",
            f"bare aiohttp handler: {bare['rps']:.0f}/s, p99 {bare['p99_ms']:.1f} ms",
            f"{ratio['rps']:.0%}, p99 {ratio['p99']:.2f}x, CPU {ratio['cpu']:.0%}",
            f">= {TARGET_RPS:.0%}, p99 <= {TARGET_P99}x" if workers == 1 else "-",
            met if workers == 1 else None,
        )
        like, bare_uvloop = results["kafka/bare uvloop"], results["bare uvloop"]
        record_summary(
            f"gateway, {workers} worker{'s' if workers > 1 else ''}, both on uvloop",
            f"{kafka['rps']:.0f} redirects/s, p99 {kafka['p99_ms']:.1f} ms",
            f"bare handler on uvloop: {bare_uvloop['rps']:.0f}/s, p99 {bare_uvloop['p99_ms']:.1f} ms",
            f"{like['rps']:.0%}, p99 {like['p99']:.2f}x, CPU {like['cpu']:.0%}",
            "report",
            None,
        )


def print_results(workers: int, variants: Mapping[str, object], results: dict[str, dict[str, float]]) -> None:
    for name in variants:
        figures = results[name]
        print(
            f"{workers:>7} {name:>19} {figures['rps']:>12.0f} {figures['p50_ms']:>8.2f} "
            f"{figures['p99_ms']:>8.2f} {figures['cpu_us']:>11.1f} {figures['errors']:>8.0f} "
            f"{figures['spooled']:>8.0f}"
        )
    for pair in [f"{name}/bare" for name in variants if name != "bare"] + [
        "kafka/bare uvloop",
        "kafka/no-kafka",
        *(["kafka/kafka before"] if "kafka before" in variants else []),
    ]:
        ratio = results[pair]
        each = " ".join(f"{value:.0%}" for key, value in ratio.items() if key[3:].isdigit())
        target = f"; target >={TARGET_RPS:.0%}, p99 <={TARGET_P99}x" if pair == "kafka/bare" else ""
        print(
            f"{workers:>7} {pair:>19} {ratio['rps']:>11.0%} {'':>8} {ratio['p99']:>7.2f}x "
            f"{ratio['cpu']:>10.0%}  (rounds: {each}{target})"
        )


if __name__ == "__main__":
    main()

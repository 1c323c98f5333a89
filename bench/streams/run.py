"""Streams benchmark: the same pre-loaded clicks (1,000,000 over 100,000 Zipf-distributed URLs, 8 partitions)
drained by clickmuncher's streams worker, Kafka Streams, Quix Streams and a plain confluent-kafka consumer
counting in a dict (the ceiling for Python), one after the other in one run, then clickmuncher's start-up.

    python -m bench.streams.run [--clicks 1000000] [--urls 100000] [--bootstrap B]
        [--skip kstreams,quix,plain,no-live,sketches,sentinels,startup] [--startup-keys 100000]
        [--workers 1,2,4] [--hot-share 0.5] [--hot-shards 8] [--profile DIR]
        [--kstreams-config K=V,...] [--worker-env K=V,...]

The window-emitting peers (clickmuncher, Kafka Streams) are timed to the last window record visible on their
output topic, and every count is checked against the load (a wrong count fails the run); Quix Streams and
the plain dict to their last event processed. clickmuncher closes the last windows by its idle timer; Kafka
Streams reads a copy of the load ending in one sentinel click per partition (docs/benchmarks.md says why);
the ``sentinels`` row is clickmuncher on that copy. "with sketches" is clickmuncher on a second topic of the
same clicks carrying a class and a visitor id (SPEC §12: half human from Zipf-distributed visitors,
bench/streams/load.py --classes): class counts and a HyperLogLog sketch per (URL, window) in the state, the
sketch in every changelog record and window record; the other rows read clicks of the first record version
(human, no visitor: no sketch). Every clickmuncher row also gives the changelog messages and bytes it wrote
per click and the size of its RocksDB store at the end. Kafka Streams runs exactly-once v2 and at-least-once,
each in one JVM: a cold pass (timed from the JVM's start), then a warm pass over a second copy. Start-up:
process start to the first click counted by a worker recovering a table of ``--startup-keys`` keys.
``--workers``: clickmuncher rows with that many workers on the topic. ``--hot-share``: one URL takes that
share of the clicks (``--hot-shards K``: written as K URLs on K partitions). ``--profile``: py-spy records
the first clickmuncher worker and the start-up's worker into DIR (bench/streams/profile.py prints their top
entries). ``--kstreams-config`` overrides Kafka Streams settings; ``--worker-env`` adds to the workers'
environment. Quix runs in its own virtualenv (.venv-bench-quix, made on first use).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import uuid
from functools import partial
from pathlib import Path

from bench.common import address, bootstrap_or_local, record_summary
from bench.streams import kstreams, profile
from bench.streams.finish import read_expected
from bench.streams.startup import measure_startup
from bench.streams.worker import GRACE_S, PARTITIONS, WINDOW_S, clickmuncher_worker

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
QUIX_VENV = ROOT / ".venv-bench-quix"
SKIPPABLE = ("kstreams", "quix", "plain", "no-live", "sketches", "sentinels", "startup")
GUARANTEE_NAMES = {"exactly_once_v2": "EOS v2", "at_least_once": "at-least-once"}
__all__ = ["HERE", "WINDOW_S", "clickmuncher_worker", "run_json"]

Figures = dict[str, float]


def run_json(command: list[str], env: dict[str, str] | None = None) -> dict[str, float]:
    out = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def quix_python() -> str:
    python = QUIX_VENV / "bin" / "python"
    if not python.exists():
        print("bench: creating .venv-bench-quix with quixstreams (once)", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(QUIX_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "quixstreams"], check=True)
    return str(python)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", default=None, help="an existing broker; default: start one")
    parser.add_argument("--clicks", type=int, default=1_000_000)
    parser.add_argument("--urls", type=int, default=100_000)
    parser.add_argument("--skip", default="", help=f"comma-separated, of: {', '.join(SKIPPABLE)}")
    parser.add_argument("--startup-keys", type=int, default=100_000)
    parser.add_argument("--workers", default="1", help="clickmuncher rows with these numbers of workers")
    parser.add_argument("--hot-share", type=float, default=0.0, help="share of the clicks on one URL")
    parser.add_argument("--hot-shards", type=int, default=0, help="the hot URL written as K URLs")
    parser.add_argument("--profile", type=Path, default=None, help="py-spy profiles into this directory")
    parser.add_argument("--kstreams-config", default="", help="Kafka Streams settings key=value,...")
    parser.add_argument("--worker-env", default="", help="environment of clickmuncher's workers K=V,...")
    args = parser.parse_args()
    args.skip = {name for name in args.skip.split(",") if name}
    if args.skip - set(SKIPPABLE):
        parser.error(f"--skip takes {', '.join(SKIPPABLE)}")
    args.workers = [int(n) for n in args.workers.split(",")]
    args.worker_env = dict(pair.split("=", 1) for pair in args.worker_env.split(",") if pair)
    return args


def load(
    bootstrap: str, args: argparse.Namespace, topic: str, copies: list[str], *, classes: bool = False
) -> dict[str, int]:
    """Loads the topic (and its sentinel copies); returns the expected counts. ``classes``: clicks with a
    class and a visitor id (load.py --classes)."""
    expected_path = Path(tempfile.mkdtemp(prefix="cm-bench-expected-")) / "expected.json"
    command = [sys.executable, str(HERE / "load.py"), "--bootstrap", bootstrap, "--topic", topic]
    command += ["--clicks", str(args.clicks), "--urls", str(args.urls), "--window-s", str(WINDOW_S)]
    command += ["--expected", str(expected_path), "--hot-share", str(args.hot_share)]
    command += ["--hot-shards", str(args.hot_shards)]
    for copy in copies:
        command += ["--sentinel-copy", copy]
    loaded = run_json([*command, "--classes"] if classes else command)
    pairs = f"{loaded['window_records']} (url, window) pairs"
    print(f"bench: loaded {args.clicks} clicks{' with classes' if classes else ''}, {pairs}", flush=True)
    expected = read_expected(expected_path)
    expected_path.unlink()
    return expected


def run_peers(bootstrap: str, args: argparse.Namespace) -> dict[str, Figures]:
    topic = f"bench-clicks-{uuid.uuid4().hex[:8]}"
    copies = [f"{topic}-ks-a", f"{topic}-ks-b"] if {"kstreams", "sentinels"} - args.skip else []
    expected = load(bootstrap, args, topic, copies)
    results = clickmuncher_rows(bootstrap, args, topic, copies, expected)
    if "kstreams" not in args.skip:
        load_ks = kstreams.Load(tuple(copies), args.clicks, PARTITIONS, expected, WINDOW_S, GRACE_S)
        for guarantee, label in GUARANTEE_NAMES.items():
            runs = kstreams.run_guarantee(bootstrap, guarantee, load_ks, args.kstreams_config)
            for run, figures in runs.items():
                results[f"Kafka Streams {label}, {run}"] = figures
    common = ["--bootstrap", bootstrap, "--topic", topic, "--clicks", str(args.clicks)]
    common += ["--window-s", str(WINDOW_S)]
    if "quix" not in args.skip:
        results["Quix Streams"] = run_json([quix_python(), str(HERE / "quix_peer.py"), *common])
    if "plain" not in args.skip:
        results["plain dict"] = run_json([sys.executable, str(HERE / "plain_peer.py"), *common])
    return results


def clickmuncher_rows(
    bootstrap: str, args: argparse.Namespace, topic: str, copies: list[str], expected: dict[str, int]
) -> dict[str, Figures]:
    """One row per ``--workers`` entry (the first profiled with ``--profile``), then without live counts,
    with classes and sketches (a topic of its own, loaded here), and on the sentinel copy."""
    run = partial(
        clickmuncher_worker, bootstrap, clicks=args.clicks, expected=expected, extra_env=args.worker_env
    )
    rows = {}
    for i, workers in enumerate(args.workers):
        name = "clickmuncher" if workers == 1 else f"clickmuncher, {workers} workers"
        recording = args.profile / "worker.txt" if args.profile and i == 0 else None
        rows[name] = run(topic, workers=workers, profile=recording)
    if "no-live" not in args.skip:
        rows["clickmuncher, no live counts"] = run(topic, live_every_s=0)
    if "sketches" not in args.skip:
        classified = f"{topic}-classes"
        rows["clickmuncher, with sketches"] = run(
            classified, expected=load(bootstrap, args, classified, [], classes=True)
        )
    if "sentinels" not in args.skip:
        rows["clickmuncher, sentinels"] = run(copies[0])
    return rows


def phases(figures: Figures) -> str:
    """Where a peer's time went: clickmuncher's start-up, counting and close (with each worker's events and
    its own rate from its first to its last event), Kafka Streams' time to its last input record."""
    if "to_last_input_s" in figures:
        return f"last input at {figures['to_last_input_s']:.1f} s ({figures['to_last_input_per_s']:.0f}/s)"
    if "startup_s" not in figures:
        return ""
    workers = sorted(key.removeprefix("busy_per_s_") for key in figures if key.startswith("busy_per_s_"))
    busy = ", ".join(
        f"{figures[f'busy_events_{i}'] / 1000:.0f}k at {figures[f'busy_per_s_{i}']:.0f}/s" for i in workers
    )
    return (
        f"start {figures['startup_s']:.1f} + count {figures['counting_s']:.1f} + close "
        f"{figures['close_s']:.1f} s (busy: {busy})"
    )


def print_results(results: dict[str, Figures], ours: Figures) -> None:
    """Wall-clock and CPU figures; ``CPU ratio`` is the peer's CPU time per event over ours (every thread of
    each process): the throughput ratio the two would have on one core each."""
    print(
        f"{'peer':>34} {'seconds':>8} {'events/s':>9} {'ours is':>8} {'CPU s':>6} {'events/CPU-s':>12} "
        f"{'CPU ratio':>9}  phases"
    )
    for name, figures in results.items():
        print(
            f"{name:>34} {figures['seconds']:>8.1f} {figures['events_per_s']:>9.0f} "
            f"{ours['events_per_s'] / figures['events_per_s']:>7.2f}x {figures['cpu_s']:>6.1f} "
            f"{figures['events_per_cpu_s']:>12.0f} {cpu_ratio(ours, figures):>8.2f}x  {phases(figures)}"
        )
    for name, figures in results.items():
        if "changelog_per_click" in figures:
            print(
                f"{name}: {figures['window_records']:.0f} window records, all exact, "
                f"{figures['changelog_per_click']:.3f} changelog messages and "
                f"{figures['changelog_bytes_per_click']:.1f} bytes per click, "
                f"RocksDB {figures['rocksdb_mb']:.1f} MB, CPU {figures['cpu_us_per_click']:.1f} µs per click"
            )
        elif name.startswith("Kafka Streams"):
            print(f"{name}: {figures['window_records']:.0f} window records, all exact")


# Summary rows of ratios: (row, peer, target, least ratio or None for a figure reported).
RATIO_ROWS = (
    ("streams vs Kafka Streams at-least-once, warm JVM", "Kafka Streams at-least-once, warm", ">= 1.0x", 1.0),
    ("streams vs Kafka Streams at-least-once, cold JVM", "Kafka Streams at-least-once, cold", "report", None),
    ("streams vs Kafka Streams EOS v2, warm JVM", "Kafka Streams EOS v2, warm", "report", None),
    ("streams vs Kafka Streams EOS v2, cold JVM", "Kafka Streams EOS v2, cold", "report", None),
    ("streams, 1 worker", "Quix Streams", ">= 2x", 2.0),
)


def cpu_ratio(ours: Figures, theirs: Figures) -> float:
    return ours["events_per_cpu_s"] / theirs["events_per_cpu_s"]


def summarize(results: dict[str, Figures], startup: Figures | None, tag: str) -> None:
    ours = results[next(iter(results))]["events_per_s"]
    mine = f"{ours:.0f} events/s"
    for row, peer, target, least in RATIO_ROWS:
        if peer in results:
            ratio = ours / results[peer]["events_per_s"]
            cpu = cpu_ratio(results[next(iter(results))], results[peer])
            theirs = f"{peer} {results[peer]['events_per_s']:.0f} events/s"
            met = None if least is None else ratio >= least
            record_summary(row + tag, mine, theirs, f"{ratio:.2f}x (CPU {cpu:.2f}x)", target, met)
    if "plain dict" in results:
        ratio = ours / results["plain dict"]["events_per_s"]
        cpu = cpu_ratio(results[next(iter(results))], results["plain dict"])
        theirs = f"plain dict {results['plain dict']['events_per_s']:.0f} events/s"
        record_summary(
            "streams vs Python ceiling" + tag,
            mine,
            theirs,
            f"{ratio:.0%} (CPU {cpu:.0%})",
            ">= 60 %",
            ratio >= 0.6,
        )
    if "clickmuncher, with sketches" in results:
        summarize_sketches(results, tag)
    if "clickmuncher, no live counts" in results:
        off = results["clickmuncher, no live counts"]["events_per_s"]
        cost = 1 - ours / off
        print(f"live counts (every 5 s) cost {cost:.1%} of the throughput without them")
        row = "streams, live counts on vs off" + tag
        record_summary(row, mine, f"off {off:.0f} events/s", f"{cost:.1%} cost", "< 10 %", cost < 0.10)
    for name, figures in results.items():
        if name.endswith(" workers"):
            rate = figures["events_per_s"]
            row = f"streams, {name.removeprefix('clickmuncher, ')}{tag}"
            record_summary(
                row, f"{rate:.0f} events/s", f"1 worker: {mine}", f"{rate / ours:.2f}x", "report", None
            )
    if startup is not None:
        row = f"streams start-up, table of {startup['keys'] / 1000:.0f}k keys"
        took = f"{startup['seconds']:.2f} s to first click"
        record_summary(row, took, "", "", "<= 2 s", startup["seconds"] <= 2)
        restarted = f"{startup['restart_seconds']:.2f} s to first click"
        kept = "local store kept" if startup["restart_kept_store"] else "local store rebuilt"
        record_summary(f"{row}, restart", restarted, kept, "", "<= 2 s", startup["restart_seconds"] <= 2)


def summarize_sketches(results: dict[str, Figures], tag: str) -> None:
    """What classes and sketches cost clickmuncher (throughput and CPU per click), and the row against
    Quix Streams (which counts clicks without them) when it ran."""
    ours, sketched = results[next(iter(results))], results["clickmuncher, with sketches"]
    cost = 1 - sketched["events_per_s"] / ours["events_per_s"]
    cpu_more = sketched["cpu_us_per_click"] / ours["cpu_us_per_click"] - 1
    print(
        f"classes and sketches cost {cost:.1%} of the throughput without them, "
        f"{cpu_more:.1%} more CPU per click"
    )
    if "Quix Streams" in results:
        rate, quix = sketched["events_per_s"], results["Quix Streams"]["events_per_s"]
        record_summary(
            "streams with classes and sketches, 1 worker" + tag,
            f"{rate:.0f} events/s",
            f"Quix Streams {quix:.0f} events/s",
            f"{rate / quix:.2f}x (CPU {cpu_ratio(sketched, results['Quix Streams']):.2f}x)",
            ">= 2x",
            rate / quix >= 2,
        )


def main() -> None:
    args = parse_args()
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    with bootstrap_or_local(args.bootstrap) as target:
        bootstrap = address(target)
        results = run_peers(bootstrap, args)
        recording = args.profile / "startup.txt" if args.profile else None
        skipped = "startup" in args.skip
        startup = None if skipped else measure_startup(bootstrap, args.startup_keys, recording)
    print_results(results, results[next(iter(results))])
    for recorded in sorted(args.profile.glob("*.txt")) if args.profile else []:
        print(profile.report(recorded))
    if startup is not None:
        print(
            f"start-up with a table of {startup['table_messages']:.0f} changelog records: "
            f"{startup['seconds']:.2f} s from process start to the first click counted (first log line "
            f"{startup['first_log_line_s']:.2f} s, table loaded {startup['table_loaded_s']:.2f} s, "
            f"{startup['seeks_back']:.0f} seek(s) back); restarted on its own state directory: "
            f"{startup['restart_seconds']:.2f} s (local store "
            f"{'kept' if startup['restart_kept_store'] else 'rebuilt'})"
        )
    print(
        "targets: >= 1.0x Kafka Streams at-least-once warm, >= 2x Quix, >= 60 % of plain dict, start <= 2 s"
    )
    tag = f" (hot URL {args.hot_share:.0%}{f', {args.hot_shards} shards' if args.hot_shards else ''})"
    summarize(results, startup, tag if args.hot_share else "")


if __name__ == "__main__":
    main()

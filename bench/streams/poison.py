"""Poison benchmark: the streams worker on clean clicks and on the same clicks with runs of 1,000 malformed
records in a row, side by side in one run.

    python -m bench.streams.poison [--clicks 200000] [--every 10000] [--bootstrap B]

Prints records per second (clicks and poison alike) for both topics and the ratio; the target is that a
worker meeting 1,000 poison records in a row keeps its throughput within 2x.
"""

from __future__ import annotations

import argparse
import sys
import uuid

from bench.common import address, bootstrap_or_local, record_summary
from bench.streams.run import HERE, WINDOW_S, clickmuncher_worker, run_json


def load(bootstrap: str, topic: str, clicks: int, poison_every: int) -> dict[str, float]:
    command = [sys.executable, str(HERE / "load.py"), "--bootstrap", bootstrap, "--topic", topic]
    command += ["--clicks", str(clicks), "--urls", "20000", "--window-s", str(WINDOW_S)]
    command += ["--poison-every", str(poison_every)]
    return run_json(command)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", default=None, help="an existing broker; default: start one")
    parser.add_argument("--clicks", type=int, default=200_000)
    parser.add_argument("--every", type=int, default=10_000, help="clicks between two runs of 1,000 poison")
    args = parser.parse_args()
    with bootstrap_or_local(args.bootstrap) as target:
        bootstrap = address(target)
        rates = {}
        for name, every in (("clean", 0), ("poisoned", args.every)):
            topic = f"bench-{name}-{uuid.uuid4().hex[:8]}"
            loaded = load(bootstrap, topic, args.clicks, every)
            figures = clickmuncher_worker(bootstrap, topic, args.clicks)
            records = args.clicks + loaded["poison"]
            rates[name] = records / figures["seconds"]
            print(
                f"{name:>9}: {records:.0f} records ({loaded['poison']:.0f} poison) in {figures['seconds']}s"
            )
    ratio = rates["clean"] / rates["poisoned"]
    print(f"records/s clean {rates['clean']:.0f}, poisoned {rates['poisoned']:.0f}: {ratio:.2f}x slower")
    record_summary(
        "streams, runs of 1,000 poison",
        f"{rates['poisoned']:.0f} records/s",
        f"clean {rates['clean']:.0f} records/s",
        f"{ratio:.2f}x slower",
        "<= 2x slower",
        ratio <= 2,
    )


if __name__ == "__main__":
    main()

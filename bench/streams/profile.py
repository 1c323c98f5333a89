"""The top entries of a py-spy profile in its raw format (one line per stack: ``frame;frame;... count``).

    python -m bench.streams.profile FILE [--top 25]

Inclusive share: the samples whose stack holds the function anywhere (counted once per stack); self share:
the samples in which it is the innermost frame. Shares are of all samples of all threads py-spy recorded
(idle threads left out, py-spy's default).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_LINE = re.compile(r" \(([^()]*?):\d+\)$")


def function_of(frame: str) -> str:
    """``handle_batch (streams/engine.py:230)`` → ``handle_batch (streams/engine.py)``: lines merged."""
    return _LINE.sub(r" (\1)", frame.strip())


def shares(path: Path) -> tuple[int, Counter[str], Counter[str]]:
    """Total samples, and the inclusive and self sample counts per function."""
    total, inclusive, own = 0, Counter[str](), Counter[str]()
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [function_of(frame) for frame in stack.split(";") if frame]
        total += count  # samples without a Python frame (a thread in native code) count in the total
        for name in set(frames):
            inclusive[name] += count
        if frames:
            own[frames[-1]] += count
    return total, inclusive, own


def report(path: Path, top: int = 25) -> str:
    total, inclusive, own = shares(path)
    if not total:
        return f"{path}: no samples"
    lines = [f"{path}: {total} samples", "inclusive:"]
    lines += [f"  {count / total:6.1%}  {name}" for name, count in inclusive.most_common(top)]
    lines.append("self:")
    lines += [f"  {count / total:6.1%}  {name}" for name, count in own.most_common(top)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("path", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    print(report(args.path, args.top))


if __name__ == "__main__":
    main()

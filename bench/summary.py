"""The table ``make bench`` prints at the end: one row per figure the benchmarks recorded.

python -m bench.summary FILE     # FILE: the rows written through CLICKMUNCHER_BENCH_SUMMARY
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

COLUMNS = ("benchmark", "ours", "peer", "ratio", "target", "met")


def table(rows: list[dict[str, object]]) -> str:
    cells = [list(COLUMNS)] + [[_cell(row, column) for column in COLUMNS] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    lines = [
        "  ".join(value.ljust(width) for value, width in zip(line, widths, strict=True)) for line in cells
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)


def _cell(row: dict[str, object], column: str) -> str:
    value = row.get(column)
    if column != "met":
        return str(value)
    return "-" if value is None else ("yes" if value else "NO")


def main() -> None:
    path = Path(sys.argv[1])
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    print(table(rows))


if __name__ == "__main__":
    main()

"""``clickmuncher stats`` and ``clickmuncher db upgrade`` on both databases; the table formatting."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from api.report import format_table, totals
from clickmuncher import sketches
from clickmuncher.cli import main
from clickmuncher.db.engines import make_engine
from clickmuncher.records import ClickWindow, iso_utc
from sinks.batch import RawRecord, plan_batch
from sinks.store import claim_partitions, write_batch
from tests.sinks.helpers import T0_MS, WINDOW_MS, window


def test_format_table_aligns_columns() -> None:
    text = format_table(["url", "clicks"], [("https://a.example/", 5), ("b", 1234)])
    assert text.splitlines() == [
        "url                 clicks",
        "------------------  ------",
        "https://a.example/       5",
        "b                     1234",
    ]


def seed(db_url: str) -> None:
    sketch = sketches.new()
    for n in range(3):
        sketches.update(sketch, f"{n:016x}")
    b = window("https://example.com/b", 1, 10, revision=1)
    records = [
        window("https://example.com/a", 0, 3),  # windows without classes: read as human
        window("https://example.com/a", 1, 4),
        ClickWindow(
            b.url, b.window_start_ms, b.window_end_ms, 10, 1, (4, 3, 2, 1), 3, sketches.serialize(sketch)
        ),
    ]
    engine = make_engine(db_url)
    claim_partitions(engine, "cw", [0])
    batch = plan_batch([RawRecord(0, i, r.key(), r.encode()) for i, r in enumerate(records)])
    with engine.begin() as conn:
        write_batch(conn, "cw", batch, {0: -2})
    engine.dispose()


def test_db_upgrade_and_stats(db_url: str) -> None:
    runner = CliRunner()
    env = {"CLICKMUNCHER_DATABASE_URL": db_url}
    upgraded = runner.invoke(main, ["db", "upgrade"], env=env)
    assert upgraded.exit_code == 0, upgraded.output
    seed(db_url)
    assert totals(db_url) == (17, 3)

    result = runner.invoke(main, ["stats", "--top", "5"], env=env)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "clicks per URL (top 5)"
    assert lines[1].split() == ["url", "clicks", "human", "bot", "preview", "prefetch", "uniques"]
    assert lines[3].split() == ["https://example.com/b", "10", "4", "3", "2", "1", "3"]
    assert lines[4].split() == ["https://example.com/a", "7", "7", "0", "0", "0", "0"]
    assert "2026-09-21T" in result.output and "revision" in result.output
    windows = result.output.splitlines()[7:]  # newest first, then by URL
    assert windows[0].split()[2:] == [
        "url",
        "clicks",
        "human",
        "bot",
        "preview",
        "prefetch",
        "uniques",
        "revision",
        "state",
    ]
    assert windows[2].split()[2:] == ["https://example.com/a", "4", "-", "-", "-", "-", "-", "0", "final"]
    assert windows[3].split()[2:] == ["https://example.com/b", "10", "4", "3", "2", "1", "3", "1", "final"]

    since = iso_utc(T0_MS + WINDOW_MS)  # leaves out a's first window
    result = runner.invoke(main, ["stats", "--url", "https://example.com/a", "--since", since], env=env)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[3].split()[:3] == ["https://example.com/a", "4", "4"]
    assert result.output.count("https://example.com/a") == 2  # one total, one window


def test_stats_without_schema_is_one_line(tmp_path: object) -> None:
    result = CliRunner().invoke(
        main, ["stats"], env={"CLICKMUNCHER_DATABASE_URL": f"sqlite:///{tmp_path}/x.db"}
    )
    assert result.exit_code == 2
    assert "clickmuncher db upgrade" in result.output


def test_python_m_sinks_help() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sinks", "--help"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0
    assert "DB sink" in done.stdout

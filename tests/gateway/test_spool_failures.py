"""A spool that cannot take clicks: unwritable at start, a disk that fills up (a torn write), the size cap.

A full disk is made real with ``RLIMIT_FSIZE`` in a child process (root ignores file permissions, not that):
a write that crosses the limit is cut short, the next one fails with EFBIG, as on a full filesystem.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import stat
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from clickmuncher.devstack.kafka.broker import free_port
from clickmuncher.records import ClickEvent
from clickmuncher.settings import ConfigError
from gateway.main import EXIT_CLICKS_LOST, check_settings
from gateway.spool import Spool, SpoolFull, claimed, replay_segment, segments
from tests.conftest import LocalBroker
from tests.gateway.helpers import SIGNING_KEY, GatewayClient, gateway_settings, wait_for

LINK = "/?u=http%3A%2F%2Fexample.com%2Fp%2F{i}"


def _file_size_limit(limit: int) -> Callable[[], None]:
    def apply() -> None:  # runs in the child: soft limit only, so the child may lift it again
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    return apply


def _lines(directory: Path) -> list[ClickEvent]:
    """Every line of every segment, decoded: a torn or glued line fails the test here."""
    return [
        ClickEvent.decode(line) for path in segments(directory) for line in path.read_bytes().splitlines()
    ]


def test_state_dir_that_cannot_be_written_is_a_config_error(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    for state_dir in (not_a_dir, not_a_dir / "state"):
        settings = gateway_settings("127.0.0.1:9092", "clicks", state_dir)
        with pytest.raises(ConfigError, match=r"CLICKMUNCHER_STATE_DIR: .* cannot be written"):
            check_settings(settings)


def test_cli_gateway_on_a_full_disk_exits_2_with_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "CLICKMUNCHER_SIGNING_KEY": SIGNING_KEY, "CLICKMUNCHER_STATE_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "clickmuncher.cli", "gateway", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        preexec_fn=_file_size_limit(0),
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "CLICKMUNCHER_STATE_DIR" in result.stderr


def test_a_torn_write_is_rolled_back_and_the_next_click_is_whole(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import json, resource, sys
        from pathlib import Path
        from clickmuncher.records import ClickEvent
        from gateway.spool import Spool
        spool = Spool(Path(sys.argv[1]))
        written, errors = 0, []
        for i in range(20):
            try:
                spool.append([ClickEvent(f"http://example.com/{i}", 1_700_000_000_000 + i)])
                written += 1
            except OSError as e:
                errors.append(e.errno)
        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        spool.append([ClickEvent("http://example.com/after", 1_800_000_000_000)])  # room again
        print(json.dumps({"written": written, "errors": errors}))
        """
    )
    found = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        preexec_fn=_file_size_limit(250),
        timeout=120,
    )
    result = json.loads(found.stdout)
    assert 0 < result["written"] < 20 and result["errors"]  # the limit was hit part-way through a line
    lines = _lines(tmp_path)
    assert [e.url for e in lines] == [f"http://example.com/{i}" for i in range(result["written"])] + [
        "http://example.com/after"
    ]


def test_spool_size_cap_counts_every_segment(tmp_path: Path) -> None:
    other = Spool(tmp_path)  # another process's leftover segment
    other.append([ClickEvent(f"http://example.com/{i}", 1_700_000_000_000 + i) for i in range(3)])
    other.seal()
    used = other.refresh().bytes
    spool = Spool(tmp_path, max_bytes=used + 150)
    stats = spool.refresh()
    assert (stats.bytes, stats.segments, stats.oldest_ts_ms) == (used, 1, 1_700_000_000_000)
    appended = 0
    with pytest.raises(SpoolFull):
        for i in range(100):
            spool.append([ClickEvent(f"http://example.com/x/{i}", 1_700_000_001_000)])
            appended += 1
    assert 0 < appended < 4 and spool.refresh().bytes <= used + 150
    [leftover, _] = segments(tmp_path)
    with claimed(leftover) as fd:  # replayed: the room comes back at the next refresh
        assert fd is not None and replay_segment(leftover, fd, lambda event: True)
    assert spool.refresh().bytes < 150
    spool.append([ClickEvent("http://example.com/again", 1_700_000_002_000)])


def test_spool_files_are_private(tmp_path: Path) -> None:
    old = tmp_path / "spool" / f"{1:020d}-1-000001.jsonl"
    old.parent.mkdir(mode=0o755)
    old.write_bytes(ClickEvent("http://example.com/", 1).encode() + b"\n")
    old.chmod(0o644)
    check_settings(gateway_settings("127.0.0.1:9092", "clicks", tmp_path))
    spool = Spool(tmp_path / "spool")
    spool.append([ClickEvent("http://example.com/new", 2)])
    spool.seal()
    with claimed(old) as fd:
        assert fd is not None and not replay_segment(old, fd, lambda event: False)  # writes its .pos
    modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in (tmp_path / "spool").iterdir()}
    assert stat.S_IMODE((tmp_path / "spool").stat().st_mode) == 0o700
    assert len(modes) == 3 and set(modes.values()) == {0o600}, modes


async def test_full_spool_answers_503_and_counts_what_it_loses(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    nowhere = f"127.0.0.1:{free_port()}"
    settings = gateway_settings(
        nowhere,
        "clicks",
        tmp_path,
        gateway_queue_max_messages=1,
        gateway_spool_max_bytes=300,
        gateway_drain_timeout_s=0.2,
    )
    async with GatewayClient(settings) as client:
        assert (await client.get("/healthz")).status == 200
        for i in range(20):
            assert (await client.get(LINK.format(i=i))).status == 302
        health = await client.get("/healthz")
        assert health.status == 503 and "spool is full" in await health.text()
        client.sink.keeper.scan()
        assert client.sample("clickmuncher_gateway_spool_max_bytes") == 300
        assert 0 < client.sample("clickmuncher_gateway_spool_bytes") <= 300
        assert client.sample("clickmuncher_gateway_spool_segments") == 1
        assert client.sample("clickmuncher_gateway_spool_oldest_click_age_seconds") > 0
    spooled = client.sample("clickmuncher_gateway_clicks_spooled_total")
    lost = client.sample("clickmuncher_gateway_clicks_lost_total", {"reason": "spool_full"})
    assert lost > 0 and spooled + lost == 20  # every click is on disk or counted lost
    assert len(_lines(tmp_path / "spool")) == spooled
    [cap] = [r for r in caplog.records if r.getMessage().startswith("the spool is full")]  # logged once
    assert cap.levelno == logging.ERROR and "CLICKMUNCHER_GATEWAY_SPOOL_MAX_BYTES" in cap.getMessage()
    assert len([r for r in caplog.records if r.getMessage().startswith("click lost")]) <= 2  # rate-limited


@contextmanager
def _gateway_process(env: dict[str, str], port: int, limit: int) -> Iterator[subprocess.Popen[str]]:
    """``python -m gateway`` under a file size limit; its log goes to a pipe (a file would hit the limit)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway", "--port", str(port)],
        env={**env, "PYTHONDONTWRITEBYTECODE": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=_file_size_limit(limit),
    )
    try:
        wait_for(lambda: process.poll() is not None or _get(port, "/healthz")[0] == 200, "the gateway")
        assert process.poll() is None, process.communicate()[0]
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


@contextmanager
def _broker_stopped(kafka: LocalBroker) -> Iterator[None]:
    """The session's broker stopped for the block, started again after it (other tests share it)."""
    kafka.stop()
    try:
        yield
    finally:
        kafka.start()


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the 302 itself is the answer


_OPENER = urllib.request.build_opener(_NoRedirects)


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with _OPENER.open(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return 0, ""


def _metric(port: int, name: str) -> float:
    lines = _get(port, "/metrics")[1].splitlines()
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines if line.split("{")[0].split(" ")[0] == name)


@pytest.mark.kafka
@pytest.mark.timeout(180)
def test_disk_full_at_run_time_is_unhealthy_counted_and_exits_1(kafka: LocalBroker, tmp_path: Path) -> None:
    port, metrics_port = free_port(), free_port()
    env: dict[str, Any] = {
        **os.environ,
        # The gateway starts only with the cluster there (its start check); it is stopped once the gateway
        # serves, so the clicks need the spool.
        "CLICKMUNCHER_KAFKA_BOOTSTRAP": kafka.bootstrap,
        "CLICKMUNCHER_SIGNING_KEY": SIGNING_KEY,
        "CLICKMUNCHER_ALLOWED_HOSTS": "example.com",
        "CLICKMUNCHER_STATE_DIR": str(tmp_path),
        "CLICKMUNCHER_GATEWAY_QUEUE_MAX_MESSAGES": "1",
        "CLICKMUNCHER_GATEWAY_DRAIN_TIMEOUT_S": "0.2",
        "CLICKMUNCHER_GATEWAY_METRICS_PORT": str(metrics_port),
    }
    with _gateway_process(env, port, limit=300) as process, _broker_stopped(kafka):
        assert [_get(port, LINK.format(i=i))[0] for i in range(30)] == [302] * 30
        status, body = _get(port, "/healthz")
        assert status == 503 and "cannot be written" in body
        assert _metric(metrics_port, "clickmuncher_gateway_clicks_lost_total") > 0
        process.terminate()
        output = process.communicate(timeout=60)[0]
    assert process.returncode == EXIT_CLICKS_LOST, output
    [summary] = [line for line in output.splitlines() if "clicks closed:" in line]
    spooled = int(summary.split("spooled=")[1].split()[0])
    lost = int(summary.split("lost=")[1].split()[0])
    assert "ERROR" in summary and lost > 0 and spooled + lost == 30, summary
    assert len(_lines(tmp_path / "spool")) == spooled  # no torn line, none counted but missing
    assert output.count("click lost") <= 2, output  # rate-limited: the counter has the figures

"""Kafka Streams as a peer: the Java application in bench/streams/kstreams, built with Maven once per source
version into ``~/.cache/clickmuncher/kstreams-<digest>/`` (classes and runtime jars), and run in passes.

One JVM per processing guarantee runs two passes over two identical copies of the load (each ending in one
sentinel per partition): the first in a fresh JVM (cold, timed from the process start), the second right
after it in the same JVM (warm, timed from the pass's own start). Each pass has a fresh application id and
its own output topic, and ends when its window records account for every click; their counts are checked.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from bench.common import cpu_seconds
from bench.streams.finish import WindowWatch
from clickmuncher.devstack.kafka.jars import BrokerError, cache_root, require_tool
from clickmuncher.kafka.admin import COMPACTED, ensure_topics

PROJECT = Path(__file__).resolve().parent / "kstreams"
MAIN_CLASS = "io.clickmuncher.bench.ClickWindows"
JVM_OPTIONS = ["-Xms512m", "-Xmx1g", "-XX:+UseG1GC", "-Djava.awt.headless=true"]
GUARANTEES = ("exactly_once_v2", "at_least_once")


def sources_digest() -> str:
    """A digest of the pom and the sources: a change builds a new cache directory."""
    digest = hashlib.sha256()
    for path in sorted([PROJECT / "pom.xml", *(PROJECT / "src").rglob("*")]):
        if path.is_file():
            digest.update(path.relative_to(PROJECT).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def build(*, quiet: bool = False) -> str:
    """Compiles the application and copies its runtime jars, once; returns its class path.

    Built in a staging directory renamed into place when complete, like the broker's jars."""
    home = cache_root() / f"kstreams-{sources_digest()}"
    if (home / ".complete").exists():
        return f"{home / 'classes'}:{home / 'libs'}/*"
    require_tool("java")
    mvn = require_tool("mvn")
    staging = home.with_name(home.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    if not quiet:
        print(f"bench: building the Kafka Streams peer into {home} (once)", flush=True)
    goals = ["compile", "dependency:copy-dependencies", "-DincludeScope=runtime"]
    paths = [f"-Dbuild.dir={staging / 'build'}", f"-DoutputDirectory={staging / 'libs'}"]
    result = subprocess.run(
        [mvn, "-B", "-q", "-f", str(PROJECT / "pom.xml"), *goals, *paths],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        errors = [line for line in result.stdout.splitlines() if "ERROR" in line][:5]
        raise BrokerError(f"mvn could not build the Kafka Streams peer: {' | '.join(errors) or 'see mvn'}")
    (staging / "build" / "classes").rename(staging / "classes")
    shutil.rmtree(staging / "build")
    shutil.rmtree(home, ignore_errors=True)
    staging.rename(home)
    (home / ".complete").write_text(sources_digest())
    return f"{home / 'classes'}:{home / 'libs'}/*"


@dataclass(frozen=True)
class Load:
    """What the passes read: identical copies of the load, the clicks in each, the expected windows."""

    copies: tuple[str, ...]
    clicks: int
    partitions: int
    expected: dict[str, int]
    window_s: int
    grace_s: int


class _Jvm:
    """The Java process: one JSON line on stdout as a pass starts and ends; a line on stdin ends a pass."""

    def __init__(self, command: list[str], log: IO[bytes]) -> None:
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True
        )
        self.log_path = log.name

    def line(self) -> dict[str, int]:
        assert self.process.stdout is not None
        text = self.process.stdout.readline()
        if not text:
            self.check_alive()
            raise RuntimeError(f"the Kafka Streams peer closed its output; see {self.log_path}")
        return json.loads(text)  # type: ignore[no-any-return]

    def end_pass(self) -> dict[str, int]:
        assert self.process.stdin is not None
        self.process.stdin.write("next\n")
        self.process.stdin.flush()
        return self.line()

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(
                f"the Kafka Streams peer exited with {self.process.returncode}; see {self.log_path}"
            )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=60)


def run_guarantee(
    bootstrap: str, guarantee: str, load: Load, overrides: str = ""
) -> dict[str, dict[str, float]]:
    """Cold and warm figures of one processing guarantee: ``{"cold": {...}, "warm": {...}}``.

    ``overrides``: Kafka Streams settings ``key=value,...`` over the application's own."""
    classpath = build()
    suffix = uuid.uuid4().hex[:6]
    outputs = [f"{topic}-out-{suffix}" for topic in load.copies]
    ensure_topics(bootstrap, {topic: COMPACTED for topic in outputs}, load.partitions)
    state_dir = Path(tempfile.mkdtemp(prefix="cm-bench-kstreams-"))
    events = load.clicks + load.partitions  # the sentinels
    passes = [f"{source}:{output}" for source, output in zip(load.copies, outputs, strict=True)]
    command = ["java", *JVM_OPTIONS, f"-Dclickwindows.config={overrides}", "-cp", classpath, MAIN_CLASS]
    command += [bootstrap, guarantee]
    command += [str(load.window_s), str(load.grace_s), str(state_dir / "state"), str(events), *passes]
    with open(state_dir / "kstreams.log", "wb") as log:
        watch = WindowWatch(bootstrap, outputs[0])  # subscribed before the pass starts
        began = time.time()
        jvm = _Jvm(command, log)
        try:
            jvm.line()  # the first pass started
            cold = _finish_pass(jvm, watch, load, began, 0.0)
            watch = WindowWatch(bootstrap, outputs[1])
            cold["to_last_input_s"] = jvm.end_pass()["last_input_ms"] / 1000 - began
            began, cpu_began = jvm.line()["started_ms"] / 1000, cpu_seconds(jvm.process.pid)
            warm = _finish_pass(jvm, watch, load, began, cpu_began)
            warm["to_last_input_s"] = jvm.end_pass()["last_input_ms"] / 1000 - began
        finally:
            jvm.stop()
    shutil.rmtree(state_dir, ignore_errors=True)
    for figures in (cold, warm):
        figures["to_last_input_s"] = round(figures["to_last_input_s"], 2)
        figures["to_last_input_per_s"] = round(load.clicks / figures["to_last_input_s"])
    return {"cold": cold, "warm": warm}


def _finish_pass(
    jvm: _Jvm, watch: WindowWatch, load: Load, began: float, cpu_began: float
) -> dict[str, float]:
    """Waits for the pass's last window, checks every count; its figures since ``began``."""
    finish = watch.wait(load.clicks, jvm.check_alive)
    cpu_s = cpu_seconds(jvm.process.pid) - cpu_began
    watch.verify(load.expected)
    watch.close()
    return {
        "events": load.clicks,
        "seconds": round(finish - began, 2),
        "events_per_s": round(load.clicks / (finish - began)),
        "cpu_s": round(cpu_s, 2),
        "events_per_cpu_s": round(load.clicks / cpu_s),
        "window_records": watch.records,
    }

"""Fetching the broker jars from Maven Central into a per-user cache, once per version."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from clickmuncher.settings import ConfigError

KAFKA_VERSION = "4.1.1"
SMOKE_CLASS = "kafka.Kafka"


class BrokerError(ConfigError):
    """The broker cannot be fetched, started or stopped; the message is one line for the user."""


def package_file(name: str) -> Traversable:
    """A file shipped beside these modules (``pom.xml``, ``log4j2.yaml``: pyproject.toml's package data),
    found from this module's own package, so that moving the package cannot leave a stale name behind."""
    return resources.files(__name__.rpartition(".")[0]).joinpath(name)


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "clickmuncher"


def jars_dir(version: str = KAFKA_VERSION) -> Path:
    return cache_root() / f"kafka-{version}" / "libs"


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BrokerError(f"'{name}' not found on PATH: the local Kafka broker needs Java 17+ and Maven")
    return path


def ensure_jars(version: str = KAFKA_VERSION, *, quiet: bool = False) -> Path:
    """Returns the directory of the broker's jars, downloading them with ``mvn`` the first time.

    The download goes to a temporary directory that is renamed into place only when complete, so an
    interrupted fetch never leaves a half-filled cache behind.
    """
    libs = jars_dir(version)
    if (libs / ".complete").exists():
        return libs
    require_tool("java")
    mvn = require_tool("mvn")
    staging = libs.parent / "libs.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    pom = staging / "pom.xml"
    template = package_file("pom.xml").read_text()
    pom.write_text(template.replace("@KAFKA_VERSION@", version))
    if not quiet:
        print(
            f"kafka: fetching Apache Kafka {version} jars from Maven Central into {libs} (once)",
            file=sys.stderr,
            flush=True,
        )
    command = [
        mvn,
        "-B",
        "-f",
        str(pom),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={staging / 'jars'}",
        "-DincludeScope=runtime",
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = " | ".join(line for line in result.stdout.splitlines()[-5:] if "ERROR" in line)
        raise BrokerError(f"mvn could not fetch the Kafka {version} jars: {tail or 'see mvn output'}")
    shutil.rmtree(libs, ignore_errors=True)
    (staging / "jars").rename(libs)
    shutil.rmtree(staging, ignore_errors=True)
    (libs / ".complete").write_text(version)
    if not quiet:
        size_mb = sum(p.stat().st_size for p in libs.glob("*.jar")) / 1e6
        print(f"kafka: {len(list(libs.glob('*.jar')))} jars, {size_mb:.0f} MB cached", file=sys.stderr)
    return libs


def classpath(libs: Path) -> str:
    return f"{libs}/*"

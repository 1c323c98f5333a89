"""What ``clickmuncher kafka …`` and ``clickmuncher topics …`` do (clickmuncher/cli.py holds their options).

Progress goes to stderr; the last line on stdout of ``kafka up`` is the bootstrap address list.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from clickmuncher.devstack.kafka import broker, cluster
from clickmuncher.devstack.kafka.jars import BrokerError


def up(directory: Path, brokers: int | None, port: int | None, security: str | None) -> None:
    """One broker as it always was, unless D holds a cluster or a cluster is asked for."""
    if cluster.is_cluster(directory) or (brokers or 1) > 1 or security is not None:
        _cluster_up(directory, brokers, port, security)
        return
    port = 9092 if port is None else port
    click.echo(f"kafka up: port={port} data_dir={directory.resolve()}", err=True)
    began = time.monotonic()
    info = broker.start(directory, port=port)
    click.echo(f"kafka: ready in {time.monotonic() - began:.1f}s (pid {info.pid})", err=True)
    click.echo(info.bootstrap)


def _cluster_up(directory: Path, brokers: int | None, port: int | None, security: str | None) -> None:
    held = cluster.load(directory) if cluster.is_cluster(directory) else None
    brokers = brokers or (held.brokers if held else 1)
    security = security or (held.security if held else "plaintext")
    first = port or (held.port if held else 9092)
    click.echo(
        f"kafka up: brokers={brokers} ports={first}..{first + brokers - 1} security={security} "
        f"data_dir={directory.resolve()}",
        err=True,
    )
    began = time.monotonic()
    layout = cluster.up(directory, brokers, port, security)
    pids = " ".join(str(node.pid) for node in cluster.status(directory))
    click.echo(
        f"kafka: {layout.brokers} brokers ready in {time.monotonic() - began:.1f}s (pids {pids})", err=True
    )
    click.echo(f"kafka: client settings in {directory.resolve() / 'client.env'}", err=True)
    click.echo(layout.bootstrap)


def down(directory: Path) -> None:
    if cluster.is_cluster(directory):
        stopped = cluster.down(directory)
        click.echo(
            f"kafka: {f'stopped {stopped} brokers' if stopped else 'not running'} ({directory.resolve()})"
        )
        return
    click.echo(f"kafka: {'stopped' if broker.stop(directory) else 'not running'} ({directory.resolve()})")


def status(directory: Path) -> int:
    """Prints where each broker runs; returns the exit code (1 when any is not running)."""
    if cluster.is_cluster(directory):
        nodes = cluster.status(directory)
        for node in nodes:
            state = f"running pid={node.pid}" if node.pid else "not running"
            click.echo(f"kafka: broker {node.index} {state} bootstrap={node.address}")
        return 0 if all(node.pid for node in nodes) else 1
    info = broker.status(directory)
    if info.running:
        click.echo(f"kafka: running pid={info.pid} bootstrap={info.bootstrap} data_dir={info.data_dir}")
        return 0
    click.echo(f"kafka: not running (data_dir={info.data_dir})")
    return 1


def kill(directory: Path, index: int) -> None:
    if cluster.is_cluster(directory):
        killed = cluster.kill(directory, index)
    elif index == 0:
        killed = broker.stop(directory, hard=True)
    else:
        raise BrokerError(f"--broker {index}: {directory.resolve()} holds a single broker (0)")
    click.echo(f"kafka: broker {index} {'killed' if killed else 'was not running'}")

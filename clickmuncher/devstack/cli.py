"""The local development stack's commands: ``clickmuncher kafka ...`` (local brokers and clusters) and
``clickmuncher up`` (the whole pipeline on this machine)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from clickmuncher.commands import one_line_errors
from clickmuncher.settings import CommonSettings, Settings, load_settings


@click.group()
def kafka() -> None:
    """Real Kafka brokers (KRaft) on 127.0.0.1 for development and tests: one, or a cluster."""


def _data_dir(data_dir: Path | None) -> Path:
    from clickmuncher.devstack.kafka.broker import default_data_dir

    return data_dir if data_dir is not None else default_data_dir(load_settings(CommonSettings).state_dir)


DATA_DIR = click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Where the broker keeps its data, log and pid file [<state dir>/kafka].",
)


@kafka.command("up")
@click.option(
    "--brokers",
    type=click.IntRange(1, 9),
    default=None,
    help="Brokers in the cluster; the first three are also its KRaft controllers [1, or what D holds].",
)
@click.option("--port", type=int, default=None, help="Client port on 127.0.0.1; broker i uses port+i [9092].")
@click.option(
    "--security",
    type=click.Choice(["plaintext", "sasl_ssl"]),
    default=None,
    help="sasl_ssl: TLS with a CA generated into D, SCRAM-SHA-512 users, D/client.env [plaintext].",
)
@DATA_DIR
@one_line_errors
def kafka_up(brokers: int | None, port: int | None, security: str | None, data_dir: Path | None) -> None:
    """Start the broker(s) in the background (fetching the jars once) and wait until they answer.

    With the same arguments again, starts whichever brokers of D are not running.
    """
    from clickmuncher.devstack.kafka import commands

    commands.up(_data_dir(data_dir), brokers, port, security)


@kafka.command("down")
@DATA_DIR
@one_line_errors
def kafka_down(data_dir: Path | None) -> None:
    """Stop the broker(s) of this data directory."""
    from clickmuncher.devstack.kafka import commands

    commands.down(_data_dir(data_dir))


@kafka.command("status")
@DATA_DIR
@one_line_errors
def kafka_status(data_dir: Path | None) -> None:
    """Say whether the broker(s) of this data directory run, and where. Exit 1 when any does not."""
    from clickmuncher.devstack.kafka import commands

    sys.exit(commands.status(_data_dir(data_dir)))


@kafka.command("kill")
@click.option("--broker", "index", type=int, required=True, help="Which broker (0-based).")
@DATA_DIR
@one_line_errors
def kafka_kill(index: int, data_dir: Path | None) -> None:
    """Kill one broker with SIGKILL (fault tests); `kafka up` starts it again."""
    from clickmuncher.devstack.kafka import commands

    commands.kill(_data_dir(data_dir), index)


@click.command("up")
@click.option("--demo", is_flag=True, help="Also send sample clicks and show the counts growing.")
@click.option("--port", type=int, default=8080, show_default=True, help="The gateway's port.")
@click.option("--api-port", type=int, default=None, help="The api's port [CLICKMUNCHER_API_PORT, 8090].")
@one_line_errors
def up_command(demo: bool, port: int, api_port: int | None) -> None:
    """The whole pipeline on this machine: broker, streams, sink, api, gateway. Ctrl-C stops everything."""
    from clickmuncher.devstack.up import run_stack

    settings = load_settings(Settings)
    run_stack(settings, demo=demo, gateway_port=port, api_port=api_port or settings.api_port)


COMMANDS = [kafka, up_command]

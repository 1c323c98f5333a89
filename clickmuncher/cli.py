"""The ``clickmuncher`` command line (SPEC §3): each service's commands (``<service>/cli.py``), the shared
``db`` and ``topics`` commands, and the local development stack's (``clickmuncher/devstack/cli.py``) on top.
A command imports its service's code only when it runs."""

from __future__ import annotations

import sys

import click

from api import cli as api_cli
from clickmuncher.commands import one_line_errors
from clickmuncher.devstack import cli as devstack_cli
from clickmuncher.settings import CommonSettings, SinkSettings, load_settings
from gateway import cli as gateway_cli
from sinks import cli as sinks_cli
from streams import cli as streams_cli


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="clickmuncher")
def main() -> None:
    """clickmuncher: exact click counting for redirect links."""


@main.group()
def topics() -> None:
    """The pipeline's topics, declared once: create the missing ones, check the cluster's against them."""


@topics.command("create")
@one_line_errors
def topics_create() -> None:
    """Create every declared topic that does not exist (existing ones are left as they are)."""
    from clickmuncher.kafka.topic_commands import topics_create

    topics_create(load_settings(CommonSettings))


@topics.command("check")
@one_line_errors
def topics_check() -> None:
    """Print each difference between the declared topics and the cluster's; exit 1 when there is any."""
    from clickmuncher.kafka.topic_commands import topics_check

    sys.exit(topics_check(load_settings(CommonSettings)))


@main.group()
def db() -> None:
    """Database schema (Alembic migrations)."""


@db.command("upgrade")
@one_line_errors
def db_upgrade() -> None:
    """Apply the migrations to CLICKMUNCHER_DATABASE_URL."""
    from clickmuncher.db.schema import upgrade

    upgrade(load_settings(SinkSettings).database_url)
    click.echo("db: schema is up to date")


@main.group()
def replay() -> None:
    """Rebuild from Kafka: the DB from click-windows, or windows from raw clicks."""


replay.add_command(sinks_cli.REPLAY)
replay.add_command(streams_cli.REPLAY)
for service in (gateway_cli, streams_cli, sinks_cli, api_cli, devstack_cli):
    for command in service.COMMANDS:
        main.add_command(command)


if __name__ == "__main__":
    main()

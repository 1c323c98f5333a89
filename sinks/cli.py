"""The sink's commands: ``clickmuncher sink`` and ``clickmuncher replay sink``."""

from __future__ import annotations

import click

from clickmuncher.commands import one_line_errors, settings_or_exit
from clickmuncher.settings import SinkSettings


@click.command("sink")
@one_line_errors
def sink_command() -> None:
    """The DB sink: upserts closed windows, commits offsets after the DB commit."""
    from sinks.main import run

    run(settings_or_exit(SinkSettings))


@click.command("sink")
@click.option("--from", "from_", required=True, help="'earliest' or an ISO-8601 time.")
@one_line_errors
def replay_sink(from_: str) -> None:
    """Move the (stopped) sink back so the aggregate topic is applied again."""
    from sinks.replay import replay_command

    replay_command(settings_or_exit(SinkSettings), from_)


COMMANDS = [sink_command]
REPLAY = replay_sink

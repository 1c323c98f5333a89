"""The sink's commands: ``clickmuncher sink`` and ``clickmuncher replay sink``."""

from __future__ import annotations

import sys

import click

from clickmuncher.commands import check_option, one_line_errors, settings_or_exit
from clickmuncher.settings import SinkSettings


@click.command("sink")
@check_option
@one_line_errors
def sink_command(check: bool) -> None:
    """The DB sink: upserts closed windows, commits offsets after the DB commit."""
    from clickmuncher.health import check as check_ready
    from sinks.main import METRICS_PORT, run

    settings = settings_or_exit(SinkSettings)
    if check:
        sys.exit(check_ready("sink", settings.sink_metrics_port, METRICS_PORT))
    run(settings)


@click.command("sink")
@click.option("--from", "from_", required=True, help="'earliest' or an ISO-8601 time.")
@one_line_errors
def replay_sink(from_: str) -> None:
    """Move the (stopped) sink back so the aggregate topic is applied again."""
    from sinks.replay import replay_command

    replay_command(settings_or_exit(SinkSettings), from_)


COMMANDS = [sink_command]
REPLAY = replay_sink

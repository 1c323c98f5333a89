"""The sink's commands: ``clickmuncher sink`` and ``clickmuncher replay sink``."""

from __future__ import annotations

import click

from clickmuncher.commands import check_option, one_line_errors, start_or_check
from clickmuncher.settings import SinkSettings, load_settings


@click.command("sink")
@check_option
@one_line_errors
def sink_command(check: bool) -> None:
    """The DB sink: upserts closed windows, commits offsets after the DB commit."""
    from sinks.main import METRICS_PORT, run

    settings = load_settings(SinkSettings)
    start_or_check("sink", check, settings.sink_metrics_port, METRICS_PORT, lambda: run(settings))


@click.command("sink")
@click.option("--from", "from_", required=True, help="'earliest' or an ISO-8601 time.")
@one_line_errors
def replay_sink(from_: str) -> None:
    """Move the (stopped) sink back so the aggregate topic is applied again."""
    from sinks.replay import replay_command

    replay_command(load_settings(SinkSettings), from_)


COMMANDS = [sink_command]
REPLAY = replay_sink

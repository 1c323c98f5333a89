"""The streams worker's commands: ``clickmuncher streams`` and ``clickmuncher replay streams``."""

from __future__ import annotations

import sys

import click

from clickmuncher.commands import check_option, one_line_errors, settings_or_exit
from clickmuncher.settings import StreamsSettings


@click.command("streams")
@check_option
@one_line_errors
def streams_command(check: bool) -> None:
    """A streams worker: counts clicks in tumbling windows and emits closed windows."""
    from clickmuncher.health import check as check_ready
    from streams.main import METRICS_PORT, run

    settings = settings_or_exit(StreamsSettings)
    if check:
        sys.exit(check_ready("streams", settings.streams_metrics_port, METRICS_PORT))
    run(settings)


@click.command("streams")
@click.option("--from", "from_", required=True, help="An ISO-8601 time; replay starts at its window.")
@one_line_errors
def replay_streams(from_: str) -> None:
    """Recompute windows from the raw clicks topic (streams workers stopped)."""
    from streams.replay import replay_command

    replay_command(settings_or_exit(StreamsSettings), from_)


COMMANDS = [streams_command]
REPLAY = replay_streams

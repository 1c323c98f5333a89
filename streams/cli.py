"""The streams worker's commands: ``clickmuncher streams`` and ``clickmuncher replay streams``."""

from __future__ import annotations

import click

from clickmuncher.commands import check_option, one_line_errors, start_or_check
from clickmuncher.settings import StreamsSettings, load_settings


@click.command("streams")
@check_option
@one_line_errors
def streams_command(check: bool) -> None:
    """A streams worker: counts clicks in tumbling windows and emits closed windows."""
    from streams.main import METRICS_PORT, run

    settings = load_settings(StreamsSettings)
    start_or_check("streams", check, settings.streams_metrics_port, METRICS_PORT, lambda: run(settings))


@click.command("streams")
@click.option("--from", "from_", required=True, help="An ISO-8601 time; replay starts at its window.")
@one_line_errors
def replay_streams(from_: str) -> None:
    """Recompute windows from the raw clicks topic (streams workers stopped)."""
    from streams.replay import replay_command

    replay_command(load_settings(StreamsSettings), from_)


COMMANDS = [streams_command]
REPLAY = replay_streams

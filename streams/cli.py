"""The streams worker's commands: ``clickmuncher streams`` and ``clickmuncher replay streams``."""

from __future__ import annotations

import click

from clickmuncher.commands import one_line_errors, settings_or_exit
from clickmuncher.settings import StreamsSettings


@click.command("streams")
@one_line_errors
def streams_command() -> None:
    """A streams worker: counts clicks in tumbling windows and emits closed windows."""
    from streams.main import run

    run(settings_or_exit(StreamsSettings))


@click.command("streams")
@click.option("--from", "from_", required=True, help="An ISO-8601 time; replay starts at its window.")
@one_line_errors
def replay_streams(from_: str) -> None:
    """Recompute windows from the raw clicks topic (streams workers stopped)."""
    from streams.replay import replay_command

    replay_command(settings_or_exit(StreamsSettings), from_)


COMMANDS = [streams_command]
REPLAY = replay_streams

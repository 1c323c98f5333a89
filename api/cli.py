"""The read side's commands: ``clickmuncher api`` and ``clickmuncher stats``."""

from __future__ import annotations

import click

from clickmuncher.commands import one_line_errors
from clickmuncher.settings import ApiSettings, load_settings


@click.command("api")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=None, help="[default: CLICKMUNCHER_API_PORT, 8090]")
@one_line_errors
def api_command(host: str, port: int | None) -> None:
    """The stats API and its page: top URLs, windows and totals, closed and live."""
    from api.main import run

    run(load_settings(ApiSettings), host=host, port=port)


@click.command("stats")
@click.option("--top", type=int, default=10, show_default=True, help="How many URLs by total clicks.")
@click.option("--url", "url", default=None, help="Only this URL (normalized form).")
@click.option("--since", default=None, help="Only windows starting at or after this ISO-8601 time.")
@click.option("--live/--no-live", default=True, show_default=True, help="Add live counts of open windows.")
@one_line_errors
def stats(top: int, url: str | None, since: str | None, live: bool) -> None:
    """Totals and recent windows from the database, with live counts of open windows, as tables."""
    from api.stats import stats_command

    stats_command(load_settings(ApiSettings), top=top, url=url, since=since, live=live)


COMMANDS = [api_command, stats]

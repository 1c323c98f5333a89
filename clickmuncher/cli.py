"""The ``clickmuncher`` command line (SPEC §3). Each command imports its service only when it runs."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from clickmuncher.settings import ConfigError, Settings, load_settings

F = TypeVar("F", bound=Callable[..., Any])


def one_line_errors(func: F) -> F:
    """Bad configuration and broker errors end the command with one line on stderr and exit code 2."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from clickmuncher.kafka.jars import BrokerError

        try:
            return func(*args, **kwargs)
        except (ConfigError, BrokerError) as e:
            click.echo(f"clickmuncher: {e}", err=True)
            sys.exit(2)

    return wrapper  # type: ignore[return-value]


def settings_or_exit() -> Settings:
    return load_settings()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="clickmuncher")
def main() -> None:
    """clickmuncher: exact click counting for redirect links."""


@main.group()
def kafka() -> None:
    """A real single-node Kafka broker (KRaft) on 127.0.0.1 for development and tests."""


def _data_dir(data_dir: Path | None) -> Path:
    from clickmuncher.kafka.broker import default_data_dir

    return data_dir if data_dir is not None else default_data_dir(settings_or_exit().state_dir)


DATA_DIR = click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Where the broker keeps its data, log and pid file [<state dir>/kafka].",
)


@kafka.command("up")
@click.option("--port", type=int, default=9092, show_default=True, help="Client port on 127.0.0.1.")
@DATA_DIR
@one_line_errors
def kafka_up(port: int, data_dir: Path | None) -> None:
    """Start the broker in the background (fetching its jars once) and wait until it answers."""
    import time

    from clickmuncher.kafka import broker

    directory = _data_dir(data_dir)
    click.echo(f"kafka up: port={port} data_dir={directory.resolve()}", err=True)
    began = time.monotonic()
    info = broker.start(directory, port=port)
    click.echo(f"kafka: ready in {time.monotonic() - began:.1f}s (pid {info.pid})", err=True)
    click.echo(info.bootstrap)


@kafka.command("down")
@DATA_DIR
@one_line_errors
def kafka_down(data_dir: Path | None) -> None:
    """Stop the broker of this data directory."""
    from clickmuncher.kafka import broker

    directory = _data_dir(data_dir)
    stopped = broker.stop(directory)
    click.echo(f"kafka: {'stopped' if stopped else 'not running'} ({directory.resolve()})")


@kafka.command("status")
@DATA_DIR
@one_line_errors
def kafka_status(data_dir: Path | None) -> None:
    """Say whether the broker of this data directory runs, and where. Exit 1 when it does not."""
    from clickmuncher.kafka import broker

    info = broker.status(_data_dir(data_dir))
    if info.running:
        click.echo(f"kafka: running pid={info.pid} bootstrap={info.bootstrap} data_dir={info.data_dir}")
    else:
        click.echo(f"kafka: not running (data_dir={info.data_dir})")
        sys.exit(1)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8080, show_default=True)
@click.option("--workers", type=int, default=1, show_default=True, help="Processes sharing the port.")
@one_line_errors
def gateway(host: str, port: int, workers: int) -> None:
    """The redirect gateway: GET /?u=URL[&s=SIG] answers 302 and produces one click event."""
    from gateway.main import run

    run(settings_or_exit(), host=host, port=port, workers=workers)


@main.command()
@one_line_errors
def streams() -> None:
    """A streams worker: counts clicks in tumbling windows and emits closed windows."""
    from streams.main import run

    run(settings_or_exit())


@main.command()
@one_line_errors
def sink() -> None:
    """The DB sink: upserts closed windows, commits offsets after the DB commit."""
    from sinks.main import run

    run(settings_or_exit())


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=None, help="[default: CLICKMUNCHER_API_PORT, 8090]")
@one_line_errors
def api(host: str, port: int | None) -> None:
    """The stats API and its page: top URLs, windows and totals, closed and live."""
    from api.main import run

    run(settings_or_exit(), host=host, port=port)


@main.command()
@click.argument("url")
@click.option("--base", default="http://127.0.0.1:8080/", show_default=True, help="The gateway's URL.")
@one_line_errors
def sign(url: str, base: str) -> None:
    """Print a signed redirect link for URL (the last line is the link)."""
    from gateway.cli import sign_command

    sign_command(settings_or_exit(), url, base)


@main.command()
@click.option("--top", type=int, default=10, show_default=True, help="How many URLs by total clicks.")
@click.option("--url", "url", default=None, help="Only this URL (normalized form).")
@click.option("--since", default=None, help="Only windows starting at or after this ISO-8601 time.")
@click.option("--live/--no-live", default=True, show_default=True, help="Add live counts of open windows.")
@one_line_errors
def stats(top: int, url: str | None, since: str | None, live: bool) -> None:
    """Totals and recent windows from the database, with live counts of open windows, as tables."""
    from api.stats import stats_command

    stats_command(settings_or_exit(), top=top, url=url, since=since, live=live)


@main.group()
def db() -> None:
    """Database schema (Alembic migrations)."""


@db.command("upgrade")
@one_line_errors
def db_upgrade() -> None:
    """Apply the migrations to CLICKMUNCHER_DATABASE_URL."""
    from sinks.schema import upgrade

    upgrade(settings_or_exit().database_url)
    click.echo("db: schema is up to date")


@main.group()
def replay() -> None:
    """Rebuild from Kafka: the DB from click-windows, or windows from raw clicks."""


@replay.command("sink")
@click.option("--from", "from_", required=True, help="'earliest' or an ISO-8601 time.")
@one_line_errors
def replay_sink(from_: str) -> None:
    """Move the (stopped) sink back so the aggregate topic is applied again."""
    from sinks.replay import replay_command

    replay_command(settings_or_exit(), from_)


@replay.command("streams")
@click.option("--from", "from_", required=True, help="An ISO-8601 time; replay starts at its window.")
@one_line_errors
def replay_streams(from_: str) -> None:
    """Recompute windows from the raw clicks topic (streams workers stopped)."""
    from streams.replay import replay_command

    replay_command(settings_or_exit(), from_)


@main.command()
@click.option("--demo", is_flag=True, help="Also send sample clicks and show the counts growing.")
@click.option("--port", type=int, default=8080, show_default=True, help="The gateway's port.")
@click.option("--api-port", type=int, default=None, help="The api's port [CLICKMUNCHER_API_PORT, 8090].")
@one_line_errors
def up(demo: bool, port: int, api_port: int | None) -> None:
    """The whole pipeline on this machine: broker, streams, sink, api, gateway. Ctrl-C stops everything."""
    from clickmuncher.stack import run_stack

    settings = settings_or_exit()
    run_stack(settings, demo=demo, gateway_port=port, api_port=api_port or settings.api_port)


if __name__ == "__main__":
    main()

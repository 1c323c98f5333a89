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
    """Real Kafka brokers (KRaft) on 127.0.0.1 for development and tests: one, or a cluster."""


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
    from clickmuncher.kafka import commands

    commands.up(_data_dir(data_dir), brokers, port, security)


@kafka.command("down")
@DATA_DIR
@one_line_errors
def kafka_down(data_dir: Path | None) -> None:
    """Stop the broker(s) of this data directory."""
    from clickmuncher.kafka import commands

    commands.down(_data_dir(data_dir))


@kafka.command("status")
@DATA_DIR
@one_line_errors
def kafka_status(data_dir: Path | None) -> None:
    """Say whether the broker(s) of this data directory run, and where. Exit 1 when any does not."""
    from clickmuncher.kafka import commands

    sys.exit(commands.status(_data_dir(data_dir)))


@kafka.command("kill")
@click.option("--broker", "index", type=int, required=True, help="Which broker (0-based).")
@DATA_DIR
@one_line_errors
def kafka_kill(index: int, data_dir: Path | None) -> None:
    """Kill one broker with SIGKILL (fault tests); `kafka up` starts it again."""
    from clickmuncher.kafka import commands

    commands.kill(_data_dir(data_dir), index)


@main.group()
def topics() -> None:
    """The pipeline's topics, declared once: create the missing ones, check the cluster's against them."""


@topics.command("create")
@one_line_errors
def topics_create() -> None:
    """Create every declared topic that does not exist (existing ones are left as they are)."""
    from clickmuncher.kafka import commands

    commands.topics_create(settings_or_exit())


@topics.command("check")
@one_line_errors
def topics_check() -> None:
    """Print each difference between the declared topics and the cluster's; exit 1 when there is any."""
    from clickmuncher.kafka import commands

    sys.exit(commands.topics_check(settings_or_exit()))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8080, show_default=True)
@click.option("--workers", type=int, default=1, show_default=True, help="Processes sharing the port.")
@one_line_errors
def gateway(host: str, port: int, workers: int) -> None:
    """The redirect gateway: GET /?u=URL[&s=SIG] answers 302 and produces one click event."""
    from gateway.main import run

    run(settings_or_exit(), host=host, port=port, workers=workers)


CHECK = click.option(
    "--check",
    is_flag=True,
    help="Do not start: ask the instance running on this host's metrics port whether it is ready "
    "(GET /readyz); exit 0 when it is, 1 when not.",
)


@main.command()
@CHECK
@one_line_errors
def streams(check: bool) -> None:
    """A streams worker: counts clicks in tumbling windows and emits closed windows."""
    from clickmuncher.health import check as check_ready
    from streams.main import METRICS_PORT, run

    settings = settings_or_exit()
    if check:
        sys.exit(check_ready("streams", settings.streams_metrics_port, METRICS_PORT))
    run(settings)


@main.command()
@CHECK
@one_line_errors
def sink(check: bool) -> None:
    """The DB sink: upserts closed windows, commits offsets after the DB commit."""
    from clickmuncher.health import check as check_ready
    from sinks.main import METRICS_PORT, run

    settings = settings_or_exit()
    if check:
        sys.exit(check_ready("sink", settings.sink_metrics_port, METRICS_PORT))
    run(settings)


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

"""What every command of the ``clickmuncher`` line shares: configuration errors ending it with one line, and
the services' ``--check``."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import click

from clickmuncher.settings import ConfigError

F = TypeVar("F", bound=Callable[..., Any])


def one_line_errors(func: F) -> F:
    """A :class:`ConfigError` (bad configuration, a broker that cannot start) ends the command with one
    line on stderr and exit code 2."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ConfigError as e:
            click.echo(f"clickmuncher: {e}", err=True)
            sys.exit(2)

    return wrapper  # type: ignore[return-value]


check_option = click.option(
    "--check",
    is_flag=True,
    help="Do not start: ask the instance running on this host's metrics port whether it is ready "
    "(GET /readyz); exit 0 when it is, 1 when not.",
)


def start_or_check(
    service: str, check: bool, port: int, port_setting: str, start: Callable[[], None]
) -> None:
    """A service with health endpoints (clickmuncher/health.py): with ``--check``, exits with the readiness of
    the instance serving on ``port`` (named by ``port_setting`` in errors); else ``start()``."""
    if check:
        from clickmuncher.health import check as check_ready

        sys.exit(check_ready(service, port, port_setting))
    start()

"""What every command of the ``clickmuncher`` line shares: settings loaded at the command's start, and
configuration errors ending it with one line."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import click

from clickmuncher.settings import CommonSettings, ConfigError, load_settings

F = TypeVar("F", bound=Callable[..., Any])
S = TypeVar("S", bound=CommonSettings)


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


def settings_or_exit(kind: type[S]) -> S:
    """A service's settings (``kind``: its class, or :class:`Settings` for all) from the environment; raises
    ConfigError, which :func:`one_line_errors` reports."""
    return load_settings(kind)

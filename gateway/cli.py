"""``clickmuncher sign URL [--base GATEWAY_URL]``: prints a signed redirect link (last line: the link)."""

from __future__ import annotations

import click

from clickmuncher.settings import ConfigError, Settings
from gateway.signing import sign_url
from gateway.urls import Rejected, check_url


def sign_command(settings: Settings, url: str, base: str) -> None:
    """Raises :class:`ConfigError` without a signing key or when the gateway would refuse ``url`` anyway."""
    if settings.signing_key is None or not settings.signing_key.get_secret_value():
        raise ConfigError("CLICKMUNCHER_SIGNING_KEY is not set: there is no key to sign with")
    try:
        check_url(url)
    except Rejected as e:
        raise ConfigError(f"the gateway would refuse this URL: {e}") from e
    click.echo(sign_url(url, settings.signing_key.get_secret_value(), base))

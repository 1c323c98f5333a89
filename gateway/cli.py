"""``clickmuncher sign URL [--base GATEWAY_URL]``: prints a signed redirect link (last line: the link)."""

from __future__ import annotations

import click

from clickmuncher.settings import ConfigError, Settings
from gateway.guard import signing_keys
from gateway.signing import sign_url
from gateway.urls import Rejected, ascii_url, check_url


def sign_command(settings: Settings, url: str, base: str) -> None:
    """Signs ``url`` with the current key; an internationalized URL is signed in the ASCII form browsers
    send (IDNA host, percent-encoded path), which is printed first.

    Raises :class:`ConfigError` without a strong enough signing key, or when the gateway would refuse the URL.
    """
    keys = signing_keys(settings)
    if not keys:
        raise ConfigError("CLICKMUNCHER_SIGNING_KEY is not set: there is no key to sign with")
    try:
        encoded = ascii_url(url)
        check_url(encoded)
    except Rejected as e:
        raise ConfigError(f"the gateway would refuse this URL: {e}") from e
    if encoded != url:
        click.echo(f"signing the URL as browsers send it: {encoded}")
    click.echo(sign_url(encoded, keys[0], base))

"""The gateway's commands: ``clickmuncher gateway`` and ``clickmuncher sign URL [--base GATEWAY_URL]``."""

from __future__ import annotations

import click

from clickmuncher.commands import one_line_errors
from clickmuncher.settings import ConfigError, GatewaySettings, load_settings
from clickmuncher.urls import Rejected, ascii_url, check_url


@click.command("gateway")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8080, show_default=True)
@click.option("--workers", type=int, default=1, show_default=True, help="Processes sharing the port.")
@one_line_errors
def gateway_command(host: str, port: int, workers: int) -> None:
    """The redirect gateway: GET /?u=URL[&s=SIG] answers 302 and produces one click event."""
    from gateway.main import run

    run(load_settings(GatewaySettings), host=host, port=port, workers=workers)


@click.command("sign")
@click.argument("url")
@click.option("--base", default="http://127.0.0.1:8080/", show_default=True, help="The gateway's URL.")
@one_line_errors
def sign(url: str, base: str) -> None:
    """Print a signed redirect link for URL (the last line is the link)."""
    sign_command(load_settings(GatewaySettings), url, base)


COMMANDS = [gateway_command, sign]


def sign_command(settings: GatewaySettings, url: str, base: str) -> None:
    """Signs ``url`` with the current key; an internationalized URL is signed in the ASCII form browsers
    send (IDNA host, percent-encoded path), which is printed first.

    Raises :class:`ConfigError` without a strong enough signing key, or when the gateway would refuse the URL.
    """
    from gateway.guard import signing_keys
    from gateway.signing import sign_url

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

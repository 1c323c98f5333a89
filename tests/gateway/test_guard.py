"""The open-redirect guard, signatures, client addresses and the start-up refusals."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from clickmuncher.cli import main as cli_main
from clickmuncher.settings import ConfigError, Settings
from clickmuncher.urls import Rejected
from gateway.clientaddr import client_address, parse_networks
from gateway.guard import Guard
from gateway.signing import decode_signature, sign_url, signature, verify

KEY = "k" * 32


def _settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_neither_key_nor_allow_list_refuses_to_start() -> None:
    with pytest.raises(ConfigError, match="open redirect"):
        Guard.from_settings(_settings(signing_key=None, allowed_hosts=[]))


@pytest.mark.parametrize("entry", ["*", "*.", "ev il.com", ".example.com", "exa*mple.com", "http://x.com"])
def test_bad_allow_list_entries_refuse_to_start(entry: str) -> None:
    with pytest.raises(ConfigError, match="CLICKMUNCHER_ALLOWED_HOSTS"):
        Guard.from_settings(_settings(allowed_hosts=[entry]))


def test_empty_signing_key_refuses_to_start() -> None:
    with pytest.raises(ConfigError, match="CLICKMUNCHER_SIGNING_KEY: a key has 0 bytes"):
        Guard.from_settings(_settings(signing_key=""))


def test_cli_gateway_exits_2_with_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CLICKMUNCHER_SIGNING_KEY", raising=False)
    monkeypatch.delenv("CLICKMUNCHER_ALLOWED_HOSTS", raising=False)
    result = CliRunner().invoke(cli_main, ["gateway", "--port", "0"])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and "open redirect" in result.output


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("example.com", True),
        ("EXAMPLE.com", True),
        ("example.com.", True),
        ("www.example.com", False),
        ("a.allowed.org", True),
        ("a.b.allowed.org", True),
        ("allowed.org", False),
        ("evilallowed.org", False),
        ("allowed.org.evil.com", False),
    ],
)
def test_allow_list_matching(host: str, allowed: bool) -> None:
    guard = Guard.from_settings(_settings(allowed_hosts=["example.com", "*.allowed.org"]))
    assert guard.host_allowed(host) is allowed


def test_signed_link_accepted_for_any_host_and_allow_list_without_signature() -> None:
    guard = Guard.from_settings(_settings(signing_key=KEY, allowed_hosts=["example.com"]))
    guard.check("https://anywhere.net/x", signature("https://anywhere.net/x", KEY))
    guard.check("https://example.com/x", None)
    with pytest.raises(Rejected) as refused:
        guard.check("https://anywhere.net/x", None)
    assert (refused.value.status, refused.value.reason) == (403, "host_not_allowed")


def test_signature_is_unpadded_base64url_of_the_digest() -> None:
    url = "https://example.com/a?b=1"
    digest = hmac.new(KEY.encode(), url.encode(), hashlib.sha256).digest()
    assert signature(url, KEY) == base64.urlsafe_b64encode(digest).decode().rstrip("=")
    assert decode_signature(signature(url, KEY)) == digest
    assert verify(url, signature(url, KEY), [KEY])
    assert not verify(url + "&c=1", signature(url, KEY), [KEY])


def test_sign_url_joins_existing_query() -> None:
    assert sign_url("http://a.com/", KEY, "https://go.example.org/r?x=1").startswith(
        "https://go.example.org/r?x=1&u=http%3A%2F%2Fa.com%2F&s="
    )


def test_forwarded_for_only_from_trusted_proxies() -> None:
    proxies = parse_networks(["10.0.0.0/8", "::1"])
    assert client_address("203.0.113.9", ["198.51.100.1"], proxies) == "203.0.113.9"
    assert client_address("10.1.2.3", ["198.51.100.1, 10.9.9.9"], proxies) == "198.51.100.1"
    assert client_address("10.1.2.3", ["6.6.6.6, 198.51.100.1"], proxies) == "198.51.100.1"
    assert client_address("10.1.2.3", [], proxies) == "10.1.2.3"
    assert client_address("10.1.2.3", ["198.51.100.1"], ()) == "10.1.2.3"


def test_compose_trusts_forwarded_for_from_its_proxy_only() -> None:
    compose = (Path(__file__).parents[2] / "docker" / "compose.yaml").read_text()
    [trusted] = re.findall(r"CLICKMUNCHER_TRUSTED_PROXIES: (\S+)", compose)
    [proxy_address] = re.findall(r"ipv4_address: (\S+)", compose)
    assert parse_networks([trusted]) == parse_networks([f"{proxy_address}/32"])

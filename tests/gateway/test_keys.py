"""Signing keys (length, rotation), strict signatures, and the settings the gateway refuses to start with."""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path

import pytest
from click.testing import CliRunner

from clickmuncher.cli import main as cli_main
from clickmuncher.settings import ConfigError, Settings
from clickmuncher.urls import Rejected
from gateway.guard import Guard
from gateway.signing import sign_url, signature
from tests.gateway.helpers import OLD_SIGNING_KEY, SIGNING_KEY

URL = "https://unlisted.example.net/a?b=1"


def _settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def _refused_with(guard: Guard, sig: str) -> str:
    with pytest.raises(Rejected) as refused:
        guard.check(URL, sig)
    return refused.value.reason


@pytest.mark.parametrize("key", ["a", "x" * 31, "é" * 15])
def test_short_signing_key_refuses_to_start(key: str) -> None:
    with pytest.raises(ConfigError, match=r"CLICKMUNCHER_SIGNING_KEY: a key has .* fewer than 32"):
        Guard.from_settings(_settings(signing_key=key))


def test_cli_gateway_with_a_weak_key_exits_2_with_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CLICKMUNCHER_SIGNING_KEY", "a")
    result = CliRunner().invoke(cli_main, ["gateway", "--port", "0"])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and "fewer than 32" in result.output


def test_old_keys_still_verify_and_sign_uses_the_current_one(monkeypatch: pytest.MonkeyPatch) -> None:
    guard = Guard.from_settings(_settings(signing_key=SIGNING_KEY, signing_keys_old=f" {OLD_SIGNING_KEY} ,"))
    guard.check(URL, signature(URL, SIGNING_KEY))
    guard.check(URL, signature(URL, OLD_SIGNING_KEY))  # a link published before the rotation
    assert _refused_with(guard, signature(URL, "another-key-of-at-least-32-bytes!")) == "bad_signature"
    monkeypatch.setenv("CLICKMUNCHER_SIGNING_KEY", SIGNING_KEY)
    monkeypatch.setenv("CLICKMUNCHER_SIGNING_KEYS_OLD", OLD_SIGNING_KEY)
    result = CliRunner().invoke(cli_main, ["sign", URL])
    assert result.output.splitlines()[-1] == sign_url(URL, SIGNING_KEY)


def test_short_or_orphan_old_keys_refuse_to_start() -> None:
    with pytest.raises(ConfigError, match="CLICKMUNCHER_SIGNING_KEYS_OLD: a key has 5 bytes"):
        Guard.from_settings(_settings(signing_key=SIGNING_KEY, signing_keys_old=f"{OLD_SIGNING_KEY},short"))
    with pytest.raises(ConfigError, match="without CLICKMUNCHER_SIGNING_KEY"):
        Guard.from_settings(_settings(signing_keys_old=OLD_SIGNING_KEY, allowed_hosts=["example.com"]))


def test_only_the_exact_unpadded_base64url_form_is_accepted() -> None:
    guard = Guard.from_settings(_settings(signing_key=SIGNING_KEY))
    digest = hmac.new(SIGNING_KEY.encode(), URL.encode(), hashlib.sha256).digest()
    good = signature(URL, SIGNING_KEY)
    # The last character carries 4 bits of the digest and 2 bits of padding: set those, same digest.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    other_spelling = good[:-1] + alphabet[alphabet.index(good[-1]) + 1]
    spellings = [
        good + "=",  # padded
        base64.b64encode(digest).decode(),  # the standard alphabet, padded
        digest.hex(),  # hex
        good + " ",
        " " + good,
        good[:21] + "\n" + good[21:],
        good[:-1] + "!",
        good + "A",  # one character too many
        good[:-1],  # one too few
        other_spelling,  # the last character's padding bits set: decodes to the same digest loosely
    ]
    assert base64.urlsafe_b64decode(other_spelling + "=") == digest  # what a loose decoder would accept
    guard.check(URL, good)
    for spelling in spellings:
        assert _refused_with(guard, spelling) == "bad_signature", repr(spelling)


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        ("example.com:8080", "has a port"),
        ("[::1]:443", "has a port"),
        ("*.com", "public suffix"),
        ("*.co.uk", "public suffix"),
        ("*.github.io", "public suffix"),
        ("*.COM.", "public suffix"),
        ("*.10.0.0.1", "not an address"),
        ("http://example.com", "not a host name"),
    ],
)
def test_allow_list_entries_that_would_never_match_or_match_everyone(entry: str, why: str) -> None:
    with pytest.raises(ConfigError, match=f"CLICKMUNCHER_ALLOWED_HOSTS: .*{why}"):
        Guard.from_settings(_settings(allowed_hosts=[entry]))


def test_allow_list_entries_that_are_fine() -> None:
    guard = Guard.from_settings(
        _settings(allowed_hosts=["Example.com.", "*.example.co.uk", "*.corp.internal", "10.0.0.1", "[::1]"])
    )
    assert guard.host_allowed("example.com") and guard.host_allowed("a.example.co.uk")
    assert guard.host_allowed("x.corp.internal") and guard.host_allowed("[::1]")
    assert not guard.host_allowed("example.co.uk")


@pytest.mark.parametrize("bootstrap", ["", " ", " , ", "broker"])
def test_empty_bootstrap_refuses_to_start(bootstrap: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLICKMUNCHER_KAFKA_BOOTSTRAP", bootstrap)
    monkeypatch.setenv("CLICKMUNCHER_SIGNING_KEY", SIGNING_KEY)
    result = CliRunner().invoke(cli_main, ["gateway", "--port", "0"])
    assert result.exit_code == 2 and "CLICKMUNCHER_KAFKA_BOOTSTRAP" in result.output


def test_sign_base_with_a_fragment_puts_the_parameters_before_it() -> None:
    link = sign_url(URL, SIGNING_KEY, "http://go/#x")
    assert (
        link
        == f"http://go/?u=https%3A%2F%2Funlisted.example.net%2Fa%3Fb%3D1&s={signature(URL, SIGNING_KEY)}#x"
    )
    assert sign_url(URL, SIGNING_KEY, "https://go.example.org").startswith("https://go.example.org/?u=")


def test_sign_encodes_an_idn_url_as_browsers_send_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLICKMUNCHER_SIGNING_KEY", SIGNING_KEY)
    result = CliRunner().invoke(cli_main, ["sign", "https://Bücher.example/straße?q=ü#é"])
    assert result.exit_code == 0, result.output
    encoded = "https://xn--bcher-kva.example/stra%C3%9Fe?q=%C3%BC#%C3%A9"
    assert encoded in result.output.splitlines()[0]
    assert result.output.splitlines()[-1] == sign_url(encoded, SIGNING_KEY)
    refused = CliRunner().invoke(cli_main, ["sign", "https://exa mple.com/"])
    assert refused.exit_code == 2 and "would refuse" in refused.output


def test_the_verdict_cache_never_lets_a_bad_signature_through() -> None:
    guard = Guard.from_settings(_settings(signing_key=SIGNING_KEY))
    accept = guard.cached(4)
    key = accept(URL, signature(URL, SIGNING_KEY))
    assert key == accept(URL, signature(URL, SIGNING_KEY)) == "https://unlisted.example.net/a?b=1"
    for sig in (None, signature(URL, OLD_SIGNING_KEY), signature(URL, SIGNING_KEY) + "=", "x"):
        with pytest.raises(Rejected):
            accept(URL, sig)
    for i in range(10):  # evictions: the cache stays bounded, answers stay right
        other = f"{URL}&i={i}"
        assert accept(other, signature(other, SIGNING_KEY)) == f"{URL}&i={i}"
    assert accept.cache_info().currsize <= 4  # type: ignore[attr-defined]
    allowed = Guard.from_settings(_settings(allowed_hosts=["example.com"])).cached(4)
    for i in range(3):  # junk in s is ignored for an allowed host, and never a cache key
        assert allowed("http://example.com/", "j" * (8000 + i)) == "http://example.com/"
    assert allowed.cache_info().currsize == 0  # type: ignore[attr-defined]

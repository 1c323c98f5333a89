"""Accepted clicks: 302 without waiting for Kafka, one event per GET with a normalized key, none per HEAD."""

from __future__ import annotations

import json
from collections import Counter
from urllib.parse import quote

import pytest
from click.testing import CliRunner
from confluent_kafka import TIMESTAMP_CREATE_TIME

from clickmuncher.cli import main as cli_main
from clickmuncher.settings import Settings
from clickmuncher.urls import normalize_url
from gateway.signing import sign_url
from tests.gateway.helpers import SIGNING_KEY, GatewayClient, read_topic

N = 60


def _destination(i: int) -> str:
    forms = [
        "http://Example.COM:80/p/{i}/./x/../y?b=2&a=1#frag",
        "https://sub.allowed.org/p/{i}/?q=%7e%2f",
        "http://example.com/p/{i}",
        "https://unlisted.example.net/p/{i}/",  # allowed by its signature only
    ]
    return forms[i % len(forms)].format(i=i)


def _link(url: str) -> str:
    return sign_url(url, SIGNING_KEY, "/") if "unlisted" in url else f"/?u={quote(url, safe='')}"


@pytest.mark.kafka
async def test_n_requests_give_n_normalized_events(client: GatewayClient, settings: Settings) -> None:
    urls = [_destination(i) for i in range(N)]
    for url in urls:
        head = await client.head(_link(url))
        assert head.status == 302
        response = await client.get(_link(url))
        assert response.status == 302
        assert response.headers["Location"] == url
        assert response.headers["Cache-Control"] == "private, no-store"
    await client.close()

    events = read_topic(settings.kafka_bootstrap, settings.clicks_topic)
    assert len(events) == N
    assert Counter(event.key.decode() for event in events) == Counter(normalize_url(u) for u in urls)
    assert normalize_url(urls[0]) == "http://example.com/p/0/y?b=2&a=1"
    for event in events:
        body = json.loads(event.value)
        assert body["v"] == 1 and body["url"] == event.key.decode()
        assert (event.timestamp_type, event.timestamp_ms) == (TIMESTAMP_CREATE_TIME, body["ts_ms"])


async def test_health_endpoints(client: GatewayClient) -> None:
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/readyz")).status in (200, 503)


def test_sign_command_prints_a_link_the_gateway_accepts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLICKMUNCHER_SIGNING_KEY", SIGNING_KEY)
    url = "https://unlisted.example.net/a?b=1&c=2"
    result = CliRunner().invoke(cli_main, ["sign", url, "--base", "https://go.example.org/"])
    assert result.exit_code == 0, result.output
    link = result.output.strip().splitlines()[-1]
    assert link == sign_url(url, SIGNING_KEY, "https://go.example.org/")
    assert link.startswith(
        "https://go.example.org/?u=https%3A%2F%2Funlisted.example.net%2Fa%3Fb%3D1%26c%3D2&s="
    )


def test_sign_command_without_key_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLICKMUNCHER_SIGNING_KEY", raising=False)
    result = CliRunner().invoke(cli_main, ["sign", "https://example.com/"])
    assert result.exit_code == 2
    assert "CLICKMUNCHER_SIGNING_KEY" in result.output

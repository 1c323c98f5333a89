"""Slow and malformed clients: head timeout, keep-alive timeout, connection cap, quiet 400s, quiet refusals.

Deadlines here are generous upper bounds for something to happen, never speed assertions.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from clickmuncher.devstack.kafka.broker import free_port
from tests.gateway.helpers import GatewayClient, gateway_settings

REQUEST = b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n"
DEADLINE_S = 60.0


@pytest.fixture
async def gateway(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[GatewayClient]:
    limits: dict[str, Any] = {"gateway_header_timeout_s": 300.0, "gateway_keepalive_timeout_s": 300.0}
    limits.update(getattr(request, "param", {}))
    nowhere = f"127.0.0.1:{free_port()}"
    settings = gateway_settings(nowhere, "clicks", tmp_path, gateway_drain_timeout_s=0.2, **limits)
    async with GatewayClient(settings) as client:
        yield client


async def _connect(gateway: GatewayClient) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", gateway.port)


async def _closed_by_server(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection."""
    return await asyncio.wait_for(reader.read(), DEADLINE_S)


async def _response(reader: asyncio.StreamReader) -> bytes:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), DEADLINE_S)
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    return head + await reader.readexactly(length)


@pytest.mark.parametrize("gateway", [{"gateway_header_timeout_s": 0.5}], indirect=True)
async def test_a_head_that_never_ends_is_cut_off(gateway: GatewayClient) -> None:
    reader, writer = await _connect(gateway)
    writer.write(b"GET /?u=http%3A%2F%2Fexample.com%2F HTTP/1.1\r\nHost: gateway\r\n")
    assert await _closed_by_server(reader) == b""
    silent_reader, _ = await _connect(gateway)  # a connection that sends nothing at all
    assert await _closed_by_server(silent_reader) == b""
    assert gateway.sample("clickmuncher_gateway_header_timeouts_total") == 2
    assert gateway.sample("clickmuncher_gateway_clicks_total") == 0


@pytest.mark.parametrize("gateway", [{"gateway_header_timeout_s": 0.5}], indirect=True)
async def test_a_dripping_head_is_cut_off_however_steadily_it_drips(gateway: GatewayClient) -> None:
    reader, writer = await _connect(gateway)
    closed = asyncio.create_task(_closed_by_server(reader))
    head = b"GET /healthz HTTP/1.1\r\n" + b"X-Slow: " + b"a" * 600
    for byte in head:  # one byte every 0.1 s: 60 s for the whole head
        if closed.done():
            break
        writer.write(bytes([byte]))
        await asyncio.sleep(0.1)
    assert await closed == b""
    assert gateway.sample("clickmuncher_gateway_header_timeouts_total") == 1


@pytest.mark.parametrize("gateway", [{"gateway_header_timeout_s": 0.5}], indirect=True)
async def test_keep_alive_requests_are_not_cut_off(gateway: GatewayClient) -> None:
    reader, writer = await _connect(gateway)
    for _ in range(3):
        writer.write(REQUEST)
        assert (await _response(reader)).startswith(b"HTTP/1.1 200")
        await asyncio.sleep(0.3)  # idle between requests for longer than half the head timeout
    writer.write(REQUEST * 2)  # pipelined
    assert (await _response(reader)).startswith(b"HTTP/1.1 200")
    assert (await _response(reader)).startswith(b"HTTP/1.1 200")
    assert gateway.sample("clickmuncher_gateway_header_timeouts_total") == 0
    writer.close()


@pytest.mark.parametrize("gateway", [{"gateway_keepalive_timeout_s": 0.5}], indirect=True)
async def test_an_idle_keep_alive_connection_is_closed(gateway: GatewayClient) -> None:
    reader, writer = await _connect(gateway)
    writer.write(REQUEST)
    assert (await _response(reader)).startswith(b"HTTP/1.1 200")
    assert await _closed_by_server(reader) == b""


@pytest.mark.parametrize("gateway", [{"gateway_max_connections": 3}], indirect=True)
async def test_connections_past_the_cap_are_closed_at_once(gateway: GatewayClient) -> None:
    opened = [await _connect(gateway) for _ in range(3)]
    for reader, writer in opened:
        writer.write(REQUEST)
        assert (await _response(reader)).startswith(b"HTTP/1.1 200")
    assert gateway.sample("clickmuncher_gateway_connections_open") == 3
    reader, writer = await _connect(gateway)
    writer.write(REQUEST)
    assert await _closed_by_server(reader) == b""
    assert gateway.sample("clickmuncher_gateway_connections_refused_total") == 1
    opened[0][1].close()
    await asyncio.to_thread(_wait_until, lambda: gateway.sample("clickmuncher_gateway_connections_open") < 3)
    reader, writer = await _connect(gateway)
    writer.write(REQUEST)
    assert (await _response(reader)).startswith(b"HTTP/1.1 200")


def _wait_until(condition: Any) -> None:
    from tests.gateway.helpers import wait_for

    wait_for(condition, "the condition", DEADLINE_S)


async def test_malformed_requests_are_one_debug_line_and_a_count(
    gateway: GatewayClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    malformed = [
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: gateway\r\nX-Long: " + b"a" * 20_000 + b"\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost gateway\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",  # TLS to the plain-HTTP port
    ]
    for raw in malformed:
        reader, writer = await _connect(gateway)
        writer.write(raw)
        assert (await _closed_by_server(reader)).split(b" ")[1] == b"400", raw[:20]
    assert gateway.sample("clickmuncher_gateway_malformed_requests_total") == len(malformed)
    assert gateway.sample("clickmuncher_gateway_responses_total", {"status": "400"}) == len(malformed)
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    lines = [r for r in caplog.records if r.getMessage().startswith("malformed request")]
    assert len(lines) == len(malformed) and all(r.levelno == logging.DEBUG and not r.exc_info for r in lines)


async def test_refusals_are_counted_exactly_and_logged_sparingly(
    gateway: GatewayClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.http")
    for i in range(50):
        response = await gateway.get(f"/?u=http%3A%2F%2Fevil.com%2F{i}")
        assert response.status == 403
    assert gateway.sample("clickmuncher_gateway_rejected_total", {"reason": "host_not_allowed"}) == 50
    refused = [r for r in caplog.records if r.getMessage().startswith("refused")]
    assert len(refused) == 1 and "host_not_allowed" in refused[0].getMessage()

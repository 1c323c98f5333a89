"""What operators see: /metrics on its own listener, responses by status, latency, spool gauges."""

from __future__ import annotations

from pathlib import Path

import aiohttp
from aiohttp import web

from clickmuncher.devstack.kafka.broker import free_port
from gateway.app import metrics_handler
from gateway.server import bound_port, listen
from tests.gateway.helpers import GatewayClient, gateway_settings


async def test_metrics_are_on_their_own_listener_with_status_and_latency(tmp_path: Path) -> None:
    nowhere = f"127.0.0.1:{free_port()}"
    settings = gateway_settings(nowhere, "clicks", tmp_path, gateway_drain_timeout_s=0.2)
    async with GatewayClient(settings) as client:
        runner = await listen(web.Server(metrics_handler(client.metrics)), "127.0.0.1", 0)
        try:
            statuses = [
                (await client.get(path)).status
                for path in (
                    "/?u=http%3A%2F%2Fexample.com%2F",
                    "/?u=http%3A%2F%2Fevil.com%2F",
                    "/?u=",
                    "/metrics",
                )
            ]
            assert statuses == [302, 403, 400, 404]  # no metrics on the redirect port
            async with aiohttp.ClientSession() as session:
                url = f"http://127.0.0.1:{bound_port(runner)}/metrics"
                async with session.get(url) as response:
                    assert response.status == 200
                    text = await response.text()
        finally:
            await runner.cleanup()
    for status in ("302", "403", "400", "404"):
        assert f'clickmuncher_gateway_responses_total{{status="{status}"}} 1.0' in text
    assert "clickmuncher_gateway_request_duration_seconds_count 4.0" in text
    assert 'clickmuncher_gateway_request_duration_seconds_bucket{le="+Inf"} 4.0' in text
    for gauge in ("spool_bytes", "spool_segments", "spool_oldest_click_age_seconds", "spool_max_bytes"):
        assert f"clickmuncher_gateway_{gauge} " in text
    assert 'clickmuncher_gateway_clicks_lost_total{reason="spool_full"} 0.0' in text

"""The gateway with producing switched off: the same server, endpoints, validation, normalization, cache,
metrics and event loop, the click dropped instead of handed to Kafka. Used only by bench/gateway/run.py.

    python -m bench.gateway.noop_gateway --port P [--workers N]
"""

from __future__ import annotations

import asyncio
from typing import cast

from bench.gateway import serving
from clickmuncher.records import ClickEvent
from clickmuncher.settings import GatewaySettings, load_settings
from gateway.app import Gateway
from gateway.clicks import ClickSink
from gateway.main import loop_factory
from gateway.server import GatewayServer, listen


class NullSink:
    """Accepts clicks and forgets them; always ready."""

    ready = True
    healthy = True
    problem = ""
    lost = 0

    def start(self) -> None:
        pass

    def submit(self, event: ClickEvent) -> None:
        pass

    def close(self) -> None:
        pass


async def _serve(port: int, reuse_port: bool) -> None:
    settings = load_settings(GatewaySettings)
    gateway = Gateway(settings, sink=cast(ClickSink, NullSink()))  # the same duck type, without Kafka
    server = GatewayServer(gateway.handle, gateway.metrics.http, settings)
    await listen(server, "127.0.0.1", port, reuse_port)
    await asyncio.Event().wait()  # until SIGTERM ends the process


def serve(port: int, reuse_port: bool) -> None:
    with asyncio.Runner(loop_factory=loop_factory(load_settings(GatewaySettings))) as runner:
        runner.run(_serve(port, reuse_port))


if __name__ == "__main__":
    serving.main(serve)

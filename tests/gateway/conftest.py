"""Fixtures for the gateway tests: an in-process gateway on a unique topic of the session's broker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from clickmuncher.settings import Settings
from tests.gateway.helpers import GatewayClient, create_topic, gateway_settings


@pytest.fixture
def settings(kafka_bootstrap: str, unique: str, tmp_path: Path) -> Settings:
    topic = f"clicks-gw-{unique}"
    create_topic(kafka_bootstrap, topic)
    return gateway_settings(kafka_bootstrap, topic, tmp_path / "state")


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[GatewayClient]:
    """A started gateway; closing it drains the producer (so the topic then holds every click)."""
    async with GatewayClient(settings) as test_client:
        yield test_client

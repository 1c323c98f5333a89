"""What ``clickmuncher up`` does before and after starting the services: topics, example links."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote

from clickmuncher.kafka.topics import create_missing, declared
from clickmuncher.settings import Settings

EXAMPLE_URLS = (
    "https://example.com/",
    "https://example.com/pricing?plan=pro",
    "https://docs.example.org/guide/start",
)


def create_topics(settings: Settings) -> None:
    """Every declared topic (clickmuncher/kafka/topics.py) that does not exist yet."""
    created = create_missing(settings.kafka, list(declared(settings).values()))
    if created:
        print(f"up: created topics {', '.join(sorted(created))}", flush=True)


def example_links(settings: Settings, base: str, urls: Sequence[str] = EXAMPLE_URLS) -> list[str]:
    """Links through the gateway at ``base`` to ``urls``, signed when there is a signing key."""
    from gateway.signing import sign_url

    if settings.signing_key is None:
        return [f"{base}?u={quote(url, safe='')}" for url in urls]
    key = settings.signing_key.get_secret_value()
    return [sign_url(url, key, base) for url in urls]


def print_examples(settings: Settings, base: str) -> None:
    print("up: example links (a click counts live in seconds, final when its window closes):", flush=True)
    for link in example_links(settings, base):
        print(f"    curl -si '{link}' | head -3", flush=True)
    size = f"{settings.window_s // 60} min" if settings.window_s % 60 == 0 else f"{settings.window_s}s"
    print(
        f"up: windows are {size} + {settings.grace_s}s grace; see the counts with `clickmuncher stats`",
        flush=True,
    )

"""What ``clickmuncher up`` does before and after starting the services: topics, example links."""

from __future__ import annotations

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


def example_links(settings: Settings, base: str) -> list[str]:
    from gateway.signing import signed_link

    if settings.signing_key is None:
        return [f"{base}?u={url}" for url in EXAMPLE_URLS]
    key = settings.signing_key.get_secret_value()
    return [signed_link(url, key, base) for url in EXAMPLE_URLS]


def print_examples(settings: Settings, base: str) -> None:
    print("up: example links (a click counts live in seconds, final when its window closes):", flush=True)
    for link in example_links(settings, base):
        print(f"    curl -si '{link}' | head -3", flush=True)
    size = f"{settings.window_s // 60} min" if settings.window_s % 60 == 0 else f"{settings.window_s}s"
    print(
        f"up: windows are {size} + {settings.grace_s}s grace; see the counts with `clickmuncher stats`",
        flush=True,
    )

"""`clickmuncher stats` (being built)."""

from clickmuncher.settings import ConfigError, Settings


def stats_command(settings: Settings, *, top: int, url: str | None, since: str | None) -> None:
    raise ConfigError("stats is not built yet")

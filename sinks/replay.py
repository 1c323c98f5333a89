"""Replay (being built)."""

from clickmuncher.settings import ConfigError, Settings


def replay_command(settings: Settings, from_: str) -> None:
    raise ConfigError("replay is not built yet")

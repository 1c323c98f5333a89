"""`clickmuncher sign` (being built)."""

from clickmuncher.settings import ConfigError, Settings


def sign_command(settings: Settings, url: str, base: str) -> None:
    raise ConfigError("signing is not built yet")

"""Service entry point (being built; see the open issues)."""

from clickmuncher.settings import ConfigError, Settings


def run(settings: Settings, **options: object) -> None:
    raise ConfigError("this service is not built yet")

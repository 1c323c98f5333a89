"""Schema migrations (being built)."""

from clickmuncher.settings import ConfigError


def upgrade(database_url: str) -> None:
    raise ConfigError("migrations are not built yet")

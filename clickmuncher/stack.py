"""`clickmuncher up` (being built)."""

from clickmuncher.settings import ConfigError, Settings


def run_stack(settings: Settings, *, demo: bool, gateway_port: int) -> None:
    raise ConfigError("the local stack is not built yet")

"""Logging set-up and the one start line every command prints with its effective settings."""

from __future__ import annotations

import logging
import sys

from clickmuncher.settings import CommonSettings

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format=FORMAT, stream=sys.stderr, force=True)
    for noisy in ("aiokafka", "faust", "mode", "kafka", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


def start_line(service: str, settings: CommonSettings, **extra: object) -> str:
    """``<service> starting: key=value ...`` with secrets masked; the caller logs it once."""
    shown = settings.masked()
    shown.update({key: str(value) for key, value in extra.items()})
    body = " ".join(f"{key}={value}" for key, value in shown.items())
    return f"{service} starting: {body}"


def log_start(service: str, settings: CommonSettings, **extra: object) -> None:
    logging.getLogger(service).info(start_line(service, settings, **extra))

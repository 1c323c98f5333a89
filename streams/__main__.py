"""``python -m streams``."""

from __future__ import annotations

import sys

from clickmuncher.settings import ConfigError, StreamsSettings, load_settings
from streams.main import run


def main() -> None:
    try:
        run(load_settings(StreamsSettings))
    except ConfigError as e:
        print(f"streams: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()

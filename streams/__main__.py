"""``python -m streams [--check]``: the same as ``clickmuncher streams``."""

from clickmuncher.cli import streams

if __name__ == "__main__":
    streams(prog_name="python -m streams")

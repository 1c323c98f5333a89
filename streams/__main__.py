"""``python -m streams [--check]``: the same as ``clickmuncher streams``."""

from streams.cli import streams_command

if __name__ == "__main__":
    streams_command(prog_name="python -m streams")

"""``python -m api [--host H] [--port P]``: the same as ``clickmuncher api``."""

from clickmuncher.cli import api

if __name__ == "__main__":
    api(prog_name="python -m api")

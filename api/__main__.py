"""``python -m api [--host H] [--port P]``: the same as ``clickmuncher api``."""

from api.cli import api_command

if __name__ == "__main__":
    api_command(prog_name="python -m api")

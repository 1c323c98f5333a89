"""``python -m gateway [--host H] [--port P] [--workers N]``: the same as ``clickmuncher gateway``."""

from gateway.cli import gateway_command

if __name__ == "__main__":
    gateway_command(prog_name="python -m gateway")

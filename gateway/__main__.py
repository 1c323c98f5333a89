"""``python -m gateway [--host H] [--port P] [--workers N]``: the same as ``clickmuncher gateway``."""

from clickmuncher.cli import gateway

if __name__ == "__main__":
    gateway(prog_name="python -m gateway")

"""What the benchmark's stand-in servers share: a bound socket and ``--workers N`` processes on one port."""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import signal
import socket
from collections.abc import Callable
from types import FrameType


def bound_socket(port: int, reuse_port: bool) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    return sock


def main(serve: Callable[[int, bool], None]) -> None:
    """``--port P [--workers N]``: ``serve(port, reuse_port)`` in this process, or in N processes."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--uvloop", action="store_true", help="uvloop's event loop instead of asyncio's")
    args = parser.parse_args()
    if args.uvloop:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())  # inherited by --workers' processes (fork)
    if args.workers == 1:
        serve(args.port, False)
        return
    processes = [multiprocessing.Process(target=serve, args=(args.port, True)) for _ in range(args.workers)]

    def stop_all(signum: int, frame: FrameType | None) -> None:
        # Passed on, as `clickmuncher gateway --workers N` does: orphaned servers would keep running.
        for process in processes:
            process.terminate()

    for process in processes:
        process.start()  # before the handlers: a forked child must not inherit them, SIGTERM ends it
    signal.signal(signal.SIGTERM, stop_all)
    signal.signal(signal.SIGINT, stop_all)
    for process in processes:
        process.join()

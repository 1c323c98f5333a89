"""The gateway's own application with producing switched off: the ceiling of the web stack.

Same routes, validation, normalization and metrics; the click is dropped instead of handed to Kafka.
Used only by bench/gateway/run.py.

    python bench/gateway/noop_gateway.py --port P [--workers N]
"""

from __future__ import annotations

import argparse
import multiprocessing
import signal
import socket
from types import FrameType
from typing import cast

from aiohttp import web

from clickmuncher.records import ClickEvent
from clickmuncher.settings import load_settings
from gateway.app import SINK, create_app
from gateway.clicks import ClickSink


class NullSink:
    """Accepts clicks and forgets them; always ready."""

    ready = True
    healthy = True

    def start(self) -> None:
        pass

    def submit(self, event: ClickEvent) -> None:
        pass

    def close(self) -> None:
        pass


def serve(port: int, reuse_port: bool) -> None:
    app = create_app(load_settings())
    app[SINK] = cast(ClickSink, NullSink())  # the same duck type, without Kafka
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    web.run_app(app, sock=sock, print=None, access_log=None)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    if args.workers == 1:
        serve(args.port, reuse_port=False)
        return
    processes = [multiprocessing.Process(target=serve, args=(args.port, True)) for _ in range(args.workers)]

    def stop_all(signum: int, frame: FrameType | None) -> None:
        # Passed on, as `clickmuncher gateway --workers N` does: orphaned servers would keep running.
        for process in processes:
            process.terminate()

    signal.signal(signal.SIGTERM, stop_all)
    signal.signal(signal.SIGINT, stop_all)
    for process in processes:
        process.start()
    for process in processes:
        process.join()


if __name__ == "__main__":
    main()

"""The bare aiohttp handler: ``GET /?u=URL`` answers 302 with ``u`` as ``Location``, nothing else.

No validation, signature, normalization, metrics or click: aiohttp's own cost, the reference the gateway's
throughput is measured against. Used only by bench/gateway/run.py.

    python bench/gateway/bare_handler.py --port P [--workers N]
"""

from __future__ import annotations

from aiohttp import web

from bench.gateway import serving


async def redirect(request: web.Request) -> web.Response:
    return web.Response(status=302, headers={"Location": request.query["u"]})


def serve(port: int, reuse_port: bool) -> None:
    app = web.Application()
    app.router.add_get("/", redirect)
    web.run_app(app, sock=serving.bound_socket(port, reuse_port), print=None, access_log=None)


if __name__ == "__main__":
    serving.main(serve)

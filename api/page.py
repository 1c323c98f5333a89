"""The page's files (``api/static/``), served from memory with a strict Content-Security-Policy: the page
may load and ask nothing but this service."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

from aiohttp import web

CONTENT_TYPES = {
    "index.html": "text/html",
    "app.js": "text/javascript",
    "app.css": "text/css",
    "favicon.svg": "image/svg+xml",
}
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
POLL_MIN_MS, POLL_MAX_MS = 1000, 5000


def poll_ms(live_every_s: float) -> int:
    """How often the page asks for new counts: twice per live publication, within 1 to 5 seconds."""
    return int(min(POLL_MAX_MS, max(POLL_MIN_MS, live_every_s * 500)))


@dataclass(frozen=True, slots=True)
class Pages:
    files: dict[str, bytes]

    def response(self, name: str) -> web.Response:
        body = self.files.get(name)
        if body is None:
            raise web.HTTPNotFound(text="not found\n")
        response = web.Response(body=body, content_type=CONTENT_TYPES[name], charset="utf-8")
        response.headers["Cache-Control"] = "no-cache"
        return response


def load(live_every_s: float) -> Pages:
    """Reads the files once, at start; the page is told its polling period."""
    folder = resources.files("api") / "static"
    files = {name: (folder / name).read_bytes() for name in CONTENT_TYPES}
    files["index.html"] = files["index.html"].replace(b"__POLL_MS__", str(poll_ms(live_every_s)).encode())
    return Pages(files)

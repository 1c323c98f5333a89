"""``clickmuncher up --demo``: a stream of sample clicks through the gateway, and the counts growing (read
from the api: live counts of open windows, final counts of closed ones)."""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
from urllib.parse import urlsplit

from clickmuncher.devstack.setup import EXAMPLE_URLS, example_links
from clickmuncher.settings import Settings

CLICKS_PER_S = 20
REPORT_EVERY_S = 5.0
DEMO_URLS = (*EXAMPLE_URLS, *(f"https://example.com/post/{n}" for n in range(1, 8)))


class Demo:
    """Sends clicks from a daemon thread; ``step`` prints a progress line every few seconds."""

    def __init__(self, settings: Settings, base: str, api_base: str) -> None:
        self.settings = settings
        self.base = base
        self.api_base = api_base
        self.sent = 0
        self.redirected = 0
        self.next_report = time.monotonic() + REPORT_EVERY_S
        origin = base.rstrip("/")
        self._links = [link[len(origin) :] for link in example_links(settings, base, DEMO_URLS)]
        self._weights = [1 / rank for rank in range(1, len(self._links) + 1)]
        threading.Thread(target=self._send_forever, daemon=True).start()

    def _send_forever(self) -> None:
        target = urlsplit(self.base)
        connection = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port or 80, timeout=5)
        while True:
            path = random.choices(self._links, self._weights)[0]
            try:
                connection.request("GET", path)
                response = connection.getresponse()
                response.read()
                self.sent += 1
                self.redirected += response.status == 302
            except OSError:
                connection.close()
                time.sleep(1)
            time.sleep(1 / CLICKS_PER_S)

    def step(self) -> None:
        if time.monotonic() < self.next_report:
            return
        self.next_report += REPORT_EVERY_S
        print(
            f"demo: sent {self.sent} clicks, {self.redirected} redirected (302); {self._counted()}",
            flush=True,
        )

    def _counted(self) -> str:
        """What the api counts since the epoch: live (open windows) and final (closed windows)."""
        target = urlsplit(self.api_base)
        connection = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port or 80, timeout=5)
        try:
            connection.request("GET", "/api/top?since=1970-01-01T00:00:00Z&limit=1000")
            response = connection.getresponse()
            body = json.loads(response.read()) if response.status == 200 else None
        except (OSError, ValueError):
            body = None
        finally:
            connection.close()
        if not isinstance(body, dict):
            return "the api does not answer yet"
        urls = body.get("urls", [])
        live = sum(int(u["live"]) for u in urls)
        total = sum(int(u["clicks"]) for u in urls)
        return f"counted {total} = {live} live (open windows) + {total - live} final (closed windows)"

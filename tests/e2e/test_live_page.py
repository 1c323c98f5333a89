"""A click sent through the gateway shows up on the open page, live, without a reload: gateway, streams worker
(publishing live counts) and api as subprocesses, the page in headless Chromium (tests/api/browser.py).

The promise measured here: the click is on the page within ``LIVE_EVERY_S`` plus a few seconds (the worker's
batch of at most a second, its publication period, the page's polling period).
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.support.ui import WebDriverWait

from clickmuncher.db.schema import upgrade
from clickmuncher.devstack.kafka.broker import free_port
from gateway.signing import sign_url
from tests.api.test_page import table
from tests.conftest import LocalBroker
from tests.e2e.harness import SIGNING_KEY, Pipeline, gateway_port, pipeline, wait_for_port

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(240)]
LIVE_EVERY_S = 1.0
URL = "https://shop.example.com/launch?ref=live"
BROWSER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0"


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def click(link: str) -> int:
    """A browser's click on the link: the gateway's answer, not followed."""
    opener = urllib.request.build_opener(NoRedirect)
    request = urllib.request.Request(link, headers={"User-Agent": BROWSER_AGENT})  # urllib's own is a bot's
    try:
        with opener.open(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


def started(run: Pipeline, gateway: int, api: int) -> None:
    run.start("streams", "streams")
    run.start("api", "api", "--port", str(api))
    run.start("gateway", "gateway", "--host", "127.0.0.1", "--port", str(gateway))
    for port in (gateway, api):
        wait_for_port(port)
    deadline = time.monotonic() + 90
    while " loaded: " not in run.log_tail("streams", 200):
        assert time.monotonic() < deadline, run.log_tail("streams")
        time.sleep(0.2)


def test_a_click_through_the_gateway_appears_live_on_the_open_page(
    kafka: LocalBroker, tmp_path: Path, unique: str, browser: webdriver.Chrome
) -> None:
    database_url = f"sqlite:///{tmp_path / 'live.db'}"
    upgrade(database_url)
    extra = {
        "CLICKMUNCHER_WINDOW_S": "3600",  # the window stays open: its count can only be live
        "CLICKMUNCHER_LIVE_EVERY_S": str(LIVE_EVERY_S),
        "CLICKMUNCHER_LIVE_TOPIC": f"click-windows-live-{unique}",
    }
    ports = gateway_port(), free_port()
    with pipeline(kafka.bootstrap, database_url, unique, extra) as run:
        started(run, *ports)
        api = f"http://127.0.0.1:{ports[1]}"
        browser.get(api + "/")
        WebDriverWait(browser, 20).until(lambda d: table(d) is not None)
        link = sign_url(URL, SIGNING_KEY, f"http://127.0.0.1:{ports[0]}/")
        clicked = time.monotonic()
        assert [click(link) for _ in range(3)] == [302, 302, 302]
        limit_s = LIVE_EVERY_S + 10  # a publication period, the page's poll, and a few seconds
        WebDriverWait(browser, limit_s).until(lambda d: (URL, 3, 3) in table(d), run.log_tail("streams"))
        print(f"\nclick on the open page {time.monotonic() - clicked:.1f}s after it was sent")
        errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
        assert not errors, errors

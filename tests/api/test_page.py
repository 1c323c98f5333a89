"""The page in a real browser (Debian's headless Chromium, driven by Selenium through chromium-driver),
against the api as a subprocess (``python -m api``) with a database and a live topic.

It loads without console errors and without a request outside the service, its table holds the counts of the
API and the database, its chart one point per window, and a new closed window and a new live count appear on
the open page, without reload, within ``LIVE_EVERY_S`` plus a few seconds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from clickmuncher.db.schema import upgrade
from clickmuncher.devstack.kafka.broker import free_port
from clickmuncher.kafka.admin import COMPACTED, ensure_topics
from tests.api.helpers import WINDOW_MS, closed, db_sum, live_value, produce_live, seed

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(180)]
LIVE_EVERY_S = 1.0
A, B, C = (
    "https://example.com/",
    "https://example.com/pricing?plan=pro",
    "https://docs.example.org/guide/start",
)
NEW = "https://example.com/launch"


class Api:
    def __init__(self, process: subprocess.Popen[bytes], base: str, log: Path, topic: str, t0: int) -> None:
        self.process, self.base, self.log, self.topic = process, base, log, topic
        self.t0 = t0  # the seeded windows are 0..29 after it, window 30 was open when the test began

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.base + path, timeout=10) as response:
            return json.loads(response.read())


def now_window() -> int:
    now = time.time_ns() // 1_000_000
    return now - now % WINDOW_MS


@pytest.fixture
def api(kafka_bootstrap: str, tmp_path: Path, unique: str) -> Iterator[Api]:
    db_url = f"sqlite:///{tmp_path / 'page.db'}"
    upgrade(db_url)
    t0 = now_window() - 30 * WINDOW_MS
    seed(db_url, [closed(A, n, 40 + n, t0_ms=t0) for n in range(30)])
    seed(db_url, [closed(B, n, 25 + n % 7, t0_ms=t0) for n in range(10, 30)])
    seed(db_url, [closed(C, n, 3, t0_ms=t0) for n in range(25, 30)])
    topic = f"live-{unique}"
    ensure_topics(kafka_bootstrap, {topic: COMPACTED}, 2)
    current = closed(B, 30, 12, t0_ms=t0)  # the open window: B has 12 live clicks
    produce_live(kafka_bootstrap, topic, [(current.key(), live_value(current))])
    port = free_port()
    env = {
        **os.environ,
        "CLICKMUNCHER_DATABASE_URL": db_url,
        "CLICKMUNCHER_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "CLICKMUNCHER_LIVE_TOPIC": topic,
        "CLICKMUNCHER_PARTITIONS": "2",  # as the live topic was made: the api checks it at start
        "CLICKMUNCHER_LIVE_EVERY_S": str(LIVE_EVERY_S),
        "CLICKMUNCHER_GRACE_S": "1",
        "CLICKMUNCHER_SIGNING_KEY": "a-signing-key-the-api-never-shows-0123456789",
    }
    log = tmp_path / "api.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "api", "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    handle = Api(process, f"http://127.0.0.1:{port}", log, topic, t0)
    try:
        wait_until(lambda: _live_ok(handle), 30, lambda: log.read_text())
        yield handle
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
    assert code == 0, log.read_text()
    assert "api stopped" in log.read_text()


def _live_ok(api: Api) -> bool:
    try:
        return bool(api.get("/healthz")["live"] == "ok" and api.get("/api/totals?url=" + B)["live"] == 12)
    except OSError:
        return False


def wait_until(check: Any, timeout_s: float, explain: Any) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, explain()
        time.sleep(0.2)


def table(driver: webdriver.Chrome) -> list[tuple[str, int, int]]:
    """The table's rows as (url, clicks, live), read in one script run (the page redraws every second)."""
    rows = driver.execute_script(
        "return [...document.querySelectorAll('#top tbody tr')]"
        ".map(r => [r.dataset.url, Number(r.dataset.clicks), Number(r.dataset.live)])"
    )
    return [(str(url), int(clicks), int(live)) for url, clicks, live in rows]


def points(driver: webdriver.Chrome) -> list[tuple[str, bool]]:
    """The chart's points as (window start, drawn as live)."""
    found = driver.execute_script(
        "return [...document.querySelectorAll('#chart circle.point')]"
        ".map(p => [p.dataset.windowStart, p.classList.contains('live')])"
    )
    return [(str(start), bool(live)) for start, live in found]


def pick(driver: webdriver.Chrome, url: str) -> None:
    """Clicks the URL's button in the table (found again if a redraw replaced it meanwhile)."""

    def click(d: webdriver.Chrome) -> bool:
        d.find_element(By.CSS_SELECTOR, f'#top tr[data-url="{url}"] button').click()
        return True

    WebDriverWait(driver, 10, ignored_exceptions=[StaleElementReferenceException]).until(click)


def test_the_page_shows_the_counts_and_follows_them_live(
    api: Api, browser: webdriver.Chrome, kafka_bootstrap: str, tmp_path: Path
) -> None:
    start_lines = [line for line in api.log.read_text().splitlines() if "api starting:" in line]
    assert len(start_lines) == 1 and "signing" not in start_lines[0], start_lines
    browser.get(api.base + "/")
    wait = WebDriverWait(browser, 20)
    wait.until(lambda d: len(table(d)) == 3 and points(d))

    # The table: the API's answer for the same range, and the database's sums plus the live count.
    shown = table(browser)
    top = api.get("/api/top?limit=20")["urls"]
    assert shown == [(row["url"], row["clicks"], row["live"]) for row in top]
    db_url = f"sqlite:///{tmp_path / 'page.db'}"
    assert [(url, clicks - live) for url, clicks, live in shown] == [
        (url, db_sum(db_url, url, 0, time.time_ns() // 1_000_000)) for url, _, _ in shown
    ]
    assert dict((url, live) for url, _, live in shown) == {A: 0, B: 12, C: 0}

    # The chart: the top URL (A) is picked first, one point per window of the API's answer.
    windows = api.get("/api/windows?url=" + A)["windows"]
    assert [start for start, _ in points(browser)] == [w["window_start"] for w in windows]
    assert len(windows) == 30
    pick(browser, B)
    wait.until(lambda d: len(points(d)) == 21)
    assert points(browser)[-1][1], "B's open window is drawn as live"

    # Without a reload: a closed window written by the sink, then a new live count on the topic.
    seed(db_url, [closed(B, 30, 14, t0_ms=api.t0)])
    limit_s = LIVE_EVERY_S + 5  # what the page promises: a publication period, then a few seconds
    WebDriverWait(browser, limit_s).until(lambda d: points(d) and not points(d)[-1][1])
    assert len(points(browser)) == 21
    fresh = closed(NEW, 30, 5000, t0_ms=api.t0)
    produce_live(kafka_bootstrap, api.topic, [(fresh.key(), live_value(fresh))])
    WebDriverWait(browser, limit_s).until(lambda d: table(d) and table(d)[0] == (NEW, 5000, 5000))

    browser.save_screenshot(str(tmp_path / "page.png"))
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, errors
    outside = [url for url in _requested(browser) if not url.startswith(api.base + "/")]
    assert not outside, outside


def _requested(driver: webdriver.Chrome) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    assert urls, "no request seen in the performance log"
    return urls

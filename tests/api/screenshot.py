"""The page's screenshots for the README, with realistic data:

    python -m tests.api.screenshot docs/page.png [--phone docs/page-phone.png]

A week of 30-minute click windows of 400 URLs (the generator of bench/api/load.py: click classes, unique
visitors and their sketches included, as the sink writes them) in SQLite, live counts of the open window (with
classes and visitors, as the streams worker publishes them) on the live topic of a throwaway local broker,
``python -m api``, and headless Chromium.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import sqlalchemy as sa
from selenium.webdriver.support.ui import WebDriverWait

from bench.api.load import Shape, classify, daily_visitors, insert_rows, url_of
from bench.common import address, bootstrap_or_local
from clickmuncher.db.schema import upgrade
from clickmuncher.devstack.kafka.broker import free_port
from clickmuncher.kafka.admin import COMPACTED, ensure_topics
from clickmuncher.records import ClickWindow
from tests import kafka_clients
from tests.api.browser import chromium

WINDOW_MS = 1_800_000
TOPIC = "click-windows-live"
PARTITIONS = 2  # of the live topic; the api is told so (it checks the topic at start)


def load(db_url: str, end_ms: int) -> None:
    upgrade(db_url)
    engine = sa.create_engine(db_url)
    insert_rows(engine, Shape(rows=12_000, urls=400, windows=7 * 48, window_ms=WINDOW_MS, end_ms=end_ms))
    engine.dispose()


def publish_live(bootstrap: str, start_ms: int) -> None:
    """The open window's counts so far, split into classes with their visitors, as the streams worker
    publishes them."""
    ensure_topics(bootstrap, {TOPIC: COMPACTED}, PARTITIONS)
    producer = kafka_clients.producer(bootstrap)
    elapsed = (time.time_ns() // 1_000_000 - start_ms) / WINDOW_MS
    rng = random.Random(11)
    for i in range(40):
        clicks = max(1, int((420 / (i + 1) ** 0.8) * max(elapsed, 0.2)))
        row = classify(url_of(i), start_ms, clicks, daily_visitors(i), rng)
        window = ClickWindow(
            row.url, start_ms, start_ms + WINDOW_MS, row.clicks, 0, row.by_class, row.uniques, row.hll
        )
        producer.produce(
            TOPIC, key=window.key(), value=json.dumps({**window.to_json(), "final": False}).encode()
        )
    assert producer.flush(30) == 0


def wait_live(base: str, api: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if api.poll() is not None:
            raise RuntimeError(f"the api exited with {api.returncode} (its output is above)")
        try:
            with urllib.request.urlopen(base + "/metrics", timeout=5) as response:
                if "clickmuncher_api_live_entries 40.0" in response.read().decode():
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError("the api did not read the live counts")


def shoot(base: str, path: Path, width: int, height: int, scale: float) -> None:
    driver = chromium(width, height, scale)
    try:
        driver.get(base + "/")
        WebDriverWait(driver, 20).until(
            lambda d: d.execute_script("return document.querySelectorAll('#chart circle.point').length > 40")
        )
        time.sleep(1)
        driver.save_screenshot(str(path))
    finally:
        driver.quit()
    print(f"screenshot: {path} ({width}x{height} at {scale}x)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("path", type=Path)
    parser.add_argument("--phone", type=Path, default=None)
    args = parser.parse_args()
    now = time.time_ns() // 1_000_000
    open_start = now - now % WINDOW_MS
    work = Path(tempfile.mkdtemp(prefix="cm-screenshot-"))
    db_url = f"sqlite:///{work / 'page.db'}"
    load(db_url, open_start)
    with bootstrap_or_local(None) as target:
        bootstrap = address(target)
        publish_live(bootstrap, open_start)
        port = free_port()
        env = {
            **os.environ,
            "CLICKMUNCHER_DATABASE_URL": db_url,
            "CLICKMUNCHER_KAFKA_BOOTSTRAP": bootstrap,
            "CLICKMUNCHER_LIVE_TOPIC": TOPIC,
            "CLICKMUNCHER_PARTITIONS": str(PARTITIONS),
        }
        api = subprocess.Popen([sys.executable, "-m", "api", "--port", str(port)], env=env)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_live(base, api)
            shoot(base, args.path, 1280, 1000, 1.0)
            if args.phone is not None:
                shoot(base, args.phone, 390, 844, 2.0)
        finally:
            api.send_signal(signal.SIGTERM)
            api.wait(timeout=30)


if __name__ == "__main__":
    main()

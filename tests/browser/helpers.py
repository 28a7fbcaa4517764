"""What the browser tests share: signing in, screenshots, waiting for the worker."""

from __future__ import annotations

import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Every run takes its screenshots; only UPDATE_SCREENSHOTS=1 writes them over the README's
# (their bytes change on every run, so writing them always would leave every checkout dirty).
SCREENSHOTS = ROOT / ("docs" if os.environ.get("UPDATE_SCREENSHOTS") == "1" else "instance") / "screenshots"
# How long a page (or a poll) waits for the worker to have processed something.
SETTLE_TIMEOUT_MS = 30_000


def click_through(page, locator) -> None:
    """Click a link or submit button and wait for the page it loads, so what is read next is
    read from the new page, never from the one just left."""
    with page.expect_navigation():
        locator.click()


def console_sign_in(page, username: str, password: str) -> None:
    """Sign in through the console's login form and land on the page it leads to."""
    page.goto("/console/login")
    page.get_by_test_id("field-username").fill(username)
    page.get_by_test_id("field-password").fill(password)
    click_through(page, page.get_by_test_id("login-submit"))


def shot(page, name: str) -> Path:
    """Save a full-page screenshot as ``<SCREENSHOTS>/<name>.png``."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def wait_until(predicate, timeout: float = SETTLE_TIMEOUT_MS / 1000, interval: float = 0.2):
    """Poll ``predicate`` until it answers something truthy (what the worker does is async)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)

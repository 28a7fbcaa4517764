"""Browser fixtures: headless Debian Chromium driven by Playwright, against the whole stack —
the app over real HTTP, the WeCom simulator sending its signed callbacks to it, and a real
worker process draining the queues while the pages are used.

Chromium is the system one (``apt-get install chromium``), launched from its path: Playwright's
own browser download is never used. Without it the tests skip with the reason, except under
``CI=true``, where a missing browser is a failure.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.browser.helpers import ROOT, SETTLE_TIMEOUT_MS

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
# The background-networking flags matter on a closed network: without them Chromium keeps
# dialling Google services and the machine refuses the connections.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium per xdist worker."""
    if not os.access(CHROMIUM, os.X_OK):
        reason = f"no Chromium at {CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests must run in CI: {reason}", pytrace=False)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def demo_corp(app, db, sim, live_server):
    """The simulator's demo corp (five reps, three of them with a customer, a tag group),
    mirrored into the app. Answers what the seed made."""
    from app.services import corps, sync

    seeded = sim.control.seed_demo()
    sync.run(corps.env_corp_id())
    db.session.commit()
    return seeded


@pytest.fixture
def worker(app, sim, demo_corp, tmp_path):
    """A real ``python -m jobs.worker`` (not burst: it keeps draining, with its ticker) on this
    test's database, Redis and simulator; killed at teardown, before the tables are emptied."""
    from app.extensions import get_redis
    from jobs.schedules import definitions

    # A fresh Redis makes every periodic job due at once, the nightly full sync among them,
    # racing the test; the corp was just synced, so their current slots count as done.
    for periodic in definitions():
        get_redis().set(f"periodic:{periodic.name}:{periodic.slot(time.time())}", 1)
    env = {
        **os.environ,
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": app.config["REDIS_URL"],
        "WECOM_API_BASE": app.config["WECOM_API_BASE"],
        "WECHAT_API_BASE": app.config["WECHAT_API_BASE"],
        "SECRET_KEY": app.config["SECRET_KEY"],
        "INSTANCE_PATH": str(tmp_path / "worker"),
        "LOG_LEVEL": "INFO",
    }
    log_path = tmp_path / "worker.log"
    with open(log_path, "wb") as log:
        # A session of its own: RQ forks its scheduler off the worker, and killing the group
        # ends both (a lone kill would leave the scheduler holding the queues' scheduler locks).
        proc = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "jobs.worker"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        yield proc
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    # Shown by pytest only when the test failed: what the worker was doing.
    print("worker log (tail):", log_path.read_text(errors="replace")[-6000:], sep="\n")


@pytest.fixture
def stack(demo_corp, worker):
    """The whole stack: the demo corp in the simulator and the app, the app live, a worker
    running. Answers what the seed made."""
    return demo_corp


@pytest.fixture
def page(browser, live_server):
    """A fresh browser context (no cookies) and page on the live app; downloads accepted."""
    context = browser.new_context(base_url=live_server, accept_downloads=True, viewport={"width": 1280, "height": 860})
    context.set_default_timeout(SETTLE_TIMEOUT_MS)
    pg = context.new_page()
    yield pg
    context.close()

"""The browser wiring itself: Debian's Chromium, driven by Playwright, reaches the live app."""

from __future__ import annotations

import json


def test_chromium_reads_the_live_app(page, stack, worker):
    """Does headless Chromium load a page of the live app while a real worker runs beside it?"""
    response = page.goto("/readyz")
    assert response.status == 200
    assert json.loads(page.inner_text("body")) == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}
    assert worker.poll() is None, "the worker process died"

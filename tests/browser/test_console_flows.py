"""The admin console in a real browser, against the live app, the simulator and a running worker."""

from __future__ import annotations

import pytest

from tests.browser.helpers import console_sign_in, shot

PASSWORD = "correct-horse-battery"


@pytest.fixture
def admin(stack):
    """A console admin of the demo corp."""
    from app.models import Role
    from app.services import auth

    return auth.create_user("console-admin", PASSWORD, Role.admin)


def test_sign_in_lands_on_the_dashboard(page, admin):
    """Does a wrong password keep the admin out with the reason, and the right one open the dashboard?"""
    page.goto("/console/")
    assert "/console/login" in page.url
    shot(page, "login")
    console_sign_in(page, admin.username, "wrong-password")
    assert page.get_by_test_id("form-errors").is_visible()
    assert page.get_by_test_id("signed-in").count() == 0

    console_sign_in(page, admin.username, PASSWORD)
    assert page.get_by_test_id("signed-in-user").inner_text() == admin.username
    assert page.get_by_role("heading", level=1).inner_text().startswith("Dashboard")
    assert page.get_by_test_id("chart-adds").is_visible()
    shot(page, "dashboard")

"""The admin console in a real browser, against the live app, the simulator and a running worker."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from tests.browser.helpers import click_through, console_sign_in, shot, wait_until

PASSWORD = "correct-horse-battery"


@pytest.fixture
def admin(demo_corp):
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


def test_contact_code_to_poster_to_scanned_customer_and_360(page, admin, sim, worker):
    """Does a code made in the form give a real poster, and does its scanner show up welcomed, tagged and sourced?"""
    console_sign_in(page, admin.username, PASSWORD)
    click_through(page, page.get_by_test_id("nav-contact-codes"))
    assert page.get_by_test_id("empty").is_visible()
    click_through(page, page.get_by_test_id("new-code"))

    # Nothing filled in: the form comes back with the errors in place, nothing stored.
    click_through(page, page.get_by_test_id("save-code"))
    assert page.get_by_test_id("error-name").is_visible()
    assert page.get_by_test_id("error-channel").is_visible()

    page.get_by_test_id("field-name").fill("Expo 2026 booth")
    page.get_by_test_id("field-channel").fill("expo-2026")
    page.get_by_test_id("field-mode").select_option("wecom")
    page.get_by_test_id("add-member").click()  # a third pool row, added by the page's script
    for i, (userid, weight) in enumerate([("zhangwei", "2"), ("lina", "1"), ("wangfang", "1")]):
        page.get_by_test_id(f"field-members.{i}.userid").fill(userid)
        page.get_by_test_id(f"field-members.{i}.weight").fill(weight)
    page.get_by_test_id("field-members.2.backup").check()
    page.get_by_test_id("field-welcome.text").fill("{customer_name}您好，我是{rep_name}，欢迎来到{code_name}！")
    page.get_by_test_id("field-tags.0.name").fill("expo-2026")
    page.get_by_test_id("field-tags.0.group_name").fill("渠道活码")
    shot(page, "contact-code-form")
    click_through(page, page.get_by_test_id("save-code"))

    assert page.get_by_test_id("code-name").inner_text().startswith("Expo 2026 booth")
    assert page.get_by_test_id("member").evaluate_all("rows => rows.map(r => r.dataset.userid)") == [
        "zhangwei",
        "lina",
        "wangfang",
    ]
    assert sorted(page.get_by_test_id("wecom-users").inner_text().split(", ")) == ["lina", "zhangwei"]
    state = page.get_by_test_id("state").inner_text()
    code_url = page.url

    with page.expect_download() as download_info:
        page.get_by_test_id("poster-link").click()
    poster = Path(download_info.value.path()).read_bytes()
    assert poster[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(poster) > 10_000
    with Image.open(io.BytesIO(poster)) as image:
        assert image.format == "PNG" and min(image.size) >= 400

    # A WeChat user scans the poster: WeCom adds her to a rep of the pool and calls the app back.
    added = sim.control.scan(state=state, customer={"name": "林小姐"})
    assert added["userid"] in ("zhangwei", "lina")

    click_through(page, page.get_by_test_id("nav-customers"))
    customer_link = page.get_by_test_id("customer-link").filter(has_text="林小姐")

    def customer_listed() -> bool:
        page.reload()
        return customer_link.count() == 1

    assert wait_until(customer_listed), "the scanned customer never appeared in the customers list"
    shot(page, "customers-list")

    click_through(page, customer_link)
    assert page.get_by_test_id("customer-name").inner_text().startswith("林小姐")
    assert page.get_by_test_id("first-channel").inner_text() == "expo-2026"
    assert page.get_by_test_id("source-first").inner_text() == "Expo 2026 booth"
    follow = page.locator(f'[data-testid="follow-row"][data-staff-userid="{added["userid"]}"]')
    assert follow.count() == 1

    def tagged() -> bool:
        page.reload()
        return "渠道活码 / expo-2026" in follow.get_by_test_id("tag").all_inner_texts()

    assert wait_until(tagged), "the code's tag never reached the customer"
    shot(page, "customer-360")

    # The welcome went out through WeCom, inside its 20 s, with the placeholders filled in.
    sent = sim.control.state("welcomes")["welcomes"]
    welcomes = [w for w in sent if w["external_userid"] == added["external_userid"]]
    assert len(welcomes) == 1
    assert welcomes[0]["text"].startswith("林小姐您好，我是") and welcomes[0]["seconds_after_add"] < 20

    page.go_back()
    click_through(page, page.get_by_test_id("nav-contact-codes"))
    assert page.get_by_test_id("code-row").count() == 1
    shot(page, "contact-codes-list")
    click_through(page, page.get_by_test_id("code-row").get_by_role("link", name="stats"))
    assert page.get_by_test_id("total-adds").inner_text() == "1"
    assert page.get_by_test_id(f"rep-adds-{added['userid']}").inner_text() == "1"
    shot(page, "contact-code-stats")

    # The code's own page now lists her, greeted, and the rep WeCom picked for her.
    page.goto(code_url)
    add = page.get_by_test_id("code-add")
    assert add.count() == 1 and add.get_attribute("data-userid") == added["userid"]
    assert "sent" in add.inner_text()
    assert page.locator('[data-testid="code-assignment"][data-kind="wecom"]').count() == 1
    shot(page, "contact-code-detail")


def test_handover_started_from_the_staff_page_runs_to_the_end(page, admin, stack, sim):
    """Does an on-the-job hand-over started on the staff page show its plan, then reach done on its page?"""
    from app.services import auth, handover

    # WeCom's 24 h acceptance passes in about 3 s (the simulator's clock runs fast, its tokens
    # outlive that), and the app checks transfer results every few seconds instead of minutes.
    sim.control.config(token_ttl=10**9, time_scale=86400 / 3)
    handover.set_policy(auth.principal_of(admin), {"poll_seconds": [1, 2, 4]})
    wang = stack["customers"][0]  # 王先生, zhangwei's customer

    console_sign_in(page, admin.username, PASSWORD)
    click_through(page, page.get_by_test_id("nav-staff"))
    listed = page.get_by_test_id("staff-row").evaluate_all("rows => rows.map(r => r.dataset.userid)")
    assert sorted(listed) == ["chenjing", "lina", "liuyang", "wangfang", "zhangwei"]
    zhangwei = page.locator('[data-testid="staff-row"][data-userid="zhangwei"]')
    assert zhangwei.get_by_test_id("customer-count").inner_text() == "1"
    shot(page, "staff")

    click_through(page, zhangwei.get_by_test_id("start-handover"))
    page.get_by_test_id("field-kind").select_option("on_the_job")
    page.get_by_test_id("field-strategy").select_option("policy")
    page.get_by_test_id("field-transfer_message").fill("张伟调岗，由李娜继续为您服务")
    click_through(page, page.get_by_test_id("handover-preview"))
    # The dry run: by policy the other rep of 华东销售 takes the customer; nothing stored yet.
    assert page.get_by_test_id("preview-total").inner_text() == "1"
    takers = page.get_by_test_id("preview-takers").locator("tbody tr")
    assert takers.evaluate_all("rows => rows.map(r => r.dataset.userid)") == ["lina"]
    assert handover.search(auth.principal_of(admin), page=1, per_page=10).total == 0
    shot(page, "handover-preview")

    click_through(page, page.get_by_test_id("handover-start"))
    progress = page.get_by_test_id("handover-progress")
    progress.wait_for()
    assert progress.get_attribute("data-total") == "1"
    shot(page, "handover-started")
    # The page polls its progress fragment; the worker requests the transfer, WeCom accepts it
    # a (simulated) day later, the next poll of transfer_result makes it final.
    page.locator('[data-testid="handover-progress"][data-final="true"]').wait_for(timeout=60_000)
    assert page.get_by_test_id("progress-final").inner_text() == "1"
    assert page.get_by_test_id("count-done").inner_text() == "1"
    assert page.get_by_test_id("handover-progress").get_attribute("data-status") == "finished"
    page.reload()
    item = page.get_by_test_id("item-row")
    assert item.get_attribute("data-state") == "done"
    assert "lina" in item.inner_text()
    shot(page, "handover-detail")

    # WeCom moved the customer: lina follows 王先生 now (the transfer record says so too).
    transfers = [t for t in sim.control.state("transfers")["transfers"] if t["external_userid"] == wang]
    assert [(t["handover_userid"], t["takeover_userid"]) for t in transfers] == [("zhangwei", "lina")]

    click_through(page, page.get_by_test_id("nav-handovers"))
    assert page.get_by_text("zhangwei").first.is_visible()
    shot(page, "handovers-list")

    # Each customer's final state is an audit entry (the customer's timeline reads them).
    click_through(page, page.get_by_test_id("nav-audit-log"))
    actions = page.get_by_test_id("audit-action").all_inner_texts()
    assert {"handover.created", "handover.customer.done", "handover.finished"} <= set(actions)
    shot(page, "audit-log")


def test_alert_rule_made_and_switched_off_shows_in_the_audit_log(page, admin):
    """Does an alert rule refuse a bad threshold, save a good one, switch off, and leave both changes in the audit?"""
    console_sign_in(page, admin.username, PASSWORD)
    click_through(page, page.get_by_test_id("nav-alert-rules"))
    click_through(page, page.get_by_test_id("rule-new"))
    click_through(page, page.get_by_test_id("rule-kind-content_read"))
    page.get_by_test_id("field-name").fill("Long price-sheet read")
    page.get_by_test_id("field-params.min_seconds").fill("5000")  # past the hour the server allows
    click_through(page, page.get_by_test_id("rule-save"))
    assert page.get_by_test_id("error-params.min_seconds").is_visible()
    shot(page, "alert-rule-form")

    page.get_by_test_id("field-params.min_seconds").fill("90")
    click_through(page, page.get_by_test_id("rule-save"))
    rule = page.locator('[data-testid="rule-row"]').filter(has_text="Long price-sheet read")
    assert "min_seconds: 90" in rule.inner_text()
    click_through(page, rule.get_by_test_id("rule-switch"))
    assert "disabled" in rule.get_by_test_id("rule-status").inner_text()
    shot(page, "alert-rules")

    click_through(page, page.get_by_test_id("nav-audit-log"))
    page.get_by_test_id("field-action_prefix").fill("alerts.rule.")
    click_through(page, page.get_by_test_id("audit-submit"))
    actions = page.get_by_test_id("audit-action").all_inner_texts()
    assert actions == ["alerts.rule.update", "alerts.rule.create"]

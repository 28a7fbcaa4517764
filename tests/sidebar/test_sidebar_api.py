"""The sidebar's 360, timeline, notes and tags over /sidebar/v1, and its two pages, for a rep
signed in through the simulator (tags reach WeCom's mark_tag at the simulator)."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select

from app.models import CustomerNote, FollowRelation, Identity, IdentityType, Tag
from app.services.contact_codes import tags as code_tags


@pytest.fixture
def lina(sidebar_browser, demo_corp, db):
    """李娜 signed in, and her demo customer 赵女士 (customer id, external_userid)."""
    browser = sidebar_browser()
    browser.sign_in("lina")
    relation = db.session.scalar(select(FollowRelation).where(FollowRelation.staff_id == demo_corp["lina"].id))
    external_userid = db.session.scalar(
        select(Identity.value).where(
            Identity.customer_id == relation.customer_id, Identity.type == IdentityType.external_userid
        )
    )
    browser.customer_id, browser.external_userid = relation.customer_id, external_userid
    return browser


def test_contact_resolves_to_the_360(lina):
    """Does the chat's external_userid open that customer's 360, the same as by id?"""
    resp = lina.client.get(f"/sidebar/v1/contacts/{lina.external_userid}")
    assert resp.status_code == 200, resp.json
    view = resp.json
    assert view["customer_id"] == lina.customer_id and view["customer"]["name"] == "赵女士"
    assert {"identities", "source", "follows", "notes", "visits", "intent", "presence", "alerts", "handovers"} <= set(
        view
    )
    assert any(i["value"] == lina.external_userid for i in view["identities"])
    assert re.match(r"\d{4}-\d\d-\d\dT", view["customer"]["created_at"])  # ISO 8601, not an HTTP date
    assert lina.client.get(f"/sidebar/v1/customers/{lina.customer_id}").json == view


def test_unknown_contact_is_404(lina):
    """Is an external_userid nobody knows (or absurdly long) a 404 in the error envelope?"""
    for value in ("wm_nobody_knows", "x" * 300):
        resp = lina.client.get(f"/sidebar/v1/contacts/{value}")
        assert resp.status_code == 404 and resp.json["error"]["code"] == "not_found"


def test_notes_add_and_edit(lina, db):
    """Can the rep add a note and then edit it, and does the 360 show the new text?"""
    resp = lina.call("POST", f"/sidebar/v1/customers/{lina.customer_id}/notes", json={"body": "  Call back Monday  "})
    assert resp.status_code == 201, resp.json
    note = resp.json
    assert note["body"] == "Call back Monday" and note["customer_id"] == lina.customer_id
    resp = lina.call("PATCH", f"/sidebar/v1/notes/{note['id']}", json={"body": "Call back Tuesday"})
    assert resp.status_code == 200 and resp.json["body"] == "Call back Tuesday"
    notes = lina.client.get(f"/sidebar/v1/customers/{lina.customer_id}").json["notes"]
    assert [(n["id"], n["body"], n["can_edit"]) for n in notes] == [(note["id"], "Call back Tuesday", True)]
    timeline = lina.client.get(f"/sidebar/v1/customers/{lina.customer_id}/timeline").json
    assert {"customer.note.add", "customer.note.edit"} <= {e["kind"] for e in timeline["items"]}


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [({"body": "   "}, 422, "body"), ({"body": "x" * 2001}, 422, "body"), ({}, 422, "body"), ([1], 400, None)],
)
def test_bad_note_is_refused_and_nothing_stored(lina, db, body, status, field):
    """Is an empty, too long or missing note (or a non-object body) refused with nothing stored?"""
    resp = lina.call("POST", f"/sidebar/v1/customers/{lina.customer_id}/notes", json=body)
    assert resp.status_code == status
    if field:
        assert field in resp.json["error"]["fields"]
    assert db.session.scalar(select(CustomerNote).limit(1)) is None


def test_note_without_csrf_is_refused(lina, db):
    """Is a state-changing call without the session's X-CSRF-Token refused, with nothing stored?"""
    resp = lina.call("POST", f"/sidebar/v1/customers/{lina.customer_id}/notes", json={"body": "hi"}, csrf=False)
    assert resp.status_code == 403 and resp.json["error"]["code"] == "csrf_failed"
    resp = lina.client.post(
        f"/sidebar/v1/customers/{lina.customer_id}/notes", json={"body": "hi"}, headers={"X-CSRF-Token": "guess"}
    )
    assert resp.status_code == 403
    assert db.session.scalar(select(CustomerNote).limit(1)) is None


def test_tags_add_and_remove_through_mark_tag(lina, sim, corp, db):
    """Do tag edits reach WeCom (mark_tag at the simulator) and our copy of the relation?"""
    wecom_ids = code_tags.ensure(corp.id, [{"group_name": "等级", "name": "VIP"}])
    db.session.commit()
    vip = db.session.scalar(select(Tag).where(Tag.wecom_tag_id == wecom_ids[0]))
    assert any(t["id"] == vip.id for t in lina.client.get("/sidebar/v1/tags").json["tags"])
    url = f"/sidebar/v1/customers/{lina.customer_id}/tags"
    resp = lina.call("PUT", url, json={"add_tag_ids": [vip.id]})
    assert resp.status_code == 200, resp.json
    assert vip.id in [t["id"] for t in resp.json["tags"]]

    def wecom_tags() -> list[str]:
        follows = sim.control.state("follows")["follows"]
        mine = next(f for f in follows if f["external_userid"] == lina.external_userid and f["userid"] == "lina")
        return mine["tag_id"]

    assert vip.wecom_tag_id in wecom_tags()
    assert sim.world.counters.calls("externalcontact/mark_tag") == 1
    resp = lina.call("PUT", url, json={"remove_tag_ids": [vip.id]})
    assert resp.status_code == 200 and vip.id not in [t["id"] for t in resp.json["tags"]]
    assert vip.wecom_tag_id not in wecom_tags()


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"add_tag_ids": []},
        {"add_tag_ids": ["x"]},
        {"add_tag_ids": [1], "remove_tag_ids": [1]},
        {"add_tag_ids": [999999]},
    ],
)
def test_bad_tag_edit_is_refused_and_wecom_not_called(lina, sim, body):
    """Is a tag edit with nothing to do, bad ids or an unknown tag a 422 that never calls WeCom?"""
    resp = lina.call("PUT", f"/sidebar/v1/customers/{lina.customer_id}/tags", json=body)
    assert resp.status_code == 422 and resp.json["error"]["fields"]
    assert sim.world.counters.calls("externalcontact/mark_tag") == 0


def test_customer_page_carries_the_360(lina):
    """Does /sidebar/customers/<id> (the alert link) render the page with the 360 embedded?"""
    resp = lina.client.get(f"/sidebar/customers/{lina.customer_id}")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert 'data-mode="customer"' in html and 'data-testid="customer-360"' in html
    embedded = re.search(r'<script type="application/json" id="sidebar-initial">(.*?)</script>', html, re.S)
    view = json.loads(embedded.group(1))
    assert view["customer_id"] == lina.customer_id and view["customer"]["name"] == "赵女士"
    assert f'content="{lina.csrf()}"' in html
    missing = lina.client.get("/sidebar/customers/999999")
    assert missing.status_code == 404 and b'data-testid="sidebar-error"' in missing.data


def test_toolbar_page_loads_the_jssdk_only_when_configured(lina, app):
    """Is WeCom's JS-SDK script included only when WECOM_JSSDK_URL is set (never a CDN by default)?"""
    html = lina.client.get("/sidebar").get_data(as_text=True)
    assert 'data-mode="toolbar"' in html and '<script src="/sidebar/static/sidebar.js"' in html
    assert "jweixin" not in html and "https://" not in html
    app.config["WECOM_JSSDK_URL"] = "https://res.wx.qq.com/open/js/jweixin-1.2.0.js"
    html = lina.client.get("/sidebar").get_data(as_text=True)
    assert '<script src="https://res.wx.qq.com/open/js/jweixin-1.2.0.js"></script>' in html
    assert lina.client.get("/sidebar/static/sidebar.js").status_code == 200

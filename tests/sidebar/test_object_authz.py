"""Object-level authorization: a rep's sidebar session and API token against another rep's
customer, notes, timeline, card, alerts, hand-overs and contact codes → 403/404, never the data.

The routes come from ``app.url_map``: every /sidebar and /api/v1 route that takes an argument
must have a case below or be listed in NOT_SCOPED with the reason, so a route added later fails
``test_every_route_with_an_id_is_covered`` until someone says how it is guarded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest
from sqlalchemy import select

from app.models import (
    Alert,
    Card,
    ContactCode,
    ContentItem,
    ContentKind,
    Customer,
    CustomerNote,
    FollowRelation,
    Handover,
    Identity,
    IdentityConflict,
    IdentityType,
    MergeSuggestion,
    Role,
    Tag,
)
from app.services import cards, customer360, merge
from app.services.auth import Principal
from app.services.contact_codes import tags as code_tags
from tests import factories
from tests.cards.conftest import Visitor, ev

PREFIXES = ("/sidebar", "/api/v1")
NOTE_MARKER = "note-only-zhangwei-may-read-7f3a"
SCANNED_NAME = "扫码客户 Scanned Secret"


@dataclass
class Case:
    """How to call one route on zhangwei's objects: ``args`` (URL arguments from the scene),
    a JSON ``body`` for writes, who may (``owner``: "rep" = zhangwei, "admin") and what a
    permitted GET shows (``shows``: markers that prove the owner gets the data)."""

    args: dict = field(default_factory=dict)
    body: dict | None = None
    owner: str | None = None
    shows: tuple[str, ...] = ()


# Routes with arguments that hold no customer data and need no object check, and why.
NOT_SCOPED = {
    ("GET", "/sidebar/static/<path:filename>"): "the sidebar's own JS and CSS",
    ("GET", "/api/v1/alert-rules/<int:rule_id>"): "corp-wide rule settings, readable by every rep by design",
    ("PATCH", "/api/v1/alert-rules/<int:rule_id>"): "corp-wide rule settings (admin only, no customer data)",
    ("DELETE", "/api/v1/alert-rules/<int:rule_id>"): "corp-wide rule settings (admin only, no customer data)",
}

C, NOTE, CARD, ITEM = "customer_id", "note_id", "card_id", "content_id"
CASES: dict[tuple[str, str], Case] = {
    # -- the sidebar (session) --------------------------------------------------------------
    ("GET", "/sidebar/customers/<int:customer_id>"): Case({C: "x"}, owner="rep", shows=("x_name", "note")),
    ("GET", "/sidebar/v1/contacts/<external_userid>"): Case(
        {"external_userid": "x_ext"}, owner="rep", shows=("x_name", "note")
    ),
    ("GET", "/sidebar/v1/customers/<int:customer_id>"): Case({C: "x"}, owner="rep", shows=("x_name", "note")),
    ("GET", "/sidebar/v1/customers/<int:customer_id>/timeline"): Case({C: "x"}, owner="rep"),
    ("POST", "/sidebar/v1/customers/<int:customer_id>/notes"): Case({C: "x"}, body={"body": "intruder note"}),
    ("PUT", "/sidebar/v1/customers/<int:customer_id>/tags"): Case({C: "x"}, body={"remove_tag_ids": ["x_tag"]}),
    ("PATCH", "/sidebar/v1/notes/<int:note_id>"): Case({NOTE: "note_id"}, body={"body": "tampered"}),
    # -- customers and OneID (token) --------------------------------------------------------
    ("GET", "/api/v1/customers/<int:customer_id>"): Case({C: "x"}, owner="rep", shows=("x_name",)),
    ("GET", "/api/v1/customers/<int:customer_id>/timeline"): Case({C: "x"}, owner="rep"),
    ("GET", "/api/v1/customers/<int:customer_id>/merges"): Case({C: "x"}, owner="admin"),
    ("POST", "/api/v1/customers/<int:customer_id>/unmerge"): Case({C: "x"}, body={"merge_id": 1, "reason": "r"}),
    ("POST", "/api/v1/merge-suggestions/<int:suggestion_id>/accept"): Case(
        {"suggestion_id": "suggestion_id"}, body={"reason": "r"}
    ),
    ("POST", "/api/v1/merge-suggestions/<int:suggestion_id>/reject"): Case(
        {"suggestion_id": "suggestion_id"}, body={"reason": "r"}
    ),
    ("POST", "/api/v1/identity-conflicts/<int:conflict_id>/dismiss"): Case(
        {"conflict_id": "conflict_id"}, body={"reason": "r"}
    ),
    # -- cards (the visits, shares and presence of zhangwei's customers) ---------------------
    ("GET", "/api/v1/cards/<int:card_id>"): Case({CARD: "card_id"}, owner="rep"),
    ("PATCH", "/api/v1/cards/<int:card_id>"): Case({CARD: "card_id"}, body={"title": "taken over"}),
    ("DELETE", "/api/v1/cards/<int:card_id>"): Case({CARD: "card_id"}),
    ("POST", "/api/v1/cards/<int:card_id>/contact_way"): Case({CARD: "card_id"}, body={}),
    ("GET", "/api/v1/cards/<int:card_id>/contents"): Case({CARD: "card_id"}, owner="rep"),
    ("POST", "/api/v1/cards/<int:card_id>/contents"): Case(
        {CARD: "card_id"}, body={"kind": "article", "title": "planted", "url": "https://example.com/planted"}
    ),
    ("PATCH", "/api/v1/cards/<int:card_id>/contents/<int:content_id>"): Case(
        {CARD: "card_id", ITEM: "content_id"}, body={"title": "renamed"}
    ),
    ("DELETE", "/api/v1/cards/<int:card_id>/contents/<int:content_id>"): Case({CARD: "card_id", ITEM: "content_id"}),
    ("GET", "/api/v1/cards/<int:card_id>/contents/<int:content_id>/stats"): Case(
        {CARD: "card_id", ITEM: "content_id"}, owner="rep"
    ),
    ("GET", "/api/v1/cards/<int:card_id>/presence"): Case({CARD: "card_id"}, owner="rep"),
    ("GET", "/api/v1/cards/<int:card_id>/shares"): Case({CARD: "card_id"}, owner="rep"),
    ("GET", "/api/v1/cards/<int:card_id>/stats"): Case({CARD: "card_id"}, owner="rep"),
    # -- alerts and a rep's alert preferences ------------------------------------------------
    ("GET", "/api/v1/alerts/<int:alert_id>"): Case({"alert_id": "alert_id"}, owner="rep", shows=("x_name",)),
    ("GET", "/api/v1/alert-preferences/<int:staff_id>"): Case({"staff_id": "staff_a"}, owner="admin"),
    ("PATCH", "/api/v1/alert-preferences/<int:staff_id>"): Case({"staff_id": "staff_a"}, body={"muted_rule_ids": []}),
    # -- hand-overs --------------------------------------------------------------------------
    ("GET", "/api/v1/handovers/<int:handover_id>"): Case({"handover_id": "handover_id"}, owner="rep"),
    ("POST", "/api/v1/handovers/<int:handover_id>/approve"): Case({"handover_id": "handover_id"}, body={}),
    ("POST", "/api/v1/handovers/<int:handover_id>/cancel"): Case({"handover_id": "handover_id"}, body={"reason": "r"}),
    ("GET", "/api/v1/handovers/<int:handover_id>/customers"): Case(
        {"handover_id": "handover_id"}, owner="rep", shows=("x_name",)
    ),
    ("GET", "/api/v1/handovers/<int:handover_id>/group_chats"): Case({"handover_id": "handover_id"}, owner="rep"),
    # -- contact codes (their adds name the customers who scanned) ----------------------------
    ("GET", "/api/v1/contact-codes/<int:code_id>"): Case({"code_id": "code_id"}, owner="rep"),
    ("PATCH", "/api/v1/contact-codes/<int:code_id>"): Case({"code_id": "code_id"}, body={"name": "renamed"}),
    ("GET", "/api/v1/contact-codes/<int:code_id>/adds"): Case(
        {"code_id": "code_id"}, owner="admin", shows=("scanned",)
    ),
    ("GET", "/api/v1/contact-codes/<int:code_id>/assignments"): Case({"code_id": "code_id"}, owner="admin"),
    ("POST", "/api/v1/contact-codes/<int:code_id>/archive"): Case({"code_id": "code_id"}, body={}),
    ("POST", "/api/v1/contact-codes/<int:code_id>/pause"): Case({"code_id": "code_id"}, body={}),
    ("POST", "/api/v1/contact-codes/<int:code_id>/resume"): Case({"code_id": "code_id"}, body={}),
    ("GET", "/api/v1/contact-codes/<int:code_id>/poster.png"): Case({"code_id": "code_id"}, owner="rep"),
    ("GET", "/api/v1/contact-codes/<int:code_id>/stats"): Case({"code_id": "code_id"}, owner="admin"),
    ("GET", "/api/v1/contact-codes/<int:code_id>/stats.csv"): Case({"code_id": "code_id"}, owner="admin"),
}

# Reads that name zhangwei's customer in the query string: another rep may get an empty answer
# (a filter that matches nothing visible) or a 404, but never the data.
QUERY_READS = [
    "/api/v1/cards/visits?customer_id={x}",
    "/api/v1/cards/intents?customer_id={x}",
    "/api/v1/cards/intents/history?customer_id={x}",
    "/api/v1/alerts?customer={x}",
    "/api/v1/customers?q={x_ext}",
    "/api/v1/customers?staff=zhangwei",
    "/api/v1/identities/resolve?type=external_userid&value={x_ext}",
    "/api/v1/handovers?staff=zhangwei",
]


def _scoped_routes(app) -> set[tuple[str, str]]:
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.arguments and rule.rule.startswith(PREFIXES):
            routes |= {(method, rule.rule) for method in rule.methods - {"HEAD", "OPTIONS"}}
    return routes


def test_every_route_with_an_id_is_covered(app):
    """Is every /sidebar and /api/v1 route taking an argument either exercised here or listed,
    with its reason, as holding no customer data (and is nothing listed that no longer exists)?"""
    routes = _scoped_routes(app)
    uncovered = sorted(routes - CASES.keys() - NOT_SCOPED.keys())
    assert not uncovered, f"add a Case (or a NOT_SCOPED reason) for: {uncovered}"
    stale = sorted((CASES.keys() | NOT_SCOPED.keys()) - routes)
    assert not stale, f"these routes no longer exist: {stale}"


class Scene:
    """zhangwei's world, built through the real paths, that wangfang must not reach."""


@pytest.fixture
def scene(app, sim, db, corp, demo_corp, client, api_auth, admin_headers, run_jobs, sidebar_browser):
    s = Scene()
    zhangwei, wangfang = demo_corp["zhangwei"], demo_corp["wangfang"]
    s.staff_a = zhangwei.id
    relation = db.session.scalar(select(FollowRelation).where(FollowRelation.staff_id == zhangwei.id))
    s.x = relation.customer_id
    s.x_ext = db.session.scalar(
        select(Identity.value).where(Identity.customer_id == s.x, Identity.type == IdentityType.external_userid)
    )
    s.x_unionid = db.session.scalar(
        select(Identity.value).where(Identity.customer_id == s.x, Identity.type == IdentityType.unionid)
    )
    s.x_name = relation.customer.name
    rep_user = api_auth.user("rep", staff_id=zhangwei.id)
    rep_a = Principal(user_id=rep_user.id, corp_id=corp.id, role=Role.rep, staff_id=zhangwei.id)
    admin = Principal(user_id=api_auth.user("admin").id, corp_id=corp.id, role=Role.admin, staff_id=None)
    s.note_id = customer360.add_note(rep_a, s.x, NOTE_MARKER).id
    vip = code_tags.ensure(corp.id, [{"group_name": "等级", "name": "VIP"}])
    db.session.commit()
    s.x_tag = db.session.scalar(select(Tag.id).where(Tag.wecom_tag_id == vip[0]))
    customer360.set_tags(rep_a, s.x, [s.x_tag], [])

    # zhangwei's card, opened by the customer in the mini-program: visits, presence, an alert.
    card = cards.create(admin, {"staff_id": zhangwei.id, "display_name": "张伟的名片"})
    item = ContentItem(corp_id=corp.id, card_id=card.id, kind=ContentKind.article, title="Price sheet")
    db.session.add(item)
    db.session.commit()
    s.card_id, s.content_id = card.id, item.id
    run_jobs()
    visitor = Visitor(client, sim, "10.77.0.1")
    visitor.login(unionid=s.x_unionid)
    resp = visitor.send(
        ev("card_view", card.id, at=-40),
        ev("content_view", card.id, item.id, at=-35),
        *[ev("heartbeat", card.id, item.id, at=-35 + 5 * i) for i in range(1, 7)],
    )
    assert resp.status_code == 202, resp.json
    run_jobs()
    s.alert_id = db.session.scalar(select(Alert.id).where(Alert.customer_id == s.x).limit(1))
    assert s.alert_id, "the card visit raised no alert about the customer"

    # zhangwei's contact code, scanned by a new customer (the code's adds name them).
    body = {"name": "Booth", "channel": "expo", "members": [{"userid": "zhangwei"}]}
    code = client.post("/api/v1/contact-codes", json=body, headers=admin_headers)
    assert code.status_code == 201, code.json
    s.code_id = code.json["id"]
    scan = sim.control.scan(config_id=code.json["config_id"], customer={"name": SCANNED_NAME})
    sim.control.flush_callbacks()
    run_jobs()
    s.scanned = scan["external_userid"]
    scanned_id = db.session.scalar(
        select(FollowRelation.customer_id).where(FollowRelation.staff_id == zhangwei.id, FollowRelation.state != "demo")
    )

    # OneID rows about zhangwei's customers (admin-only routes).
    merge.suggest(corp.id, s.x, scanned_id, "same_name", {"test": True})
    conflict = IdentityConflict(corp_id=corp.id, key="authz-test", kind="unionid", customer_ids=[s.x, scanned_id])
    db.session.add(conflict)
    db.session.commit()
    s.suggestion_id = db.session.scalar(select(MergeSuggestion.id).limit(1))
    s.conflict_id = conflict.id

    # An on-the-job hand-over of the customer from zhangwei to lina.
    handover = client.post(
        "/api/v1/handovers",
        json={
            "kind": "on_the_job",
            "handover_userid": "zhangwei",
            "strategy": "explicit",
            "plan": [{"customer_id": s.x, "takeover_userid": "lina"}],
        },
        headers=admin_headers,
    )
    assert handover.status_code == 201, handover.json
    s.handover_id = handover.json["id"]
    sim.control.flush_callbacks()
    run_jobs()
    db.session.expire_all()

    s.note = NOTE_MARKER
    s.headers = {
        "rep": {"Authorization": f"Bearer {api_auth.token(rep_user.username)}"},
        "admin": admin_headers,
        "other": api_auth.headers("rep", staff_id=wangfang.id),
    }
    s.sessions = {"rep": sidebar_browser(), "other": sidebar_browser()}
    s.sessions["rep"].sign_in("zhangwei")
    s.sessions["other"].sign_in("wangfang")
    # What must never reach the other rep.
    s.secrets = [s.x_name, s.x_ext, s.x_unionid, NOTE_MARKER, SCANNED_NAME, s.scanned]
    s.before = _state(db, s)
    return s


def _state(db, s) -> dict:
    """What a refused write must leave as it was."""
    db.session.expire_all()
    relation = db.session.scalar(
        select(FollowRelation).where(FollowRelation.customer_id == s.x, FollowRelation.staff_id == s.staff_a)
    )
    card = db.session.get(Card, s.card_id)
    return {
        "note": db.session.get(CustomerNote, s.note_id).body,
        "notes": db.session.scalars(select(CustomerNote.id)).all(),
        "tags": [t.id for t in relation.tags],
        "card": (card.title, card.active, card.contact_way_status, card.contact_way_attempts),
        "contents": db.session.execute(
            select(ContentItem.title, ContentItem.archived_at).order_by(ContentItem.id)
        ).all(),
        "code": tuple(db.session.execute(select(ContactCode.name, ContactCode.status)).one()),
        "handover": db.session.get(Handover, s.handover_id).status,
        "suggestion": db.session.get(MergeSuggestion, s.suggestion_id).status,
        "conflict": db.session.get(IdentityConflict, s.conflict_id).status,
    }


def _resolve(scene: Scene, case: Case, rule: str) -> str:
    path = rule
    for name, attr in case.args.items():
        converter = f"<int:{name}>" if f"<int:{name}>" in rule else f"<{name}>"
        path = path.replace(converter, str(getattr(scene, attr)))
    return path


def _body(scene: Scene, case: Case):
    if case.body is None:
        return None
    return {k: [getattr(scene, v) for v in vs] if isinstance(vs, list) else vs for k, vs in case.body.items()}


def _shows(resp, text: str) -> bool:
    """Whether a response carries ``text``, as UTF-8 or as JSON's \\u escapes."""
    return any(form.encode() in resp.data for form in (text, json.dumps(text)[1:-1]))


def _call(scene: Scene, who: str, method: str, path: str, body):
    if path.startswith("/sidebar"):
        return scene.sessions[who].call(method, path, json=body)
    client = scene.sessions["rep"].client  # any client: the bearer token says who calls
    return client.open(path, method=method, json=body, headers=scene.headers[who])


def test_another_reps_objects_answer_403_or_404_and_never_data(scene, db):
    """Can a rep reach another rep's customer, notes, timeline, card, alerts, hand-overs or codes
    through any sidebar or API route?"""
    failures = []
    for (method, rule), case in sorted(CASES.items()):
        path = _resolve(scene, case, rule)
        resp = _call(scene, "other", method, path, _body(scene, case))
        if resp.status_code not in (403, 404):
            failures.append(f"{method} {path}: {resp.status_code}")
        leaked = [secret for secret in scene.secrets if _shows(resp, secret)]
        if leaked:
            failures.append(f"{method} {path}: leaked {leaked}")
    assert not failures, "\n".join(failures)
    assert _state(db, scene) == scene.before, "a refused call changed something"


def test_query_reads_never_show_another_reps_customer(scene):
    """Filtering by another rep's customer in the query string: empty or 404, never the data?"""
    failures = []
    for template in QUERY_READS:
        path = template.format(x=scene.x, x_ext=scene.x_ext)
        resp = _call(scene, "other", "GET", path, None)
        if resp.status_code not in (200, 403, 404):
            failures.append(f"GET {path}: {resp.status_code}")
        leaked = [secret for secret in scene.secrets if _shows(resp, secret)]
        if leaked:
            failures.append(f"GET {path}: leaked {leaked}")
    assert not failures, "\n".join(failures)


def test_the_owner_reads_the_same_objects(scene):
    """Control: do the same requests succeed for the rep who owns them (or an admin), showing the
    data, so the refusals above are about who asks and not about a broken request?"""
    failures = []
    for (method, rule), case in sorted(CASES.items()):
        if method != "GET" or case.owner is None:
            continue
        path = _resolve(scene, case, rule)
        resp = _call(scene, case.owner, method, path, None)
        if resp.status_code != 200:
            failures.append(f"{case.owner} GET {path}: {resp.status_code}")
            continue
        missing = [m for m in case.shows if not _shows(resp, str(getattr(scene, m)))]
        if missing:
            failures.append(f"{case.owner} GET {path}: does not show {missing}")
    assert not failures, "\n".join(failures)
    reads = [_call(scene, "rep", "GET", t.format(x=scene.x, x_ext=scene.x_ext), None) for t in QUERY_READS[:4]]
    assert all(r.status_code == 200 for r in reads)
    assert _shows(reads[3], scene.x_name)  # alerts about the customer, for its rep


def test_writes_are_refused_before_any_wecom_call(scene, sim):
    """Does a refused tag edit on another rep's customer never reach WeCom's mark_tag?"""
    before = sim.world.counters.calls("externalcontact/mark_tag")  # the scene tagged once
    resp = scene.sessions["other"].call(
        "PUT", f"/sidebar/v1/customers/{scene.x}/tags", json={"remove_tag_ids": [scene.x_tag]}
    )
    assert resp.status_code == 404
    assert sim.world.counters.calls("externalcontact/mark_tag") == before


def test_notes_of_a_shared_customer_stay_their_authors(scene, db, corp, demo_corp):
    """When a customer is shared with another rep, may that rep edit the first rep's note?"""
    # wangfang adds the same customer (both now follow them).
    factories.follow(corp, demo_corp["wangfang"], db.session.get(Customer, scene.x))
    other = scene.sessions["other"]
    assert other.client.get(f"/sidebar/v1/customers/{scene.x}").status_code == 200
    resp = other.call("PATCH", f"/sidebar/v1/notes/{scene.note_id}", json={"body": "tampered"})
    assert resp.status_code == 403
    db.session.expire_all()
    assert db.session.get(CustomerNote, scene.note_id).body == NOTE_MARKER

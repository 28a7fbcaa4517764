"""/api/v1/cards: editing by admins and reps, the rep's mini-program contact way in WeCom (the
simulator), what a visitor is shown — including after the rep left — and channel attribution."""

from datetime import timedelta

from rq.registry import ScheduledJobRegistry
from sqlalchemy import select

from app.models import Card, ContactWayStatus, Customer, FollowStatus, StaffStatus, utcnow
from tests import factories
from tests.cards.conftest import Visitor, make_card


def _ways(sim):
    return sim.control.state("contact_ways")["contact_ways"]


def _run_scheduled(app, run_jobs):
    """Run delayed retries now instead of waiting for their time."""
    for queue in app.extensions["queues"].all():
        registry = ScheduledJobRegistry(queue=queue)
        for job_id in registry.get_job_ids():
            registry.remove(job_id)
            queue.enqueue_job(queue.fetch_job(job_id))
    run_jobs()


def test_admin_creates_a_card_with_the_reps_contact_way(sim, rep, client, admin_headers, run_jobs):
    """Does a new card get its rep's own mini-program contact way (type 1, scene 1, state naming the card)?"""
    sim.control.seed_demo()
    body = {"staff_id": rep.id, "display_name": "张伟 Zhang Wei", "title": "销售经理", "email": "zw@example.com"}
    created = client.post("/api/v1/cards", json=body, headers=admin_headers)
    assert created.status_code == 201, created.json
    card = created.json
    assert card["contact_way"]["status"] == "pending" and card["staff_userid"] == "zhangwei"
    run_jobs()
    ready = client.get(f"/api/v1/cards/{card['id']}", headers=admin_headers).json["contact_way"]
    assert ready["status"] == "ready" and ready["state"] == f"card:{card['id']}"
    (way,) = _ways(sim)
    assert (way["config_id"], way["type"], way["scene"], way["state"], way["user"]) == (
        ready["config_id"],
        1,
        1,
        f"card:{card['id']}",
        ["zhangwei"],
    )


def test_card_fields_are_validated(rep, client, admin_headers, db):
    """Are bad card fields (no rep, bad email or URL, unknown rep) refused with 422 and nothing stored?"""
    bad = [
        {"display_name": "x"},
        {"staff_id": rep.id, "email": "not-an-email"},
        {"staff_id": rep.id, "avatar": "not a url"},
        {"staff_id": 999_999, "display_name": "x"},
        {"staff_id": rep.id, "display_name": ""},
    ]
    for body in bad:
        resp = client.post("/api/v1/cards", json=body, headers=admin_headers)
        assert resp.status_code == 422 and resp.json["error"]["fields"], body
    assert db.session.query(Card).count() == 0


def test_reps_edit_only_their_own_card(corp, rep, db, client, api_auth):
    """May a rep create and edit their own card but not see, create or archive anyone else's?"""
    other = make_card(db, corp, factories.staff(corp))
    headers = api_auth.headers("rep", staff_id=rep.id)
    mine = client.post("/api/v1/cards", json={"display_name": "Mine"}, headers=headers)
    assert mine.status_code == 201 and mine.json["staff_id"] == rep.id
    again = client.post("/api/v1/cards", json={"display_name": "Again"}, headers=headers)
    assert again.status_code == 409
    for_other = client.post("/api/v1/cards", json={"staff_id": other.staff_id}, headers=headers)
    assert for_other.status_code == 403
    patched = client.patch(f"/api/v1/cards/{mine.json['id']}", json={"intro": "Hi"}, headers=headers)
    assert patched.status_code == 200 and patched.json["intro"] == "Hi"
    assert client.patch(f"/api/v1/cards/{mine.json['id']}", json={"active": False}, headers=headers).status_code == 403
    assert client.get(f"/api/v1/cards/{other.id}", headers=headers).status_code == 404
    assert client.patch(f"/api/v1/cards/{other.id}", json={"intro": "x"}, headers=headers).status_code == 404
    assert client.get(f"/api/v1/cards/{other.id}/stats", headers=headers).status_code == 404
    assert [c["id"] for c in client.get("/api/v1/cards", headers=headers).json["items"]] == [mine.json["id"]]
    assert client.get("/api/v1/cards/settings", headers=headers).status_code == 403


def test_content_is_curated_and_shown_in_order(card, client, admin_headers):
    """Do added, edited and archived content items show up in the visitor's card as curated?"""
    base = f"/api/v1/cards/{card.id}/contents"
    video = client.post(
        base,
        json={"kind": "video", "title": "Demo", "url": "https://example.com/v", "position": 0},
        headers=admin_headers,
    )
    assert video.status_code == 201, video.json
    assert (
        client.post(
            base, json={"kind": "podcast", "title": "x", "url": "https://e.com"}, headers=admin_headers
        ).status_code
        == 422
    )
    items = client.get(base, headers=admin_headers).json
    assert [i["title"] for i in items] == ["Demo", "价格表 Price sheet", "产品手册 Brochure"]
    client.patch(f"{base}/{items[1]['id']}", json={"title": "Prices 2026"}, headers=admin_headers)
    assert client.delete(f"{base}/{items[2]['id']}", headers=admin_headers).status_code == 204
    visitor = Visitor(client)
    visitor.device()
    shown = visitor.card(card.id).json
    assert [c["title"] for c in shown["contents"]] == ["Demo", "Prices 2026"]
    assert shown["requested_id"] == card.id and shown["contact_way"] is None  # its way is not made yet


def test_transient_wecom_failure_is_retried(sim, rep, client, admin_headers, run_jobs, app):
    """When add_contact_way answers 45033 (busy), is it retried later and the card's way made?"""
    sim.control.seed_demo()
    sim.control.set_faults(rate=1.0, errors=[45033], paths=["externalcontact/add_contact_way"], times=1)
    card = client.post("/api/v1/cards", json={"staff_id": rep.id}, headers=admin_headers).json
    run_jobs()
    waiting = client.get(f"/api/v1/cards/{card['id']}", headers=admin_headers).json["contact_way"]
    assert waiting["status"] == "pending" and "45033" in waiting["error"]
    _run_scheduled(app, run_jobs)
    assert client.get(f"/api/v1/cards/{card['id']}", headers=admin_headers).json["contact_way"]["status"] == "ready"


def test_refused_contact_way_can_be_retried(sim, rep, client, admin_headers, run_jobs):
    """When WeCom refuses the way, is the card marked failed with the error, and does a retry succeed?"""
    sim.control.seed_demo()
    sim.control.set_faults(rate=1.0, errors=[40058], paths=["externalcontact/add_contact_way"], times=1)
    card = client.post("/api/v1/cards", json={"staff_id": rep.id}, headers=admin_headers).json
    run_jobs()
    failed = client.get(f"/api/v1/cards/{card['id']}", headers=admin_headers).json["contact_way"]
    assert failed["status"] == "failed" and "40058" in failed["error"]
    retried = client.post(f"/api/v1/cards/{card['id']}/contact_way", headers=admin_headers)
    assert retried.status_code == 200 and retried.json["contact_way"]["status"] == "pending"
    run_jobs()
    assert client.get(f"/api/v1/cards/{card['id']}", headers=admin_headers).json["contact_way"]["status"] == "ready"


def test_archived_card_releases_its_way_and_disappears(sim, rep, client, admin_headers, run_jobs):
    """Does archiving a card delete its contact way in WeCom and hide it from visitors?"""
    sim.control.seed_demo()
    card = client.post("/api/v1/cards", json={"staff_id": rep.id}, headers=admin_headers).json
    run_jobs()
    assert len(_ways(sim)) == 1
    assert client.delete(f"/api/v1/cards/{card['id']}", headers=admin_headers).status_code == 204
    run_jobs()
    assert _ways(sim) == []
    archived = client.get(f"/api/v1/cards/{card['id']}", headers=admin_headers).json
    assert archived["active"] is False and archived["contact_way"]["status"] == "released"
    visitor = Visitor(client)
    visitor.device()
    assert visitor.card(card["id"]).status_code == 404


def test_adding_the_rep_from_the_card_attributes_the_channel(sim, rep, client, admin_headers, run_jobs, db):
    """When a customer adds the rep through the card's contact way, is the card their channel?"""
    sim.control.seed_demo()
    card = client.post("/api/v1/cards", json={"staff_id": rep.id}, headers=admin_headers).json
    run_jobs()
    config_id = client.get(f"/api/v1/cards/{card['id']}", headers=admin_headers).json["contact_way"]["config_id"]
    sim.control.scan(config_id=config_id, customer={"name": "名片客户"})
    sim.control.flush_callbacks()
    run_jobs()
    customer = db.session.scalar(select(Customer).where(Customer.name == "名片客户"))
    assert customer.first_channel == customer.last_channel == f"card:{card['id']}"


def test_visitors_of_a_leavers_card_see_the_successor(corp, db, client, sim):
    """After a rep left, is a visitor shown the card of the rep who now holds them (or most of the
    leaver's customers), and the leaver's own card, unreachable, when nobody took over?"""
    leaver, heir, other = (factories.staff(corp) for _ in range(3))
    old = make_card(db, corp, leaver)
    heirs_card, others_card = make_card(db, corp, heir), make_card(db, corp, other)
    for card in (old, heirs_card, others_card):
        card.contact_way_status, card.contact_way_config_id = ContactWayStatus.ready, f"way{card.id}"
    leaver.status, leaver.resigned_at = StaffStatus.resigned, utcnow() - timedelta(days=1)
    db.session.commit()
    moved = [factories.customer(corp) for _ in range(2)]
    for customer in moved:
        factories.follow(corp, leaver, customer, status=FollowStatus.transferred)
        factories.follow(corp, heir, customer)
    mine = factories.customer(corp, identities=[("unionid", "union-heir-2")])
    factories.follow(corp, leaver, mine, status=FollowStatus.transferred)
    factories.follow(corp, other, mine)

    anonymous = Visitor(client, sim, "10.3.0.1")
    anonymous.device()
    shown = anonymous.card(old.id).json
    assert (shown["id"], shown["requested_id"], shown["contact_way"]) == (
        heirs_card.id,
        old.id,
        {"config_id": f"way{heirs_card.id}"},
    )
    known = Visitor(client, sim, "10.3.0.2")
    known.login(unionid="union-heir-2")
    assert known.card(old.id).json["id"] == others_card.id

    for customer in moved + [mine]:
        for relation in customer_relations(db, customer):
            relation.status = FollowStatus.deleted
    db.session.commit()
    alone = anonymous.card(old.id).json
    assert (alone["id"], alone["contact_way"], alone["phone"]) == (old.id, None, "")


def customer_relations(db, customer):
    from app.models import FollowRelation

    return db.session.scalars(select(FollowRelation).where(FollowRelation.customer_id == customer.id)).all()


def test_intent_settings_are_validated(client, admin_headers):
    """Are intent settings readable, changeable, and refused when hot is not above warm?"""
    defaults = client.get("/api/v1/cards/settings", headers=admin_headers).json
    assert defaults["half_life_hours"] == 72 and defaults["weights"]["add_wecom"] == 10
    changed = client.patch(
        "/api/v1/cards/settings", json={"half_life_hours": 24, "weights": {"share": 7}}, headers=admin_headers
    )
    assert changed.status_code == 200 and changed.json["half_life_hours"] == 24
    assert changed.json["weights"]["share"] == 7 and changed.json["weights"]["card_view"] == 1
    for bad in ({"warm": 50}, {"weights": {"wink": 1}}, {"half_life_hours": 0}):
        assert client.patch("/api/v1/cards/settings", json=bad, headers=admin_headers).status_code == 422, bad

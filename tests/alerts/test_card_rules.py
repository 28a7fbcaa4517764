"""Card rules end to end: mini-program events go through the real signals pipeline (stream,
drainer, hooks), our evaluation and outbox jobs run on a real RQ worker, and the simulator
receives the message/send."""

from app.models import AlertKind, DeliveryState
from app.services.alerts import rules
from app.services.signals import intent


def _kinds(world, customer_id=None):
    alerts = world.alerts(customer_id=customer_id) if customer_id else world.alerts()
    return sorted(str(a.kind) for a in alerts)


CASES = {
    "card_view": ([("card_view", 0)], ["card_opened"]),
    "share": ([("share", 0)], ["shared"]),
    "click_phone": ([("click_phone", 0)], ["contact_click"]),
    "save_contact": ([("save_contact", 0)], ["contact_click"]),
    "long_read": (
        [("content_view", 40, "C"), ("heartbeat", 30, "C"), ("heartbeat", 15, "C"), ("leave", 0, "C")],
        ["content_read"],
    ),
    "short_read": ([("content_view", 8, "C"), ("heartbeat", 4, "C"), ("leave", 0, "C")], []),
    "heartbeat": ([("heartbeat", 0)], []),
}


def test_each_card_rule_fires_once_for_its_event(world):
    """Does each card event fire exactly its own rule, once, and reach the rep through WeCom?"""
    cases = {}
    for name, (specs, expected) in CASES.items():
        rep = world.rep()  # one rep, card and visitor per case: the cases cannot see each other
        card, (content,) = world.card(rep)
        visitor = world.visitor(f"Wang {name}")
        world.events(visitor, card, *[tuple(content.id if x == "C" else x for x in spec) for spec in specs])
        cases[name] = (rep, visitor, expected)
    world.settle()
    for name, (rep, visitor, expected) in cases.items():
        assert _kinds(world, visitor.customer_id) == expected, name
        sent = world.messages(rep.userid)
        assert len(sent) == len(expected) and all(m["status"] == "delivered" for m in sent), name
        for delivery in world.deliveries(userid=rep.userid):
            assert delivery.state == DeliveryState.sent and delivery.msgid, name


def test_returning_visitor_is_told_with_the_visit_count(world, db):
    """Is a returning visitor's new visit (after the window) alerted with its visit count?"""
    rep = world.rep()
    card, _ = world.card(rep)
    visitor = world.visitor("Li")
    rule = next(r for r in rules.rules_for(world.corp.id) if r.default_of == AlertKind.card_opened)
    rule.window_seconds = 60
    db.session.commit()
    # Two visits, 5 and 3 minutes ago (the leave ends the first), further apart than the window.
    world.events(visitor, card, ("card_view", 300), ("leave", 299), ("card_view", 180))
    world.settle()
    alerts = world.alerts(kind=AlertKind.card_opened)
    assert [a.data["visits"] for a in alerts] == [1, 2]
    assert "2nd visit" in alerts[1].title


def test_repeated_events_in_the_window_raise_one_alert(world):
    """Do two card openings by one customer within the rule's window give one alert?"""
    rep = world.rep()
    card, _ = world.card(rep)
    visitor = world.visitor()
    world.events(visitor, card, ("card_view", 0))
    world.settle()
    world.events(visitor, card, ("leave", 0), ("card_view", 0))
    world.settle()
    assert _kinds(world) == ["card_opened"]
    assert len(world.messages(rep.userid)) == 1


def test_evaluating_the_same_activities_twice_raises_nothing_new(world):
    """If an evaluation job runs twice (RQ retry), is each alert still raised once?"""
    rep = world.rep()
    card, _ = world.card(rep)
    visitor = world.visitor()
    items = [[world.corp.id, visitor.customer_id, rep.id, card.id, None, "click_phone", 1_700_000_000_000]]
    assert rules.evaluate_activities(items) == 1
    assert rules.evaluate_activities(items) == 0
    world.settle()
    assert _kinds(world) == ["contact_click"]


def test_a_view_through_a_share_names_the_sharer(world):
    """When B opens the card through A's share, is the rep told who came through whose share?"""
    rep = world.rep()
    card, _ = world.card(rep)
    sharer, viewer = world.visitor("Wang"), world.visitor("Li")
    shares = world.events(sharer, card, ("share", 0))
    world.settle()
    world.events(viewer, card, ("card_view", 0, None, next(iter(shares.values()))))
    world.settle()
    assert _kinds(world, sharer.customer_id) == ["shared"]
    (viewed,) = world.alerts(customer_id=viewer.customer_id)
    assert viewed.kind == AlertKind.share_viewed and "Wang" in viewed.title and "Li" in viewed.title


def test_rise_to_hot_fires_intent_hot_once(world, corp):
    """Does a customer's intent rising to hot alert the rep once (besides the click itself)?"""
    intent.update_settings(corp.id, "test", {"warm": 5, "hot": 15})
    rep = world.rep()
    card, _ = world.card(rep)
    visitor = world.visitor("Zhao")
    world.events(visitor, card, ("add_wecom", 2), ("click_phone", 1))
    world.settle()
    world.events(visitor, card, ("copy_wechat", 0))
    world.settle()
    assert _kinds(world) == ["contact_click", "intent_hot"]
    (hot,) = world.alerts(kind=AlertKind.intent_hot)
    assert "Zhao" in hot.title and hot.staff_id == rep.id


def test_muted_rule_is_recorded_but_not_sent(world):
    """When a rep muted a rule, is its alert kept (timeline) but its delivery suppressed?"""
    from app.services.alerts import quiet
    from app.services.auth import Principal

    rep = world.rep()
    card, _ = world.card(rep)
    rule = next(r for r in rules.rules_for(world.corp.id) if r.default_of == AlertKind.card_opened)
    principal = Principal(user_id=0, corp_id=world.corp.id, role="admin", staff_id=None)
    quiet.update_preference(principal, rep.id, {"muted_rule_ids": [rule.id]})
    world.events(world.visitor(), card, ("card_view", 0))
    world.settle()
    (delivery,) = world.deliveries()
    assert delivery.state == DeliveryState.suppressed and delivery.reason == "muted"
    assert world.messages(rep.userid) == []


def test_read_going_on_is_alerted_when_its_check_falls_due(world, db, app):
    """Is a read still going on looked at again later, and alerted once it passed the threshold?"""
    from app.services.alerts import inbox, outbox

    rule = next(r for r in rules.rules_for(world.corp.id) if r.default_of == AlertKind.content_read)
    rule.params = {"min_seconds": 5}
    db.session.commit()
    rep = world.rep()
    card, (content,) = world.card(rep)
    visitor = world.visitor("Sun")
    world.events(visitor, card, ("content_view", 10, content.id), ("heartbeat", 9, content.id))
    world.run_jobs()
    redis = app.extensions["redis"]
    (check,) = redis.zrange(inbox.READ_CHECKS, 0, -1)  # 1 s read so far: looked at again later
    world.events(visitor, card, ("heartbeat", 0, content.id))  # still reading, now 10 s
    world.run_jobs()
    assert world.alerts() == []
    redis.zadd(inbox.READ_CHECKS, {check: 0})  # the check falls due (no need to wait for it)
    outbox.recover()
    world.settle()
    (alert,) = world.alerts()
    assert alert.kind == AlertKind.content_read and alert.data["dwell_seconds"] >= 9
    assert [m["status"] for m in world.messages(rep.userid)] == ["delivered"]
    assert redis.zcard(inbox.READ_CHECKS) == 0

"""The intent score: exponential decay, levels and their history, the periodic settle, late
events, and OneID merges of two scored customers."""

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from app.models import IntentLevel, IntentLevelChange, IntentScore
from app.services import merge, signals
from jobs.queues import enqueue
from tests.cards.conftest import ev


@pytest.fixture
def scored(make_visitor, card, db, drain):
    """A logged-in visitor whose card_view (1) + share (5) + click_phone (8) + add_wecom (10) = 24
    makes them warm towards the card's rep: returns (their score row, the visitor)."""

    def score(at=-60):
        visitor = make_visitor()
        visitor.login()
        visitor.send(
            ev("card_view", card.id, at=at),
            ev("share", card.id, at=at + 1),
            ev("click_phone", card.id, at=at + 2),
            ev("add_wecom", card.id, at=at + 3),
        )
        drain()
        return db.session.scalars(select(IntentScore).order_by(IntentScore.id.desc())).first(), visitor

    return score


def _age(db, row_id, hours):
    """Pretend the score (and its history) happened ``hours`` earlier, as time passing would."""
    row = db.session.get(IntentScore, row_id)
    db.session.execute(
        update(IntentScore)
        .where(IntentScore.id == row_id)
        .values(as_of=row.as_of - timedelta(hours=hours), level_since=row.level_since - timedelta(hours=hours))
    )
    for change in db.session.scalars(select(IntentLevelChange).where(IntentLevelChange.customer_id == row.customer_id)):
        change.changed_at -= timedelta(hours=hours)
    db.session.commit()
    db.session.expire_all()


def test_score_halves_every_half_life(scored, db, client, admin_headers):
    """Read one half-life later, is the score half, and the level that of the decayed score?"""
    row, _ = scored()
    assert row.score == pytest.approx(24, abs=0.01) and row.level == IntentLevel.warm
    _age(db, row.id, 72)
    shown = client.get("/api/v1/cards/intents", headers=admin_headers).json["items"][0]
    assert shown["score"] == pytest.approx(12, abs=0.05) and shown["level"] == "warm"
    _age(db, row.id, 72)
    shown = client.get("/api/v1/cards/intents", headers=admin_headers).json["items"][0]
    assert shown["score"] == pytest.approx(6, abs=0.05) and shown["level"] == "cold" and shown["level_since"] is None


def test_settle_records_the_fall_when_it_happened(scored, db, run_jobs):
    """Does the periodic settle record a warm→cold fall at the moment the decaying score crossed the threshold?"""
    row, _ = scored()
    as_of = row.as_of
    _age(db, row.id, 200)
    heard = []
    signals.on_level_change(heard.append)
    try:
        enqueue(signals.settle_job, queue="low")
        run_jobs()
    finally:
        signals.LEVEL_CHANGE_HOOKS.remove(heard.append)
    fall = db.session.scalar(select(IntentLevelChange).where(IntentLevelChange.cause == "decay"))
    # 24 → 10 takes log2(2.4) half-lives of 72 h.
    crossing = as_of - timedelta(hours=200) + timedelta(hours=72 * 1.2630344)
    assert (fall.from_level, fall.to_level) == (IntentLevel.warm, IntentLevel.cold)
    assert abs((fall.changed_at - crossing).total_seconds()) < 60 and fall.score == pytest.approx(10, abs=0.01)
    assert [(c.to_level, c.is_rise) for c in heard] == [(IntentLevel.cold, False)]
    assert db.session.get(IntentScore, row.id).level == IntentLevel.cold


def test_a_return_after_a_silence_records_fall_then_rise(scored, card, db, drain):
    """When a customer who cooled off comes back, is the history rise, fall (at its time), rise?"""
    row, visitor = scored()
    _age(db, row.id, 400)
    visitor.send(ev("click_phone", card.id, at=-2), ev("add_wecom", card.id, at=-1))
    drain()
    history = db.session.scalars(select(IntentLevelChange).order_by(IntentLevelChange.changed_at)).all()
    assert [(h.from_level, h.to_level, h.cause) for h in history] == [
        (IntentLevel.cold, IntentLevel.warm, "click_phone"),  # 1 + 5 + 8 = 14 ≥ 10
        (IntentLevel.warm, IntentLevel.cold, "decay"),
        (IntentLevel.cold, IntentLevel.warm, "add_wecom"),
    ]
    assert history[1].changed_at < history[2].changed_at - timedelta(hours=100)


def test_a_late_event_adds_its_decayed_weight(scored, card, db, drain):
    """Does an event that happened before the score's as_of add its weight decayed to as_of?"""
    row, visitor = scored()
    visitor.send(ev("add_wecom", card.id, at=-12 * 3600, id="late"))
    drain()
    db.session.expire_all()
    late = db.session.get(IntentScore, row.id)
    assert late.score == pytest.approx(24 + 10 * 0.5 ** (12 / 72), abs=0.01)
    assert late.as_of == row.as_of and late.events == 5


def test_merging_two_scored_customers_sums_their_intent(scored, db, corp):
    """When OneID merges two customers scored towards one rep, does the survivor's score hold
    both (and rise a level), and does an unmerge put it back?"""
    first, _ = scored(at=-60)
    second, _ = scored(at=-30)
    records = merge.merge(corp.id, [first.customer_id, second.customer_id], actor="test", reason="same person")
    db.session.commit()
    db.session.expire_all()
    survivor = db.session.get(IntentScore, first.id)
    assert survivor.score == pytest.approx(48, abs=0.01) and survivor.level == IntentLevel.hot
    assert survivor.events == 8
    rise = db.session.scalar(select(IntentLevelChange).where(IntentLevelChange.cause == "merge"))
    assert (rise.from_level, rise.to_level) == (IntentLevel.warm, IntentLevel.hot)
    merge.unmerge(corp.id, records[0].id, actor="test", reason="not the same person")
    db.session.commit()
    db.session.expire_all()
    restored = db.session.get(IntentScore, first.id)
    assert restored.score == pytest.approx(24, abs=0.01) and restored.level == IntentLevel.warm

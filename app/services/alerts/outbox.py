"""Raising alerts and delivering them: the outbox.

raise_alert (in the caller's transaction) → an Alert row, unique on its dedupe key (rule,
subject = customer and rep, time window), and one AlertDelivery per recipient (pending, or
waiting for the end of quiet hours, or suppressed when the rep muted the rule); once the
transaction commits, a sender is woken.

One sender runs at a time (an RQ job on the "high" queue that lingers a moment for new work);
it evaluates what waits in the inbox, then claims due deliveries in batches and, per recipient:
1. takes a slot from the pacing limiter (digest.acquire); without one the rows wait for it;
2. groups the recipient's rows into one message — the lead row freezes the payload — and
   commits them as "sending" *before* calling WeCom;
3. calls message/send (several at once, while it claims the next) with WeCom's duplicate
   check on, and commits the outcome: sent (with the msgid), invalid_user, failed, or — for
   transient errors — pending again after a backoff, with the same frozen payload.
A worker killed between 2 and 3 leaves the batch "sending"; once its lease has run out,
:func:`recover` makes it pending again and a sender re-sends the very same payload, which
WeCom's duplicate check drops if the first send got through (it answers the first msgid). A
batch first tried longer ago than the duplicate check reaches is never re-sent: it fails
instead, because a second copy could no longer be caught.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from concurrent import futures
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import requests
from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import bindparam, event, func, insert, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from wechatpy.exceptions import WeChatClientException

from app.extensions import db, get_redis
from app.models import (
    Alert,
    AlertAudience,
    AlertDelivery,
    AlertRule,
    DeliveryState,
    Staff,
    StaffStatus,
    utcnow,
)
from app.services.alerts import digest, inbox, quiet
from app.services.alerts import settings as alert_settings
from jobs.queues import enqueue, queues
from wecom.client import agent_client
from wecom.errors import is_transient

log = logging.getLogger(__name__)

# One sender at a time (it sends SEND_CONCURRENCY messages at once): the flag says it runs,
# the wake list tells a running sender there is new work.
SENDER_FLAG = "alerts:sender"
WAKE_LIST = "alerts:sender:wake"
SENDER_FLAG_TTL = 30
# A sender gives its worker back after this long, so other high-queue jobs get a turn.
SLICE_SECONDS = 2.0
# An idle sender waits this long for new work before it stops: a burst of alerts then costs
# one job, not one job per alert.
LINGER_SECONDS = 0.25
# A due delivery still pending after this long has no live sender (or lost its wake-up).
STALE_AFTER = timedelta(seconds=15)
CLAIM_LIMIT = 100
# message/send calls in flight at once per sender (WeCom's concurrency limit is far above).
SEND_CONCURRENCY = 8
# Batches a sender keeps in flight before it stops claiming more, and how often it looks
# for both new work and answers while some are out.
MAX_IN_FLIGHT = 4 * SEND_CONCURRENCY
IN_FLIGHT_POLL_SECONDS = 0.02
# A batch "sending" for longer than this belongs to a dead worker (the WeCom client's own
# timeout is 10 s); a live sender stops starting sends well before it runs out.
LEASE_SECONDS = 30
BACKOFF_SECONDS = (1, 2, 5, 15, 60, 300, 900)
MAX_ATTEMPTS = 8
# WeCom drops a message whose content equals one sent to the member within this interval
# (its maximum: 4 hours). Every batch's content is unique, so only true re-sends are dropped.
DUPLICATE_CHECK_SECONDS = 4 * 3600
RESEND_HORIZON = timedelta(seconds=DUPLICATE_CHECK_SECONDS - 600)
NO_VALID_RECIPIENT = 81013
_WAKE_KEY = "alerts_wake"


# -- raising ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Recipient:
    userid: str
    staff_id: int | None
    role: str  # "rep" | "admin"
    resigned: bool = False


@dataclass
class Candidate:
    """An alert a rule wants to raise. ``subject_key`` names who it is about (customer and rep,
    or a notice's key); ``who``/``what`` are the person and phrase digests are made of."""

    rule: AlertRule
    subject_key: str
    occurred_at: datetime
    title: str
    text: str
    who: str
    what: str
    customer_id: int | None = None
    staff_id: int | None = None
    rep_userid: str | None = None
    link: str | None = None
    data: dict = field(default_factory=dict)

    @property
    def subject(self) -> str:
        return self.subject_key[:128]

    @property
    def dedupe_key(self) -> str:
        window = self.rule.window_seconds
        stamp = self.occurred_at.timestamp()
        bucket = int(stamp) // window if window else int(stamp * 1000)
        return f"{self.rule.id}:{self.subject}:{bucket}"[:192]


def raise_alert(corp_id: int, rule: AlertRule, **fields) -> int | None:
    """Record one alert and queue its deliveries (see :func:`raise_many`); its id, or None when
    an alert of this rule about this subject exists within the rule's window."""
    return raise_many(corp_id, [Candidate(rule, **fields)])[0]


def raise_many(corp_id: int, candidates: list[Candidate]) -> list[int | None]:
    """Record alerts and queue their deliveries, inside the caller's transaction, in a handful
    of statements whatever their number. Per candidate: the new alert's id, or None when an
    alert of the same rule and subject lies within the rule's window (a duplicated or repeated
    event, here or earlier in the batch). The unique dedupe key (rule, subject, window bucket)
    settles races between concurrent workers. A sender is woken once the caller commits."""
    if not candidates:
        return []
    seen = _recent(corp_id, candidates)
    chosen: dict[str, tuple[int, Candidate]] = {}
    for index, c in enumerate(candidates):
        times = seen.setdefault((c.rule.id, c.subject), [])
        span = timedelta(seconds=c.rule.window_seconds)
        if c.rule.window_seconds and any(abs(t - c.occurred_at) < span for t in times):
            continue
        if c.dedupe_key in chosen:
            continue
        times.append(c.occurred_at)
        chosen[c.dedupe_key] = (index, c)
    results: list[int | None] = [None] * len(candidates)
    if not chosen:
        return results
    now = utcnow()
    dialect = postgresql if db.engine.dialect.name == "postgresql" else sqlite
    values = [
        {
            "corp_id": corp_id,
            "rule_id": c.rule.id,
            "kind": c.rule.kind,
            "customer_id": c.customer_id,
            "staff_id": c.staff_id,
            "subject_key": c.subject,
            "dedupe_key": key,
            "title": digest.clip(c.title, 128),
            "text": c.text,
            "link": c.link,
            "data": {**c.data, "who": c.who, "what": c.what},
            "occurred_at": c.occurred_at,
            "created_at": now,
            "updated_at": now,
        }
        for key, (_, c) in chosen.items()
    ]
    # executemany with RETURNING: one cached statement, sent as batched multi-row INSERTs.
    inserted = db.session.execute(
        dialect.insert(Alert)
        .on_conflict_do_nothing(index_elements=["corp_id", "dedupe_key"])
        .returning(Alert.id, Alert.dedupe_key),
        values,
    ).all()
    new = {key: alert_id for alert_id, key in inserted}
    raised = [(chosen[key][1], alert_id) for key, alert_id in new.items()]
    for key, alert_id in new.items():
        results[chosen[key][0]] = alert_id
    rows = _deliveries(corp_id, raised, now)
    if rows:
        db.session.execute(insert(AlertDelivery), rows)
    if any(r["state"] == DeliveryState.pending and r["not_before"] is None for r in rows):
        wake_after_commit()
    return results


def _recent(corp_id: int, candidates: list[Candidate]) -> dict[tuple[int, str], list[datetime]]:
    """{(rule id, subject): [occurred_at]} of stored alerts near the candidates' windows."""
    windowed = [c for c in candidates if c.rule.window_seconds]
    if not windowed:
        return {}
    earliest = min(c.occurred_at - timedelta(seconds=c.rule.window_seconds) for c in windowed)
    latest = max(c.occurred_at + timedelta(seconds=c.rule.window_seconds) for c in windowed)
    rows = db.session.execute(
        select(Alert.rule_id, Alert.subject_key, Alert.occurred_at).where(
            Alert.corp_id == corp_id,
            tuple_(Alert.rule_id, Alert.subject_key).in_({(c.rule.id, c.subject) for c in windowed}),
            Alert.occurred_at > earliest,
            Alert.occurred_at < latest,
        )
    ).all()
    found: dict[tuple[int, str], list[datetime]] = defaultdict(list)
    for rule_id, subject, at in rows:
        found[(rule_id, subject)].append(at)
    return found


def _deliveries(corp_id: int, raised: list[tuple[Candidate, int]], now: datetime) -> list[dict]:
    """The delivery rows of new alerts: pending, waiting for the end of quiet hours, or
    suppressed (the rep muted the rule, or left)."""
    if not raised:
        return []
    admin_userids = (
        alert_settings.for_corp(corp_id).admin_userids
        if any(c.rule.audience != AlertAudience.rep for c, _ in raised)
        else []
    )
    staff_ids = {c.staff_id for c, _ in raised if c.staff_id is not None}
    userids = set(admin_userids) | {c.rep_userid for c, _ in raised if c.rep_userid}
    staff = (
        db.session.execute(
            select(Staff.id, Staff.userid, Staff.status).where(
                Staff.corp_id == corp_id, or_(Staff.id.in_(staff_ids), Staff.userid.in_(userids))
            )
        ).all()
        if staff_ids or userids
        else []
    )
    by_id = {s.id: s for s in staff}
    by_userid = {s.userid: s for s in staff}
    targets = {alert_id: _recipients(c, admin_userids, by_id, by_userid) for c, alert_id in raised}
    prefs = quiet.for_staff(corp_id, {t.staff_id for ts in targets.values() for t in ts})
    rows = []
    for c, alert_id in raised:
        for target in targets[alert_id]:
            row = {
                "corp_id": corp_id,
                "alert_id": alert_id,
                "staff_id": target.staff_id,
                "userid": target.userid,
                "role": target.role,
                "state": DeliveryState.pending,
                "not_before": None,
                "reason": None,
                "attempts": 0,
                "created_at": now,
                "updated_at": now,
            }
            pref = prefs.get(target.staff_id)
            if target.resigned:
                row.update(state=DeliveryState.suppressed, reason="resigned")
            elif pref is not None and c.rule.id in pref.muted_rule_ids:
                row.update(state=DeliveryState.suppressed, reason="muted")
            elif pref is not None and (until := pref.quiet_until(now)) is not None:
                row.update(not_before=until, reason=quiet.QUIET)
            rows.append(row)
    return rows


def _recipients(c: Candidate, admin_userids: list[str], by_id: dict, by_userid: dict) -> list[Recipient]:
    """Who the rule tells: the rep (by staff id, or by WeCom userid when the rep has no staff
    row yet) and/or the corp's admins, each once."""
    out: dict[str, Recipient] = {}
    if c.rule.audience != AlertAudience.admins:
        rep = by_id.get(c.staff_id) if c.staff_id is not None else by_userid.get(c.rep_userid or "")
        if rep is not None:
            out[rep.userid] = Recipient(rep.userid, rep.id, "rep", rep.status == StaffStatus.resigned)
        elif c.rep_userid:
            out[c.rep_userid] = Recipient(c.rep_userid, None, "rep")
    if c.rule.audience != AlertAudience.rep:
        for userid in admin_userids:
            if userid not in out:
                row = by_userid.get(userid)
                resigned = row is not None and row.status == StaffStatus.resigned
                out[userid] = Recipient(userid, row.id if row else None, "admin", resigned)
    return list(out.values())


# -- waking senders ---------------------------------------------------------------------------
def wake_after_commit() -> None:
    """Wake a sender once the current transaction commits (never if it rolls back)."""
    db.session().info[_WAKE_KEY] = True


@event.listens_for(Session, "after_commit")
def _wake_committed(session: Session) -> None:
    if session.info.pop(_WAKE_KEY, False):
        try:
            wake()
        except RedisError:
            log.exception("could not wake an alert sender; the periodic recovery will")


@event.listens_for(Session, "after_rollback")
def _forget_wake(session: Session) -> None:
    session.info.pop(_WAKE_KEY, None)


def wake() -> bool:
    """Tell the sender there is work, starting it unless it runs (a running sender hears the
    wake list, or looks once more after it gave its flag up). True if a sender was started."""
    redis = get_redis()
    pipe = redis.pipeline(transaction=False)
    pipe.rpush(WAKE_LIST, 1)
    pipe.expire(WAKE_LIST, SENDER_FLAG_TTL)
    pipe.set(SENDER_FLAG, 1, nx=True, ex=SENDER_FLAG_TTL)
    started = pipe.execute()[-1]
    if started:
        try:
            enqueue(send_job, queue="high")
        except RedisError:
            redis.delete(SENDER_FLAG)
            raise
    return bool(started)


def wake_job() -> bool:
    """RQ entry point: a wait (rate limit, retry backoff) is over."""
    return wake()


def _wake_at(corp_id: int, userid: str, at: datetime) -> None:
    """Wake a sender when ``userid``'s wait ends (once per recipient and second)."""
    delay = max((at - utcnow()).total_seconds(), 0.0)
    try:
        if get_redis().set(f"alerts:wake:{corp_id}:{userid}:{int(at.timestamp())}", 1, nx=True, ex=int(delay) + 60):
            queues()["high"].enqueue_in(timedelta(seconds=delay), wake_job)
    except RedisError:
        log.exception("could not schedule an alert wake-up; the periodic recovery will")


# -- sending ----------------------------------------------------------------------------------
def send_job(kick: bool = False) -> int:
    """RQ entry point: evaluate the inbox and deliver due alerts for one slice; returns how many
    messages went out. ``kick``: run without the sender flag (recovery, when the flag may
    belong to the dead)."""
    return drain(holding=not kick)


def drain(holding: bool = True) -> int:
    """Evaluate waiting card activity (inbox), claim and send due deliveries, until the slice
    is over or nothing came for a moment.
    Sends are in flight on the pool while the next claims are made, so a new alert never
    waits for the previous batch's answers. ``holding``: this sender holds the flag (it
    lingers for new work, and hands the flag on)."""
    redis = get_redis()
    deadline = time.monotonic() + SLICE_SECONDS
    idle_until = time.monotonic() + LINGER_SECONDS
    sender = _Sender()
    look = True  # evaluate the inbox and claim on this pass: on the first, then when woken
    try:
        while True:
            if holding:
                pipe = redis.pipeline(transaction=False)
                pipe.expire(SENDER_FLAG, SENDER_FLAG_TTL)
                pipe.llen(WAKE_LIST)
                pipe.delete(WAKE_LIST)  # every wake-up so far is answered by this pass
                look = look or pipe.execute()[1] > 0
            else:
                look = True  # a kicked sender hears no wake-ups: it looks every pass
            sender.settle(wait=0)
            evaluated, batches = 0, []
            if look and len(sender.in_flight) < MAX_IN_FLIGHT:
                evaluated = inbox.evaluate_pending()
                batches, more = _claim()
                look = more  # a full claim leaves more behind; anything else wakes us
            if batches or evaluated:
                sender.submit(batches)
                idle_until = time.monotonic() + LINGER_SECONDS
            elif sender.in_flight:
                sender.settle(wait=IN_FLIGHT_POLL_SECONDS)
                continue
            elif not holding:
                break
            else:
                wait = min(idle_until, deadline) - time.monotonic()
                if wait > 0 and redis.blpop([WAKE_LIST], timeout=wait):
                    look = True
                    continue
                # Give the flag up, then look once more: work committed after our last look
                # found the flag taken and started no sender of its own.
                redis.delete(SENDER_FLAG)
                holding = False
                evaluated = inbox.evaluate_pending()
                batches, _ = _claim()
                if not (batches or evaluated):
                    break
                sender.submit(batches)
                holding = bool(redis.set(SENDER_FLAG, 1, nx=True, ex=SENDER_FLAG_TTL))
                if not holding:
                    break  # a new sender runs now
            if time.monotonic() > deadline:
                sender.finish()
                enqueue(send_job, not holding, queue="high")
                holding = False  # the flag, if held, goes to the next slice
                return sender.sent
        sender.finish()
        return sender.sent
    except Exception:
        # Batches in flight stay "sending": recovery re-sends them once their lease is over.
        db.session.rollback()
        if holding:
            redis.delete(SENDER_FLAG)  # let the next wake-up start a sender at once
        raise


@dataclass
class Batch:
    """One message to one recipient: its lead delivery (whose rows it carries) and payload."""

    corp_id: int
    userid: str
    lead_id: int
    payload: dict
    attempts: int


def _claim() -> tuple[list[Batch], bool]:
    """Take due deliveries; per recipient, pace, group and freeze them as batches; commit
    them as "sending" (a few statements per claim, whatever its size). Concurrent senders
    skip each other's rows. Returns the batches to send and whether the claim was full."""
    now = utcnow()
    due = (
        select(AlertDelivery.id)
        .where(
            AlertDelivery.state == DeliveryState.pending,
            or_(AlertDelivery.not_before.is_(None), AlertDelivery.not_before <= now),
        )
        .order_by(AlertDelivery.id)
        .limit(CLAIM_LIMIT)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    rows = db.session.execute(
        update(AlertDelivery)
        .where(AlertDelivery.id.in_(due), AlertDelivery.state == DeliveryState.pending)
        .values(state=DeliveryState.sending, claimed_at=now, updated_at=now)
        .returning(
            AlertDelivery.id,
            AlertDelivery.corp_id,
            AlertDelivery.userid,
            AlertDelivery.alert_id,
            AlertDelivery.batch_id,
            AlertDelivery.payload,
            AlertDelivery.reason,
            AlertDelivery.attempts,
            AlertDelivery.first_attempt_at,
        )
        .execution_options(synchronize_session=False)
    ).all()
    if not rows:
        db.session.commit()
        return [], False
    settings_of: dict[int, alert_settings.AlertSettings] = {}

    def settings(corp_id: int) -> alert_settings.AlertSettings:
        if corp_id not in settings_of:
            settings_of[corp_id] = alert_settings.for_corp(corp_id)
        return settings_of[corp_id]

    frozen = [r for r in rows if r.batch_id == r.id and r.payload]
    fresh: dict[tuple[int, str], list] = defaultdict(list)
    for r in rows:
        if not (r.batch_id == r.id and r.payload):
            fresh[(r.corp_id, r.userid)].append(r)
    items = _items({r.alert_id for group in fresh.values() for r in group})
    batches: list[Batch] = []
    changes: list[dict] = []  # bulk UPDATE by primary key
    waits: list[tuple[int, str, datetime]] = []
    expired: list[int] = []

    def paced(corp_id: int, userid: str, group: list) -> bool:
        wait = digest.acquire(corp_id, userid, settings(corp_id))
        if not wait:
            return False
        until = now + timedelta(seconds=wait)
        changes.extend(
            {
                "id": r.id,
                "state": DeliveryState.pending,
                "not_before": until,
                "claimed_at": None,
                "reason": r.reason or "rate_limit",
                "updated_at": now,
            }
            for r in group
        )
        waits.append((corp_id, userid, until))
        return True

    for r in frozen:
        if r.first_attempt_at is not None and now - r.first_attempt_at > RESEND_HORIZON:
            expired.append(r.id)
        elif not paced(r.corp_id, r.userid, [r]):
            changes.append({"id": r.id, "attempts": r.attempts + 1, "updated_at": now})
            batches.append(Batch(r.corp_id, r.userid, r.id, r.payload, r.attempts + 1))
    for (corp_id, userid), group in fresh.items():
        if paced(corp_id, userid, group):
            continue
        group.sort(key=lambda r: r.id)
        lead = group[0].id
        payload = digest.render(
            [items[r.alert_id] for r in group],
            lead,
            settings(corp_id),
            quiet=any(r.reason == quiet.QUIET for r in group),
        )
        changes.append(
            {
                "id": lead,
                "batch_id": lead,
                "payload": payload,
                "attempts": 1,
                "first_attempt_at": now,
                "updated_at": now,
            }
        )
        changes.extend({"id": r.id, "batch_id": lead, "updated_at": now} for r in group[1:])
        batches.append(Batch(corp_id, userid, lead, payload, 1))
    _bulk(changes)
    for lead_id in expired:
        _finish(
            [
                {
                    "lead": lead_id,
                    "state": DeliveryState.failed,
                    "msgid": None,
                    "errcode": None,
                    "error": "not re-sent: WeCom's duplicate check would no longer catch a copy of the first attempt",
                }
            ],
        )
    db.session.commit()
    for corp_id, userid, until in waits:
        _wake_at(corp_id, userid, until)
    return batches, len(rows) >= CLAIM_LIMIT


def _bulk(changes: list[dict]) -> None:
    """UPDATE rows by primary key, grouped by the columns they set (one executemany each)."""
    by_columns: dict[tuple, list[dict]] = defaultdict(list)
    for change in changes:
        by_columns[tuple(sorted(change))].append(change)
    for group in by_columns.values():
        db.session.execute(update(AlertDelivery), group, execution_options={"synchronize_session": False})


def _items(alert_ids: set[int]) -> dict[int, digest.Item]:
    if not alert_ids:
        return {}
    rows = db.session.execute(
        select(Alert.id, Alert.kind, Alert.customer_id, Alert.title, Alert.text, Alert.link, Alert.data).where(
            Alert.id.in_(alert_ids)
        )
    ).all()
    return {
        r.id: digest.Item(
            r.kind,
            r.customer_id,
            r.title,
            r.text,
            r.link,
            (r.data or {}).get("who") or r.title,
            (r.data or {}).get("what") or r.title,
        )
        for r in rows
    }


_FINISH = (
    update(AlertDelivery.__table__)
    .where(or_(AlertDelivery.id == bindparam("lead"), AlertDelivery.batch_id == bindparam("lead")))
    .values(
        state=bindparam("state"),
        msgid=bindparam("msgid"),
        errcode=bindparam("errcode"),
        last_error=bindparam("error"),
        sent_at=bindparam("sent_at"),
        updated_at=bindparam("now"),
    )
)


def _finish(outcomes: list[dict]) -> None:
    """Settle whole batches (each lead and every row it carries): one executemany."""
    now = utcnow()
    db.session.connection().execute(
        _FINISH,
        [{**o, "now": now, "sent_at": now if o["state"] == DeliveryState.sent else None} for o in outcomes],
    )


def _agent_id():
    agent_id = str(current_app.config["WECOM_AGENT_ID"])
    return int(agent_id) if agent_id.isdigit() else agent_id


def _pool() -> ThreadPoolExecutor:
    """The app's pool of sending threads (a worker runs one job at a time, so one suffices)."""
    pool = current_app.extensions.get("alerts_send_pool")
    if pool is None:
        pool = current_app.extensions["alerts_send_pool"] = ThreadPoolExecutor(
            SEND_CONCURRENCY, thread_name_prefix="alert-send"
        )
    return pool


class _Sender:
    """Batches on their way: submitted to the pool as they are claimed, recorded in bulk as
    their answers come back."""

    def __init__(self) -> None:
        self.client, self.agent_id, self.pool = agent_client(), _agent_id(), _pool()
        self.in_flight: dict[Future, Batch] = {}
        self.sent = 0

    def submit(self, batches: list[Batch]) -> None:
        claimed = time.monotonic()
        for batch in batches:
            self.in_flight[self.pool.submit(self._attempt, batch, claimed)] = batch

    def _attempt(self, batch: Batch, claimed: float) -> Outcome | None:
        # A send not started before half the lease has passed is not started at all (back to
        # pending, payload kept): a live sender's batch is never taken for a dead one's.
        if time.monotonic() - claimed > LEASE_SECONDS / 2:
            return None
        try:
            return _call(self.client, self.agent_id, batch)
        except Exception as exc:  # a bug must settle the batch, not leave it to be re-sent forever
            log.exception("alert batch %s: unexpected error while sending", batch.lead_id)
            return Outcome(DeliveryState.failed, error=repr(exc)[:500])

    def settle(self, wait: float | None) -> None:
        """Record the answers that are in, waiting up to ``wait`` seconds for the first."""
        if not self.in_flight:
            return
        done, _ = futures.wait(self.in_flight, timeout=wait, return_when=futures.FIRST_COMPLETED)
        if done:
            self.sent += _record([(self.in_flight.pop(f), f.result()) for f in done])

    def finish(self) -> None:
        while self.in_flight:
            self.settle(wait=None)


def _record(results: list[tuple[Batch, Outcome | None]]) -> int:
    """Store the outcomes of sent batches (a few statements, one commit); returns how many
    messages went out."""
    now = utcnow()
    finals, changes, retries = [], [], []
    for batch, outcome in results:
        if outcome is None:
            changes.append({"id": batch.lead_id, "state": DeliveryState.pending, "claimed_at": None, "updated_at": now})
        elif outcome.retry_in is not None:
            until = now + timedelta(seconds=outcome.retry_in)
            changes.append(
                {
                    "id": batch.lead_id,
                    "state": DeliveryState.pending,
                    "not_before": until,
                    "reason": "retry",
                    "claimed_at": None,
                    "errcode": outcome.errcode,
                    "last_error": outcome.error,
                    "updated_at": now,
                }
            )
            retries.append((batch.corp_id, batch.userid, until))
        else:
            finals.append(
                {
                    "lead": batch.lead_id,
                    "state": outcome.state,
                    "msgid": outcome.msgid,
                    "errcode": outcome.errcode,
                    "error": outcome.error,
                }
            )
    _bulk(changes)
    if finals:
        _finish(finals)
    db.session.commit()
    for corp_id, userid, until in retries:
        _wake_at(corp_id, userid, until)
    if any(outcome is None for _, outcome in results):
        wake()
    return sum(1 for f in finals if f["state"] == DeliveryState.sent)


@dataclass
class Outcome:
    state: DeliveryState | None = None
    msgid: str | None = None
    errcode: int | None = None
    error: str | None = None
    retry_in: float | None = None


def _call(client, agent_id, batch: Batch) -> Outcome:
    """One message/send, with WeCom's duplicate check, turned into an outcome. Runs in a
    sending thread: no app context, no database."""
    msg = {**batch.payload, "enable_duplicate_check": 1, "duplicate_check_interval": DUPLICATE_CHECK_SECONDS}
    try:
        answer = client.message.send(agent_id, batch.userid, msg=msg)
    except (WeChatClientException, requests.RequestException) as exc:
        errcode = getattr(exc, "errcode", None)
        error = str(exc)[:500]
        if errcode == NO_VALID_RECIPIENT:
            return Outcome(DeliveryState.invalid_user, errcode=errcode, error=error)
        if is_transient(exc) and batch.attempts < MAX_ATTEMPTS:
            delay = BACKOFF_SECONDS[min(batch.attempts - 1, len(BACKOFF_SECONDS) - 1)]
            log.warning("alert batch %s: transient error, retrying in %ss: %s", batch.lead_id, delay, error)
            return Outcome(errcode=errcode, error=error, retry_in=delay)
        log.error("alert batch %s failed: %s", batch.lead_id, error)
        return Outcome(DeliveryState.failed, errcode=errcode, error=error)
    invalid = [u for u in str(answer.get("invaliduser") or "").split("|") if u]
    if batch.userid in invalid:
        return Outcome(DeliveryState.invalid_user, msgid=answer.get("msgid"), error="WeCom: invalid user")
    return Outcome(DeliveryState.sent, msgid=answer.get("msgid"))


# -- recovery ---------------------------------------------------------------------------------
def recover(now: datetime | None = None) -> int:
    """Make batches whose sender died (lease over) pending again and send them, and wake the
    sender for due deliveries nobody works on (a lost wake-up). A sender is kicked without the
    flag when rows were revived or have waited too long: the flag may be the dead one's.
    Periodic; returns how many deliveries it revived."""
    now = now or utcnow()
    revived = db.session.execute(
        update(AlertDelivery)
        .where(
            AlertDelivery.state == DeliveryState.sending,
            AlertDelivery.claimed_at < now - timedelta(seconds=LEASE_SECONDS),
            or_(AlertDelivery.batch_id.is_(None), AlertDelivery.batch_id == AlertDelivery.id),
        )
        .values(state=DeliveryState.pending, not_before=None, claimed_at=None, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    due = select(AlertDelivery.id).where(
        AlertDelivery.state == DeliveryState.pending,
        or_(AlertDelivery.not_before.is_(None), AlertDelivery.not_before <= now),
    )
    stale = db.session.scalar(
        due.where(func.coalesce(AlertDelivery.not_before, AlertDelivery.updated_at) < now - STALE_AFTER).limit(1)
    )
    queued_since = inbox.oldest_ms()
    stale_inbox = queued_since is not None and queued_since / 1000 < now.timestamp() - STALE_AFTER.total_seconds()
    if revived or stale is not None or stale_inbox:
        log.warning(
            "alert recovery: %s deliveries revived; work waiting too long: %s",
            revived,
            stale is not None or stale_inbox,
        )
        enqueue(send_job, True, queue="high")
    elif queued_since is not None or db.session.scalar(due.limit(1)) is not None:
        wake()
    return revived


def recover_job() -> int:
    """RQ entry point of :func:`recover` (jobs/schedules.py)."""
    return recover()

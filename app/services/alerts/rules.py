"""Alert rules: the defaults every corp gets, their administration, and their evaluation.

Evaluation always runs in a worker, never in an HTTP request: card activity and intent rises
wait in the inbox (inbox.py) for the alert sender's job, lost customers are evaluated inside
the callback event's own transaction (event_handlers); content reads are looked at again when
their threshold may have passed (the inbox's read checks).
A rule fires through :func:`app.services.alerts.outbox.raise_alert`, whose dedupe key makes a
duplicated or repeated event raise nothing more within the rule's window.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from marshmallow import ValidationError
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from app.errors import ApiError, Conflict, NotFound
from app.extensions import db
from app.models import (
    AlertAudience,
    AlertKind,
    AlertRule,
    CardShare,
    CardVisit,
    ContentItem,
    Customer,
    FollowRelation,
    Identity,
    IdentityType,
    IntentLevel,
    IntentLevelChange,
    Staff,
    utcnow,
)
from app.schemas.alert import load_params
from app.services import audit
from app.services.alerts import inbox
from app.services.alerts.outbox import Candidate, raise_alert, raise_many
from app.services.auth import Principal
from app.services.contacts import from_timestamp

log = logging.getLogger(__name__)

CLICKS = ("click_phone", "copy_wechat", "save_contact", "add_wecom")
DEFAULTS: dict[AlertKind, dict] = {
    AlertKind.card_opened: {
        "name": "Customer opened my card",
        "audience": AlertAudience.rep,
        "window_seconds": 1800,
        "params": {"min_visits": 1},
    },
    AlertKind.content_read: {
        "name": "Customer read my content",
        "audience": AlertAudience.rep,
        "window_seconds": 1800,
        "params": {"min_seconds": 30},
    },
    AlertKind.shared: {
        "name": "Customer shared my card or content",
        "audience": AlertAudience.rep,
        "window_seconds": 600,
        "params": {},
    },
    AlertKind.share_viewed: {
        "name": "Someone came through a customer's share",
        "audience": AlertAudience.rep,
        "window_seconds": 1800,
        "params": {},
    },
    AlertKind.contact_click: {
        "name": "Customer wants to contact me",
        "audience": AlertAudience.rep,
        "window_seconds": 600,
        "params": {"actions": list(CLICKS)},
    },
    AlertKind.intent_hot: {
        "name": "Customer's intent is hot",
        "audience": AlertAudience.rep,
        "window_seconds": 86400,
        "params": {},
    },
    AlertKind.lost_customer: {
        "name": "Lost customer",
        "audience": AlertAudience.rep_and_admins,
        "window_seconds": 86400,
        "params": {},
    },
    AlertKind.welcome_failed: {
        "name": "Welcome message not delivered",
        "audience": AlertAudience.admins,
        "window_seconds": 86400,
        "params": {},
    },
    AlertKind.transfer_failed: {
        "name": "Transfer refused or taker at limit",
        "audience": AlertAudience.admins,
        "window_seconds": 86400,
        "params": {},
    },
}
# A content read is checked this long after its threshold (heartbeats come every few seconds).
READ_CHECK_GRACE_SECONDS = 5
# How many times a read still going on below a threshold is looked at again.
MAX_READ_CHECKS = 12
# A read whose visit saw no event for this long is over (the drainer's visit gap).
VISIT_GAP = timedelta(seconds=60)
_ACTION_PHRASES = {
    "click_phone": "tapped call on your card",
    "copy_wechat": "copied your WeChat id",
    "save_contact": "saved your contact",
    "add_wecom": "tapped add-on-WeCom on your card",
}


# -- the rules of a corp ---------------------------------------------------------------------
def rules_for(corp_id: int) -> list[AlertRule]:
    """Every rule of the corp; the shipped defaults are created the first time."""
    rules = list(db.session.scalars(select(AlertRule).where(AlertRule.corp_id == corp_id).order_by(AlertRule.id)))
    if {r.default_of for r in rules} >= set(AlertKind):
        return rules
    now = utcnow()
    dialect = postgresql if db.engine.dialect.name == "postgresql" else sqlite
    present = {r.default_of for r in rules}
    rows = [
        {
            "corp_id": corp_id,
            "kind": kind,
            "default_of": kind,
            "enabled": True,
            **spec,
            "created_at": now,
            "updated_at": now,
        }
        for kind, spec in DEFAULTS.items()
        if kind not in present
    ]
    # Any conflict (a concurrent seeding, an admin's rule already named like a default) keeps what exists.
    db.session.execute(dialect.insert(AlertRule).values(rows).on_conflict_do_nothing())
    return list(db.session.scalars(select(AlertRule).where(AlertRule.corp_id == corp_id).order_by(AlertRule.id)))


def enabled(corp_id: int, kinds: set[AlertKind] | None = None) -> dict[AlertKind, list[AlertRule]]:
    """The corp's enabled rules by kind."""
    out: dict[AlertKind, list[AlertRule]] = defaultdict(list)
    for rule in rules_for(corp_id):
        if rule.enabled and (kinds is None or rule.kind in kinds):
            out[rule.kind].append(rule)
    return out


# -- administration --------------------------------------------------------------------------
def _require_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise ApiError(403, "forbidden", "your role may not do this")


def list_rules(principal: Principal) -> list[AlertRule]:
    """The corp's rules (reps read them to choose what to mute)."""
    rules = rules_for(principal.corp_id)
    db.session.commit()  # the defaults, when this created them
    return rules


def get_rule(principal: Principal, rule_id: int) -> AlertRule:
    rule = db.session.get(AlertRule, rule_id)
    if rule is None or rule.corp_id != principal.corp_id:
        raise NotFound("alert rule")
    return rule


def _check_name(corp_id: int, name: str, rule_id: int | None = None) -> None:
    clash = db.session.scalar(
        select(AlertRule.id).where(
            AlertRule.corp_id == corp_id, AlertRule.name == name, AlertRule.id != (rule_id or -1)
        )
    )
    if clash is not None:
        raise Conflict(f"an alert rule named {name!r} exists", {"name": ["already taken"]})


def _params(kind: AlertKind, params: dict) -> dict:
    try:
        return load_params(kind, params)
    except ValidationError as exc:
        raise ValidationError({"params": exc.normalized_messages()}) from exc


def create_rule(principal: Principal, data: dict) -> AlertRule:
    """Add a rule (admins); unset fields take the defaults of its kind. Audited."""
    _require_admin(principal)
    rules_for(principal.corp_id)
    kind = AlertKind(data["kind"])
    spec = DEFAULTS[kind]
    _check_name(principal.corp_id, data["name"])
    rule = AlertRule(
        corp_id=principal.corp_id,
        kind=kind,
        name=data["name"],
        enabled=data.get("enabled", True),
        audience=data.get("audience") or spec["audience"],
        window_seconds=data.get("window_seconds", spec["window_seconds"]),
        params=_params(kind, data.get("params") or {}),
    )
    db.session.add(rule)
    try:
        db.session.flush()
    except IntegrityError as exc:  # a concurrent create took the name
        db.session.rollback()
        raise Conflict(f"an alert rule named {data['name']!r} exists", {"name": ["already taken"]}) from exc
    audit.record(
        principal.corp_id,
        principal.actor,
        "alerts.rule.create",
        "alert_rule",
        rule.id,
        data={"kind": str(kind), "name": rule.name},
    )
    db.session.commit()
    return rule


def update_rule(principal: Principal, rule_id: int, changes: dict) -> AlertRule:
    """Change a rule's name, switch, audience, window or params (admins). Audited."""
    _require_admin(principal)
    rule = get_rule(principal, rule_id)
    if "name" in changes:
        _check_name(principal.corp_id, changes["name"], rule.id)
        rule.name = changes["name"]
    if "params" in changes:
        rule.params = _params(rule.kind, {**(rule.params or {}), **changes["params"]})
    for key in ("enabled", "audience", "window_seconds"):
        if key in changes:
            setattr(rule, key, changes[key])
    audit.record(
        principal.corp_id,
        principal.actor,
        "alerts.rule.update",
        "alert_rule",
        rule.id,
        data={k: (str(v) if isinstance(v, AlertAudience) else v) for k, v in changes.items()},
    )
    db.session.commit()
    return rule


def delete_rule(principal: Principal, rule_id: int) -> None:
    """Delete a rule an admin added; a shipped default can only be disabled. Its alerts stay."""
    _require_admin(principal)
    rule = get_rule(principal, rule_id)
    if rule.default_of is not None:
        raise Conflict("a default alert rule cannot be deleted; disable it instead")
    audit.record(
        principal.corp_id,
        principal.actor,
        "alerts.rule.delete",
        "alert_rule",
        rule.id,
        data={"kind": str(rule.kind), "name": rule.name},
    )
    db.session.delete(rule)
    db.session.commit()


# -- naming people ---------------------------------------------------------------------------
def _customer_names(customer_ids) -> dict[int, str]:
    ids = {c for c in customer_ids if c is not None}
    if not ids:
        return {}
    rows = db.session.execute(select(Customer.id, Customer.name).where(Customer.id.in_(ids))).all()
    return {r.id: r.name or f"Customer #{r.id}" for r in rows}


def _staff_names(staff_ids) -> dict[int, tuple[str, str]]:
    """{staff id: (userid, display name)}."""
    ids = {s for s in staff_ids if s is not None}
    if not ids:
        return {}
    rows = db.session.execute(select(Staff.id, Staff.userid, Staff.name).where(Staff.id.in_(ids))).all()
    return {r.id: (r.userid, r.name or r.userid) for r in rows}


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def customer_link(customer_id: int | None) -> str | None:
    """The rep sidebar's page of a customer."""
    return f"/sidebar/customers/{customer_id}" if customer_id is not None else None


# -- card activity ---------------------------------------------------------------------------
CARD_KINDS = {
    AlertKind.card_opened,
    AlertKind.content_read,
    AlertKind.shared,
    AlertKind.share_viewed,
    AlertKind.contact_click,
}
# Activity types that can fire a rule (others, like a card "leave", never do).
RELEVANT_TYPES = {"card_view", "content_view", "leave", "share", *CLICKS}


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def evaluate_activities(items: list[list]) -> int:
    """Fire the card rules the activities match, in a handful of queries per batch; commits.
    Returns how many alerts were raised."""
    raised = 0
    by_corp: dict[int, list[list]] = defaultdict(list)
    for item in items:
        by_corp[int(item[0])].append(item)
    for corp_id, corp_items in by_corp.items():
        rules = enabled(corp_id, CARD_KINDS)
        if not rules:
            continue
        names = _customer_names(i[1] for i in corp_items)
        staff = _staff_names(i[2] for i in corp_items)
        titles = dict(
            db.session.execute(
                select(ContentItem.id, ContentItem.title).where(
                    ContentItem.id.in_({i[4] for i in corp_items if i[4] is not None})
                )
            ).all()
        )
        visits = _Visits(corp_id, [i for i in corp_items if i[5] in ("card_view", "content_view")])
        candidates: list[Candidate] = []
        for _, customer_id, staff_id, card_id, content_id, type_, occurred_ms in corp_items:
            ctx = _Ctx(
                corp_id,
                customer_id,
                staff_id,
                card_id,
                content_id,
                _at(occurred_ms),
                names.get(customer_id, f"Customer #{customer_id}"),
                staff.get(staff_id, ("", ""))[0],
                titles.get(content_id),
                candidates,
            )
            raised += _activity(ctx, type_, rules, visits)
        raised += sum(alert_id is not None for alert_id in raise_many(corp_id, candidates))
    db.session.commit()
    return raised


class _Ctx:
    """One activity, the names an alert about it needs, and where its candidates go."""

    def __init__(self, corp_id, customer_id, staff_id, card_id, content_id, at, who, rep_userid, content_title, sink):
        self.corp_id, self.customer_id, self.staff_id = corp_id, customer_id, staff_id
        self.card_id, self.content_id, self.at = card_id, content_id, at
        self.who, self.rep_userid, self.content_title = who, rep_userid, content_title
        self.sink: list[Candidate] = sink

    @property
    def target(self) -> str:
        return f"“{self.content_title}”" if self.content_id is not None else "your card"

    def candidate(
        self, rule: AlertRule, title: str, what: str, text: str = "", subject: str | None = None, **data
    ) -> None:
        self.sink.append(
            Candidate(
                rule,
                subject_key=subject or f"{self.customer_id}:{self.staff_id}",
                occurred_at=self.at,
                title=title,
                text=text or title,
                who=self.who,
                what=what,
                customer_id=self.customer_id,
                staff_id=self.staff_id,
                rep_userid=self.rep_userid,
                link=customer_link(self.customer_id),
                data={"card_id": self.card_id, "content_id": self.content_id, **data},
            )
        )


class _Visits:
    """The visits (and the shares they came through) of a batch's viewers, read at once."""

    def __init__(self, corp_id: int, views: list[list]):
        self.by_target: dict[tuple[int, int, int | None], list] = defaultdict(list)
        self.sharers: dict[str, str] = {}
        if not views:
            return
        rows = db.session.execute(
            select(
                CardVisit.customer_id,
                CardVisit.card_id,
                CardVisit.content_id,
                CardVisit.started_at,
                CardVisit.last_seen_at,
                CardVisit.via_share_code,
            ).where(
                CardVisit.corp_id == corp_id,
                CardVisit.customer_id.in_({v[1] for v in views}),
                CardVisit.card_id.in_({v[3] for v in views}),
            )
        ).all()
        for row in rows:
            self.by_target[(row.customer_id, row.card_id, row.content_id)].append(row)
        codes = {r.via_share_code for r in rows if r.via_share_code}
        if codes:
            shares = db.session.execute(
                select(CardShare.code, CardShare.customer_id).where(CardShare.code.in_(codes))
            ).all()
            names = _customer_names(s.customer_id for s in shares)
            self.sharers = {s.code: names.get(s.customer_id, "someone") for s in shares}

    def containing(self, ctx: _Ctx):
        """The customer's visit of the card (or content item) that holds the activity."""
        around = [
            v
            for v in self.by_target.get((ctx.customer_id, ctx.card_id, ctx.content_id), [])
            if v.started_at <= ctx.at <= v.last_seen_at
        ]
        return max(around, key=lambda v: v.started_at, default=None)

    def count(self, ctx: _Ctx) -> int:
        """How many visits of the card the customer has begun up to the activity."""
        return sum(1 for v in self.by_target.get((ctx.customer_id, ctx.card_id, None), []) if v.started_at <= ctx.at)

    def arrived_via(self, ctx: _Ctx) -> tuple[str, str] | None:
        """(share code, sharer's name) when the visit came through someone else's share."""
        visit = self.containing(ctx)
        if visit is None or not visit.via_share_code:
            return None
        return visit.via_share_code, self.sharers.get(visit.via_share_code, "someone")


def _activity(ctx: _Ctx, type_: str, rules: dict[AlertKind, list[AlertRule]], visits: _Visits) -> int:
    """Collect the candidates one activity raises; returns alerts raised at once (late reads)."""
    if type_ in ("card_view", "content_view"):
        raised = 0
        if type_ == "content_view":
            raised += _schedule_read_check(ctx, rules.get(AlertKind.content_read, []))
        sharer = visits.arrived_via(ctx) if rules.get(AlertKind.share_viewed) else None
        if sharer is not None:
            # A view through someone's share is told as that, not also as a plain card opening.
            code, sharer_name = sharer
            for rule in rules[AlertKind.share_viewed]:
                ctx.candidate(
                    rule,
                    f"{ctx.who} opened {ctx.target} through {sharer_name}'s share",
                    f"came through {sharer_name}'s share",
                    share_code=code,
                    sharer=sharer_name,
                )
        elif type_ == "card_view":
            _card_opened(ctx, rules.get(AlertKind.card_opened, []), max(visits.count(ctx), 1))
        return raised
    if type_ == "leave" and ctx.content_id is not None:
        return check_read(ctx.corp_id, ctx.customer_id, ctx.staff_id, ctx.card_id, ctx.content_id, _ms(ctx.at))
    if type_ == "share":
        for rule in rules.get(AlertKind.shared, []):
            ctx.candidate(rule, f"{ctx.who} shared {ctx.target}", f"shared {ctx.target}")
    elif type_ in CLICKS:
        phrase = _ACTION_PHRASES[type_]
        for rule in rules.get(AlertKind.contact_click, []):
            if type_ in (rule.params or {}).get("actions", CLICKS):
                ctx.candidate(
                    rule,
                    f"{ctx.who} {phrase}",
                    phrase,
                    text=f"{ctx.who} {phrase}: a good moment to call.",
                    action=type_,
                )
    return 0


def _card_opened(ctx: _Ctx, rules: list[AlertRule], visits: int) -> None:
    if visits == 1:
        title, what = f"{ctx.who} opened your card for the first time", "opened your card"
    else:
        title, what = (
            f"{ctx.who} is back on your card ({_ordinal(visits)} visit)",
            f"came back ({_ordinal(visits)} visit)",
        )
    for rule in rules:
        if visits >= int((rule.params or {}).get("min_visits", 1)):
            ctx.candidate(rule, title, what, visits=visits)


def _schedule_read_check(ctx: _Ctx, rules: list[AlertRule]) -> int:
    """Look at the read once its shortest threshold may have passed (at once if it has, as
    for events the client sent late). Returns alerts raised now."""
    if not rules:
        return 0
    shortest = min(int((r.params or {}).get("min_seconds", 30)) for r in rules)
    due = ctx.at + timedelta(seconds=shortest + READ_CHECK_GRACE_SECONDS)
    check = [ctx.corp_id, ctx.customer_id, ctx.staff_id, ctx.card_id, ctx.content_id, _ms(ctx.at), MAX_READ_CHECKS]
    if due <= utcnow():
        return check_reads([check])
    inbox.schedule_read_check(check, due.timestamp())
    return 0


def check_read(corp_id: int, customer_id: int, staff_id: int, card_id: int, content_id: int, since_ms: int) -> int:
    """The customer left the item (a ``leave``): fire what the finished read has earned."""
    return check_reads([[corp_id, customer_id, staff_id, card_id, content_id, since_ms, 0]])


def check_reads(checks: list[list]) -> int:
    """Fire every content_read rule whose threshold a customer's read has reached; each check
    is ``[corp, customer, rep, card, content, since ms, checks left]`` (the read began at
    ``since``). A read still going on below some threshold is looked at again later, at most
    ``checks left`` more times. A few queries per corp whatever the number of checks; inside
    the caller's transaction; returns how many alerts were raised."""
    raised = 0
    by_corp: dict[int, list[list]] = defaultdict(list)
    for check in checks:
        by_corp[int(check[0])].append(check)
    now = utcnow()
    for corp_id, corp_checks in by_corp.items():
        rules = enabled(corp_id, {AlertKind.content_read}).get(AlertKind.content_read, [])
        if not rules:
            continue
        visits: dict[tuple[int, int, int], list] = defaultdict(list)
        for row in db.session.execute(
            select(
                CardVisit.customer_id,
                CardVisit.card_id,
                CardVisit.content_id,
                CardVisit.started_at,
                CardVisit.last_seen_at,
                CardVisit.ended_at,
                CardVisit.dwell_seconds,
            ).where(
                CardVisit.corp_id == corp_id,
                CardVisit.customer_id.in_({c[1] for c in corp_checks}),
                CardVisit.content_id.in_({c[4] for c in corp_checks}),
                CardVisit.last_seen_at >= _at(min(c[5] for c in corp_checks)),
            )
        ):
            visits[(row.customer_id, row.card_id, row.content_id)].append(row)
        names = _customer_names(c[1] for c in corp_checks)
        staff = _staff_names(c[2] for c in corp_checks)
        titles = dict(
            db.session.execute(
                select(ContentItem.id, ContentItem.title).where(ContentItem.id.in_({c[4] for c in corp_checks}))
            ).all()
        )
        candidates: list[Candidate] = []
        for _, customer_id, staff_id, card_id, content_id, since_ms, checks_left in corp_checks:
            since = _at(since_ms)
            read = max(
                (v for v in visits.get((customer_id, card_id, content_id), []) if v.last_seen_at >= since),
                key=lambda v: v.dwell_seconds,
                default=None,
            )
            if read is None:
                continue
            ctx = _Ctx(
                corp_id,
                customer_id,
                staff_id,
                card_id,
                content_id,
                read.started_at,
                names.get(customer_id, f"Customer #{customer_id}"),
                staff.get(staff_id, ("", ""))[0],
                titles.get(content_id),
                candidates,
            )
            waiting = []
            for rule in rules:
                threshold = int((rule.params or {}).get("min_seconds", 30))
                if read.dwell_seconds >= threshold:
                    # One alert per item read (not per customer): "Wang read 3 items" is worth knowing.
                    ctx.candidate(
                        rule,
                        f"{ctx.who} is reading {ctx.target} ({int(read.dwell_seconds)} s)",
                        f"read {ctx.target}",
                        subject=f"{customer_id}:{staff_id}:{content_id}",
                        dwell_seconds=round(read.dwell_seconds, 1),
                    )
                else:
                    waiting.append(threshold)
            still_reading = read.ended_at is None and read.last_seen_at >= now - VISIT_GAP
            if waiting and still_reading and checks_left > 0:
                due = now + timedelta(seconds=max(min(waiting) - read.dwell_seconds, 1) + READ_CHECK_GRACE_SECONDS)
                again = [corp_id, customer_id, staff_id, card_id, content_id, since_ms, checks_left - 1]
                inbox.schedule_read_check(again, due.timestamp())
        raised += sum(alert_id is not None for alert_id in raise_many(corp_id, candidates))
    return raised


# -- intent ----------------------------------------------------------------------------------
def evaluate_level_change(change_id: int) -> int:
    """Fire the intent_hot rules when the change is a rise to hot. Returns alerts raised."""
    change = db.session.get(IntentLevelChange, change_id)
    if change is None or change.to_level != IntentLevel.hot or change.from_level == IntentLevel.hot:
        return 0
    rules = enabled(change.corp_id, {AlertKind.intent_hot}).get(AlertKind.intent_hot, [])
    if not rules:
        return 0
    who = _customer_names([change.customer_id]).get(change.customer_id, f"Customer #{change.customer_id}")
    rep_userid = _staff_names([change.staff_id]).get(change.staff_id, ("", ""))[0]
    raised = 0
    for rule in rules:
        alert_id = raise_alert(
            change.corp_id,
            rule,
            subject_key=f"{change.customer_id}:{change.staff_id}",
            occurred_at=change.changed_at,
            title=f"{who} is hot now (intent {change.score:.0f})",
            text=f"{who}'s intent rose from {change.from_level} to hot ({change.cause}): follow up now.",
            who=who,
            what="turned hot",
            customer_id=change.customer_id,
            staff_id=change.staff_id,
            rep_userid=rep_userid,
            link=customer_link(change.customer_id),
            data={"change_id": change.id, "score": change.score, "cause": change.cause},
        )
        raised += alert_id is not None
    return raised


# -- lost customers --------------------------------------------------------------------------
def on_lost_customer(corp_id: int, fields: dict) -> int:
    """del_follow_user: the customer deleted the rep. Inside the event's transaction (the
    alert commits with the event's "done"); idempotent through the dedupe key."""
    rules = enabled(corp_id, {AlertKind.lost_customer}).get(AlertKind.lost_customer, [])
    userid, external_userid = fields.get("UserID", ""), fields.get("ExternalUserID", "")
    if not rules or not userid:
        return 0
    found = db.session.execute(
        select(Identity.customer_id, Customer.name, Staff.id.label("staff_id"), Staff.name.label("staff_name"))
        .join(Customer, Customer.id == Identity.customer_id)
        .outerjoin(FollowRelation, FollowRelation.customer_id == Identity.customer_id)
        .outerjoin(Staff, (Staff.id == FollowRelation.staff_id) & (Staff.userid == userid))
        .where(
            Identity.corp_id == corp_id,
            Identity.type == IdentityType.external_userid,
            Identity.value == external_userid,
        )
        .order_by(Staff.id.is_(None))
        .limit(1)
    ).first()
    customer_id = found.customer_id if found else None
    staff_id = found.staff_id if found else None
    if staff_id is None:
        staff_id = db.session.scalar(select(Staff.id).where(Staff.corp_id == corp_id, Staff.userid == userid))
    rep_name = (found.staff_name if found and found.staff_name else None) or (
        _staff_names([staff_id]).get(staff_id, (userid, userid))[1]
    )
    who = (found.name if found and found.name else None) or (
        f"Customer #{customer_id}" if customer_id else f"a customer ({external_userid[-6:]})"
    )
    at = from_timestamp(fields.get("CreateTime"))
    raised = 0
    for rule in rules:
        alert_id = raise_alert(
            corp_id,
            rule,
            subject_key=f"{customer_id or external_userid}:{staff_id or userid}",
            occurred_at=at,
            title=f"Lost customer: {who} deleted {rep_name}",
            text=f"{who} removed {rep_name} from their WeChat contacts.",
            who=who,
            what=f"deleted {rep_name}",
            customer_id=customer_id,
            staff_id=staff_id,
            rep_userid=userid,
            link=customer_link(customer_id),
            data={"external_userid": external_userid, "userid": userid},
        )
        raised += alert_id is not None
    return raised

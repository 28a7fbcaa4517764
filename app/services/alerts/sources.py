"""Where alerts come from, wired in one place:

- card signals: the signals drainer calls our hooks after each committed cycle; they queue the
  activities (views, reads, shares, clicks) and rises to hot in the inbox (one XADD), where
  the alert sender, a worker job, evaluates them (``inbox``);
- WeCom callbacks: ``del_follow_user`` (lost customer) and ``transfer_fail`` handlers, listed in
  app/services/event_handlers.py, run inside the event's transaction;
- failures other features find: :func:`notify_admins`, called inside the caller's transaction.
"""

from __future__ import annotations

from app.extensions import db
from app.models import AlertKind, ContactCode, ContactCodeAdd, Customer, IdentityType, utcnow
from app.services import oneid, signals
from app.services.alerts import inbox, rules
from app.services.alerts.outbox import raise_alert


@signals.on_activity
def _on_card_activity(activities: list) -> None:
    """Signals hook (after the drainer's commit): queue the cycle's activities for evaluation."""
    items = [
        [
            a.corp_id,
            a.customer_id,
            a.staff_id,
            a.card_id,
            a.content_id,
            str(a.type),
            int(a.occurred_at.timestamp() * 1000),
        ]
        for a in activities
        if str(a.type) in rules.RELEVANT_TYPES
    ]
    if items:
        inbox.push_activities(items)


@signals.on_level_change
def _on_level_change(change) -> None:
    """Signals hook (after commit): a rise to hot is queued for evaluation."""
    if change.is_rise and str(change.to_level) == "hot":
        inbox.push_level_change(change.change_id)


def on_lost_customer(corp_id: int, fields: dict) -> None:
    """Event handler, change_external_contact/del_follow_user: the lost-customer alert to the
    rep and the admins."""
    rules.on_lost_customer(corp_id, fields)


_TRANSFER_REASONS = {
    "customer_refused": "the customer refused it",
    "customer_limit_exceed": "the new rep has reached the contact limit",
}


def on_transfer_failed(corp_id: int, fields: dict) -> None:
    """Event handler, change_external_contact/transfer_fail: tell the admins why."""
    external_userid, taker = fields.get("ExternalUserID", ""), fields.get("UserID", "")
    reason = fields.get("FailReason", "")
    customer_id = (
        oneid.customer_id_for(corp_id, IdentityType.external_userid, external_userid) if external_userid else None
    )
    customer = db.session.get(Customer, customer_id) if customer_id is not None else None
    who = (customer.name if customer else "") or f"customer {external_userid}"
    notify_admins(
        corp_id,
        AlertKind.transfer_failed,
        f"The transfer of {who} to {taker} failed: {_TRANSFER_REASONS.get(reason, reason or 'no reason given')}.",
        dedupe_key=f"transfer:{external_userid}:{taker}",
        customer_id=customer_id,
        title=f"Transfer to {taker} failed ({reason or 'unknown'})",
    )


_ATTENTION_REASONS = {
    "refused": "the customer refused it",
    "taker_at_limit": "the new rep has reached the contact limit",
    "not_allowed": "WeCom allows two transfers of a customer in 90 days",
    "failed": "WeCom refused the transfer",
}


def on_handover_attention(corp_id: int, item, taker: str | None, note: str | None) -> None:
    """Hand-over hook: a customer's transfer ended refused, at a full taker, not allowed or
    failed, as found by polling (or the request). Same key as the transfer_fail callback, so a
    refusal both report alerts once."""
    customer = db.session.get(Customer, item.customer_id)
    who = (customer.name if customer else "") or f"customer {item.external_userid}"
    state = str(item.state)
    reason = _ATTENTION_REASONS.get(state, state) + (f" ({note})" if note else "")
    notify_admins(
        corp_id,
        AlertKind.transfer_failed,
        f"The transfer of {who} to {taker or 'no one'} did not complete: {reason}.",
        dedupe_key=f"transfer:{item.external_userid}:{taker or ''}",
        customer_id=item.customer_id,
        title=f"Transfer to {taker or 'no one'} {state.replace('_', ' ')}",
    )


def on_welcome_failed(row) -> None:
    """Contact-code hook: a welcome failed or its 20 s window closed; the customer was never
    greeted, which an admin must know (a rep can still greet them by hand)."""
    code = db.session.get(ContactCode, row.code_id)
    add = db.session.get(ContactCodeAdd, row.add_id)
    customer = db.session.get(Customer, add.customer_id) if add else None
    who = (customer.name if customer else "") or "a new customer"
    notify_admins(
        row.corp_id,
        AlertKind.welcome_failed,
        f"The welcome to {who} from the code {code.name if code else row.code_id} was not sent: "
        f"{row.last_error or row.status}.",
        dedupe_key=f"welcome:{row.id}",
        customer_id=customer.id if customer else None,
        staff_id=row.staff_id,
        title=f"Welcome not sent ({row.status})",
    )


def notify_admins(
    corp_id: int,
    kind: AlertKind | str,
    text: str,
    link: str | None = None,
    *,
    dedupe_key: str,
    customer_id: int | None = None,
    staff_id: int | None = None,
    title: str | None = None,
) -> int:
    """Tell the corp's admins (``Corp.settings["alerts"]["admin_userids"]``) about a failure
    they must know, through every enabled rule of ``kind`` (welcome_failed, transfer_failed,
    …), whose audience may add the rep ``staff_id``. Call it inside your own transaction: the
    alert commits with it and is sent after the commit. ``dedupe_key`` names the failure
    (e.g. ``welcome:<welcome id>``): the same key within the rule's window alerts once.
    ``link`` defaults to the customer's sidebar page. Returns how many alerts were raised."""
    kind = AlertKind(kind)
    raised = 0
    heading = title or text.split(". ")[0][:120]
    for rule in rules.enabled(corp_id, {kind}).get(kind, []):
        alert_id = raise_alert(
            corp_id,
            rule,
            subject_key=dedupe_key,
            occurred_at=utcnow(),
            title=heading,
            text=text,
            who=heading,
            what="",
            customer_id=customer_id,
            staff_id=staff_id,
            link=link or rules.customer_link(customer_id),
            data={"notice": dedupe_key},
        )
        raised += alert_id is not None
    return raised

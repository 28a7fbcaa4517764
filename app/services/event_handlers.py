"""The dispatch table: (Event, ChangeType) → the handlers that act on it.

One table, read top to bottom, is the whole map of what the backend does with WeCom's
callbacks. Later features add their handler to an entry's list (a contact code acts on
add_external_contact after the mirror has stored the customer). Known events nobody acts on
are listed in IGNORED; anything else is an UnknownEvent, recorded, never silently dropped.
Handlers take (corp_id, fields) and must be idempotent: an event may be processed again after a
crash, and the handlers' writes commit together with the event's "done".
"""

from __future__ import annotations

from collections.abc import Callable

from app.models import DeletedBy
from app.services import alerts, audit, cards, contacts, groupchats, handover
from app.services import staff as staff_service
from app.services.contact_codes import adds as contact_code_adds
from app.services.contacts import from_timestamp
from wecom.client import contact_client
from wecom.events import event_type

Handler = Callable[[int, dict], None]


class UnknownEvent(Exception):
    """An (Event, ChangeType) the table does not know."""


def on_contact_added(corp_id: int, f: dict) -> None:
    contacts.refresh(corp_id, f["ExternalUserID"], source="wecom_callback")


def on_contacts_added(corp_id: int, batch: list[dict]) -> list[bool]:
    """:func:`on_contact_added` for a batch at once, set-based; False for each event left to
    the one-by-one path."""
    mirrored = contacts.refresh_prefetched(corp_id, [f["ExternalUserID"] for f in batch], source="wecom_callback")
    return [customer is not None for customer in mirrored]


def on_half_contact_added(corp_id: int, f: dict) -> None:
    contacts.refresh(corp_id, f["ExternalUserID"], source="wecom_callback")
    contacts.set_pending(corp_id, f["UserID"], f["ExternalUserID"])


def on_contact_deleted_by_staff(corp_id: int, f: dict) -> None:
    by = DeletedBy.transfer if f.get("Source") == "DELETE_BY_TRANSFER" else DeletedBy.staff
    contacts.close(corp_id, f["UserID"], f["ExternalUserID"], by, from_timestamp(f.get("CreateTime")))


def on_contact_deleted_by_customer(corp_id: int, f: dict) -> None:
    contacts.close(corp_id, f["UserID"], f["ExternalUserID"], DeletedBy.customer, from_timestamp(f.get("CreateTime")))


def on_transfer_failed(corp_id: int, f: dict) -> None:
    audit.record(
        corp_id,
        "system",
        "transfer.failed",
        "external_contact",
        f["ExternalUserID"],
        reason=f.get("FailReason"),
        data={"userid": f.get("UserID")},
    )


def on_user_changed(corp_id: int, f: dict) -> None:
    if f.get("NewUserID") and f["NewUserID"] != f["UserID"]:
        staff_service.rename(corp_id, f["UserID"], f["NewUserID"])
    userid = f.get("NewUserID") or f["UserID"]
    staff_service.from_wecom_user(corp_id, contact_client().user.get(userid))


def on_user_deleted(corp_id: int, f: dict) -> None:
    staff_service.mark_resigned(corp_id, f["UserID"], from_timestamp(f.get("CreateTime")))


def on_chat_changed(corp_id: int, f: dict) -> None:
    groupchats.refresh(corp_id, f["ChatId"])


def on_chat_dismissed(corp_id: int, f: dict) -> None:
    groupchats.dismiss(corp_id, f["ChatId"], from_timestamp(f.get("CreateTime")))


HANDLERS: dict[tuple[str, str], list[Handler]] = {
    ("change_external_contact", "add_external_contact"): [
        on_contact_added,
        contact_code_adds.on_contact_added,
        cards.on_contact_added,
    ],
    ("change_external_contact", "add_half_external_contact"): [on_half_contact_added],
    ("change_external_contact", "edit_external_contact"): [on_contact_added],
    ("change_external_contact", "del_external_contact"): [on_contact_deleted_by_staff],
    ("change_external_contact", "del_follow_user"): [on_contact_deleted_by_customer, alerts.on_lost_customer],
    ("change_external_contact", "transfer_fail"): [
        on_transfer_failed,
        handover.on_transfer_failed,
        alerts.on_transfer_failed,
    ],
    ("change_contact", "create_user"): [on_user_changed],
    ("change_contact", "update_user"): [on_user_changed],
    ("change_contact", "delete_user"): [on_user_deleted, handover.on_rep_resigned],
    ("change_external_chat", "create"): [on_chat_changed],
    ("change_external_chat", "update"): [on_chat_changed],
    ("change_external_chat", "dismiss"): [on_chat_dismissed],
}

# Known events this backend does not act on (yet); acknowledged and marked ignored.
IGNORED: frozenset[tuple[str, str]] = frozenset(
    {
        ("change_contact", "create_party"),
        ("change_contact", "update_party"),
        ("change_contact", "delete_party"),
        ("change_contact", "update_tag"),
        ("change_external_contact", "msg_audit_approved"),
        ("change_external_tag", "create"),
        ("change_external_tag", "update"),
        ("change_external_tag", "delete"),
        ("change_external_tag", "shuffle"),
    }
)


# Events whose first handler reads the contact from WeCom (contacts.refresh): a drained batch
# fetches those contacts at once, concurrently, before its events run.
READS_CONTACT: frozenset[tuple[str, str]] = frozenset(
    {
        ("change_external_contact", "add_external_contact"),
        ("change_external_contact", "add_half_external_contact"),
        ("change_external_contact", "edit_external_contact"),
    }
)

# Handlers with a set-based form for a drained batch: it takes the events the handler would
# get one by one and answers, for each, whether it did the handler's work.
BATCH_FORMS: dict[Handler, Callable[[int, list[dict]], list[bool]]] = {
    on_contact_added: on_contacts_added,
}


def prefetch(batch: list[dict]):
    """A context in which the batch's handlers find the WeCom reads they need already done."""
    return contacts.prefetched(
        [f["ExternalUserID"] for f in batch if event_type(f) in READS_CONTACT and f.get("ExternalUserID")]
    )


def dispatch_batch(corp_id: int, batch: list[dict]) -> list[bool]:
    """Run what can be run set-based of a batch of one corp's events, in the caller's
    transaction: events whose first handler has a batch form get it, then their other
    handlers one by one. Answers, per event, whether it was handled (True) or must go through
    :func:`dispatch` in a transaction of its own (False). An event is left alone when another
    event of the batch about the same contact is, so one contact's events keep their order."""
    handled = [False] * len(batch)
    forms: dict[Callable, list[int]] = {}
    for n, fields in enumerate(batch):
        handlers = HANDLERS.get(event_type(fields)) or []
        form = BATCH_FORMS.get(handlers[0]) if handlers else None
        if form is not None:
            forms.setdefault(form, []).append(n)
    batched = {n for members in forms.values() for n in members}
    kept_in_order = {f.get("ExternalUserID") for n, f in enumerate(batch) if n not in batched}
    for form, members in forms.items():
        members = [n for n in members if batch[n].get("ExternalUserID") not in kept_in_order]
        for n, done in zip(members, form(corp_id, [batch[n] for n in members]), strict=True):
            handled[n] = done
    for n, fields in enumerate(batch):
        if handled[n]:
            for handler in HANDLERS[event_type(fields)][1:]:
                handler(corp_id, fields)
    return handled


def dispatch(corp_id: int, fields: dict) -> bool:
    """Run every handler of the event; False when the event is known but ignored."""
    key = event_type(fields)
    handlers = HANDLERS.get(key)
    if handlers is None:
        if key in IGNORED:
            return False
        raise UnknownEvent(f"unknown event {key[0]!r}/{key[1]!r}")
    for handler in handlers:
        handler(corp_id, fields)
    return True

"""Behaviour alerts: tell the rep (and, for failures, the admins) the moment a customer acts,
exactly once, never as a flood.

event → rule evaluation in a worker (``rules``; card activity waits in the ``inbox`` for the
alert sender's job) → an Alert with a dedupe key (rule, customer and rep, window) → an outbox of
deliveries (``outbox``) sent by a "high"-queue sender through ``message/send`` with WeCom's
duplicate check → delivery state with the msgid. Pacing and digests (``digest``) keep every
member inside WeCom's 30/min and 1000/h; quiet hours (``quiet``) defer alerts to one digest at
the start of working hours. Where alerts come from is wired in ``sources``; reading them back
(API, customer timeline) in ``queries``; the corp's admins and pacing in ``settings``.

For other features: :func:`notify_admins` inside your transaction, e.g.
``alerts.notify_admins(corp_id, "welcome_failed", text, dedupe_key=f"welcome:{welcome_id}")``.
"""

from app.services.alerts import digest, inbox, outbox, queries, quiet, rules, settings, sources
from app.services.alerts.sources import (
    notify_admins,
    on_handover_attention,
    on_lost_customer,
    on_transfer_failed,
    on_welcome_failed,
)

__all__ = [
    "digest",
    "inbox",
    "notify_admins",
    "on_handover_attention",
    "on_lost_customer",
    "on_transfer_failed",
    "on_welcome_failed",
    "outbox",
    "queries",
    "quiet",
    "rules",
    "settings",
    "sources",
]

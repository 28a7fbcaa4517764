"""Card signals: what the mini-program's events become.

- ``ingest``    the request path: validate references, append the batch to a Redis Stream.
- ``consumer``  the drainer: bulk-insert raw events (idempotent per session and client event
                id), visits with dwell, shares with their forward chain, intent, presence;
                re-attribution of an anonymous device's history at login.
- ``intent``    the decaying intent score, levels cold/warm/hot and their history.
- ``presence``  who is on which card now (Redis, expiring).
- ``stats``     reading it back for the admin API.
- ``timeline``  visits, shares and level changes on the customer's unified timeline.

For other features: register ``on_level_change(hook)`` to hear every committed level change
(``LevelChange.is_rise`` for the rises alerts care about) and ``on_activity(hook)`` to hear each
committed batch of attributed card events (views, reads, shares, clicks — not heartbeats).
"""

# Importing the package registers the card sources of the customer timeline.
from app.services.signals import timeline  # noqa: F401
from app.services.signals.consumer import ACTIVITY_HOOKS, Activity, drain, drain_job, on_activity, reattribute
from app.services.signals.ingest import Accepted, ingest
from app.services.signals.intent import (
    LEVEL_CHANGE_HOOKS,
    LevelChange,
    Scoring,
    on_level_change,
    settings_for,
    settle,
    settle_job,
    update_settings,
)

__all__ = [
    "ACTIVITY_HOOKS",
    "LEVEL_CHANGE_HOOKS",
    "Accepted",
    "Activity",
    "LevelChange",
    "Scoring",
    "drain",
    "drain_job",
    "ingest",
    "on_activity",
    "on_level_change",
    "reattribute",
    "settings_for",
    "settle",
    "settle_job",
    "update_settings",
]

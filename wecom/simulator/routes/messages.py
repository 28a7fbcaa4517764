"""message/send: app messages to reps (agent secret)."""

from __future__ import annotations

from .. import messaging
from .common import Api

APIS = [
    Api("message/send", "POST", "agent", lambda call: messaging.send(call.world, call.body)),
]

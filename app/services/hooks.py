"""Cross-feature wiring in one place: which feature reacts to another's moments.

Features expose hook lists instead of importing each other (a hand-over knows nothing of
contact codes); this module is the only place that connects them, called once by create_app.
"""

from __future__ import annotations

_installed = False


def install() -> None:
    """Register every cross-feature hook (idempotent: tests build many apps)."""
    global _installed
    if _installed:
        return
    from app.services import alerts, cards, handover
    from app.services.contact_codes import wecom_sync as contact_codes
    from app.services.contact_codes import welcome

    # A rep who leaves is taken out of every contact code at once.
    handover.on_rep_departed.append(contact_codes.on_rep_departed)
    # Their card sends each visitor to the rep taking that customer over.
    cards.successor_resolvers.append(handover.current_rep_for)
    # Admins hear of a transfer that did not complete and of a customer never greeted.
    handover.on_needs_attention.append(alerts.on_handover_attention)
    welcome.on_welcome_failed.append(alerts.on_welcome_failed)
    _installed = True

"""Channel contact codes (渠道活码): rule-based assignment, welcome messages, auto-tags, posters
and channel stats.

- ``codes``: create, change, pause, resume, archive and read codes (WeCom ways included);
- ``schedule`` / ``availability``: who may take customers now, and why not;
- ``wecom_sync``: wecom mode — the WeCom way's user list follows availability;
- ``assignment``: routed mode — the landing link's atomic pick;
- ``adds`` / ``welcome`` / ``tags``: what an add through a code sets off;
- ``stats`` / ``poster``: the funnel and the printable poster.

``tick_job`` is the periodic entry point (every minute): schedule boundaries and midnight cap
resets, expiries, welcomes that fell through, routed decisions not yet written out.
"""

from __future__ import annotations

from datetime import datetime

from app.models import utcnow

from . import assignment, codes, wecom_sync, welcome


def tick(now: datetime | None = None) -> dict:
    """Archive expired codes, bring every wecom-mode list up to date, settle stray welcomes,
    write out routed decisions still in the log."""
    now = now or utcnow()
    return {
        "decisions": assignment.flush_decisions(),
        "archived": codes.archive_expired(now),
        **wecom_sync.sync_all(now),
        "welcomes": welcome.sweep(now),
    }


def tick_job() -> dict:
    """RQ entry point (jobs/schedules.py, every minute)."""
    return tick()

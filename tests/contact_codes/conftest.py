"""Contact-code fixtures: the simulator's demo corp with our staff rows, and small helpers."""

from __future__ import annotations

import pytest

from app.services.auth import Principal
from tests import factories

REPS = ["zhangwei", "lina", "wangfang", "liuyang", "chenjing"]
NAMES = {"zhangwei": "张伟", "lina": "李娜", "wangfang": "王芳", "liuyang": "刘洋", "chenjing": "陈静"}


@pytest.fixture
def reps(corp):
    """Staff rows for the simulator's demo reps (what a staff sync would make)."""
    return {userid: factories.staff(corp, userid=userid, name=NAMES[userid]) for userid in REPS}


@pytest.fixture
def world(sim, reps):
    """The simulator's demo corp (departments, the five reps, a tag group, a few customers)."""
    return sim.control.seed_demo()


@pytest.fixture
def admin(corp, api_auth):
    """A signed-in admin principal (services take principals, not requests)."""
    user = api_auth.user("admin")
    return Principal(user_id=user.id, corp_id=corp.id, role=user.role, staff_id=None)


def code_body(**overrides) -> dict:
    body = {
        "name": "Expo 2026 booth",
        "channel": "expo-2026",
        "members": [{"userid": "zhangwei"}, {"userid": "lina"}],
    }
    body.update(overrides)
    return body


@pytest.fixture
def create_code(client, admin_headers):
    """POST /contact-codes and return the body (asserting 201)."""

    def create(**overrides) -> dict:
        resp = client.post("/api/v1/contact-codes", json=code_body(**overrides), headers=admin_headers)
        assert resp.status_code == 201, resp.json
        return resp.json

    return create


def way(sim, config_id: str) -> dict:
    """The simulator's view of a contact way."""
    return next(w for w in sim.control.state("contact_ways")["contact_ways"] if w["config_id"] == config_id)


def settle(sim, run_jobs) -> None:
    """Deliver every queued callback, then drain the queues with a real worker."""
    sim.control.flush_callbacks()
    run_jobs()

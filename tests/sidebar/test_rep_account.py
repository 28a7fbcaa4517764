"""auth.rep_account: one rep account per staff member, whoever signs in first."""

from __future__ import annotations

import threading

from sqlalchemy import func, select

from app.extensions import db as _db
from app.models import AuditLog, Role, Staff, User
from app.services import auth
from tests import factories


def test_concurrent_first_sign_ins_make_one_account(app, corp, db):
    """When a rep's two devices sign in for the first time at once, is one account made?"""
    staff_id = factories.staff(corp, userid="twin").id
    barrier = threading.Barrier(2)
    results, errors = [], []

    def sign_in():
        with app.app_context():
            try:
                barrier.wait()
                results.append(auth.rep_account(_db.session.get(Staff, staff_id)).id)
            except Exception as exc:  # reported by the assertion below
                errors.append(exc)
            finally:
                _db.session.remove()

    threads = [threading.Thread(target=sign_in) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors and len(results) == 2 and results[0] == results[1]
    assert db.session.scalar(select(func.count()).select_from(User).where(User.staff_id == staff_id)) == 1
    user = db.session.get(User, results[0])
    assert (user.role, user.username) == (Role.rep, f"wecom-staff-{staff_id}")
    assert db.session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action == "user.create")) == 1


def test_admin_account_of_the_same_staff_is_not_used(app, corp, db, api_auth):
    """Does a staff member's admin account stay out of the sidebar (a separate rep account is made)?"""
    staff = factories.staff(corp, userid="boss")
    admin = api_auth.user("admin", staff_id=staff.id)
    rep = auth.rep_account(staff)
    assert rep.id != admin.id and rep.role == Role.rep

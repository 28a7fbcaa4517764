"""Signing a rep in from inside WeCom (the sidebar): a web OAuth code → the member's userid →
their active staff row → their rep account; and, on every later request, whether that sign-in
still holds (a rep who resigned or whose account was disabled is out at once)."""

from __future__ import annotations

import logging

import requests
from sqlalchemy import select
from wechatpy.exceptions import WeChatClientException

from app.errors import ApiError
from app.extensions import db
from app.models import Role, Staff, StaffStatus, User
from app.services import auth, corps
from app.services.auth import Principal
from wecom.client import agent_client
from wecom.errors import is_transient

log = logging.getLogger(__name__)

# 40029: invalid, expired or used code; 41008: no code.
BAD_CODE_ERRCODES = frozenset({40029, 41008})


def user_for_code(code: str) -> User:
    """The rep account of the member who got this OAuth ``code`` (``auth/getuserinfo``).

    400 ``invalid_code`` for a bad, expired or used code; 403 for someone who is not an active
    rep here (not a member, not mirrored yet, resigned, account disabled); 503/502 when WeCom
    does not answer or refuses otherwise."""
    corp = corps.env_corp()
    try:
        answer = agent_client().user_auth.get_user_info(code)
    except WeChatClientException as exc:
        if exc.errcode in BAD_CODE_ERRCODES:
            raise ApiError(400, "invalid_code", "the sign-in code is invalid, expired or already used") from exc
        if is_transient(exc):
            raise ApiError(503, "wecom_unavailable", "WeCom did not answer; try again") from exc
        raise ApiError(502, "wecom_error", f"WeCom refused the sign-in (errcode {exc.errcode})") from exc
    except requests.RequestException as exc:
        raise ApiError(503, "wecom_unavailable", "WeCom did not answer; try again") from exc
    userid = answer.get("userid")
    if not userid:  # a non-member (an openid only) opened the app
        raise ApiError(403, "not_a_member", "only members of the company may use the sidebar")
    staff = db.session.scalar(select(Staff).where(Staff.corp_id == corp.id, Staff.userid == userid))
    if staff is None:
        raise ApiError(403, "unknown_member", "you are not among the company's reps yet; ask an admin to sync")
    if staff.status != StaffStatus.active:
        raise ApiError(403, "resigned", "you have left the company")
    user = auth.rep_account(staff)
    if not user.active:
        raise ApiError(403, "account_disabled", "your account is disabled; ask an admin")
    log.info("sidebar sign-in of staff %s (user %s)", staff.id, user.id)
    return user


def principal_for_session(sid: str | None) -> Principal | None:
    """The rep a sidebar session signs in, if the account and the staff member are both still
    active; None otherwise (the caller answers 401 or sends the rep to sign in again)."""
    user = auth.session_user(sid)
    if user is None or user.role != Role.rep or user.staff_id is None:
        return None
    staff = db.session.get(Staff, user.staff_id)
    if staff is None or staff.status != StaffStatus.active:
        return None
    return auth.principal_of(user)

"""WeCom's web OAuth page (``open.weixin.qq.com/connect/oauth2/authorize``), simulated.

In WeCom the member is whoever is signed in to the client, so the real page only redirects.
Here nobody is signed in: without ``userid`` the page lists the active members to choose from
(links carrying ``userid``); with it, a single-use code is minted for that member (the one
``auth/getuserinfo`` accepts) and the browser goes to ``redirect_uri?code=…&state=…``.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import Blueprint, Response, redirect, render_template_string, request

from .. import codes
from ..errors import ControlError
from .common import get_world

bp = Blueprint("sim_oauth", __name__)

SCOPES = ("snsapi_base", "snsapi_privateinfo")
MAX_STATE = 128  # WeCom: state is at most 128 bytes of a-zA-Z0-9

PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>WeCom sign-in (simulator)</title>
<style>body{font-family:sans-serif;margin:2em}li{margin:.4em 0}</style></head>
<body><h1>Sign in to {{ corp_id }} (simulator)</h1>
{% if error %}<p id="sim-oauth-error" data-testid="sim-oauth-error">{{ error }}</p>
{% else %}<p>Choose the member who opens the app:</p>
<ul id="sim-oauth-users">{% for user in users %}
<li><a href="{{ user.link }}" data-testid="sim-oauth-user-{{ user.userid }}">
{{ user.name }} ({{ user.userid }})</a></li>
{% endfor %}</ul>{% endif %}
</body></html>"""


def _page(status: int = 200, **context) -> Response:
    world = get_world()
    context = {"users": [], "error": None, **context}
    html = render_template_string(PAGE, corp_id=world.config.corp_id, **context)
    return Response(html, status=status, mimetype="text/html")


def _problem(args) -> str | None:
    """What WeCom would refuse in the authorize request, or None."""
    world = get_world()
    if args.get("appid") != world.config.corp_id:
        return "appid does not name this corp"
    if args.get("response_type") != "code":
        return "response_type must be code"
    if args.get("scope") not in SCOPES:
        return "scope must be snsapi_base or snsapi_privateinfo"
    agentid = args.get("agentid")
    if agentid and agentid != world.config.agent_id:
        return "agentid does not name this app"
    state = args.get("state", "")
    if len(state) > MAX_STATE or not (state.isascii() and (state.isalnum() or state == "")):
        return "state must be at most 128 characters of a-zA-Z0-9"
    target = urlsplit(args.get("redirect_uri", ""))
    if target.scheme not in ("http", "https") or not target.netloc:
        return "redirect_uri must be an absolute http(s) URL"
    return None


def _back_to_app(redirect_uri: str, code: str, state: str) -> str:
    parts = urlsplit(redirect_uri)
    query = parse_qsl(parts.query, keep_blank_values=True) + [("code", code), ("state", state)]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))


@bp.get("/connect/oauth2/authorize")
def authorize() -> Response:
    """The member list, or (with ``userid``) a 302 to the app's redirect_uri with a fresh code."""
    args = request.args
    problem = _problem(args)
    if problem:
        return _page(400, error=problem)
    world = get_world()
    userid = args.get("userid")
    if userid:
        try:
            with world.lock:
                code = codes.mint_oauth(world, userid)
        except ControlError as exc:
            return _page(exc.status, error=exc.message)
        return redirect(_back_to_app(args["redirect_uri"], code.code, args.get("state", "")), code=302)
    with world.lock:
        members = [u for u in world.users.values() if u.active]
    base = {k: v for k, v in args.items(multi=False) if k != "userid"}
    users = [
        {"userid": u.userid, "name": u.name, "link": f"{request.path}?{urlencode({**base, 'userid': u.userid})}"}
        for u in members
    ]
    return _page(users=users)

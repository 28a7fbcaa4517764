"""The landing link of a contact code: ``GET /c/<state>``.

A customer scans the printed QR (it encodes this link), the code picks their rep (routed mode),
and the page shows that rep's own WeCom QR to add. ``?format=json`` (or ``Accept:
application/json``) answers the same as JSON for the mini-program; ``?redirect=1`` answers a
302 to the QR picture. A returning visitor keeps their rep for a day (cookie, or ``?visitor=``
with the token the JSON gave).
"""

from __future__ import annotations

from flask import Blueprint, Flask, jsonify, make_response, redirect, render_template_string, request

from app.errors import ApiError
from app.services import corps
from app.services.contact_codes import assignment

bp = Blueprint("landing", __name__)

PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>body{font-family:sans-serif;text-align:center;margin:2em 1em;color:#222}
img{width:min(80vw,360px);height:auto}p.muted{color:#888}</style></head>
<body><h1>{{ title }}</h1>
{% if rep %}<p>您的专属顾问：<strong>{{ rep }}</strong></p>{% endif %}
{% if qr_code %}<p><img src="{{ qr_code }}" alt="WeCom QR"></p><p class="muted">长按识别二维码，添加企业微信</p>
{% else %}<p>{{ message }}</p>{% endif %}
</body></html>"""


def _wants_json() -> bool:
    if request.args.get("format") == "json":
        return True
    return request.accept_mimetypes.best_match(["text/html", "application/json"]) == "application/json"


def _cookie(state: str) -> str:
    return f"cc_{state}"


@bp.get("/c/<state>")
def land(state: str):
    """Pick the rep (routed mode) and answer the contact way to add."""
    token = request.args.get("visitor") or request.cookies.get(_cookie(state))
    try:
        result = assignment.land(corps.env_corp_id(), state[:30], token)
    except ApiError as exc:
        if _wants_json():
            raise
        page = render_template_string(PAGE, title="渠道活码", rep=None, qr_code=None, message=exc.message)
        return page, exc.status
    if _wants_json():
        response = jsonify(
            code={
                "id": result.code_id,
                "name": result.name,
                "channel": result.channel,
                "state": result.state,
                "mode": result.mode,
            },
            rep={"userid": result.rep_userid, "name": result.rep_name} if result.rep_userid else None,
            config_id=result.config_id,
            qr_code=result.qr_code,
            visitor_token=result.visitor_token,
            reused=result.reused,
        )
    elif request.args.get("redirect") and result.qr_code:
        response = redirect(result.qr_code)
    else:
        response = make_response(
            render_template_string(
                PAGE,
                title=result.name,
                rep=result.rep_name or result.rep_userid,
                qr_code=result.qr_code,
                message="",
            )
        )
    if result.visitor_token and not result.reused:
        response.set_cookie(
            _cookie(state),
            result.visitor_token,
            max_age=assignment.STICKY_SECONDS,
            httponly=True,
            samesite="Lax",
            path=f"/c/{state}",
        )
    # Every scan is a decision: no cache may answer it.
    response.headers["Cache-Control"] = "no-store"
    return response


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)

"""The corps of this deployment; the env corp (WECOM_CORP_ID) is bootstrapped as a row."""

from __future__ import annotations

from flask import Flask, current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import Corp


def env_corp() -> Corp:
    """The corp configured by WECOM_CORP_ID, created on first use."""
    wecom_corp_id = current_app.config["WECOM_CORP_ID"]
    corp = db.session.scalar(select(Corp).where(Corp.wecom_corp_id == wecom_corp_id))
    if corp is None:
        corp = Corp(wecom_corp_id=wecom_corp_id, name=wecom_corp_id)
        db.session.add(corp)
        try:
            db.session.commit()
        except IntegrityError:  # another process bootstrapped it first
            db.session.rollback()
            corp = db.session.scalar(select(Corp).where(Corp.wecom_corp_id == wecom_corp_id))
    return corp


def env_corp_id() -> int:
    """The env corp's row id, looked up once per app (it never changes while the app runs)."""
    corp_id = current_app.extensions.get("env_corp_id")
    if corp_id is None:
        corp_id = current_app.extensions["env_corp_id"] = env_corp().id
    return corp_id


def by_wecom_id(wecom_corp_id: str) -> Corp | None:
    return db.session.scalar(select(Corp).where(Corp.wecom_corp_id == wecom_corp_id))


def init_app(app: Flask) -> None:
    @app.cli.command("bootstrap-corp")
    def _bootstrap():
        """Create the env corp row (done automatically on first use too)."""
        corp = env_corp()
        print(f"corp {corp.id} = {corp.wecom_corp_id}")

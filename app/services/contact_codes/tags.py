"""The corp tags a code applies on add: found by (group, name), created in WeCom when missing."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import select
from wechatpy.exceptions import WeChatClientException

from app.extensions import db
from app.models import Tag
from wecom.client import contact_client

DEFAULT_GROUP = "渠道活码"
TAG_EXISTS = 40071


def _mirror(corp_id: int, groups: list[dict], known: dict[tuple[str, str], Tag], by_id: dict[str, Tag]) -> None:
    """Upsert WeCom's tag groups into our Tag rows and ``known`` (by group and name)."""
    for group in groups:
        for tag in group.get("tag") or []:
            row = by_id.get(tag["id"])
            if row is None:
                row = by_id[tag["id"]] = Tag(corp_id=corp_id, wecom_tag_id=tag["id"])
                db.session.add(row)
            row.name, row.group_name = tag.get("name") or tag["id"], group.get("group_name") or ""
            known[(row.group_name, row.name)] = row
    db.session.flush()


def _wecom_groups() -> list[dict]:
    return contact_client().external_contact.get_corp_tag_list().get("tag_group") or []


def ensure(corp_id: int, specs: list[dict], refresh: bool = False) -> list[str]:
    """The WeCom tag ids of ``specs`` ([{group_name, name}]), in order; tags WeCom does not have
    are created (``add_corp_tag``). Our mirror answers when it knows every tag, unless
    ``refresh`` (WeCom refused an id we hold: it was deleted there) makes WeCom's list the only
    truth. Flushes, does not commit."""
    wanted = [(s.get("group_name") or DEFAULT_GROUP, s["name"]) for s in specs]
    rows = list(db.session.scalars(select(Tag).where(Tag.corp_id == corp_id)))
    by_id = {t.wecom_tag_id: t for t in rows}
    known = {} if refresh else {(t.group_name, t.name): t for t in rows}
    if refresh or any(key not in known for key in wanted):
        # Our mirror may be stale (tags made or deleted in the WeCom console since the last sync).
        _mirror(corp_id, _wecom_groups(), known, by_id)
    missing: dict[str, list[str]] = defaultdict(list)
    for group_name, name in wanted:
        if (group_name, name) not in known and name not in missing[group_name]:
            missing[group_name].append(name)
    for group_name, names in missing.items():
        try:
            created = contact_client().external_contact.add_corp_tag(
                None, group_name, None, [{"name": name} for name in names]
            )
            _mirror(corp_id, [created["tag_group"]], known, by_id)
        except WeChatClientException as exc:
            if exc.errcode != TAG_EXISTS:
                raise
            # Someone created one of them meanwhile: read them back.
            _mirror(corp_id, _wecom_groups(), known, by_id)
    return [known[key].wecom_tag_id for key in wanted]

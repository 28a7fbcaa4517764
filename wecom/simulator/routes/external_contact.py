"""externalcontact/*: contact ways, customers, corp tags, welcome messages; idconvert."""

from __future__ import annotations

from .. import contact_ways, external_contacts, tags, welcome
from ..people import unionid_to_external_userid
from .common import Api, Call


def _idconvert(call: Call) -> dict:
    body = call.body
    return unionid_to_external_userid(
        call.world, body.get("unionid") or "", body.get("openid") or "", int(body.get("subject_type") or 0)
    )


def _post(path: str, handler) -> Api:
    return Api(path, "POST", "contact", lambda call: handler(call.world, call.body))


APIS = [
    Api(
        "externalcontact/add_contact_way",
        "POST",
        "contact",
        lambda call: contact_ways.add(call.world, call.body, call.base_url),
    ),
    _post("externalcontact/get_contact_way", contact_ways.get),
    _post("externalcontact/update_contact_way", contact_ways.update),
    _post("externalcontact/del_contact_way", contact_ways.delete),
    _post("externalcontact/list_contact_way", contact_ways.list_ways),
    Api(
        "externalcontact/get",
        "GET",
        "contact",
        lambda call: external_contacts.get(call.world, call.arg("external_userid"), call.arg("cursor")),
    ),
    Api(
        "externalcontact/list",
        "GET",
        "contact",
        lambda call: external_contacts.list_for_user(call.world, call.arg("userid")),
    ),
    Api(
        "externalcontact/get_follow_user_list",
        "GET",
        "contact",
        lambda call: external_contacts.follow_user_list(call.world),
    ),
    _post("externalcontact/batch/get_by_user", external_contacts.batch_get_by_user),
    _post("externalcontact/mark_tag", tags.mark),
    _post("externalcontact/get_corp_tag_list", tags.get_list),
    _post("externalcontact/add_corp_tag", tags.add),
    _post("externalcontact/edit_corp_tag", tags.edit),
    _post("externalcontact/del_corp_tag", tags.delete),
    _post("externalcontact/send_welcome_msg", welcome.send),
    Api("idconvert/unionid_to_external_userid", "POST", "contact", _idconvert),
]

"""Customer and group-chat transfers, on the job and after resignation."""

from __future__ import annotations

from .. import groupchats, transfers
from .common import Api


def _contact(path: str, handler) -> Api:
    return Api(path, "POST", "contact", lambda call: handler(call.world, call.body))


APIS = [
    _contact("externalcontact/transfer_customer", lambda w, b: transfers.request(w, b, "onjob")),
    _contact("externalcontact/transfer_result", lambda w, b: transfers.results(w, b, "onjob")),
    _contact("externalcontact/resigned/transfer_customer", lambda w, b: transfers.request(w, b, "resigned")),
    _contact("externalcontact/resigned/transfer_result", lambda w, b: transfers.results(w, b, "resigned")),
    _contact("externalcontact/get_unassigned_list", transfers.unassigned),
    _contact("externalcontact/groupchat/list", groupchats.list_chats),
    _contact("externalcontact/groupchat/get", groupchats.get),
    _contact("externalcontact/groupchat/transfer", lambda w, b: groupchats.transfer(w, b, resigned=True)),
    _contact(
        "externalcontact/groupchat/onjob_transfer", lambda w, b: groupchats.transfer(w, b, resigned=False)
    ),
]

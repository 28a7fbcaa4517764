"""The WeCom endpoints wechatpy 2.0.0a26 lacks, as API classes on our client.

Each method is a thin, documented call; callers handle the answer. Batches are capped at what
WeCom accepts, and a larger input is a programming error, not something to split silently.
"""

from __future__ import annotations

from wechatpy.client.api.base import BaseWeChatAPI

MAX_TRANSFER_BATCH = 100
MAX_GROUPCHAT_BATCH = 100
MAX_USERS_PER_BATCH_GET = 100


def _check_batch(items: list, limit: int, what: str) -> None:
    if not 1 <= len(items) <= limit:
        raise ValueError(f"{what}: between 1 and {limit} items per call, got {len(items)}")


class CustomerContactAPI(BaseWeChatAPI):
    """externalcontact/* calls missing from wechatpy: multi-user batch get, contact way list."""

    def batch_get_by_users(self, userid_list: list[str], cursor: str = "", limit: int = 100) -> dict:
        """Customers of up to 100 reps, one page (``next_cursor`` for the next)."""
        _check_batch(userid_list, MAX_USERS_PER_BATCH_GET, "userid_list")
        return self._post(
            "externalcontact/batch/get_by_user", data={"userid_list": userid_list, "cursor": cursor, "limit": limit}
        )

    def get_contact(self, external_userid: str) -> dict:
        """externalcontact/get with every follower: WeCom pages ``follow_user`` past 500
        (``next_cursor``), and wechatpy's ``get`` reads only the first page."""
        result = self._get("externalcontact/get", params={"external_userid": external_userid})
        cursor = result.pop("next_cursor", "")
        while cursor:
            page = self._get("externalcontact/get", params={"external_userid": external_userid, "cursor": cursor})
            result["follow_user"] = [*result.get("follow_user", []), *page.get("follow_user", [])]
            cursor = page.get("next_cursor", "")
        return result

    def list_contact_way(
        self, start_time: int | None = None, end_time: int | None = None, cursor: str = "", limit: int = 1000
    ) -> dict:
        data: dict = {"cursor": cursor, "limit": limit}
        if start_time is not None:
            data["start_time"] = start_time
        if end_time is not None:
            data["end_time"] = end_time
        return self._post("externalcontact/list_contact_way", data=data)


class TransferAPI(BaseWeChatAPI):
    """Hand-over of customers and group chats (在职继承 / 离职继承)."""

    def transfer_customer(
        self,
        handover_userid: str,
        takeover_userid: str,
        external_userids: list[str],
        transfer_success_msg: str | None = None,
    ) -> dict:
        """On-the-job transfer; the customer has 24 h to refuse."""
        _check_batch(external_userids, MAX_TRANSFER_BATCH, "external_userid")
        data = {
            "handover_userid": handover_userid,
            "takeover_userid": takeover_userid,
            "external_userid": external_userids,
        }
        if transfer_success_msg:
            data["transfer_success_msg"] = transfer_success_msg
        return self._post("externalcontact/transfer_customer", data=data)

    def transfer_result(self, handover_userid: str, takeover_userid: str, cursor: str = "") -> dict:
        return self._post(
            "externalcontact/transfer_result",
            data={"handover_userid": handover_userid, "takeover_userid": takeover_userid, "cursor": cursor},
        )

    def resigned_transfer_customer(
        self, handover_userid: str, takeover_userid: str, external_userids: list[str]
    ) -> dict:
        _check_batch(external_userids, MAX_TRANSFER_BATCH, "external_userid")
        return self._post(
            "externalcontact/resigned/transfer_customer",
            data={
                "handover_userid": handover_userid,
                "takeover_userid": takeover_userid,
                "external_userid": external_userids,
            },
        )

    def resigned_transfer_result(self, handover_userid: str, takeover_userid: str, cursor: str = "") -> dict:
        return self._post(
            "externalcontact/resigned/transfer_result",
            data={"handover_userid": handover_userid, "takeover_userid": takeover_userid, "cursor": cursor},
        )

    def get_unassigned_list(self, cursor: str = "", page_size: int = 1000) -> dict:
        return self._post("externalcontact/get_unassigned_list", data={"cursor": cursor, "page_size": page_size})

    def groupchat_transfer(self, chat_ids: list[str], new_owner: str) -> dict:
        """Group chats of a resigned owner."""
        _check_batch(chat_ids, MAX_GROUPCHAT_BATCH, "chat_id_list")
        return self._post("externalcontact/groupchat/transfer", data={"chat_id_list": chat_ids, "new_owner": new_owner})

    def groupchat_onjob_transfer(self, chat_ids: list[str], new_owner: str) -> dict:
        _check_batch(chat_ids, MAX_GROUPCHAT_BATCH, "chat_id_list")
        return self._post(
            "externalcontact/groupchat/onjob_transfer", data={"chat_id_list": chat_ids, "new_owner": new_owner}
        )


class IdConvertAPI(BaseWeChatAPI):
    def unionid_to_external_userid(self, unionid: str, openid: str, subject_type: int = 0) -> dict:
        """→ {external_userid, pending_id}: joins a WeChat identity to a WeCom one (OneID)."""
        return self._post(
            "idconvert/unionid_to_external_userid",
            data={"unionid": unionid, "openid": openid, "subject_type": subject_type},
        )


class UserAuthAPI(BaseWeChatAPI):
    """Web OAuth's code exchange. wechatpy's ``oauth.get_user_info`` calls the legacy
    ``user/getuserinfo`` (``UserId``); WeCom's current endpoint is ``auth/getuserinfo``."""

    def get_user_info(self, code: str) -> dict:
        """→ {userid} for a member (or {openid} for a non-member); 40029 for a bad or used code."""
        return self._get("auth/getuserinfo", params={"code": code})

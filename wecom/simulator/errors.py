"""WeCom error codes the simulator answers, and the two exceptions that carry them.

Codes and messages follow WeCom's global error table; where WeCom documents no specific code
for a rule, the simulator answers 40058 (invalid parameter) and says which rule in errmsg.
"""

from __future__ import annotations

ERRMSG: dict[int, str] = {
    -1: "system busy",
    0: "ok",
    40001: "invalid credential",
    40002: "invalid grant_type",
    40003: "invalid userid",
    40008: "invalid message type",
    40013: "invalid corpid",
    40014: "invalid access_token",
    40029: "invalid code",
    40031: "invalid userid list",
    40032: "invalid userid list size",
    40050: "chatid not found",
    40056: "invalid agentid",
    40058: "invalid parameter",
    40068: "invalid tagid",
    40071: "tag name already exists",
    40072: "invalid tag name length",
    40096: "invalid external userid",
    40097: "the handover user has not resigned",
    40099: "the takeover user has reached the external contact limit",
    40100: "the external contact is already in a transfer",
    40125: "invalid appsecret",
    40128: "customer transferred too often: at most twice in 90 days",
    40129: "customer transfer in progress",
    40130: "handover and takeover are the same user",
    40131: "handover user does not follow this customer",
    41001: "access_token missing",
    41002: "corpid missing",
    41004: "corpsecret missing",
    41006: "media_id missing",
    41008: "code missing",
    41009: "userid missing",
    41010: "url missing",
    41011: "agentid missing",
    41016: "title missing",
    41033: "description missing",
    41049: "welcome_code missing",
    41050: "invalid welcome_code: unknown, expired or used",
    41051: "the customer and the user are already chatting",
    42001: "access_token expired",
    44004: "empty content",
    45002: "content size out of limit",
    45009: "api freq out of limit",
    45011: "api minute-quota reach limit, too frequent",
    45033: "api concurrent out of limit",
    47001: "data format error",
    48002: "api forbidden",
    60111: "userid not found",
    60123: "invalid party id",
    81013: "user & party & tag all invalid",
    84061: "not external contact",
    90500: "the owner of this chat is not resigned",
    90501: "chat is not external group chat",
    90502: "the owner of this chat has resigned",
    90504: "the new owner is the current owner",
    91040: "invalid ticket type",
}


class ApiError(Exception):
    """A WeCom/WeChat API failure: answered as HTTP 200 with ``errcode``/``errmsg``."""

    def __init__(self, errcode: int, errmsg: str | None = None, **extra):
        self.errcode = errcode
        self.errmsg = errmsg or ERRMSG.get(errcode, "error")
        self.extra = extra  # fields WeCom returns beside the error (e.g. invaliduser)
        super().__init__(f"{errcode}: {self.errmsg}")

    def payload(self) -> dict:
        return {"errcode": self.errcode, "errmsg": self.errmsg, **self.extra}


class ControlError(Exception):
    """A control-API request that cannot be carried out: answered with an HTTP error status."""

    def __init__(self, status: int, message: str):
        self.status = status
        self.message = message
        super().__init__(message)


def invalid(rule: str) -> ApiError:
    """40058 naming the rule that was broken."""
    return ApiError(40058, f"invalid parameter: {rule}")

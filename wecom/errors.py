"""Which WeCom failures are worth retrying later, and which are final."""

from __future__ import annotations

import requests
from wechatpy.exceptions import WeChatClientException

# 45009 frequency limit, 45033 too many concurrent calls, -1 system busy.
TRANSIENT_ERRCODES = frozenset({45009, 45033, -1})
# The access token is missing, invalid or expired: fetch a new one and call again.
TOKEN_ERRCODES = frozenset({40001, 40014, 42001})


def is_transient(exc: BaseException) -> bool:
    """True for failures that may pass if the same call is made again later."""
    if isinstance(exc, requests.ConnectionError | requests.Timeout):
        return True
    if isinstance(exc, WeChatClientException):
        if exc.errcode in TRANSIENT_ERRCODES:
            return True
        status = getattr(exc.response, "status_code", None)
        return exc.errcode is None and (status is None or status >= 500)
    return False

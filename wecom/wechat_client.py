"""The WeChat mini-program server API (api.weixin.qq.com), at ``WECHAT_API_BASE``.

Three calls: ``sns/jscode2session`` (wx.login code → openid, unionid, session_key),
``cgi-bin/token`` (the mini-program access token, cached in Redis) and
``wxa/business/getuserphonenumber`` (getPhoneNumber code → the verified phone). Token errors
refresh the token a bounded number of times; every call is timed and counted in the same Redis
hash as the WeCom client's calls (``wecom.client.call_stats``). Failures raise
``WeChatApiError``, a wechatpy ``WeChatClientException``, so ``wecom.errors.is_transient``
classifies them like WeCom's.
"""

from __future__ import annotations

import hashlib
import logging
import time

import redis
import requests
from flask import current_app
from wechatpy.exceptions import WeChatClientException

from wecom.client import record_call
from wecom.errors import TOKEN_ERRCODES

log = logging.getLogger(__name__)

# A server that keeps rejecting fresh tokens must not make us loop.
MAX_TOKEN_REFRESHES = 2
# Refresh this long before WeChat's stated expiry, so a token never dies in flight.
TOKEN_MARGIN_SECONDS = 300
# How long one process waits for another's token refresh before fetching itself.
REFRESH_WAIT_SECONDS = 2.0

INVALID_CODE = 40029
LOGIN_TOO_FREQUENT = 45011


class WeChatApiError(WeChatClientException):
    """WeChat answered an errcode, a non-JSON body or an HTTP error (errcode None)."""


class MiniProgramClient:
    """One mini-program (appid + secret); the access token lives in Redis under a key named by
    the appid and a fingerprint of the secret (never the secret itself)."""

    def __init__(self, appid: str, secret: str, *, api_base: str, redis_conn: redis.Redis, timeout: float = 5.0):
        self.appid, self.secret = appid, secret
        self.api_base = api_base if api_base.endswith("/") else api_base + "/"
        self.timeout = timeout
        self._redis = redis_conn
        self._http = requests.Session()
        fingerprint = hashlib.sha256(secret.encode()).hexdigest()[:12]
        self._token_key = f"wechat-token:{appid}:{fingerprint}"
        self._lock_key = self._token_key + ":refresh"

    # -- the calls ----------------------------------------------------------------------
    def jscode2session(self, js_code: str) -> dict:
        """{openid, session_key, unionid?} for a wx.login code. The caller must keep
        session_key on the server and never trust an openid sent by a client."""
        return self._call(
            "GET",
            "sns/jscode2session",
            params={
                "appid": self.appid,
                "secret": self.secret,
                "js_code": js_code,
                "grant_type": "authorization_code",
            },
        )

    def get_phone_number(self, code: str) -> dict:
        """The ``phone_info`` {phoneNumber, purePhoneNumber, countryCode} behind a getPhoneNumber code."""
        return self._with_token("POST", "wxa/business/getuserphonenumber", json={"code": code})["phone_info"]

    # -- access token -------------------------------------------------------------------
    def access_token(self) -> str:
        """The cached token, or a fresh one. One process refreshes at a time (WeChat cuts the
        previous token to 5 minutes on every fetch, so a stampede would churn it)."""
        cached = self._redis.get(self._token_key)
        if cached:
            return cached.decode()
        if not self._redis.set(self._lock_key, 1, nx=True, ex=10):
            deadline = time.monotonic() + REFRESH_WAIT_SECONDS
            while time.monotonic() < deadline:
                time.sleep(0.05)
                cached = self._redis.get(self._token_key)
                if cached:
                    return cached.decode()
        try:
            data = self._call(
                "GET",
                "cgi-bin/token",
                params={"grant_type": "client_credential", "appid": self.appid, "secret": self.secret},
            )
            ttl = max(int(data.get("expires_in", 7200)) - TOKEN_MARGIN_SECONDS, 60)
            self._redis.set(self._token_key, data["access_token"], ex=ttl)
            return data["access_token"]
        finally:
            self._redis.delete(self._lock_key)

    def invalidate_token(self) -> None:
        self._redis.delete(self._token_key)

    def _with_token(self, method: str, path: str, **kwargs) -> dict:
        for attempt in range(MAX_TOKEN_REFRESHES + 1):
            try:
                return self._call(method, path, params={"access_token": self.access_token()}, **kwargs)
            except WeChatApiError as exc:
                if exc.errcode in TOKEN_ERRCODES and attempt < MAX_TOKEN_REFRESHES:
                    log.info("wechat token rejected (%s) on %s; refreshing", exc.errcode, path)
                    self.invalidate_token()
                    continue
                raise
        raise AssertionError("unreachable")  # the loop returns or raises

    # -- plumbing -----------------------------------------------------------------------
    def _call(self, method: str, path: str, **kwargs) -> dict:
        started = time.perf_counter()
        errcode: int | str = 0
        try:
            response = self._http.request(method, self.api_base + path, timeout=self.timeout, **kwargs)
            if response.status_code >= 400:
                errcode = response.status_code
                raise WeChatApiError(None, f"HTTP {response.status_code}", response=response)
            try:
                data = response.json()
            except ValueError:
                errcode = "body"
                raise WeChatApiError(None, "the answer is not JSON", response=response) from None
            if data.get("errcode"):
                errcode = data["errcode"]
                raise WeChatApiError(data["errcode"], data.get("errmsg", ""), response=response)
            return data
        except requests.RequestException:
            errcode = "network"
            raise
        finally:
            record_call(self._redis, path, time.perf_counter() - started, errcode)


def miniprogram_client() -> MiniProgramClient:
    """The business-card mini-program's client (MINIPROGRAM_APPID/SECRET at WECHAT_API_BASE).
    Rebuilt when the base changes, so a test pointing the app at a simulator is honoured."""
    cfg = current_app.config
    client = current_app.extensions.get("miniprogram_client")
    base = cfg["WECHAT_API_BASE"]
    if client is None or client.api_base != (base if base.endswith("/") else base + "/"):
        client = MiniProgramClient(
            cfg["MINIPROGRAM_APPID"],
            cfg["MINIPROGRAM_SECRET"],
            api_base=base,
            redis_conn=current_app.extensions["redis"],
        )
        current_app.extensions["miniprogram_client"] = client
    return client

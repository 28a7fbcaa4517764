"""The WeCom client: wechatpy's work client, pointed at ``WECOM_API_BASE``, with tokens in Redis,
a bounded refresh on token errors, per-endpoint timing and counters, and our extra API classes.

Two clients serve a corp: ``contact`` (customer-contact secret: externalcontact/*) and
``agent`` (the app secret: message/send, tickets, OAuth). Each keeps its token under its own
Redis prefix, so the two never overwrite each other's expiry.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time

import redis
import requests
from flask import current_app
from wechatpy.exceptions import WeChatClientException
from wechatpy.session.redisstorage import RedisStorage
from wechatpy.work import WeChatClient

from wecom.apis import CustomerContactAPI, IdConvertAPI, TransferAPI, UserAuthAPI
from wecom.errors import TOKEN_ERRCODES

log = logging.getLogger(__name__)

# wechatpy retries token errors forever; a server that keeps answering 40014 must not hang us.
MAX_TOKEN_REFRESHES = 2
CALLS_KEY = "wecom:calls"
# How long a process reuses the token it read from Redis before reading it again (two Redis
# round trips on every call were a tenth of a worker's CPU). A token WeCom revokes early is
# still caught at once: the call answers 40014 and the refresh below drops the memo.
TOKEN_MEMO_SECONDS = 30
# wechatpy fetches a new token once the old one has less than this left; so do we.
TOKEN_REFRESH_MARGIN = 60


class WeComClient(WeChatClient):
    customer_contact = CustomerContactAPI()
    transfer = TransferAPI()
    idconvert = IdConvertAPI()
    user_auth = UserAuthAPI()

    def __init__(self, corp_id: str, secret: str, *, api_base: str, redis_conn: redis.Redis, timeout: float = 10.0):
        fingerprint = hashlib.sha256(secret.encode()).hexdigest()[:12]
        storage = RedisStorage(redis_conn, prefix=f"wecom-token:{corp_id}:{fingerprint}")
        super().__init__(corp_id, secret, session=storage, timeout=timeout, auto_retry=False)
        self.API_BASE_URL = api_base if api_base.endswith("/") else api_base + "/"
        self._redis = redis_conn
        self._token_memo: tuple[str, float] | None = None  # (token, reuse until; time.time())
        self._http = requests.Session()
        # requests re-reads the proxy environment on every call (a third of a call's CPU here);
        # we only ever call one base, so resolve its proxy settings once.
        self._http.trust_env = False
        self._http.proxies = requests.utils.get_environ_proxies(self.API_BASE_URL)
        self._http.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True

    @property
    def access_token_key(self) -> str:
        # The storage prefix already names corp and secret; never put the secret in a key.
        return "access_token"

    def fetch_access_token(self) -> dict:
        # wechatpy hard-codes the production gettoken URL; use our base.
        return self._fetch_access_token(
            url=self.API_BASE_URL + "gettoken", params={"corpid": self.corp_id, "corpsecret": self.secret}
        )

    @property
    def access_token(self) -> str:
        memo = self._token_memo
        now = time.time()
        if memo is not None and now < memo[1]:
            return memo[0]
        token = super().access_token  # from Redis, fetched from WeCom when missing or expiring
        expires_at = self.expires_at
        if token and expires_at:
            self._token_memo = (token, min(now + TOKEN_MEMO_SECONDS, float(expires_at) - TOKEN_REFRESH_MARGIN))
        return token

    def invalidate_token(self) -> None:
        self._token_memo = None
        self.session.delete(self.access_token_key)
        self.session.delete(self.access_token_expires_at_key)

    def _request(self, method, url_or_endpoint, **kwargs):
        endpoint = url_or_endpoint.removeprefix(self.API_BASE_URL).split("?")[0]
        for attempt in range(MAX_TOKEN_REFRESHES + 1):
            call = dict(kwargs)
            call["params"] = {k: v for k, v in (kwargs.get("params") or {}).items() if k != "access_token"}
            started = time.perf_counter()
            errcode = 0
            try:
                return super()._request(method, url_or_endpoint, **call)
            except WeChatClientException as exc:
                errcode = exc.errcode if exc.errcode is not None else getattr(exc.response, "status_code", "http")
                if exc.errcode in TOKEN_ERRCODES and attempt < MAX_TOKEN_REFRESHES:
                    log.info("wecom token rejected (%s) on %s; refreshing", exc.errcode, endpoint)
                    self.invalidate_token()
                    continue
                raise
            except requests.RequestException:
                errcode = "network"
                raise
            finally:
                record_call(self._redis, endpoint, time.perf_counter() - started, errcode)
        raise AssertionError("unreachable")  # the loop returns or raises


def record_call(redis_conn: redis.Redis, endpoint: str, seconds: float, errcode) -> None:
    """Count one call of a WeCom or WeChat endpoint, its time and its error (if any) in the
    hash :func:`call_stats` reads. Metrics never break the call they measure."""
    try:
        pipe = redis_conn.pipeline(transaction=False)
        pipe.hincrby(CALLS_KEY, f"{endpoint}:count", 1)
        pipe.hincrbyfloat(CALLS_KEY, f"{endpoint}:ms", round(seconds * 1000, 3))
        if errcode:
            pipe.hincrby(CALLS_KEY, f"{endpoint}:err:{errcode}", 1)
        pipe.execute()
    except redis.RedisError:
        log.warning("could not record the metrics of a call to %s", endpoint, exc_info=True)


def call_stats(redis_conn: redis.Redis) -> dict[str, dict[str, float]]:
    """{endpoint: {count, ms, err:<code>...}} as recorded by every client of this Redis."""
    stats: dict[str, dict[str, float]] = {}
    for field, value in redis_conn.hgetall(CALLS_KEY).items():
        endpoint, _, metric = field.decode().partition(":")
        stats.setdefault(endpoint, {})[metric] = float(value)
    return stats


def _client(secret_setting: str) -> WeComClient:
    cfg = current_app.config
    key = f"wecom_client:{secret_setting}"
    client = current_app.extensions.get(key)
    if client is None:
        client = WeComClient(
            cfg["WECOM_CORP_ID"],
            cfg[secret_setting],
            api_base=cfg["WECOM_API_BASE"],
            redis_conn=current_app.extensions["redis"],
        )
        current_app.extensions[key] = client
    return client


def contact_client() -> WeComClient:
    """The customer-contact client of the env corp (externalcontact/*, department, user)."""
    return _client("WECOM_CONTACT_SECRET")


def agent_client() -> WeComClient:
    """The app (agent) client of the env corp (message/send, tickets, OAuth)."""
    return _client("WECOM_AGENT_SECRET")

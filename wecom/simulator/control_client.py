"""SimulatorControl: a small client for the simulator's control API (tests, demo, app CLI)."""

from __future__ import annotations

from typing import Any

import requests


class SimulatorError(Exception):
    """The control API refused a request (HTTP 4xx/5xx)."""

    def __init__(self, status: int, payload: Any):
        self.status = status
        self.payload = payload
        super().__init__(f"HTTP {status}: {payload}")


class SimulatorControl:
    """One method per control action. ``wait=True`` returns after the action's callbacks
    have been delivered (or failed every attempt); the records are in ``result["callbacks"]``."""

    def __init__(self, base_url: str, timeout: float = 30.0):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._http = requests.Session()
        self._http.trust_env = False  # the simulator is local: never route it through a proxy

    # -- plumbing -------------------------------------------------------------------------
    def _call(self, method: str, path: str, body: dict | None = None, **params) -> dict:
        response = self._http.request(
            method,
            f"{self.base_url}/sim/{path.lstrip('/')}",
            json=body if method != "GET" else None,
            params=params or None,
            timeout=self.timeout,
        )
        try:
            payload = response.json()
        except ValueError:
            payload = response.text
        if response.status_code >= 400:
            raise SimulatorError(response.status_code, payload)
        return payload

    @staticmethod
    def _clean(**fields) -> dict:
        return {k: v for k, v in fields.items() if v is not None}

    def close(self) -> None:
        self._http.close()

    # -- world ----------------------------------------------------------------------------
    def health(self) -> dict:
        return self._call("GET", "health")

    def state(self, *sections: str) -> dict:
        """The world's state, or just the named sections (e.g. "callbacks", "messages")."""
        return self._call("GET", "state", **({"sections": ",".join(sections)} if sections else {}))

    def reset(self, seed_demo: bool = False) -> dict:
        return self._call("POST", "reset", {"seed_demo": seed_demo})

    def seed_demo(self) -> dict:
        return self._call("POST", "seed_demo", {})

    def config(self, **changes: Any) -> dict:
        """Read the runtime config, or change fields of it (e.g. welcome_code_ttl=0.2)."""
        return self._call("POST", "config", changes) if changes else self._call("GET", "config")

    def now(self) -> float:
        return self._call("GET", "clock")["now"]

    def advance(self, seconds: float, wait: bool = False) -> dict:
        """Move the simulator clock forward; due transfers complete."""
        return self._call("POST", "clock/advance", {"seconds": seconds, "wait": wait})

    # -- directory ------------------------------------------------------------------------
    def add_department(self, name: str, parentid: int = 1, id: int | None = None) -> dict:
        return self._call("POST", "departments", self._clean(name=name, parentid=parentid, id=id))

    def add_user(
        self,
        userid: str,
        name: str | None = None,
        department: list[int] | None = None,
        notify: bool = False,
        wait: bool = False,
        **fields: Any,
    ) -> dict:
        """A rep joins; ``notify`` sends change_contact/create_user."""
        return self._call(
            "POST",
            "users",
            self._clean(userid=userid, name=name, department=department, notify=notify, wait=wait, **fields),
        )

    def update_user(self, userid: str, wait: bool = False, **changes: Any) -> dict:
        """Directory change (change_contact/update_user); ``new_userid`` renames."""
        return self._call("POST", f"users/{userid}/update", {**changes, "wait": wait})

    def resign_user(self, userid: str, wait: bool = False) -> dict:
        """The rep leaves (change_contact/delete_user)."""
        return self._call("POST", f"users/{userid}/resign", {"wait": wait})

    def set_contact_limit(self, userid: str, limit: int | None) -> dict:
        return self._call("POST", f"users/{userid}/contact_limit", {"limit": limit})

    # -- customers ------------------------------------------------------------------------
    def add_customer(self, name: str | None = None, unionid: str | None = None, **fields: Any) -> dict:
        """A WeChat user (not yet anyone's customer)."""
        return self._call("POST", "customers", self._clean(name=name, unionid=unionid, **fields))

    def scan(
        self,
        config_id: str | None = None,
        state: str | None = None,
        external_userid: str | None = None,
        unionid: str | None = None,
        customer: dict | None = None,
        userid: str | None = None,
        already_chatted: bool = False,
        pick: str | None = None,
        wait: bool = False,
        **extra: Any,
    ) -> dict:
        """A customer scans a contact way → add_external_contact (or add_half_…) callback.
        Returns external_userid, userid, welcome_code, …"""
        return self._call(
            "POST",
            "scan",
            self._clean(
                config_id=config_id,
                state=state,
                external_userid=external_userid,
                unionid=unionid,
                customer=customer,
                userid=userid,
                already_chatted=already_chatted,
                pick=pick,
                wait=wait,
                **extra,
            ),
        )

    def customer_deletes_rep(self, external_userid: str, userid: str, wait: bool = False) -> dict:
        """del_follow_user."""
        return self._call("POST", f"customers/{external_userid}/delete_rep", {"userid": userid, "wait": wait})

    def rep_deletes_customer(self, userid: str, external_userid: str, wait: bool = False) -> dict:
        """del_external_contact."""
        return self._call(
            "POST", f"users/{userid}/delete_customer", {"external_userid": external_userid, "wait": wait}
        )

    def edit_customer(self, userid: str, external_userid: str, wait: bool = False, **changes: Any) -> dict:
        """edit_external_contact (remark, description, remark_mobiles, add_tag, remove_tag)."""
        return self._call(
            "POST", f"customers/{external_userid}/edit", {"userid": userid, "wait": wait, **changes}
        )

    def start_chat(self, userid: str, external_userid: str) -> dict:
        """The two start chatting: their pending welcome code now answers 41051."""
        return self._call("POST", f"customers/{external_userid}/chat", {"userid": userid})

    def refuse_transfer(
        self, external_userid: str, takeover_userid: str | None = None, wait: bool = False
    ) -> dict:
        """The customer refuses a waiting transfer → transfer_fail customer_refused."""
        return self._call(
            "POST",
            "transfers/refuse",
            self._clean(external_userid=external_userid, takeover_userid=takeover_userid, wait=wait),
        )

    # -- group chats ----------------------------------------------------------------------
    def create_group_chat(
        self,
        owner: str,
        members: list[str] | None = None,
        name: str | None = None,
        notice: str | None = None,
        wait: bool = False,
    ) -> dict:
        return self._call(
            "POST",
            "groupchats",
            self._clean(owner=owner, members=members or [], name=name, notice=notice, wait=wait),
        )

    def update_group_chat(self, chat_id: str, update_detail: str, wait: bool = False, **fields: Any) -> dict:
        """add_member / del_member (members, join_scene, quit_scene), change_owner (owner),
        change_name (name), change_notice (notice)."""
        return self._call(
            "POST", f"groupchats/{chat_id}/update", {"update_detail": update_detail, "wait": wait, **fields}
        )

    def dismiss_group_chat(self, chat_id: str, wait: bool = False) -> dict:
        return self._call("POST", f"groupchats/{chat_id}/dismiss", {"wait": wait})

    # -- codes ----------------------------------------------------------------------------
    def mint_oauth_code(self, userid: str) -> str:
        """A WeCom OAuth code for the rep (auth/getuserinfo)."""
        return self._call("POST", "codes/oauth", {"userid": userid})["code"]

    def authorize(self, authorize_url: str, userid: str) -> str:
        """Play the member ``userid`` opening the app's OAuth link (pointed at this simulator):
        answers where WeCom sends the browser, the app's redirect_uri with ``code`` and ``state``."""
        response = self._http.get(
            authorize_url.split("#")[0], params={"userid": userid}, allow_redirects=False, timeout=self.timeout
        )
        if response.status_code != 302:
            raise SimulatorError(response.status_code, response.text)
        return response.headers["Location"]

    def mint_js_code(
        self,
        external_userid: str | None = None,
        unionid: str | None = None,
        openid: str | None = None,
        **new_user: Any,
    ) -> dict:
        """A wx.login code for a WeChat user (a new one when none is named): {code, openid, unionid}."""
        return self._call(
            "POST",
            "codes/jscode",
            self._clean(external_userid=external_userid, unionid=unionid, openid=openid, **new_user),
        )

    def mint_phone_code(
        self, external_userid: str | None = None, phone: str | None = None, **who: Any
    ) -> dict:
        """A getPhoneNumber code: {code, phone}."""
        return self._call(
            "POST", "codes/phone", self._clean(external_userid=external_userid, phone=phone, **who)
        )

    # -- faults, tokens, callbacks ----------------------------------------------------------
    def set_faults(self, **settings: Any) -> dict:
        """rate, errors, delay_ms, delay_rate, paths, side, times, callback_duplicate_rate,
        callback_shuffle (see FaultInjector.configure)."""
        return self._call("POST", "faults", settings)

    def clear_faults(self) -> dict:
        return self._call("DELETE", "faults")

    def invalidate_tokens(self, area: str | None = None, mode: str = "invalid") -> int:
        """Revoke live tokens: mode "invalid" (→ 40014) or "expired" (→ 42001)."""
        return self._call("POST", "tokens/invalidate", {"area": area, "mode": mode})["revoked"]

    def callbacks(self) -> list[dict]:
        return self._call("GET", "callbacks")["callbacks"]

    def flush_callbacks(self, timeout: float = 10.0) -> list[dict]:
        """Wait until every queued callback was delivered or gave up; return all records."""
        result = self._call("POST", "callbacks/flush", {"timeout": timeout})
        if not result["flushed"]:
            raise SimulatorError(504, "callbacks still pending")
        return result["callbacks"]

    def hold_callbacks(self) -> dict:
        return self._call("POST", "callbacks/hold", {})

    def release_callbacks(self) -> dict:
        return self._call("POST", "callbacks/release", {})

    def verify_url(self, url: str | None = None) -> dict:
        """Have the simulator verify a callback URL as WeCom does (signed, encrypted echostr)."""
        return self._call("POST", "verify_url", self._clean(url=url))

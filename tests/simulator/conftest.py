"""Fixtures for the simulator's own tests: a real simulator on a free port, a real callback
receiver that verifies and decrypts like the app must, and thin HTTP helpers."""

from __future__ import annotations

import json
import pathlib
import sys
import threading
import time

import pytest
import requests
import xmltodict
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

# Self-contained: importable however pytest is started (the project root may not be on sys.path).
ROOT = pathlib.Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from wecom.crypto import CallbackCrypto, CallbackDecryptError, CallbackSignatureError  # noqa: E402
from wecom.simulator import SimConfig, SimulatorServer  # noqa: E402


class _Quiet(WSGIRequestHandler):
    def log_request(self, code="-", size="-") -> None:
        pass


class CallbackReceiver:
    """A tiny real callback endpoint. It verifies the signature, decrypts with receive id = corp
    id, and answers scripted statuses (then 200). GET answers WeCom's URL verification."""

    def __init__(self, config: SimConfig):
        self.crypto = CallbackCrypto(config.token, config.encoding_aes_key, config.corp_id)
        self.corp_id = config.corp_id
        self._cond = threading.Condition()
        self.statuses: list[int] = []
        self.delays: list[float] = []
        self.echo_override: str | None = None
        self.received: list[dict] = []  # every POST that decrypted, whatever we answered
        self.accepted: list[dict] = []  # the ones answered 200
        self.rejected = 0  # bad signature or undecryptable
        self._server = make_server("127.0.0.1", 0, self, threaded=True, request_handler=_Quiet)
        self.url = f"http://127.0.0.1:{self._server.server_port}/wecom/callback"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()

    def script(self, *statuses: int, delays: tuple[float, ...] = ()) -> None:
        """Answer the next POSTs with these statuses (then 200), after these delays."""
        self.statuses, self.delays = list(statuses), list(delays)

    def __call__(self, environ, start_response):
        request = Request(environ)
        args = request.args
        try:
            if request.method == "GET":
                plain = self.crypto.verify_and_decrypt(
                    args["msg_signature"], args["timestamp"], args["nonce"], args["echostr"]
                )
                return Response(self.echo_override or plain)(environ, start_response)
            envelope = xmltodict.parse(request.get_data())["xml"]
            plain = self.crypto.verify_and_decrypt(
                args["msg_signature"], args["timestamp"], args["nonce"], envelope["Encrypt"]
            )
        except (CallbackSignatureError, CallbackDecryptError, KeyError):
            with self._cond:
                self.rejected += 1
            return Response("bad", status=403)(environ, start_response)
        event = dict(xmltodict.parse(plain)["xml"])
        event["_envelope"] = envelope
        event["_plaintext"] = plain
        with self._cond:
            status = self.statuses.pop(0) if self.statuses else 200
            delay = self.delays.pop(0) if self.delays else 0
        if delay:
            time.sleep(delay)
        with self._cond:
            self.received.append(event)
            if status == 200:
                self.accepted.append(event)
            self._cond.notify_all()
        return Response("success" if status == 200 else "error", status=status)(environ, start_response)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[dict]:
        """Block until ``count`` events were accepted; return them."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.accepted) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"expected {count} callbacks, got {len(self.accepted)}")
                self._cond.wait(remaining)
            return list(self.accepted)

    def of(self, change_type: str) -> list[dict]:
        with self._cond:
            return [e for e in self.accepted if e.get("ChangeType") == change_type]

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class WeComApi:
    """Calls the simulated WeCom API the way wechatpy does: raw JSON bodies, no Content-Type."""

    def __init__(self, sim: SimulatorServer):
        self.base = sim.wecom_api_base
        self.config = sim.world.config
        self._tokens: dict[str, str] = {}
        self.http = requests.Session()
        self.http.trust_env = False

    def gettoken(self, corpid: str | None = None, corpsecret: str | None = None) -> dict:
        params = {"corpid": corpid or self.config.corp_id, "corpsecret": corpsecret}
        return self.http.get(self.base + "gettoken", params=params, timeout=10).json()

    def token(self, area: str = "contact", fresh: bool = False) -> str:
        if fresh or area not in self._tokens:
            secret = self.config.contact_secret if area == "contact" else self.config.agent_secret
            self._tokens[area] = self.gettoken(corpsecret=secret)["access_token"]
        return self._tokens[area]

    def get(self, path: str, area: str = "contact", token: str | None = None, **params) -> dict:
        def call(access_token: str) -> dict:
            return self.http.get(
                self.base + path, params={**params, "access_token": access_token}, timeout=10
            ).json()

        return self._with_token(call, area, token)

    def post(
        self,
        path: str,
        body: dict | None = None,
        area: str = "contact",
        token: str | None = None,
        raw: bytes | None = None,
    ) -> dict:
        data = raw if raw is not None else json.dumps(body or {}, ensure_ascii=False).encode()

        def call(access_token: str) -> dict:
            response = self.http.post(
                self.base + path, params={"access_token": access_token}, data=data, timeout=10
            )
            assert "Content-Type" not in response.request.headers
            return response.json()

        return self._with_token(call, area, token)

    def _with_token(self, call, area: str, token: str | None) -> dict:
        if token is not None:  # an explicit token is under test: no refresh
            return call(token)
        result = call(self.token(area))
        if result.get("errcode") in (40014, 42001):  # like the app's client: refresh once
            result = call(self.token(area, fresh=True))
        return result

    def add_way(self, users: list[str], **fields) -> dict:
        body = {"type": 2 if len(users) > 1 else 1, "scene": 2, **fields, "user": users}
        result = self.post("externalcontact/add_contact_way", body)
        assert result["errcode"] == 0, result
        return result


@pytest.fixture
def receiver():
    receiver = CallbackReceiver(SimConfig())
    yield receiver
    receiver.stop()


@pytest.fixture
def sim_config(receiver) -> SimConfig:
    return SimConfig(callback_url=receiver.url, seed=7, callback_retry_pause=0.05, callback_timeout=2.0)


@pytest.fixture
def sim(sim_config):
    server = SimulatorServer(sim_config).start()
    yield server
    server.stop()


@pytest.fixture
def ctl(sim):
    return sim.control


@pytest.fixture
def api(sim):
    client = WeComApi(sim)
    yield client
    client.http.close()


@pytest.fixture
def demo(ctl) -> dict:
    """The demo corp: reps zhangwei, lina (dept 3), wangfang, liuyang (dept 4), chenjing (dept 5)."""
    return ctl.seed_demo()


@pytest.fixture
def http():
    session = requests.Session()
    session.trust_env = False
    yield session
    session.close()

"""Callback delivery: sign, encrypt and POST events to the app, off the request path.

Events are queued and sent by one worker thread (one worker keeps them in order, as WeCom
sends them; the shuffle fault is the only way to reorder). Each delivery is tried up to
``callback_attempts`` times: any non-200 answer, error or timeout (``callback_timeout``, 5 s
like WeCom) counts as a failure. Every attempt is recorded for the control API.
"""

from __future__ import annotations

import collections
import itertools
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import requests

from wecom.crypto import CallbackCrypto

from .config import SimConfig
from .events import Event
from .faults import FaultInjector


@dataclass
class Attempt:
    number: int
    at: float
    status: int | None
    error: str | None
    elapsed_ms: int
    body: str = ""

    def to_dict(self) -> dict:
        return {
            "number": self.number,
            "at": self.at,
            "status": self.status,
            "error": self.error,
            "elapsed_ms": self.elapsed_ms,
            "body": self.body,
        }


@dataclass
class Delivery:
    """One event on its way to the app, with every attempt made."""

    id: int
    event: Event
    plaintext: str
    queued_at: float
    state: str = "queued"  # queued | sending | delivered | failed | skipped
    url: str | None = None
    duplicate_of: int | None = None
    attempts: list[Attempt] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event, repr=False)

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            **self.event.to_dict(),
            "state": self.state,
            "url": self.url,
            "duplicate_of": self.duplicate_of,
            "queued_at": self.queued_at,
            "attempts": [a.to_dict() for a in self.attempts],
        }


class CallbackDispatcher:
    """Queue + worker thread delivering events to ``config.callback_url``."""

    def __init__(self, config: SimConfig, faults: FaultInjector):
        self._config = config
        self._faults = faults
        self._crypto = CallbackCrypto(config.token, config.encoding_aes_key, config.corp_id)
        self._cond = threading.Condition()
        self._queue: collections.deque[Delivery] = collections.deque()
        self._records: list[Delivery] = []
        self._ids = itertools.count(1)
        self._held = False
        self._busy = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._http = requests.Session()

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        """Start the worker thread (idempotent)."""
        if self._thread and self._thread.is_alive():
            return
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="sim-callbacks", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the worker after the delivery in hand; queued events stay queued."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread:
            self._thread.join(timeout)
        self._http.close()

    # -- producer side --------------------------------------------------------------------
    def enqueue(self, event: Event) -> Delivery:
        """Queue ``event`` for delivery and return its record."""
        delivery = self._new_delivery(event)
        with self._cond:
            self._queue.append(delivery)
            self._cond.notify_all()
        return delivery

    def _new_delivery(self, event: Event, duplicate_of: int | None = None) -> Delivery:
        delivery = Delivery(
            id=next(self._ids),
            event=event,
            plaintext=event.to_xml(self._config.corp_id),
            queued_at=time.time(),
            duplicate_of=duplicate_of,
        )
        with self._cond:
            self._records.append(delivery)
        return delivery

    def hold(self) -> None:
        """Keep queueing but stop sending, so a batch can build up (and be shuffled)."""
        with self._cond:
            self._held = True

    def release(self) -> None:
        """Resume sending; everything queued goes out as one batch."""
        with self._cond:
            self._held = False
            self._cond.notify_all()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until nothing is queued or being sent; False on timeout (or while held)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def records(self) -> list[dict]:
        with self._cond:
            return [d.to_dict() for d in self._records]

    def status(self) -> dict:
        with self._cond:
            return {"queued": len(self._queue), "held": self._held, "busy": self._busy}

    def clear(self) -> None:
        """Forget queued events and the delivery history."""
        with self._cond:
            for delivery in self._queue:
                delivery.state = "skipped"
                delivery.done.set()
            self._queue.clear()
            self._records.clear()
            self._held = False

    # -- worker side ----------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and (self._held or not self._queue):
                    self._cond.wait()
                if self._stopping:
                    return
                batch = list(self._queue)
                self._queue.clear()
                self._busy = True
            try:
                self._faults.shuffle(batch)
                for delivery in batch:
                    self._deliver(delivery)
                    if self._faults.duplicate_callback():
                        self._deliver(self._new_delivery(delivery.event, duplicate_of=delivery.id))
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _deliver(self, delivery: Delivery) -> None:
        config = self._config
        delivery.url = config.callback_url
        if not delivery.url:
            delivery.state = "skipped"
            delivery.done.set()
            return
        delivery.state = "sending"
        # Sealed once: WeCom's retries resend the same request.
        params, body = self._crypto.envelope(delivery.plaintext, config.agent_id)
        for number in range(1, max(1, config.callback_attempts) + 1):
            started = time.monotonic()
            status, error, text = None, None, ""
            try:
                response = self._http.post(
                    delivery.url,
                    params=params,
                    data=body,
                    headers={"Content-Type": "text/xml"},
                    timeout=config.callback_timeout,
                )
                status, text = response.status_code, response.text[:200]
            except requests.RequestException as exc:
                error = type(exc).__name__
            attempt = Attempt(
                number, time.time(), status, error, int((time.monotonic() - started) * 1000), text
            )
            with self._cond:
                delivery.attempts.append(attempt)
            if status == 200:
                delivery.state = "delivered"
                break
            if number < config.callback_attempts:
                time.sleep(config.callback_retry_pause)
        else:
            delivery.state = "failed"
        delivery.done.set()


def verify_url(config: SimConfig, url: str, timeout: float = 5.0, http: Callable = requests.get) -> dict:
    """Do what WeCom does when a callback URL is saved: GET it with a signed, encrypted echostr
    and check that the app answers exactly the decrypted plaintext, within 1 s."""
    crypto = CallbackCrypto(config.token, config.encoding_aes_key, config.corp_id)
    expected = str(secrets.randbelow(10**19))
    sealed = crypto.seal(expected)
    params = {
        "msg_signature": sealed["msg_signature"],
        "timestamp": sealed["timestamp"],
        "nonce": sealed["nonce"],
        "echostr": sealed["encrypt"],
    }
    started = time.monotonic()
    try:
        response = http(url, params=params, timeout=timeout)
    except requests.RequestException as exc:
        return {"ok": False, "url": url, "error": type(exc).__name__, "expected": expected}
    elapsed = time.monotonic() - started
    body = response.text
    return {
        "ok": response.status_code == 200 and body == expected and elapsed <= 1.0,
        "url": url,
        "status": response.status_code,
        "body": body[:200],
        "expected": expected,
        "matches": body == expected,
        "elapsed_ms": int(elapsed * 1000),
    }

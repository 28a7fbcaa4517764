"""World: the simulator's whole in-memory state and the machinery around it.

One World per simulator. Werkzeug serves requests on many threads, so every read or change
of the stores happens under ``world.lock`` (the API dispatcher and control routes take it).
Callback delivery and the ticker run on their own threads and take the lock only briefly.
"""

from __future__ import annotations

import itertools
import math
import random
import secrets
import string
import threading
from collections import defaultdict, deque

from . import transfers
from .callbacks import CallbackDispatcher, Delivery
from .clock import SimClock
from .config import SimConfig
from .entities import (
    ContactWay,
    Customer,
    Department,
    Follow,
    GroupChat,
    OneTimeCode,
    SentMessage,
    Tag,
    TagGroup,
    Token,
    Transfer,
    User,
    WelcomeCode,
)
from .errors import ApiError
from .events import Event
from .faults import FaultInjector
from .limits import CallCounters, ConcurrencyLimiter, RateLimiter

ALNUM = string.ascii_letters + string.digits


class FollowIndex:
    """Follow relations, indexed by rep and by customer."""

    def __init__(self):
        self._by_user: dict[str, dict[str, Follow]] = defaultdict(dict)
        self._by_customer: dict[str, dict[str, Follow]] = defaultdict(dict)

    def add(self, follow: Follow) -> None:
        self._by_user[follow.userid][follow.external_userid] = follow
        self._by_customer[follow.external_userid][follow.userid] = follow

    def remove(self, userid: str, external_userid: str) -> Follow | None:
        follow = self._by_user.get(userid, {}).pop(external_userid, None)
        self._by_customer.get(external_userid, {}).pop(userid, None)
        return follow

    def get(self, userid: str, external_userid: str) -> Follow | None:
        return self._by_user.get(userid, {}).get(external_userid)

    def of_user(self, userid: str) -> list[Follow]:
        """The rep's customers, oldest first."""
        return sorted(self._by_user.get(userid, {}).values(), key=lambda f: (f.createtime, f.external_userid))

    def of_customer(self, external_userid: str) -> list[Follow]:
        """The customer's reps, oldest first."""
        return sorted(
            self._by_customer.get(external_userid, {}).values(), key=lambda f: (f.createtime, f.userid)
        )

    def count_for_user(self, userid: str) -> int:
        return len(self._by_user.get(userid, {}))

    def all(self) -> list[Follow]:
        return [f for follows in self._by_user.values() for f in follows.values()]

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_user.values())


class World:
    """The simulated corp, its customers and the WeChat side, plus clock, faults and callbacks."""

    def __init__(self, config: SimConfig | None = None):
        self.config = config or SimConfig()
        self.lock = threading.RLock()
        self.clock = SimClock(self.config.time_scale)
        # Seeded PRNGs on purpose: ids, rep picks and fault dice must be reproducible. Tokens
        # and codes come from ``secrets`` instead (new_secret).
        self.rng = random.Random(self.config.seed)  # noqa: S311
        fault_seed = None if self.config.seed is None else self.config.seed + 1
        self.faults = FaultInjector(random.Random(fault_seed))  # noqa: S311
        self.counters = CallCounters()
        self.rate = RateLimiter()
        self.concurrency = ConcurrencyLimiter()
        self.callbacks = CallbackDispatcher(self.config, self.faults)
        self._ticker: threading.Thread | None = None
        self._stop = threading.Event()
        self._init_stores()

    def _init_stores(self) -> None:
        self.departments: dict[int, Department] = {1: Department(1, "Headquarters", 0)}
        self.users: dict[str, User] = {}
        self.customers: dict[str, Customer] = {}
        self.by_unionid: dict[str, str] = {}
        self.by_openid: dict[str, str] = {}
        self.follows = FollowIndex()
        self.contact_ways: dict[str, ContactWay] = {}
        self.tag_groups: dict[str, TagGroup] = {}
        self.tags: dict[str, Tag] = {}
        self.welcome_codes: dict[str, WelcomeCode] = {}
        self.welcomes: list[dict] = []
        self.chatting: set[tuple[str, str]] = set()
        self.transfers: list[Transfer] = []
        self.next_due = math.inf  # earliest due_at of a waiting transfer: settle() is a no-op before it
        self.transfer_ids = itertools.count(1)
        self.group_chats: dict[str, GroupChat] = {}
        self.chat_transfers: list[dict] = []
        self.messages: list[SentMessage] = []
        self.msg_windows: dict[str, deque[float]] = defaultdict(deque)
        self.dup_index: dict[tuple[str, str], tuple[float, str]] = {}
        self.tokens: dict[str, Token] = {}
        self.codes: dict[str, OneTimeCode] = {}
        self.jscode_windows: dict[str, deque[float]] = defaultdict(deque)
        self.tickets: dict[str, tuple[str, float]] = {}
        self.pending_ids: dict[str, str] = {}

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        """Start the callback worker and the ticker that completes due transfers."""
        self.callbacks.start()
        if self._ticker and self._ticker.is_alive():
            return
        self._stop.clear()
        self._ticker = threading.Thread(target=self._tick, name="sim-ticker", daemon=True)
        self._ticker.start()

    def stop(self) -> None:
        """Stop the background threads."""
        self._stop.set()
        if self._ticker:
            self._ticker.join(2)
        self.callbacks.stop()

    def _tick(self) -> None:
        # Transfers fall due as simulator time passes, with or without requests: settle them
        # in the background so their callbacks go out on time.
        while not self._stop.wait(self.config.tick_interval):
            with self.lock:
                self.settle()

    def reset(self) -> None:
        """Empty world: stores, counters, faults, callback history and clock offset cleared."""
        with self.lock:
            self._init_stores()
            self.counters.clear()
            self.rate.clear()
            self.faults.clear()
            self.callbacks.clear()
            self.clock.reset()
            self.rng.seed(self.config.seed)

    # -- time and ids ---------------------------------------------------------------------
    def now(self) -> float:
        """Simulator time."""
        return self.clock.now()

    def now_int(self) -> int:
        return int(self.clock.now())

    def new_id(self, prefix: str, length: int, alphabet: str = ALNUM) -> str:
        """A fresh id shaped like WeCom's (``wm…`` customers, ``wr…`` chats, ``et…`` tags)."""
        return prefix + "".join(self.rng.choice(alphabet) for _ in range(length))

    @staticmethod
    def new_secret(length: int = 32) -> str:
        """An unguessable value for tokens and codes."""
        return secrets.token_urlsafe(length)[:length]

    # -- events ---------------------------------------------------------------------------
    def emit(self, event: Event) -> Delivery:
        """Queue a callback; the dispatcher delivers it off this thread."""
        return self.callbacks.enqueue(event)

    def settle(self) -> list[Delivery]:
        """Apply everything due by now (transfer completions); return the callbacks queued."""
        return transfers.settle(self)

    # -- lookups shared by several areas ----------------------------------------------------
    def require_user(self, userid: str | None, *, active: bool = True) -> User:
        """The user, or 41009 (missing) / 60111 (unknown, or resigned when ``active``)."""
        if not userid:
            raise ApiError(41009)
        user = self.users.get(userid)
        if user is None or (active and not user.active):
            raise ApiError(60111, f"userid not found: {userid}")
        return user

    def contact_limit(self, user: User) -> int:
        return self.config.default_contact_limit if user.contact_limit is None else user.contact_limit

    def at_contact_limit(self, user: User) -> bool:
        return self.follows.count_for_user(user.userid) >= self.contact_limit(user)

"""Fault injection: make WeCom misbehave on purpose so the app's resilience can be tested.

API faults answer a share of calls with 45009, 45033, -1 or an HTTP 5xx, or delay them.
Callback faults deliver some events twice or shuffle a batch out of order.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from typing import Any

from .errors import ControlError

DEFAULT_ERRORS = (45009, 45033, -1, 500)


@dataclass
class Fault:
    """What to do to one call: wait ``delay`` seconds, then maybe fail."""

    delay: float = 0.0
    errcode: int | None = None
    http_status: int | None = None


class FaultInjector:
    """Thread-safe fault settings and the dice that apply them."""

    def __init__(self, rng: random.Random):
        self._rng = rng
        self._lock = threading.Lock()
        self.injected = 0
        self.clear()

    def clear(self) -> None:
        """No faults."""
        self.rate = 0.0
        self.errors: tuple[int, ...] = DEFAULT_ERRORS
        self.delay_ms = 0
        self.delay_rate = 1.0
        self.paths: tuple[str, ...] = ()
        self.side = "wecom"
        self.times: int | None = None
        self.callback_duplicate_rate = 0.0
        self.callback_shuffle = False

    def configure(self, settings: dict[str, Any]) -> dict[str, Any]:
        """Replace the fault settings. Keys: rate (0..1), errors (errcodes; 5xx means an HTTP
        status), delay_ms, delay_rate, paths (API path prefixes, empty = all), side
        ("wecom" | "wechat" | "all"), times (only the next N matching calls), callback_duplicate_rate,
        callback_shuffle."""
        known = {
            "rate",
            "errors",
            "delay_ms",
            "delay_rate",
            "paths",
            "side",
            "times",
            "callback_duplicate_rate",
            "callback_shuffle",
        }
        unknown = set(settings) - known
        if unknown:
            raise ControlError(400, f"unknown fault settings: {', '.join(sorted(unknown))}")
        try:
            rate = float(settings.get("rate", 1.0 if settings.get("times") else 0.0))
            errors = tuple(int(e) for e in settings.get("errors", DEFAULT_ERRORS))
            delay_ms = int(settings.get("delay_ms", 0))
            delay_rate = float(settings.get("delay_rate", 1.0))
            paths = tuple(str(p).strip("/") for p in settings.get("paths", ()))
            times = settings.get("times")
            times = None if times is None else int(times)
            dup = float(settings.get("callback_duplicate_rate", 0.0))
        except (TypeError, ValueError) as exc:
            raise ControlError(400, f"bad fault settings: {exc}") from exc
        side = settings.get("side", "wecom")
        if not (0 <= rate <= 1 and 0 <= delay_rate <= 1 and 0 <= dup <= 1):
            raise ControlError(400, "rates must be between 0 and 1")
        if side not in ("wecom", "wechat", "all"):
            raise ControlError(400, "side must be wecom, wechat or all")
        if rate > 0 and not errors:
            raise ControlError(400, "errors must not be empty when rate > 0")
        with self._lock:
            self.clear()
            self.rate, self.errors, self.delay_ms, self.delay_rate = rate, errors, delay_ms, delay_rate
            self.paths, self.side, self.times = paths, side, times
            self.callback_duplicate_rate = dup
            self.callback_shuffle = bool(settings.get("callback_shuffle", False))
        return self.to_dict()

    def pick(self, path: str, side: str) -> Fault | None:
        """The fault for this call, or None. Consumes one of ``times`` when it matches."""
        with self._lock:
            if self.side not in (side, "all"):
                return None
            if self.paths and not any(path.startswith(p) for p in self.paths):
                return None
            if self.times is not None:
                if self.times <= 0:
                    return None
                self.times -= 1
            fault = Fault()
            if self.delay_ms and self._rng.random() < self.delay_rate:
                fault.delay = self.delay_ms / 1000
            if self.rate and self._rng.random() < self.rate:
                code = self._rng.choice(self.errors)
                if 500 <= code <= 599:
                    fault.http_status = code
                else:
                    fault.errcode = code
                self.injected += 1
            if not (fault.delay or fault.errcode is not None or fault.http_status):
                return None
            return fault

    def duplicate_callback(self) -> bool:
        """Should this callback be delivered a second time?"""
        with self._lock:
            return bool(self.callback_duplicate_rate) and self._rng.random() < self.callback_duplicate_rate

    def shuffle(self, batch: list) -> None:
        """Shuffle a batch of queued callbacks in place when the shuffle fault is on."""
        with self._lock:
            if self.callback_shuffle and len(batch) > 1:
                self._rng.shuffle(batch)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rate": self.rate,
            "errors": list(self.errors),
            "delay_ms": self.delay_ms,
            "delay_rate": self.delay_rate,
            "paths": list(self.paths),
            "side": self.side,
            "times": self.times,
            "callback_duplicate_rate": self.callback_duplicate_rate,
            "callback_shuffle": self.callback_shuffle,
            "injected": self.injected,
        }

"""Per-API call counters, WeCom's frequency limit (45009) and concurrency limit (45033)."""

from __future__ import annotations

import threading
from collections import Counter, defaultdict


class CallCounters:
    """How many times each API was called and what it answered."""

    def __init__(self):
        self._lock = threading.Lock()
        self._calls: Counter[str] = Counter()
        self._codes: dict[str, Counter[int]] = defaultdict(Counter)

    def record(self, path: str, errcode: int) -> None:
        """Count one call to ``path`` answered with ``errcode`` (HTTP failures as their status)."""
        with self._lock:
            self._calls[path] += 1
            self._codes[path][errcode] += 1

    def calls(self, path: str) -> int:
        with self._lock:
            return self._calls[path]

    def to_dict(self) -> dict:
        with self._lock:
            return {
                path: {"calls": n, "errcodes": {str(k): v for k, v in self._codes[path].items()}}
                for path, n in sorted(self._calls.items())
            }

    def clear(self) -> None:
        with self._lock:
            self._calls.clear()
            self._codes.clear()


class RateLimiter:
    """Fixed windows per key: at most ``per_minute`` calls in a simulator minute and
    ``per_hour`` in a simulator hour. WeCom blocks the rest of the window, and so does this."""

    def __init__(self):
        self._lock = threading.Lock()
        self._minute: Counter[tuple[str, int]] = Counter()
        self._hour: Counter[tuple[str, int]] = Counter()

    def allow(self, key: str, now: float, per_minute: int, per_hour: int) -> bool:
        """Count a call; False when it is over either limit."""
        minute, hour = (key, int(now // 60)), (key, int(now // 3600))
        with self._lock:
            self._minute[minute] += 1
            self._hour[hour] += 1
            # Forget old windows so a long run does not grow without bound.
            if len(self._minute) > 10000:
                self._prune(now)
            return self._minute[minute] <= per_minute and self._hour[hour] <= per_hour

    def _prune(self, now: float) -> None:
        current_minute, current_hour = int(now // 60), int(now // 3600)
        self._minute = Counter({k: v for k, v in self._minute.items() if k[1] >= current_minute})
        self._hour = Counter({k: v for k, v in self._hour.items() if k[1] >= current_hour})

    def clear(self) -> None:
        with self._lock:
            self._minute.clear()
            self._hour.clear()


class ConcurrencyLimiter:
    """Counts calls in flight; refuses one that would exceed the limit (45033)."""

    def __init__(self):
        self._lock = threading.Lock()
        self.in_flight = 0
        self.peak = 0

    def try_acquire(self, limit: int) -> bool:
        with self._lock:
            if self.in_flight >= limit:
                return False
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            return True

    def release(self) -> None:
        with self._lock:
            self.in_flight -= 1

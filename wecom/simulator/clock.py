"""The simulator's clock: real time, sped up by a time scale, plus a manual offset.

WeCom's slow rules (24 h transfer acceptance, 7200 s tokens, 30 messages a minute) run on this
clock so tests can cover them in seconds with ``advance`` or a large ``time_scale``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class SimClock:
    """now = anchor + (real elapsed since anchor) * time_scale + offset."""

    def __init__(self, time_scale: float = 1.0, real: Callable[[], float] = time.time):
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self._real = real
        self._lock = threading.Lock()
        self._anchor_real = real()
        self._anchor_sim = self._anchor_real
        self._scale = float(time_scale)
        self._offset = 0.0

    def now(self) -> float:
        """Current simulator time (epoch seconds)."""
        with self._lock:
            return self._now_locked()

    def _now_locked(self) -> float:
        return self._anchor_sim + (self._real() - self._anchor_real) * self._scale + self._offset

    def real(self) -> float:
        """Current real (wall-clock) time, for rules that must stay in real seconds."""
        return self._real()

    @property
    def time_scale(self) -> float:
        return self._scale

    @property
    def offset(self) -> float:
        return self._offset

    def set_time_scale(self, time_scale: float) -> None:
        """Change the speed from now on; time already elapsed keeps its old speed."""
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        with self._lock:
            # Re-anchor so the change does not jump the clock.
            self._anchor_sim = self._now_locked() - self._offset
            self._anchor_real = self._real()
            self._scale = float(time_scale)

    def advance(self, seconds: float) -> float:
        """Jump forward by ``seconds`` of simulator time; return the new time."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._offset += float(seconds)
            return self._now_locked()

    def reset(self) -> None:
        """Back to real time at the current scale, offset cleared."""
        with self._lock:
            self._anchor_real = self._real()
            self._anchor_sim = self._anchor_real
            self._offset = 0.0

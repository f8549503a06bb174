"""Exponential backoff with jitter and a request-rate limiter (clock and sleep injectable)."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable


class Backoff:
    """Delays base·factor^n capped at ``cap``, with "equal jitter" (between d/2 and d).

    No attempt limit: a feed must keep trying for as long as it runs; ``reset()`` after a
    connection that delivered data starts again from ``base``.

    >>> b = Backoff(base=1.0, factor=2.0, cap=8.0, rng=random.Random(1))
    >>> [0.5 <= b.next_delay() <= 1.0, 1.0 <= b.next_delay() <= 2.0]
    [True, True]
    """

    def __init__(
        self,
        base: float = 0.5,
        factor: float = 2.0,
        cap: float = 30.0,
        rng: random.Random | None = None,
    ) -> None:
        if base <= 0 or factor < 1 or cap < base:
            msg = f"invalid backoff: base={base}, factor={factor}, cap={cap}"
            raise ValueError(msg)
        self.base = base
        self.factor = factor
        self.cap = cap
        self._rng = rng or random.Random()
        self.attempt = 0

    def next_delay(self) -> float:
        ceiling = min(self.cap, self.base * self.factor ** min(self.attempt, 64))
        self.attempt += 1
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    def reset(self) -> None:
        self.attempt = 0


class RateLimiter:
    """At most ``rate`` calls per second, by spacing calls at least 1/rate apart (thread-safe)."""

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            msg = f"rate must be positive, got {rate}"
            raise ValueError(msg)
        self.interval = 1.0 / rate
        self._clock = clock
        self._sleep = sleep
        self._next = float("-inf")
        self._lock = threading.Lock()

    def acquire(self) -> None:
        """Block until the next call is allowed."""
        with self._lock:
            now = self._clock()
            wait = self._next - now
            if wait > 0:
                self._sleep(wait)
                now = self._clock()
            self._next = max(now, self._next) + self.interval

"""The live heartbeat's arrival clock: when did input last *arrive* in this process?

Stall detection measures silence, not lateness (DESIGN invariant 11). A step right after the
source stamps every batch's arrival with the process clock (``stamp``); the account stage's
heartbeat asks ``silence(since)`` and gets a plain ``operators.trading.feed_health.Silence``, so the
operators never read a clock. Catching up a backlog or replaying an old date arrives fast
and is never silent, whatever its event times say.

Two refinements keep the flow's own waiting from looking like a dead feed:
- time a sink held the flow thread for a reason of its own (PostgreSQL backpressure) is
  ``excuse``d: it is added to the last arrival, so it does not count as silence;
- a quiet spell that ends while the heartbeat could not run (the flow blocked on the Kafka
  sink during a broker outage, then input resumed) is remembered for a while, so the next
  heartbeat still reports it.

One clock per process (Bytewax builds the flow once per process): with several processes,
each judges the partitions it reads, like ``flows.sources.aligned_kafka``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bytewax.connectors.kafka import KafkaError
from confluent_kafka import KafkaError as ConfluentError

from operators.trading.feed_health import Silence

log = logging.getLogger(__name__)

#: quiet spells shorter than this are not remembered (they never make a stall)
MIN_SPELL_S = 1.0


class ArrivalClock:
    """Last arrival time and the recent quiet spells of one process's input."""

    def __init__(self, clock: Callable[[], float] = time.time, keep: int = 64) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.last: float | None = None  # the last arrival: it names the current spell
        self._excused = 0.0  # seconds of the current spell the flow itself held input back
        self._spells: deque[tuple[float, float]] = deque(maxlen=keep)  # (start, end) ended

    def arrived(self) -> None:
        """Input arrived now."""
        now = self._clock()
        with self._lock:
            last = self.last
            if last is not None and now - last - self._excused >= MIN_SPELL_S:
                self._spells.append((last, now - self._excused))
            self.last = now
            self._excused = 0.0

    def excuse(self, seconds: float) -> None:
        """The flow itself held input back for ``seconds`` (a sink's backpressure)."""
        if seconds <= 0:
            return
        with self._lock:
            if self.last is not None:
                self._excused = min(self._excused + seconds, self._clock() - self.last)

    def now(self) -> float:
        return self._clock()

    def silence(self, since: float) -> Silence | None:
        """The longest quiet spell going on now or ended after ``since`` (the caller's last
        heartbeat); None before the first arrival (the flow may still be starting)."""
        now = self._clock()
        with self._lock:
            if self.last is None:
                return None
            start, length = self.last, now - self.last - self._excused
            for s, e in self._spells:
                if e > since and e - s > length:
                    start, length = s, e - s
        return Silence(datetime.fromtimestamp(start, UTC), length)

    def stamp(self, batch: list[Any]) -> list[Any]:
        """Pass-through step after the source: record the arrival, drop transient broker
        errors (they are no input, and no dead letter either: librdkafka reconnects)."""
        if not batch:
            return batch
        kept = [m for m in batch if not _transient(m)]
        if len(kept) != len(batch):
            _log_transient(batch)
        if kept:
            self.arrived()
        return kept


_TRANSIENT = frozenset({
    ConfluentError._TRANSPORT, ConfluentError._ALL_BROKERS_DOWN, ConfluentError._RESOLVE,
    ConfluentError._TIMED_OUT, ConfluentError._DESTROY,
})  # fmt: skip


def _transient(item: Any) -> bool:
    """A broker/transport error (broker down, connection lost): no record behind it."""
    if not isinstance(item, KafkaError):
        return False
    err = item.err
    return bool(err.code() in _TRANSIENT or err.retriable()) and not err.fatal()


_last_warning = [0.0]


def _log_transient(batch: list[Any]) -> None:
    now = time.monotonic()
    if now - _last_warning[0] >= 10.0:  # one line per 10 s of an outage
        _last_warning[0] = now
        errors = {str(m.err) for m in batch if _transient(m)}
        log.warning("Kafka unreachable, the consumer reconnects: %s", "; ".join(sorted(errors)))

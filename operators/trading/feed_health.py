"""Feed latency and liveness monitor: turns tick timing into FEED_* risk events.

Two questions, both answered without reading a clock (``now`` is passed in):

- **Lagging** — per instrument, ``lag = ts_recv − ts_event``. ``lag_ticks`` consecutive ticks
  of one instrument above ``lag_threshold_ms`` (default 5 ticks over 500 ms) emit one
  ``FEED_LAGGING`` for that instrument; ``lag_ticks`` consecutive ticks back at or under the
  threshold emit ``FEED_RECOVERED`` (hysteresis, so a noisy lag does not flap). Counting
  ticks rather than seconds makes the rule independent of how often an instrument trades and
  identical in replay.
- **Stalled** — ``check_stalled(now)``: no tick from the whole subscribed set for
  ``stall_after_s`` seconds (default 10) emits one ``FEED_STALLED``; the next tick emits
  ``FEED_RECOVERED``. ``now`` must be on the clock named by ``stall_clock``: ``"event"``
  (compared with the latest ``ts_event``; replays pass event time) or ``"recv"`` (compared with
  the latest ``ts_recv``; a live caller passes its own clock).

- **Silent** — live only: ``silent_feed(silence, ts_event, limit_s)``. The flows layer stamps
  every input's *arrival* with its process clock and hands the heartbeat a ``Silence`` (when
  the current quiet spell began, how long it lasted); here it becomes one FEED_STALLED. This
  never compares the wall clock with exchange time (DESIGN invariant 11): a backlog, an old
  date replayed live or a skewed exchange clock is not silence.

All events are feed-wide risk events: ``account="*"``; lag events name the instrument token.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from mypy_extensions import mypyc_attr

from operators import _native
from operators.events import RiskEvent, Tick

STATE_VERSION = 1
FEED_ACCOUNT = "*"


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass(frozen=True, slots=True)
class FeedHealthConfig:
    lag_threshold_ms: float = 500.0
    lag_ticks: int = 5
    stall_after_s: float = 10.0
    stall_clock: Literal["event", "recv"] = "event"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lag_threshold_ms) and self.lag_threshold_ms >= 0):
            msg = f"lag_threshold_ms must be finite and >= 0, got {self.lag_threshold_ms!r}"
            raise ValueError(msg)
        if self.lag_ticks < 1:
            msg = f"lag_ticks must be >= 1, got {self.lag_ticks!r}"
            raise ValueError(msg)
        if not (math.isfinite(self.stall_after_s) and self.stall_after_s > 0):
            msg = f"stall_after_s must be finite and > 0, got {self.stall_after_s!r}"
            raise ValueError(msg)


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass
class FeedHealthState:
    version: int = STATE_VERSION
    #: token -> last observed lag in milliseconds (the per-instrument latency metric)
    last_lag_ms: dict[str, float] = field(default_factory=dict)
    #: token -> consecutive ticks on the "wrong" side of the threshold for its current status
    streak: dict[str, int] = field(default_factory=dict)
    #: tokens currently reported as lagging
    lagging: set[str] = field(default_factory=set)
    #: latest tick time seen on the stall clock (epoch seconds), None before the first tick
    last_tick_ts: float | None = None
    stalled: bool = False


@mypyc_attr(allow_interpreted_subclasses=True)
class FeedHealthLogic:
    """``observe(tick)`` and ``check_stalled(now)``, each returning the events they cause."""

    def __init__(
        self, config: FeedHealthConfig | None = None, state: FeedHealthState | None = None
    ) -> None:
        self.config = config or FeedHealthConfig()
        self.state = FeedHealthState()
        if state is not None:
            self.restore(state)

    def snapshot(self) -> FeedHealthState:
        return copy.deepcopy(self.state)

    def restore(self, state: FeedHealthState) -> None:
        if state.version != STATE_VERSION:
            msg = f"feed health state v{state.version} cannot be restored by v{STATE_VERSION}"
            raise ValueError(msg)
        self.state = copy.deepcopy(state)

    def drop_tokens(self, gone: Callable[[str], bool]) -> None:
        """Forget the per-token lag state of the tokens ``gone`` says (expired instruments)."""
        st = self.state
        for token in [t for t in st.last_lag_ms if gone(t)]:
            del st.last_lag_ms[token]
        for token in [t for t in st.streak if gone(t)]:
            del st.streak[token]
        for token in [t for t in st.lagging if gone(t)]:
            st.lagging.discard(token)

    def lag_ms(self, token: str) -> float | None:
        """The latest ``ts_recv − ts_event`` of ``token`` in milliseconds."""
        return self.state.last_lag_ms.get(token)

    def observe(self, tick: Tick) -> list[RiskEvent]:
        """Record one tick's latency; may emit FEED_LAGGING / FEED_RECOVERED."""
        seen = tick.ts_event if self.config.stall_clock == "event" else tick.ts_recv
        return list(self._observe(tick, seen.timestamp()))

    def on_tick(self, tick: Tick) -> Sequence[RiskEvent]:
        """``check_stalled(tick.ts_event)`` then ``observe(tick)``: the events of both, in that
        order (what a stage running on event-time ordered ticks asks of every tick). With the
        event clock the tick's epoch seconds are computed once for both; usually ``()``."""
        cfg, st = self.config, self.state
        ts = tick.ts_event
        now_s = ts.timestamp()
        last = st.last_tick_ts
        if last is None or st.stalled or cfg.stall_clock != "event":
            return self._stall_check_and_observe(tick, now_s)
        if now_s - last >= cfg.stall_after_s:
            return [*self._stalled(ts, now_s - last, last), *self._observe(tick, now_s)]
        return self._observe(tick, now_s)  # the common case: a live feed, not stalled

    def _stall_check_and_observe(self, tick: Tick, now_s: float) -> Sequence[RiskEvent]:
        st = self.state
        seen_s = now_s if self.config.stall_clock == "event" else tick.ts_recv.timestamp()
        last = st.last_tick_ts
        if not st.stalled and last is not None and now_s - last >= self.config.stall_after_s:
            stalled = self._stalled(tick.ts_event, now_s - last, last)
            return [*stalled, *self._observe(tick, seen_s)]
        return self._observe(tick, seen_s)

    def _observe(self, tick: Tick, seen_s: float) -> Sequence[RiskEvent]:
        cfg, st = self.config, self.state
        last = st.last_tick_ts
        if last is None or seen_s > last:
            st.last_tick_ts = seen_s
        out: list[RiskEvent] | tuple[()] = ()
        if st.stalled:
            st.stalled = False
            out = [self._event(tick.ts_event, tick.ts_recv, "FEED_RECOVERED",
                               f"ticks resumed: first tick token={tick.token}")]  # fmt: skip
        lag = (tick.ts_recv - tick.ts_event).total_seconds() * 1000.0
        token = tick.token
        st.last_lag_ms[token] = lag
        over = lag > cfg.lag_threshold_ms
        streak = st.streak
        count = streak.get(token, 0) + 1 if over != (token in st.lagging) else 0
        if count < cfg.lag_ticks:
            streak[token] = count
            return out
        return [*out, *self._lag_status_changes(tick, token, lag, over)]

    def _lag_status_changes(
        self, tick: Tick, token: str, lag: float, over: bool
    ) -> list[RiskEvent]:
        """``lag_ticks`` ticks in a row on the other side of the threshold: flip and report."""
        cfg, st = self.config, self.state
        st.streak[token] = 0
        detail = (
            f"lag_ms={lag:.0f} threshold_ms={cfg.lag_threshold_ms:.0f} "
            f"consecutive_ticks={cfg.lag_ticks}"
        )
        if over:
            st.lagging.add(token)
            return [self._event(tick.ts_event, tick.ts_recv, "FEED_LAGGING", detail, token)]
        st.lagging.discard(token)
        return [
            self._event(tick.ts_event, tick.ts_recv, "FEED_RECOVERED", f"lag back: {detail}", token)
        ]

    def check_stalled(self, now: datetime) -> list[RiskEvent]:
        """FEED_STALLED once when no tick arrived for ``stall_after_s`` before ``now``.

        Before the first tick nothing is reported (the flow may still be starting).
        """
        st = self.state
        if st.stalled or st.last_tick_ts is None:
            return []
        silent = now.timestamp() - st.last_tick_ts
        if silent < self.config.stall_after_s:
            return []
        return self._stalled(now, silent, st.last_tick_ts)

    def _stalled(self, now: datetime, silent: float, last_tick_ts: float) -> list[RiskEvent]:
        self.state.stalled = True
        last = datetime.fromtimestamp(last_tick_ts, UTC).isoformat()
        detail = (
            f"no tick for {silent:.1f}s (limit {self.config.stall_after_s:.1f}s, "
            f"clock={self.config.stall_clock}, last tick {last})"
        )
        return [self._event(now, now, "FEED_STALLED", detail)]

    @staticmethod
    def _event(
        ts_event: datetime,
        ts_recv: datetime,
        kind: Literal["FEED_LAGGING", "FEED_STALLED", "FEED_RECOVERED"],
        detail: str,
        instrument: str = "",
    ) -> RiskEvent:
        return RiskEvent(
            ts_event=ts_event,
            ts_recv=ts_recv,
            account=FEED_ACCOUNT,
            kind=kind,
            detail=detail,
            instrument=instrument,
        )


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass(frozen=True, slots=True)
class Silence:
    """A quiet spell of the input, measured by arrival (process clock, from the flows layer).

    ``since``: when the last input before it arrived (it identifies the spell, so one spell is
    reported once); ``seconds``: how long nothing arrived, up to now or to when input resumed.
    """

    since: datetime
    seconds: float


def silent_feed(silence: Silence, ts_event: datetime, limit_s: float) -> RiskEvent | None:
    """FEED_STALLED for a quiet spell of at least ``limit_s``, else None.

    ``ts_event`` is the event time the stall is journaled at (the latest input's: the stall
    comes after it in market time; with a replayed date, "now" would be another day).
    """
    if silence.seconds < limit_s:
        return None
    detail = (
        f"no input arrived for {silence.seconds:.1f}s (limit {limit_s:.1f}s, arrival clock, "
        f"last arrival {silence.since.isoformat()})"
    )
    return RiskEvent(
        ts_event=ts_event,
        ts_recv=silence.since + timedelta(seconds=silence.seconds),
        account=FEED_ACCOUNT,
        kind="FEED_STALLED",
        detail=detail,
    )


_native.picklable(FeedHealthConfig, FeedHealthState, FeedHealthLogic, Silence)

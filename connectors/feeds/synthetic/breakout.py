"""The planted momentum breakout: rally, tight flag, shake-out dip, volume burst that re-crosses.

``momentum_breakout`` enters only when, on one closed 1-minute bar, the 9-EMA crosses above the
21-EMA, the close is > 0.5 % above the session VWAP, volume is > 1.5 x its 20-bar average,
RSI(14) is in 50-70 and the ADX rule says TRENDING. Those pull against each other: a rally
strong enough to lift price well above VWAP leaves the 21-EMA far behind and RSI near 90. So a
real bull flag is planted, steered minute by minute from the latent bars so far:

1. RALLY: a steady climb to ~0.7 % above the VWAP (the trend that lifts ADX);
2. FLAG: a tight, gently falling consolidation until the EMAs have nearly converged and the
   RSI memory of the rally has faded;
3. DIP: a short shake-out until the 9-EMA is below the 21-EMA;
4. BURST: one bar sized to re-cross the EMAs with RSI ~60, on a volume spike, then follow-
   through.

The tracker mirrors the operators' indicator definitions (TA-Lib seeding) on the *latent*
minute closes, which the published bars follow to within a tick or two; the generator does not
import the operators it is meant to test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

RALLY, FLAG, DIP, BURST, FOLLOW, DONE = range(6)

RALLY_MINUTES = 14
FLAG_MINUTES = (10, 20)
DIP_MINUTES = (3, 5)
BURST_MINUTES = 3
#: The host trending stretch is at least this long (covers the longest plan).
PLAN_MINUTES = RALLY_MINUTES + FLAG_MINUTES[1] + DIP_MINUTES[1] + BURST_MINUTES + 1
#: Target distance above VWAP when the burst fires (strategy threshold is 0.5 %).
TARGET_PREMIUM = 0.0072
_RSI_TARGET = 60.0
_RSI_CEILING = 67.0
_MIN_PREMIUM = 0.0062


@dataclass
class _Ema:
    period: int
    count: int = 0
    seed: float = 0.0
    value: float | None = None

    def update(self, x: float) -> None:
        self.count += 1
        if self.value is not None:
            self.value += (x - self.value) * 2.0 / (self.period + 1.0)
        else:
            self.seed += x
            if self.count == self.period:
                self.value = self.seed / self.period


@dataclass
class BarTracker:
    """EMA 9/21 and Wilder RSI(14) of the latent minute closes, as the market stage computes."""

    ema9: _Ema = field(default_factory=lambda: _Ema(9))
    ema21: _Ema = field(default_factory=lambda: _Ema(21))
    count: int = 0
    prev: float = 0.0
    gain: float = 0.0
    loss: float = 0.0

    def update(self, close: float) -> None:
        self.ema9.update(close)
        self.ema21.update(close)
        self.count += 1
        if self.count > 1:
            change = close - self.prev
            up, down = max(change, 0.0), max(-change, 0.0)
            if self.count <= 15:  # TA-Lib seeds with the mean of the first 14 changes
                self.gain += up / 14.0
                self.loss += down / 14.0
            else:
                self.gain = (self.gain * 13.0 + up) / 14.0
                self.loss = (self.loss * 13.0 + down) / 14.0
        self.prev = close

    @property
    def ready(self) -> bool:
        return self.ema21.value is not None and self.count > 15

    def gap(self) -> float:
        """EMA9 - EMA21 (price units)."""
        assert self.ema9.value is not None
        assert self.ema21.value is not None
        return self.ema9.value - self.ema21.value

    def close_to_cross(self) -> float:
        """Smallest next close that puts EMA9 above EMA21."""
        assert self.ema9.value is not None
        assert self.ema21.value is not None
        k9, k21 = 0.2, 2.0 / 22.0
        return ((1 - k21) * self.ema21.value - (1 - k9) * self.ema9.value) / (k9 - k21)

    def copy(self) -> BarTracker:
        return BarTracker(
            _Ema(9, self.ema9.count, self.ema9.seed, self.ema9.value),
            _Ema(21, self.ema21.count, self.ema21.seed, self.ema21.value),
            self.count,
            self.prev,
            self.gain,
            self.loss,
        )

    def gain_for_rsi(self, rsi: float) -> float:
        """Price gain on the next bar that brings RSI(14) to ``rsi`` (after a down bar: <0)."""
        r = rsi / 100.0
        return 13.0 * (r * self.loss - (1.0 - r) * self.gain) / (1.0 - r)


@dataclass(frozen=True)
class Step:
    """What the plan wants for one minute: total log drift, noise scale, activity change and
    whether the minute trades on a volume spike (sized by the caller from recent volume)."""

    drift: float
    noise: float = 1.0
    activity: float = 0.0
    spike: bool = False


@dataclass
class BreakoutPlan:
    """Minute-by-minute controller of one planted breakout (see module doc)."""

    start: int
    rally: float  # total log rise of the rally phase
    phase: int = RALLY
    in_phase: int = 0
    burst_minute: int | None = None
    #: minutes of the flag: a consolidation, so the regime truth calls them RANGING
    flag_minutes: list[int] = field(default_factory=list)

    def step(self, minute: int, tracker: BarTracker, close: float, sd: float, vwap: float) -> Step:
        """The next minute's plan; ``close`` is the last latent close, ``sd`` the minute's
        log-return standard deviation, ``vwap`` the session's volume-weighted level so far."""
        if self.phase == RALLY and self.in_phase >= RALLY_MINUTES:
            self._enter(FLAG)
        if self.phase == FLAG and self.in_phase >= FLAG_MINUTES[0]:
            converged = tracker.gap() < 1.2 * sd * close
            if converged or self.in_phase >= FLAG_MINUTES[1]:
                self._enter(DIP)
        if self.phase == DIP and self.in_phase >= DIP_MINUTES[0]:
            below = tracker.gap() < -0.15 * sd * close
            if below or self.in_phase >= DIP_MINUTES[1]:
                self._enter(BURST)
        if self.phase in (BURST, FOLLOW) and self.in_phase >= (1 if self.phase == BURST else 2):
            self._enter(FOLLOW if self.phase == BURST else DONE)
        self.in_phase += 1
        if self.phase == RALLY:
            return Step(self.rally / RALLY_MINUTES, 0.8)
        if self.phase == FLAG:
            self.flag_minutes.append(minute)
            return Step(-0.25 * sd, 0.45, -0.15)
        if self.phase == DIP:
            left = max(DIP_MINUTES[0] - self.in_phase + 1, 1)
            return Step(-_dip_drop(tracker, close, sd, left), 0.4)
        if self.phase == BURST:
            self.burst_minute = minute
            # Re-cross with a margin, RSI ~60 and a clear premium over VWAP; never so far that
            # RSI would leave the 50-70 band.
            target = max(
                tracker.close_to_cross() + 0.35 * sd * close,
                close + tracker.gain_for_rsi(_RSI_TARGET),
                close * (1.0 + 0.5 * sd),
                vwap * (1.0 + _MIN_PREMIUM),
            )
            target = min(target, close + max(tracker.gain_for_rsi(_RSI_CEILING), 0.0))
            return Step(math.log(target / close), 0.3, spike=True)
        if self.phase == FOLLOW:
            return Step(0.5 * sd, 0.7, spike=self.in_phase == 1)
        return Step(0.2 * sd)

    def _enter(self, phase: int) -> None:
        self.phase = phase
        self.in_phase = 0


def _dip_drop(tracker: BarTracker, close: float, sd: float, minutes: int) -> float:
    """Smallest per-minute log drop (0.6-3 sd) that puts EMA9 below EMA21 within ``minutes``."""
    drop = 0.6 * sd
    while drop < 3.0 * sd:
        what_if = tracker.copy()
        for j in range(1, minutes + 1):
            what_if.update(close * math.exp(-drop * j))
        if what_if.gap() < -0.3 * sd * close:
            return drop
        drop += 0.2 * sd
    return drop

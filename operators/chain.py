"""Option-chain context per underlying: ATM strike, forward, IV and Greeks, IV percentile.

One ``ChainLogic`` per underlying (the strategy stage is keyed by underlying) sees the index
ticks and the option ticks of that underlying, with each tick's ``Instrument``:

- an ``INDEX`` tick updates the spot; it emits nothing;
- an option (``CE``/``PE``) tick updates that option's quote (mid when both sides are quoted,
  else LTP) and, at most once per event-time second per option, emits an ``OptionAnalytics``
  with Black-76 IV and Greeks (``operators.greeks`` units: theta per day, vega per vol point).

Forward: from put–call parity at the ATM strike of the option's expiry,
``F = K + (C − P)·e^{rT}``, using CE and PE quotes no older than ``parity_max_age_s``; without
such a pair it falls back to ``spot·e^{rT}``. No spot and no pair yet: nothing is emitted.

ATM strike: the listed strike (seen so far, any kind) nearest to the spot (ties: the lower).

IV percentile: once per event-time minute the front expiry's ATM IV (mean of the CE and PE IVs
at the ATM strike, whichever are known) is pushed into a fixed-size ring of
``window_sessions × samples_per_session`` samples (default 5 × 375 one-minute samples, i.e.
five 09:15–15:30 sessions). ``iv_percentile`` on every event is the percentile rank (0–100,
share of samples ≤ the current ATM IV) of the *current* front ATM IV in that window; ``None``
until ``min_samples`` samples exist. It is a chain-level number: all options carry the same.
"""

from __future__ import annotations

import bisect
import copy
import math
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from operators.events import PAISE_PER_RUPEE, Instrument, OptionAnalytics, Tick
from operators.greeks import Flag, Model, greeks, implied_vol
from operators.sessions import ist_date, years_to_expiry

STATE_VERSION = 1


@dataclass(frozen=True, slots=True)
class ChainConfig:
    """Parameters of the chain context (``r`` continuously compounded, per year)."""

    r: float = 0.065
    model: Model = "black76"
    window_sessions: int = 5
    samples_per_session: int = 375
    min_samples: int = 30
    parity_max_age_s: float = 5.0
    throttle_s: int = 1

    def __post_init__(self) -> None:
        if self.window_sessions < 1 or self.samples_per_session < 1:
            msg = "window_sessions and samples_per_session must be >= 1"
            raise ValueError(msg)
        if self.min_samples < 1 or self.throttle_s < 1 or self.parity_max_age_s < 0:
            msg = "min_samples, throttle_s must be >= 1 and parity_max_age_s >= 0"
            raise ValueError(msg)
        if not math.isfinite(self.r):
            msg = f"r must be finite, got {self.r!r}"
            raise ValueError(msg)

    @property
    def capacity(self) -> int:
        return self.window_sessions * self.samples_per_session


@dataclass
class ChainState:
    """Everything a chain needs to resume; plain containers only (picklable)."""

    underlying: str
    version: int = STATE_VERSION
    spot: float | None = None
    spot_ts: float = 0.0
    #: token -> (price in rupees, event time in epoch seconds)
    quotes: dict[str, tuple[float, float]] = field(default_factory=dict)
    #: expiry ordinal -> strike in paise -> kind ("CE"/"PE") -> token
    legs: dict[int, dict[int, dict[str, str]]] = field(default_factory=dict)
    #: token -> last computed IV (None: no solution)
    last_iv: dict[str, float | None] = field(default_factory=dict)
    #: token -> last event-time bucket (epoch seconds // throttle_s) with an emission
    last_emit: dict[str, int] = field(default_factory=dict)
    #: per-minute front ATM IV samples, oldest first (at most ``capacity``)
    iv_samples: list[float] = field(default_factory=list)
    last_sample_minute: int = -1
    #: latest event time seen (epoch seconds): decides which expiry is the front one
    last_ts: float = 0.0


class ChainLogic:
    """``on_tick(tick, instrument) -> list[OptionAnalytics]`` over a ``ChainState``."""

    def __init__(
        self,
        underlying: str,
        config: ChainConfig | None = None,
        state: ChainState | None = None,
    ) -> None:
        self.config = config or ChainConfig()
        self.state = ChainState(underlying=underlying)
        self._ring: deque[float] = deque(maxlen=self.config.capacity)
        self._sorted: list[float] = []
        if state is not None:
            self.restore(state)

    # ---------------------------------------------------------------- persistence

    def snapshot(self) -> ChainState:
        """A deep copy of the state (safe to pickle while the logic keeps running)."""
        self.state.iv_samples = list(self._ring)
        return copy.deepcopy(self.state)

    def restore(self, state: ChainState) -> None:
        if state.version != STATE_VERSION:
            msg = f"chain state v{state.version} cannot be restored by v{STATE_VERSION}"
            raise ValueError(msg)
        self.state = copy.deepcopy(state)
        self._ring = deque(state.iv_samples, maxlen=self.config.capacity)
        self._sorted = sorted(self._ring)

    # ---------------------------------------------------------------- queries

    def front_expiry(self) -> date | None:
        """The nearest listed expiry that has not passed (by the latest event time)."""
        if not self.state.legs:
            return None
        today = ist_date(datetime.fromtimestamp(self.state.last_ts, UTC)).toordinal()
        live = [key for key in self.state.legs if key >= today]
        return date.fromordinal(min(live)) if live else None

    def atm_strike(self, expiry: date | None = None) -> int | None:
        """ATM strike in paise for ``expiry`` (default: the front expiry)."""
        spot = self.state.spot
        expiry = expiry or self.front_expiry()
        if spot is None or expiry is None:
            return None
        strikes = self.state.legs.get(expiry.toordinal())
        if not strikes:
            return None
        spot_paise = spot * PAISE_PER_RUPEE
        return min(strikes, key=lambda k: (abs(k - spot_paise), k))

    def forward(self, expiry: date, ts_event: datetime) -> float | None:
        """Forward for ``expiry`` from ATM put–call parity, else ``spot·e^{rT}``."""
        t = years_to_expiry(ts_event, expiry)
        r = self.config.r
        now = ts_event.timestamp()
        strike = self.atm_strike(expiry)
        if strike is not None:
            pair = self.state.legs[expiry.toordinal()][strike]
            call = self.state.quotes.get(pair.get("CE", ""))
            put = self.state.quotes.get(pair.get("PE", ""))
            max_age = self.config.parity_max_age_s
            if call and put and now - call[1] <= max_age and now - put[1] <= max_age:
                fwd = strike / PAISE_PER_RUPEE + (call[0] - put[0]) * math.exp(r * t)
                if fwd > 0.0:
                    return fwd
        if self.state.spot is None:
            return None
        return self.state.spot * math.exp(r * t)

    def atm_iv(self) -> float | None:
        """Front expiry's ATM IV: mean of the known CE/PE IVs at the ATM strike."""
        expiry = self.front_expiry()
        strike = self.atm_strike(expiry)
        if expiry is None or strike is None:
            return None
        pair = self.state.legs[expiry.toordinal()][strike]
        ivs = [iv for token in pair.values() if (iv := self.state.last_iv.get(token)) is not None]
        return sum(ivs) / len(ivs) if ivs else None

    def iv_percentile(self, iv: float | None = None) -> float | None:
        """Percentile rank (0–100) of ``iv`` (default: current ATM IV) in the trailing window."""
        value = self.atm_iv() if iv is None else iv
        n = len(self._sorted)
        if value is None or n < self.config.min_samples:
            return None
        return 100.0 * bisect.bisect_right(self._sorted, value) / n

    @property
    def iv_sample_count(self) -> int:
        return len(self._ring)

    # ---------------------------------------------------------------- updates

    def on_tick(self, tick: Tick, instrument: Instrument) -> list[OptionAnalytics]:
        """Fold one tick in; return the analytics it triggers (zero or one event)."""
        now = tick.ts_event.timestamp()
        self.state.last_ts = max(self.state.last_ts, now)
        if instrument.kind == "INDEX":
            if tick.ltp > 0:
                self.state.spot = tick.ltp / PAISE_PER_RUPEE
                self.state.spot_ts = now
            self._sample_minute(now)
            return []
        if not instrument.is_option or instrument.expiry is None or instrument.strike <= 0:
            return []
        price_paise = tick.mid
        if not price_paise > 0:
            return []
        token = tick.token
        expiry_key = instrument.expiry.toordinal()
        self.state.legs.setdefault(expiry_key, {}).setdefault(instrument.strike, {})[
            instrument.kind
        ] = token
        self.state.quotes[token] = (price_paise / PAISE_PER_RUPEE, now)
        out: list[OptionAnalytics] = []
        bucket = int(now // self.config.throttle_s)
        if bucket > self.state.last_emit.get(token, -1):
            event = self._analyse(tick, instrument)
            if event is not None:
                self.state.last_emit[token] = bucket
                out.append(event)
        self._sample_minute(now)
        return out

    def _analyse(self, tick: Tick, instrument: Instrument) -> OptionAnalytics | None:
        assert instrument.expiry is not None
        fwd = self.forward(instrument.expiry, tick.ts_event)
        if fwd is None:
            return None
        t = years_to_expiry(tick.ts_event, instrument.expiry)
        price = self.state.quotes[tick.token][0]
        strike = instrument.strike / PAISE_PER_RUPEE
        flag: Flag = "c" if instrument.kind == "CE" else "p"
        r, model = self.config.r, self.config.model
        underlying = fwd if model == "black76" else (self.state.spot or fwd * math.exp(-r * t))
        result = implied_vol(price, underlying, strike, t, r, flag, model)
        self.state.last_iv[tick.token] = result.iv
        g = greeks(underlying, strike, t, r, result.iv, flag, model) if result.iv else None
        return OptionAnalytics(
            ts_event=tick.ts_event,
            ts_recv=tick.ts_recv,
            token=tick.token,
            underlying=self.state.underlying,
            price=price,
            underlying_price=self.state.spot if self.state.spot is not None else fwd,
            forward=fwd,
            strike=strike,
            t_years=t,
            iv=result.iv,
            delta=g.delta if g else None,
            gamma=g.gamma if g else None,
            theta=g.theta if g else None,
            vega=g.vega if g else None,
            iv_percentile=self.iv_percentile(),
        )

    def _sample_minute(self, now: float) -> None:
        """Push the front ATM IV into the ring once per event-time minute."""
        minute = int(now // 60)
        if minute <= self.state.last_sample_minute:
            return
        iv = self.atm_iv()
        if iv is None:
            return
        self.state.last_sample_minute = minute
        if len(self._ring) == self._ring.maxlen:
            old = self._ring[0]
            del self._sorted[bisect.bisect_left(self._sorted, old)]
        self._ring.append(iv)
        bisect.insort(self._sorted, iv)

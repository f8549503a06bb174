"""Option-chain context per underlying: ATM strike, forward, IV and Greeks, IV percentile.

One ``ChainLogic`` per underlying (the strategy stage is keyed by underlying) sees the index
ticks and the option ticks of that underlying, with each tick's ``Instrument``:

- an ``INDEX`` tick updates the spot; it emits nothing;
- an option (``CE``/``PE``) tick updates that option's quote (mid when both sides are quoted,
  else LTP) and, at most once per event-time second per option, emits an ``OptionAnalytics``
  with Black-76 IV and Greeks (``operators.options.greeks`` units: theta per day, vega per vol
  point).

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
from datetime import UTC, date, datetime, time

from mypy_extensions import mypyc_attr

from operators import _native
from operators.events import PAISE_PER_RUPEE, Instrument, OptionAnalytics, Tick
from operators.market.sessions import IST, ist_date, session_close
from operators.options.greeks import Flag, Model, greeks, implied_vol

STATE_VERSION = 1
#: ``operators.market.sessions.years_to_expiry``'s divisor, evaluated the same way (bit-identical
#: t).
_SECONDS_PER_YEAR = 365.0 * 24 * 3600
#: Keep a cached trading date this far (seconds) from midnight IST, where rounding an epoch
#: float to microseconds could tip ``ist_date`` into the neighbouring day.
_DAY_MARGIN_S = 1e-3


@mypyc_attr(allow_interpreted_subclasses=True)
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


@mypyc_attr(allow_interpreted_subclasses=True)
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


@mypyc_attr(allow_interpreted_subclasses=True)
class ChainLogic:
    """``on_tick(tick, instrument) -> list[OptionAnalytics]`` over a ``ChainState``."""

    def __init__(
        self,
        underlying: str,
        config: ChainConfig | None = None,
        state: ChainState | None = None,
    ) -> None:
        self.config = config or ChainConfig()
        self._throttle_s = self.config.throttle_s
        self.state = ChainState(underlying=underlying)
        self._ring: deque[float] = deque(maxlen=self.config.capacity)
        self._sorted: list[float] = []
        self._reset_caches()
        if state is not None:
            self.restore(state)

    def _reset_caches(self) -> None:
        """Derived look-ups, recomputed from the state whenever their inputs change.

        They only save work on every tick: each is keyed on what it was computed from (the
        expiry, the number of listed strikes or expiries, the spot, the trading date), so a
        hit returns exactly what a fresh computation would.
        """
        #: expiry ordinal -> 15:30 IST on that day (UTC)
        self._close: dict[int, datetime] = {}
        #: expiry ordinal -> listed strikes (paise), ascending
        self._strikes: dict[int, list[int]] = {}
        #: expiry ordinal -> (spot, number of strikes, ATM strike) of the last ATM look-up
        self._atm: dict[int, tuple[float, int, int]] = {}
        #: (first, last epoch second of the cached trading day, its ordinal)
        self._day: tuple[float, float, int] = (math.inf, -math.inf, 0)
        #: (trading-day ordinal, number of expiries, front expiry ordinal or None)
        self._front: tuple[int, int, int | None] = (-1, -1, None)

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
        self._reset_caches()

    # ---------------------------------------------------------------- queries

    def front_expiry(self) -> date | None:
        """The nearest listed expiry that has not passed (by the latest event time)."""
        key = self._front_key()
        return None if key is None else date.fromordinal(key)

    def _front_key(self) -> int | None:
        legs = self.state.legs
        if not legs:
            return None
        today = self._today()
        cached_today, count, front = self._front
        if cached_today == today and count == len(legs):
            return front
        live = [key for key in legs if key >= today]
        front = min(live) if live else None
        self._front = (today, len(legs), front)
        return front

    def _today(self) -> int:
        """Ordinal of the IST trading date of the latest event time (cached per day)."""
        now = self.state.last_ts
        lo, hi, today = self._day
        if lo <= now < hi:
            return today
        day = ist_date(datetime.fromtimestamp(now, UTC))
        start = datetime.combine(day, time(0), IST).timestamp()
        end = datetime.combine(date.fromordinal(day.toordinal() + 1), time(0), IST).timestamp()
        self._day = (start + _DAY_MARGIN_S, end - _DAY_MARGIN_S, day.toordinal())
        return day.toordinal()

    def atm_strike(self, expiry: date | None = None) -> int | None:
        """ATM strike in paise for ``expiry`` (default: the front expiry)."""
        key = self._front_key() if expiry is None else expiry.toordinal()
        return None if key is None else self._atm_strike(key)

    def _atm_strike(self, key: int) -> int | None:
        """Nearest listed strike to the spot (ties: the lower), cached until the spot moves."""
        spot = self.state.spot
        if spot is None:
            return None
        legs = self.state.legs.get(key)
        if not legs:
            return None
        count = len(legs)
        cached = self._atm.get(key)
        if cached is not None and cached[0] == spot and cached[1] == count:
            return cached[2]
        strikes = self._strikes.get(key)
        if strikes is None or len(strikes) != count:
            strikes = self._strikes[key] = sorted(legs)
        # Distances grow away from the spot on both sides, so the nearest strike is one of the
        # two around it: the same answer as min over all strikes by (|k − spot|, k).
        spot_paise = spot * PAISE_PER_RUPEE
        i = bisect.bisect_left(strikes, spot_paise)
        if i == 0:
            strike = strikes[0]
        elif i == count:
            strike = strikes[-1]
        else:
            below, above = strikes[i - 1], strikes[i]
            strike = below if abs(below - spot_paise) <= abs(above - spot_paise) else above
        self._atm[key] = (spot, count, strike)
        return strike

    def _years(self, key: int, ts_event: datetime) -> float:
        """``years_to_expiry(ts_event, expiry)`` with the expiry's close cached."""
        close = self._close.get(key)
        if close is None:
            close = self._close[key] = session_close(date.fromordinal(key))
        return max((close - ts_event).total_seconds(), 0.0) / _SECONDS_PER_YEAR

    def forward(self, expiry: date, ts_event: datetime) -> float | None:
        """Forward for ``expiry`` from ATM put–call parity, else ``spot·e^{rT}``."""
        key = expiry.toordinal()
        return self._forward(key, ts_event.timestamp(), self._years(key, ts_event))

    def _forward(self, key: int, now: float, t: float) -> float | None:
        r = self.config.r
        strike = self._atm_strike(key)
        if strike is not None:
            pair = self.state.legs[key][strike]
            quotes = self.state.quotes
            call = quotes.get(pair.get("CE", ""))
            put = quotes.get(pair.get("PE", ""))
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
        key = self._front_key()
        if key is None:
            return None
        strike = self._atm_strike(key)
        if strike is None:
            return None
        last_iv = self.state.last_iv
        pair = self.state.legs[key][strike]
        ivs = [iv for token in pair.values() if (iv := last_iv.get(token)) is not None]
        return sum(ivs) / len(ivs) if ivs else None

    def iv_percentile(self, iv: float | None = None) -> float | None:
        """Percentile rank (0–100) of ``iv`` (default: current ATM IV) in the trailing window."""
        n = len(self._sorted)
        if n < self.config.min_samples:  # checked first: no ATM look-up while warming up
            return None
        value = self.atm_iv() if iv is None else iv
        if value is None:
            return None
        return 100.0 * bisect.bisect_right(self._sorted, value) / n

    @property
    def iv_sample_count(self) -> int:
        return len(self._ring)

    def drop_expired(self, ts: datetime) -> int:
        """Forget every expiry whose day is over at event time ``ts`` (its legs, and its
        tokens' quotes, IVs and emission buckets): ``_front_key`` already ignores them, so
        nothing computed changes, and a multi-day run's chain stays bounded. Returns how many
        tokens went."""
        state = self.state
        today = ist_date(ts).toordinal()
        gone = [key for key in state.legs if key < today]
        dropped = 0
        for key in gone:
            for pair in state.legs.pop(key).values():
                for token in pair.values():
                    state.quotes.pop(token, None)
                    state.last_iv.pop(token, None)
                    state.last_emit.pop(token, None)
                    dropped += 1
        if gone:
            self._reset_caches()
        return dropped

    # ---------------------------------------------------------------- updates

    def on_tick(self, tick: Tick, instrument: Instrument) -> list[OptionAnalytics]:
        """Fold one tick in; return the analytics it triggers (zero or one event)."""
        state = self.state
        now = tick.ts_event.timestamp()
        if now > state.last_ts:
            state.last_ts = now
        kind = instrument.kind
        if kind == "INDEX":
            if tick.ltp > 0:
                state.spot = tick.ltp / PAISE_PER_RUPEE
                state.spot_ts = now
            self._sample_minute(now)
            return []
        expiry = instrument.expiry
        strike = instrument.strike
        if (kind != "CE" and kind != "PE") or expiry is None or strike <= 0:
            return []
        bid, ask = tick.bid, tick.ask
        price_paise = (bid + ask) / 2 if bid > 0 and ask > 0 else float(tick.ltp)  # Tick.mid
        if not price_paise > 0:
            return []
        token = tick.token
        key = expiry.toordinal()
        strikes = state.legs.get(key)
        if strikes is None:
            strikes = state.legs[key] = {}
        pair = strikes.get(strike)
        if pair is None:
            pair = strikes[strike] = {}
        pair[kind] = token
        state.quotes[token] = (price_paise / PAISE_PER_RUPEE, now)
        out: list[OptionAnalytics] = []
        bucket = int(now // self._throttle_s)
        if bucket > state.last_emit.get(token, -1):
            event = self._analyse(tick, instrument, key, now)
            if event is not None:
                state.last_emit[token] = bucket
                out.append(event)
        if int(now // 60) > state.last_sample_minute:  # the check _sample_minute starts with
            self._sample_minute(now)
        return out

    def _analyse(
        self, tick: Tick, instrument: Instrument, key: int, now: float
    ) -> OptionAnalytics | None:
        t = self._years(key, tick.ts_event)
        fwd = self._forward(key, now, t)
        if fwd is None:
            return None
        state = self.state
        price = state.quotes[tick.token][0]
        strike = instrument.strike / PAISE_PER_RUPEE
        flag: Flag = "c" if instrument.kind == "CE" else "p"
        r, model = self.config.r, self.config.model
        underlying = fwd if model == "black76" else (state.spot or fwd * math.exp(-r * t))
        iv = implied_vol(price, underlying, strike, t, r, flag, model).iv
        state.last_iv[tick.token] = iv
        g = greeks(underlying, strike, t, r, iv, flag, model) if iv else None
        return OptionAnalytics(
            ts_event=tick.ts_event,
            ts_recv=tick.ts_recv,
            token=tick.token,
            underlying=state.underlying,
            price=price,
            underlying_price=state.spot if state.spot is not None else fwd,
            forward=fwd,
            strike=strike,
            t_years=t,
            iv=iv,
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


_native.picklable(ChainConfig, ChainState, ChainLogic)

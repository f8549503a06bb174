"""The optimised market stage equals the straightforward implementation it replaced, byte for byte.

``Ref*`` below is a frozen copy of the previous ``operators.market.candles`` /
``operators.stages.market`` / ``operators.market.sessions`` code and of the indicator ``update``
methods before they were tuned for speed. Every output (bars, late ticks, their order, ``ts_recv``,
watermarks, time zones) and the observable state must be identical on synthetic sessions with
faults and on random tick sequences with out-of-order and late ticks, duplicates, volume resets and
mixed time zones.
"""

from __future__ import annotations

import copy
import math
import pickle
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.feeds.synthetic import SyntheticConfig, SyntheticMarket
from connectors.feeds.synthetic.config import FaultConfig
from operators.events import PAISE_PER_RUPEE, Bar, Candle, Interval, Tick
from operators.market import sessions
from operators.market.candles import INTERVAL_SECONDS, CandleConfig, LateTick, window_start
from operators.market.indicators import (
    ADX,
    ATR,
    RSI,
    SMA,
    VWAP,
    BollingerBands,
    IndicatorSet,
    Supertrend,
    VolumeAverage,
)
from operators.stages.market import MarketLogic, MarketState

# --------------------------------------------------------------------------------------------
# Reference: the previous implementation, unchanged except for names.
# --------------------------------------------------------------------------------------------

REF_IST = timezone(timedelta(hours=5, minutes=30), "IST")


def ref_ist_date(ts: datetime) -> date:
    return ts.astimezone(REF_IST).date()


def ref_session_open(day: date) -> datetime:
    return datetime.combine(day, time(9, 15), REF_IST).astimezone(UTC)


def ref_session_close(day: date) -> datetime:
    return datetime.combine(day, time(15, 30), REF_IST).astimezone(UTC)


def ref_in_session(ts: datetime) -> bool:
    day = ref_ist_date(ts)
    return ref_session_open(day) <= ts < ref_session_close(day)


def ref_years_to_expiry(ts: datetime, expiry: date) -> float:
    seconds = (ref_session_close(expiry) - ts).total_seconds()
    return max(seconds, 0.0) / (365.0 * 24 * 3600)


def ref_window_start(ts: datetime, interval: Interval) -> datetime:
    step = INTERVAL_SECONDS[interval]
    epoch = int(ts.timestamp())
    return datetime.fromtimestamp(epoch - epoch % step, tz=ts.tzinfo)


@dataclass
class RefWindow:
    start: datetime
    open: int
    high: int
    low: int
    close: int
    open_ts: datetime
    close_ts: datetime
    volume: int = 0
    notional: int = 0
    ticks: int = 0

    def add(self, price: int, ts: datetime, volume: int) -> None:
        if ts < self.open_ts:
            self.open, self.open_ts = price, ts
        if ts >= self.close_ts:
            self.close, self.close_ts = price, ts
        self.high = max(self.high, price)
        self.low = min(self.low, price)
        self.volume += volume
        self.notional += price * volume
        self.ticks += 1


@dataclass
class RefCandleState:
    token: str = ""
    max_ts: datetime | None = None
    max_cum_volume: int | None = None
    open_windows: dict[tuple[Interval, datetime], RefWindow] = field(default_factory=dict)
    closed_through: dict[Interval, datetime] = field(default_factory=dict)
    late_ticks: int = 0


class RefCandleLogic:
    def __init__(self, config: CandleConfig) -> None:
        self.config = config

    def on_tick(self, state: RefCandleState, tick: Tick) -> tuple[list[Candle], list[LateTick]]:
        late: list[LateTick] = []
        state.token = tick.token
        volume = self._tick_volume(state, tick)
        watermark = self._watermark(state)
        for interval in self.config.intervals:
            start = ref_window_start(tick.ts_event, interval)
            end = start + timedelta(seconds=INTERVAL_SECONDS[interval])
            closed = state.closed_through.get(interval)
            already_closed = closed is not None and start <= closed
            if watermark is not None and (end <= watermark or already_closed):
                late.append(LateTick(tick=tick, interval=interval, watermark=watermark))
                continue
            key = (interval, start)
            window = state.open_windows.get(key)
            if window is None:
                state.open_windows[key] = RefWindow(
                    start=start,
                    open=tick.ltp,
                    high=tick.ltp,
                    low=tick.ltp,
                    close=tick.ltp,
                    open_ts=tick.ts_event,
                    close_ts=tick.ts_event,
                    volume=volume,
                    notional=tick.ltp * volume,
                    ticks=1,
                )
            else:
                window.add(tick.ltp, tick.ts_event, volume)
        if late:
            state.late_ticks += 1
        if state.max_ts is None or tick.ts_event > state.max_ts:
            state.max_ts = tick.ts_event
        return self._close(state, tick.ts_recv, everything=False), late

    def flush(self, state: RefCandleState, ts_recv: datetime) -> list[Candle]:
        return self._close(state, ts_recv=ts_recv, everything=True)

    @staticmethod
    def _tick_volume(state: RefCandleState, tick: Tick) -> int:
        if state.max_cum_volume is None:
            state.max_cum_volume = tick.cum_volume
            return max(tick.last_qty, 0)
        increase = tick.cum_volume - state.max_cum_volume
        if increase > 0:
            state.max_cum_volume = tick.cum_volume
            return increase
        return 0

    def _watermark(self, state: RefCandleState) -> datetime | None:
        return None if state.max_ts is None else state.max_ts - self.config.allowed_lateness

    def _close(self, state: RefCandleState, ts_recv: datetime, everything: bool) -> list[Candle]:
        watermark = self._watermark(state)
        ready = []
        for (interval, start), window in state.open_windows.items():
            end = start + timedelta(seconds=INTERVAL_SECONDS[interval])
            if everything or (watermark is not None and end <= watermark):
                ready.append((interval, start, end, window))
        ready.sort(key=lambda item: (item[2], INTERVAL_SECONDS[item[0]]))
        out = []
        for interval, start, end, w in ready:
            del state.open_windows[(interval, start)]
            previous = state.closed_through.get(interval)
            if previous is None or start > previous:
                state.closed_through[interval] = start
            vwap = w.notional / w.volume if w.volume > 0 else float(w.close)
            out.append(
                Candle(
                    ts_event=end,
                    ts_recv=ts_recv,
                    token=state.token,
                    interval=interval,
                    start=w.start,
                    open=w.open,
                    high=w.high,
                    low=w.low,
                    close=w.close,
                    volume=w.volume,
                    vwap=vwap,
                    ticks=w.ticks,
                )
            )
        return out


class RefSMA(SMA):
    def update(self, x: float) -> float | None:
        if len(self._window) == self.period:
            self._total -= self._window[0]
        self._window.append(x)
        self._total += x
        return self.value


class RefVolumeAverage(VolumeAverage):
    def update(self, volume: float) -> float | None:
        if len(self._window) == self.period:
            self._total -= self._window[0]
        self._window.append(volume)
        self._total += volume
        return self.value


class RefRSI(RSI):
    def update(self, close: float) -> float | None:
        self._count += 1
        if self._count == 1:
            self._prev = close
            return None
        diff = close - self._prev
        self._prev = close
        n = self.period
        if self._count <= n + 1:
            if diff < 0:
                self._loss -= diff
            else:
                self._gain += diff
            if self._count < n + 1:
                return None
            self._loss /= n
            self._gain /= n
        else:
            self._loss *= n - 1
            self._gain *= n - 1
            if diff < 0:
                self._loss -= diff
            else:
                self._gain += diff
            self._loss /= n
            self._gain /= n
        total = self._gain + self._loss
        self._rsi = 100.0 * (self._gain / total) if total != 0.0 else 0.0
        return self._rsi


def _ref_true_range(high: float, low: float, prev_close: float) -> float:
    return max(high - low, abs(high - prev_close), abs(low - prev_close))


class RefATR(ATR):
    def update(self, high: float, low: float, close: float) -> float | None:
        self._count += 1
        if self._count > 1:
            tr = _ref_true_range(high, low, self._prev_close)
            n = self.period
            if self._atr is not None:
                self._atr = (self._atr * (n - 1) + tr) / n
            else:
                self._tr_sum += tr
                if self._count == n + 1:
                    self._atr = self._tr_sum / n
        self._prev_close = close
        return self._atr


class RefADX(ADX):
    def update(self, high: float, low: float, close: float) -> float | None:
        self._count += 1
        count, n = self._count, self.period
        if count == 1:
            self._prev_high, self._prev_low, self._prev_close = high, low, close
            return None
        diff_p = high - self._prev_high
        diff_m = self._prev_low - low
        tr = _ref_true_range(high, low, self._prev_close)
        self._prev_high, self._prev_low, self._prev_close = high, low, close
        if count > n:
            self._minus_dm -= self._minus_dm / n
            self._plus_dm -= self._plus_dm / n
        if diff_m > 0 and diff_p < diff_m:
            self._minus_dm += diff_m
        elif diff_p > 0 and diff_p > diff_m:
            self._plus_dm += diff_p
        self._tr = self._tr - self._tr / n + tr if count > n else self._tr + tr
        if count <= n:
            return None
        dx: float | None = None
        if self._tr != 0.0:
            self._minus_di = 100.0 * (self._minus_dm / self._tr)
            self._plus_di = 100.0 * (self._plus_dm / self._tr)
            di_sum = self._minus_di + self._plus_di
            if di_sum != 0.0:
                dx = 100.0 * (abs(self._minus_di - self._plus_di) / di_sum)
        else:
            self._minus_di = self._plus_di = 0.0
        if count <= 2 * n:
            if dx is not None:
                self._dx_sum += dx
            if count == 2 * n:
                self._adx = self._dx_sum / n
        elif dx is not None:
            assert self._adx is not None
            self._adx = (self._adx * (n - 1) + dx) / n
        return self._adx


class RefBollingerBands(BollingerBands):
    def update(self, close: float) -> tuple[float, float, float] | None:
        if len(self._window) == self.period:
            old = self._window[0] - self._anchor
            self._sum -= old
            self._sumsq -= old * old
        self._window.append(close)
        new = close - self._anchor
        self._sum += new
        self._sumsq += new * new
        self._since_exact += 1
        if self._since_exact >= self.period:
            self._recompute()
        return self.value


class RefSupertrend(Supertrend):
    def reset(self) -> None:
        super().reset()
        self._atr = RefATR(self.period)

    def update(self, high: float, low: float, close: float) -> tuple[float, int] | None:
        atr = self._atr.update(high, low, close)
        if atr is None:
            self._prev_close = close
            return None
        hl2 = (high + low) / 2.0
        up = hl2 - self.multiplier * atr
        dn = hl2 + self.multiplier * atr
        prev_up = up if self._up is None else self._up
        prev_dn = dn if self._dn is None else self._dn
        prev_close = self._prev_close
        if self._up is not None and prev_close > prev_up:
            up = max(up, prev_up)
        if self._dn is not None and prev_close < prev_dn:
            dn = min(dn, prev_dn)
        if self._trend == -1 and close > prev_dn:
            self._trend = 1
        elif self._trend == 1 and close < prev_up:
            self._trend = -1
        self._up, self._dn, self._prev_close = up, dn, close
        return self.value


class RefVWAP(VWAP):
    def update(self, price: float, volume: float, ts_event: datetime) -> float | None:
        session = ref_ist_date(ts_event).toordinal()
        if session != self._session:
            self._session, self._pv, self._volume = session, 0.0, 0.0
        if volume > 0:
            self._pv += price * volume
            self._volume += volume
        return self.value


class RefIndicatorSet(IndicatorSet):
    def reset(self) -> None:
        super().reset()
        self.vwap = RefVWAP()
        self.rsi14 = RefRSI(14)
        self.atr14 = RefATR(14)
        self.bb = RefBollingerBands(20, 2.0)
        self.supertrend = RefSupertrend(10, 3.0)
        self.adx14 = RefADX(14)
        self.vol20 = RefVolumeAverage(20)

    def update(self, candle: Candle) -> Any:
        scale = float(PAISE_PER_RUPEE)
        high, low, close = candle.high / scale, candle.low / scale, candle.close / scale
        self.ema9.update(close)
        self.ema21.update(close)
        self.vwap.update(candle.vwap / scale, candle.volume, candle.start)
        self.rsi14.update(close)
        self.atr14.update(high, low, close)
        self.bb.update(close)
        self.supertrend.update(high, low, close)
        self.adx14.update(high, low, close)
        self.vol20.update(candle.volume)
        self._last = self._rebuild_last()
        return self._last


@dataclass
class RefMarketState:
    candles: RefCandleState = field(default_factory=RefCandleState)
    indicators: dict[Interval, RefIndicatorSet] = field(default_factory=dict)
    bars_emitted: int = 0


class RefMarketLogic:
    def __init__(self, config: CandleConfig) -> None:
        self.candles = RefCandleLogic(config)

    def on_tick(self, state: RefMarketState, tick: Tick) -> list[Bar | LateTick]:
        closed, late = self.candles.on_tick(state.candles, tick)
        out: list[Bar | LateTick] = [self._bar(state, c) for c in closed]
        out.extend(late)
        return out

    def on_eof(self, state: RefMarketState, ts_recv: datetime) -> list[Bar]:
        return [self._bar(state, c) for c in self.candles.flush(state.candles, ts_recv)]

    def _bar(self, state: RefMarketState, candle: Candle) -> Bar:
        indicators = state.indicators.get(candle.interval)
        if indicators is None:
            indicators = state.indicators[candle.interval] = RefIndicatorSet()
        snapshot = indicators.update(candle)
        state.bars_emitted += 1
        return Bar(
            ts_event=candle.ts_event, ts_recv=candle.ts_recv, candle=candle, indicators=snapshot
        )


# --------------------------------------------------------------------------------------------
# Comparison helpers
# --------------------------------------------------------------------------------------------


def _wire(items: list[Bar | LateTick] | list[Bar]) -> list[bytes]:
    """Exact bytes of every output (datetimes keep their offsets, floats their last digit)."""
    out = []
    for item in items:
        if isinstance(item, LateTick):
            encoded = msgspec.json.encode([item.tick, item.interval, item.watermark, item.reason])
            out.append(b"late:" + encoded)
        else:
            out.append(b"bar:" + msgspec.json.encode(item))
    return out


def _observable(state: MarketState | RefMarketState) -> tuple[Any, ...]:
    c = state.candles
    return (
        c.token,
        repr(c.max_ts),
        c.max_cum_volume,
        sorted((k[0], repr(k[1])) for k in c.open_windows),
        sorted((k, repr(v)) for k, v in c.closed_through.items()),
        c.late_ticks,
        state.bars_emitted,
    )


def _replay(
    ticks: list[Tick], config: CandleConfig, copy_every: int = 0
) -> tuple[list[bytes], list[bytes], dict[str, tuple[Any, ...]], dict[str, tuple[Any, ...]]]:
    """Run both implementations tick by tick; ``copy_every`` deep-copies/pickles the new state."""
    new, ref = MarketLogic(config), RefMarketLogic(config)
    new_states: dict[str, MarketState] = {}
    ref_states: dict[str, RefMarketState] = {}
    got: list[bytes] = []
    want: list[bytes] = []
    for i, tick in enumerate(ticks):
        state = new_states.setdefault(tick.token, MarketState())
        got += _wire(new.on_tick(state, tick))
        want += _wire(ref.on_tick(ref_states.setdefault(tick.token, RefMarketState()), tick))
        if copy_every and i % copy_every == 0:
            restored = copy.deepcopy(state) if i % 2 else pickle.loads(pickle.dumps(state))
            new_states[tick.token] = restored
    end = ticks[-1].ts_recv + timedelta(seconds=1)
    for token in sorted(new_states):
        got += _wire(new.on_eof(new_states[token], end))
        want += _wire(ref.on_eof(ref_states[token], end))
    return (
        got,
        want,
        {k: _observable(v) for k, v in new_states.items()},
        {k: _observable(v) for k, v in ref_states.items()},
    )


# --------------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------------


def test_synthetic_session_with_faults_is_identical() -> None:
    faults = FaultConfig(late_rate=0.02, out_of_order_rate=0.02, duplicate_rate=0.02)
    market = SyntheticMarket(
        SyntheticConfig(
            seed=11, date=date(2026, 7, 7), duration_minutes=4, strikes_each_side=1, faults=faults
        )
    )
    ticks = list(market.ticks())
    got, want, new_states, ref_states = _replay(ticks, CandleConfig())
    assert sum(1 for b in want if b.startswith(b"late:")) > 0  # the fixture exercises lateness
    assert sum(1 for b in want if b.startswith(b"bar:")) > 100
    assert got == want
    assert new_states == ref_states


def test_synthetic_session_identical_across_checkpoints_and_configs() -> None:
    market = SyntheticMarket(
        SyntheticConfig(seed=4, date=date(2026, 7, 7), duration_minutes=3, strikes_each_side=1)
    )
    ticks = list(market.ticks())
    for config in (
        CandleConfig(intervals=("1m",)),
        CandleConfig(intervals=("1m", "1s"), allowed_lateness=timedelta(0)),
        CandleConfig(allowed_lateness=timedelta(seconds=7, microseconds=3)),
    ):
        got, want, new_states, ref_states = _replay(ticks, config, copy_every=97)
        assert got == want
        assert new_states == ref_states


T0 = datetime(2026, 7, 7, 3, 59, 57, tzinfo=UTC)  # a few seconds before a minute boundary
IST_ZONE = timezone(timedelta(hours=5, minutes=30), "IST")

raw_ticks = st.lists(
    st.tuples(
        # µs from the previous tick: mostly forward, often by whole quarter seconds (so window
        # ends meet watermarks exactly), sometimes backwards (out of order or late).
        st.one_of(
            st.integers(0, 1_500_000),
            st.sampled_from([0, 250_000, 500_000, 1_000_000, 60_000_000]),
            st.integers(-5_000_000, 0),
            st.sampled_from([-250_000, -1_000_000, -2_000_000]),
        ),
        st.sampled_from(["A", "A", "A", "B"]),
        st.integers(5, 10_000),  # price
        st.integers(-30, 60),  # cumulative volume step (negative: a reset / stale count)
        st.integers(-2, 20),  # last_qty
        st.sampled_from(["utc", "utc", "utc", "utc", "ist"]),
        st.integers(0, 3_000_000),  # receive delay µs
    ),
    min_size=1,
    max_size=150,
)


def _build(raw: list[tuple[int, str, int, int, int, str, int]], grid: int = 1) -> list[Tick]:
    """Ticks from (step, token, price, volume step, last_qty, zone, delay); times on ``grid`` µs."""
    cum = {"A": 1_000, "B": 50}
    ticks = []
    cursor = 0
    for step, token, price, dvol, qty, zone, delay in raw:
        cursor = max(cursor + step, 0)
        cum[token] = max(cum[token] + dvol, 0)
        ts = T0 + timedelta(microseconds=cursor - cursor % grid)
        if zone == "ist":
            ts = ts.astimezone(IST_ZONE)
        ticks.append(
            Tick(
                ts_event=ts,
                ts_recv=ts + timedelta(microseconds=delay),
                token=token,
                exchange="NFO",
                ltp=price,
                last_qty=qty,
                cum_volume=cum[token],
            )
        )
    return ticks


@settings(max_examples=300, deadline=None)
@given(
    raw_ticks,
    st.one_of(st.integers(0, 5_000_000), st.sampled_from([0, 1_000_000, 2_000_000, 60_000_000])),
    st.sampled_from([("1s", "1m"), ("1m",), ("1s",), ("1m", "1s")]),
    st.integers(0, 7),
    st.sampled_from([1, 250_000, 1_000_000]),
)
def test_random_ticks_identical(
    raw: list[tuple[int, str, int, int, int, str, int]],
    lateness_us: int,
    intervals: tuple[Interval, ...],
    copy_every: int,
    grid: int,
) -> None:
    ticks = _build(raw, grid)
    config = CandleConfig(intervals=intervals, allowed_lateness=timedelta(microseconds=lateness_us))
    got, want, new_states, ref_states = _replay(ticks, config, copy_every=copy_every)
    assert got == want
    assert new_states == ref_states


def test_state_survives_deepcopy_and_pickle_mid_window() -> None:
    ticks = _build([(400_000, "A", 100 + i % 7, 3, 1, "utc", 10) for i in range(60)])
    logic = MarketLogic()
    state = MarketState()
    for tick in ticks[:30]:
        logic.on_tick(state, tick)
    twin = pickle.loads(pickle.dumps(copy.deepcopy(state)))
    tail_a = [b for t in ticks[30:] for b in _wire(logic.on_tick(state, t))]
    tail_b = [b for t in ticks[30:] for b in _wire(logic.on_tick(twin, t))]
    assert tail_a == tail_b
    assert len(tail_a) > 5


utc_stamps = st.datetimes(
    min_value=datetime(1900, 1, 1),  # noqa: DTZ001 (hypothesis takes naive bounds)
    max_value=datetime(2300, 1, 1),  # noqa: DTZ001
    timezones=st.sampled_from([UTC, IST_ZONE, timezone(timedelta(hours=-3, minutes=-7))]),
    allow_imaginary=False,
)


@settings(max_examples=400, deadline=None)
@given(utc_stamps, st.sampled_from(["1s", "1m"]), st.integers(0, 1))
def test_window_start_equals_epoch_formula(ts: datetime, interval: Interval, fold: int) -> None:
    ts = ts.replace(fold=fold)
    got, want = window_start(ts, interval), ref_window_start(ts, interval)
    assert (got, got.tzinfo, got.fold, type(got)) == (want, want.tzinfo, want.fold, type(want))


@settings(max_examples=400, deadline=None)
@given(st.lists(utc_stamps, min_size=1, max_size=30), st.dates(date(2000, 1, 1), date(2100, 1, 1)))
def test_session_helpers_equal_the_direct_formulas(stamps: list[datetime], day: date) -> None:
    for ts in stamps:
        assert sessions.ist_date(ts) == ref_ist_date(ts)
        assert sessions.in_session(ts) == ref_in_session(ts)
        got = sessions.years_to_expiry(ts, day)
        assert math.copysign(1, got) == math.copysign(1, ref_years_to_expiry(ts, day))
        assert got == ref_years_to_expiry(ts, day)
    for d in (day, datetime.combine(day, time(23, 59))):
        for got_dt, want_dt in (
            (sessions.session_open(d), ref_session_open(d)),
            (sessions.session_close(d), ref_session_close(d)),
        ):
            assert (got_dt, got_dt.tzinfo, type(got_dt)) == (want_dt, want_dt.tzinfo, type(want_dt))


def test_ist_date_memo_switches_days_at_ist_midnight() -> None:
    midnight = datetime(2026, 7, 6, 18, 30, tzinfo=UTC)  # 00:00 IST on 7 July
    before, after = midnight - timedelta(microseconds=1), midnight
    for ts in (before, after, before, after.astimezone(IST_ZONE), after + timedelta(days=1)):
        assert sessions.ist_date(ts) == ref_ist_date(ts)
    assert sessions.ist_date(before) == date(2026, 7, 6)
    assert sessions.ist_date(after) == date(2026, 7, 7)


candle_fields = st.tuples(
    st.integers(1, 3_000_000),  # close paise
    st.integers(0, 5_000),  # high - close
    st.integers(0, 5_000),  # close - low
    st.integers(0, 1_000),  # volume
    st.integers(0, 120),  # minutes after the previous candle (crosses IST days sometimes)
)


@settings(max_examples=150, deadline=None)
@given(st.lists(candle_fields, min_size=1, max_size=80), st.booleans())
def test_indicator_set_identical_to_reference(raw: list[Any], flat: bool) -> None:
    new, ref = IndicatorSet(), RefIndicatorSet()
    ts = datetime(2026, 7, 7, 3, 45, tzinfo=UTC)
    for close, up, down, volume, gap in raw:
        ts += timedelta(minutes=gap * 12)
        if flat:
            up = down = 0
        candle = Candle(
            ts_event=ts + timedelta(minutes=1),
            ts_recv=ts,
            token="1",
            interval="1m",
            start=ts,
            open=close,
            high=close + up,
            low=max(close - down, 1),
            close=close,
            volume=volume,
            vwap=float(close),
            ticks=1,
        )
        got, want = new.update(candle), ref.update(candle)
        assert msgspec.json.encode(got) == msgspec.json.encode(want)
        assert new.value == got
    # Snapshots (what a checkpoint stores) hold the same numbers too.
    assert new.snapshot()["state"]["bb"]["state"] == ref.snapshot()["state"]["bb"]["state"]
    assert new.vol20._window == deque(ref.vol20._window)
    assert new.adx14.snapshot()["state"] == ref.adx14.snapshot()["state"]
    assert isinstance(new.vol20, VolumeAverage)

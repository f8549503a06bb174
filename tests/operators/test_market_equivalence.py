"""The optimised market stage equals a brute-force reference, byte for byte.

The reference is written from the definitions, not from any earlier implementation:

- **candles** by brute force over the whole tick list: a tick's volume is the rise of its
  instrument's cumulative volume over every earlier tick (the first tick: its ``last_qty``); a
  tick is *late* for an interval when its window ends at or before the watermark (the largest
  earlier ``ts_event`` of its instrument minus the allowed lateness); the accepted ticks are
  grouped by window and each candle's OHLCV/VWAP computed directly from its group; a window is
  emitted at the first tick whose watermark reaches its end (else at end of input), by end then
  interval length;
- **indicators** against TA-Lib over the whole series (Supertrend against the independent numpy
  definition in ``test_indicators``, VWAP and the volume average as plain batch formulas);
- **session helpers** against the direct UTC formulas (IST is a fixed +05:30).

Every output (bars, late ticks, their order, ``ts_recv``, watermarks, time zones) and the
observable state must be identical on synthetic sessions with faults and on random tick sequences
with out-of-order and late ticks, duplicates, volume resets and mixed time zones, also when the
state is deep-copied or pickled between ticks. The stage's bars carry the indicators of the
production ``IndicatorSet`` fed the reference candles in emission order; the indicator values
themselves are checked against TA-Lib below.
"""

from __future__ import annotations

import copy
import math
import pickle
from bisect import bisect_left
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from itertools import accumulate
from typing import Any

import msgspec
import numpy as np
import talib
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.feeds.synthetic.config import FaultConfig
from operators.events import Bar, Candle, Interval, Tick
from operators.market import sessions
from operators.market.candles import INTERVAL_SECONDS, CandleConfig, LateTick, window_start
from operators.market.indicators import IndicatorSet, VolumeAverage
from operators.stages.market import MarketLogic, MarketState
from tests.events import candle
from tests.markets import synthetic_market
from tests.operators.test_indicators import _supertrend_reference

# --------------------------------------------------------------------------------------------
# Reference: the definitions, computed over the whole input at once.
# --------------------------------------------------------------------------------------------


def epoch_floor(ts: datetime, interval: Interval) -> datetime:
    """The window start by its definition: whole epoch seconds floored to the interval."""
    epoch = int(ts.timestamp())
    return datetime.fromtimestamp(epoch - epoch % INTERVAL_SECONDS[interval], tz=ts.tzinfo)


@dataclass
class _Group:
    """The accepted ticks of one window, in arrival order, each with its volume."""

    interval: Interval
    start: datetime  # in the time zone of the window's first accepted tick
    opened: int  # arrival index of that tick
    ticks: list[tuple[Tick, int]] = field(default_factory=list)

    @property
    def seconds(self) -> int:
        return INTERVAL_SECONDS[self.interval]

    @property
    def end(self) -> datetime:
        return self.start + timedelta(seconds=self.seconds)

    def candle(self, ts_recv: datetime) -> Candle:
        prices = [t.ltp for t, _ in self.ticks]
        n = len(self.ticks)
        first = min(self.ticks, key=lambda tv: tv[0].ts_event)[0]  # the first of equal times
        last = max(reversed(self.ticks), key=lambda tv: tv[0].ts_event)[0]  # the last of them
        volume = sum(v for _, v in self.ticks)
        notional = sum(t.ltp * v for t, v in self.ticks)
        ohlc = (first.ltp, max(prices), min(prices), last.ltp)
        vwap = notional / volume if volume > 0 else float(last.ltp)
        return candle(first.token, self.interval, self.start, ohlc, volume, vwap, n, ts_recv)


def _reference(
    ticks: list[Tick], config: CandleConfig
) -> tuple[list[Bar | LateTick], dict[str, tuple[Any, ...]]]:
    """Every output of the stage in order, and each instrument's observable end state."""
    by_token: dict[str, list[int]] = defaultdict(list)
    for i, tick in enumerate(ticks):
        by_token[tick.token].append(i)
    closes_at: dict[int, list[_Group]] = defaultdict(list)  # by the arrival index closing them
    late_at: dict[int, list[LateTick]] = defaultdict(list)
    at_eof: dict[str, list[_Group]] = {}
    states: dict[str, tuple[Any, ...]] = {}
    for token, arrivals in by_token.items():
        mine = [ticks[i] for i in arrivals]
        # watermark[k]: after this instrument's k-th tick (the latest ts_event so far minus the
        # lateness; it never falls); a tick is judged by the watermark before it.
        latest = list(accumulate((t.ts_event for t in mine), max))
        watermark = [ts - config.allowed_lateness for ts in latest]
        top = list(accumulate((t.cum_volume for t in mine), max))  # largest cum volume so far
        groups: dict[tuple[Interval, datetime], _Group] = {}
        for k, (i, tick) in enumerate(zip(arrivals, mine, strict=True)):
            volume = max(tick.last_qty, 0) if k == 0 else max(tick.cum_volume - top[k - 1], 0)
            for interval in config.intervals:
                start = epoch_floor(tick.ts_event, interval)
                group = groups.get((interval, start)) or _Group(interval, start, opened=i)
                if k and group.end <= watermark[k - 1]:
                    late_at[i].append(LateTick(tick, interval, watermark[k - 1]))
                    continue
                groups[interval, start] = group
                group.ticks.append((tick, volume))
        for group in groups.values():
            # the first tick at or after the window opened whose watermark reaches its end
            k = max(bisect_left(watermark, group.end), arrivals.index(group.opened))
            if k < len(arrivals):
                closes_at[arrivals[k]].append(group)
            else:
                at_eof.setdefault(token, []).append(group)
        newest: dict[Interval, datetime] = {}
        for group in groups.values():
            if group.interval not in newest or group.start > newest[group.interval]:
                newest[group.interval] = group.start
        states[token] = (
            token,
            repr(max(mine, key=lambda t: t.ts_event).ts_event),  # the first at the latest time
            max(t.cum_volume for t in mine),
            [],  # end of input closed every window
            sorted((k, repr(v)) for k, v in newest.items()),
            sum(1 for i in arrivals if i in late_at),
            len(groups),
        )

    indicators: dict[tuple[str, Interval], IndicatorSet] = defaultdict(IndicatorSet)

    def bars(ready: list[_Group], ts_recv: datetime) -> list[Bar]:
        out = []
        for group in sorted(ready, key=lambda g: (g.end, g.seconds)):
            candle = group.candle(ts_recv)
            snapshot = indicators[candle.token, group.interval].update(candle)
            out.append(
                Bar(ts_event=candle.ts_event, ts_recv=ts_recv, candle=candle, indicators=snapshot)
            )
        return out

    outputs: list[Bar | LateTick] = []
    for i, tick in enumerate(ticks):
        outputs += bars(closes_at.get(i, []), tick.ts_recv)
        outputs += late_at.get(i, [])
    end = ticks[-1].ts_recv + timedelta(seconds=1)
    for token in sorted(at_eof):
        outputs += bars(at_eof[token], end)
    return outputs, states


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


def _observable(state: MarketState) -> tuple[Any, ...]:
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
    """Run the stage tick by tick (``copy_every``: deep-copy/pickle its state) and the reference."""
    logic = MarketLogic(config)
    states: dict[str, MarketState] = {}
    got: list[bytes] = []
    for i, tick in enumerate(ticks):
        state = states.setdefault(tick.token, MarketState())
        got += _wire(logic.on_tick(state, tick))
        if copy_every and i % copy_every == 0:
            restored = copy.deepcopy(state) if i % 2 else pickle.loads(pickle.dumps(state))
            states[tick.token] = restored
    end = ticks[-1].ts_recv + timedelta(seconds=1)
    for token in sorted(states):
        got += _wire(logic.on_eof(states[token], end))
    want, want_states = _reference(ticks, config)
    return got, _wire(want), {k: _observable(v) for k, v in states.items()}, want_states


# --------------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------------


def test_synthetic_session_with_faults_is_identical() -> None:
    faults = FaultConfig(late_rate=0.02, out_of_order_rate=0.02, duplicate_rate=0.02)
    market = synthetic_market(11, day=date(2026, 7, 7), minutes=4, strikes=1, faults=faults)
    ticks = list(market.ticks())
    got, want, new_states, ref_states = _replay(ticks, CandleConfig())
    assert sum(1 for b in want if b.startswith(b"late:")) > 0  # the fixture exercises lateness
    assert sum(1 for b in want if b.startswith(b"bar:")) > 100
    assert got == want
    assert new_states == ref_states


def test_synthetic_session_identical_across_checkpoints_and_configs() -> None:
    ticks = list(synthetic_market(4, day=date(2026, 7, 7), minutes=3, strikes=1).ticks())
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
    got, want = window_start(ts, interval), epoch_floor(ts, interval)
    assert (got, got.tzinfo, got.fold, type(got)) == (want, want.tzinfo, want.fold, type(want))


def ref_ist_date(ts: datetime) -> date:
    """IST is a fixed +05:30: shift the UTC instant and take its calendar date."""
    return (ts.astimezone(UTC) + timedelta(hours=5, minutes=30)).date()


def ref_session_open(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 3, 45, tzinfo=UTC)  # 09:15 IST


def ref_session_close(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 10, 0, tzinfo=UTC)  # 15:30 IST


def ref_years_to_expiry(ts: datetime, expiry: date) -> float:
    """Seconds to 15:30 IST on the expiry day, floored at 0, over a 365-day year."""
    return max((ref_session_close(expiry) - ts).total_seconds(), 0.0) / 31_536_000.0


@settings(max_examples=400, deadline=None)
@given(st.lists(utc_stamps, min_size=1, max_size=30), st.dates(date(2000, 1, 1), date(2100, 1, 1)))
def test_session_helpers_equal_the_direct_formulas(stamps: list[datetime], day: date) -> None:
    for ts in stamps:
        assert sessions.ist_date(ts) == ref_ist_date(ts)
        d = ref_ist_date(ts)
        assert sessions.in_session(ts) == (ref_session_open(d) <= ts < ref_session_close(d))
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


def _close_to(got: list[float | None], want: np.ndarray) -> None:
    """None exactly where the reference is NaN (warm-up), equal to 1e-9 relative elsewhere."""
    ours = np.array([np.nan if v is None else v for v in got], dtype=float)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(want))
    np.testing.assert_allclose(ours, want, rtol=1e-9, atol=1e-9)


def _batch_vwap(candles: list[Candle]) -> np.ndarray:
    """Σ price × volume / Σ volume since the first candle of the same IST day (NaN: no volume)."""
    out = []
    for i, c in enumerate(candles):
        day = [x for x in candles[: i + 1] if ref_ist_date(x.start) == ref_ist_date(c.start)]
        volume = sum(x.volume for x in day)
        out.append(sum(x.vwap / 100 * x.volume for x in day) / volume if volume else np.nan)
    return np.array(out)


@settings(max_examples=150, deadline=None)
@given(st.lists(candle_fields, min_size=1, max_size=80), st.booleans(), st.integers(0, 80))
def test_indicator_set_equals_batch_references(raw: list[Any], flat: bool, cut: int) -> None:
    """Every snapshot field equals TA-Lib (or the batch formula) over the candles so far, also
    when the set is pickled and restored at candle ``cut`` (what a checkpoint does)."""
    indicators, candles, snaps = IndicatorSet(), [], []
    ts = datetime(2026, 7, 7, 3, 45, tzinfo=UTC)
    for k, (close, up, down, volume, gap) in enumerate(raw):
        ts += timedelta(minutes=gap * 12)
        if flat:
            up = down = 0
        if k == cut:
            indicators = pickle.loads(pickle.dumps(indicators))
        ohlc = (close, close + up, max(close - down, 1), close)
        candles.append(candle("1", "1m", ts, ohlc, volume, float(close), 1, ts_recv=ts))
        snaps.append(indicators.update(candles[-1]))
        assert indicators.value == snaps[-1]
    high, low, close = (
        np.array([getattr(c, f) / 100 for c in candles]) for f in ("high", "low", "close")
    )
    volume = np.array([float(c.volume) for c in candles])
    upper, middle, lower = talib.BBANDS(close, 20, 2.0, 2.0, talib.MA_Type.SMA)
    supertrend, direction = _supertrend_reference(high, low, close)
    for name, want in {
        "ema9": talib.EMA(close, 9),
        "ema21": talib.EMA(close, 21),
        "rsi14": talib.RSI(close, 14),
        "atr14": talib.ATR(high, low, close, 14),
        "adx14": talib.ADX(high, low, close, 14),
        "plus_di14": talib.PLUS_DI(high, low, close, 14),
        "minus_di14": talib.MINUS_DI(high, low, close, 14),
        "bb_upper": upper,
        "bb_middle": middle,
        "bb_lower": lower,
        "supertrend": supertrend,
        "vol_avg20": talib.SMA(volume, 20),
        "vwap": _batch_vwap(candles),
    }.items():
        _close_to([getattr(s, name) for s in snaps], want)
    assert [s.supertrend_dir or 0 for s in snaps] == direction.tolist()
    assert isinstance(indicators.vol20, VolumeAverage)

"""Indicators: TA-Lib parity, Supertrend/VWAP references, and invariants (Hypothesis)."""

from __future__ import annotations

import pickle
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st

from operators.events import Candle
from operators.market.indicators import (
    ADX,
    ATR,
    EMA,
    RSI,
    SMA,
    VWAP,
    BollingerBands,
    IndicatorSet,
    Supertrend,
    VolumeAverage,
)
from operators.market.sessions import session_open
from tests.events import candle

REL = 1e-9
N = 400


def _series(kind: str, seed: int = 7) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(high, low, close) in rupees rounded to paise, for four market shapes."""
    rng = np.random.default_rng(seed)
    if kind == "random_walk":
        close = 24000 + np.cumsum(rng.normal(0, 12, N))
    elif kind == "trend":
        close = 24000 + 6.0 * np.arange(N) + rng.normal(0, 1.5, N)
    elif kind == "flat":
        close = 180 + np.cumsum(rng.normal(0, 0.4, N))
        close[100:180] = close[99]  # long stretch of one repeated price
        close[250:262] = close[249]
    elif kind == "gaps":
        steps = rng.normal(0, 0.6, N)
        steps[::37] += rng.choice([-1, 1], len(steps[::37])) * rng.uniform(8, 20, len(steps[::37]))
        close = 150 + np.cumsum(steps)
        close = np.maximum(close, 5.0)
    else:
        raise AssertionError(kind)
    close = np.round(close, 2)
    high = np.round(close + np.abs(rng.normal(0, 2, N)), 2)
    low = np.round(close - np.abs(rng.normal(0, 2, N)), 2)
    if kind == "flat":
        for a, b in ((100, 180), (250, 262)):
            high[a:b] = low[a:b] = close[a:b]
    return high, low, close


KINDS = ["random_walk", "trend", "flat", "gaps"]


def _to_array(values: list[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def _assert_matches(ours: list[float | None], ref: np.ndarray) -> None:
    """Same warm-up (None exactly where TA-Lib has NaN) and equal to 1e-9 relative after it."""
    got = _to_array(ours)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    ok = ~np.isnan(ref)
    assert ok.sum() > N // 2
    np.testing.assert_allclose(got[ok], ref[ok], rtol=REL, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("period", [9, 21])
def test_ema_and_sma_match_talib(kind: str, period: int) -> None:
    _, _, close = _series(kind)
    ema, sma = EMA(period), SMA(period)
    _assert_matches([ema.update(x) for x in close], talib.EMA(close, period))
    _assert_matches([sma.update(x) for x in close], talib.SMA(close, period))


@pytest.mark.parametrize("kind", KINDS)
def test_rsi_matches_talib(kind: str) -> None:
    _, _, close = _series(kind)
    rsi = RSI(14)
    _assert_matches([rsi.update(x) for x in close], talib.RSI(close, 14))


@pytest.mark.parametrize("kind", KINDS)
def test_atr_matches_talib(kind: str) -> None:
    high, low, close = _series(kind)
    atr = ATR(14)
    _assert_matches([atr.update(*bar) for bar in zip(high, low, close, strict=True)],
                    talib.ATR(high, low, close, 14))  # fmt: skip


@pytest.mark.parametrize("kind", KINDS)
def test_adx_and_dis_match_talib(kind: str) -> None:
    high, low, close = _series(kind)
    adx = ADX(14)
    values, plus, minus = [], [], []
    for bar in zip(high, low, close, strict=True):
        values.append(adx.update(*bar))
        plus.append(adx.plus_di)
        minus.append(adx.minus_di)
    _assert_matches(values, talib.ADX(high, low, close, 14))
    _assert_matches(plus, talib.PLUS_DI(high, low, close, 14))
    _assert_matches(minus, talib.MINUS_DI(high, low, close, 14))


@pytest.mark.parametrize("kind", KINDS)
def test_bollinger_matches_talib_population_std(kind: str) -> None:
    _, _, close = _series(kind)
    bb = BollingerBands(20, 2.0)
    out = [bb.update(x) for x in close]
    upper, middle, lower = talib.BBANDS(close, 20, 2.0, 2.0, talib.MA_Type.SMA)
    for i, ref in enumerate((upper, middle, lower)):
        _assert_matches([None if v is None else v[i] for v in out], ref)


def test_bollinger_flat_window_has_zero_width() -> None:
    bb = BollingerBands(20, 2.0)
    for x in [24000.05, 24010.0, 23990.5] * 10 + [24000.05] * 20:
        bands = bb.update(x)
    assert bands is not None
    assert bands[0] == bands[1] == bands[2] == pytest.approx(24000.05, abs=1e-9)


def _supertrend_reference(high, low, close, period=10, mult=3.0):
    """Published definition, written independently with numpy (Wilder ATR from TA-Lib)."""
    atr = talib.ATR(high, low, close, period)
    hl2 = (high + low) / 2
    n = len(close)
    value = np.full(n, np.nan)
    direction = np.zeros(n, dtype=int)
    up = dn = None
    trend = 1
    for i in range(n):
        if np.isnan(atr[i]):
            continue
        b_up = hl2[i] - mult * atr[i]
        b_dn = hl2[i] + mult * atr[i]
        up1 = b_up if up is None else up
        dn1 = b_dn if dn is None else dn
        new_up = max(b_up, up1) if (up is not None and close[i - 1] > up1) else b_up
        new_dn = min(b_dn, dn1) if (dn is not None and close[i - 1] < dn1) else b_dn
        if trend == -1 and close[i] > dn1:
            trend = 1
        elif trend == 1 and close[i] < up1:
            trend = -1
        up, dn = new_up, new_dn
        value[i] = up if trend == 1 else dn
        direction[i] = trend
    return value, direction


@pytest.mark.parametrize("kind", KINDS)
def test_supertrend_matches_reference(kind: str) -> None:
    high, low, close = _series(kind)
    st_ind = Supertrend(10, 3.0)
    out = [st_ind.update(*bar) for bar in zip(high, low, close, strict=True)]
    ref_value, ref_dir = _supertrend_reference(high, low, close)
    _assert_matches([None if v is None else v[0] for v in out], ref_value)
    ours_dir = np.array([0 if v is None else v[1] for v in out])
    np.testing.assert_array_equal(ours_dir, ref_dir)
    assert {1, -1} <= set(ours_dir.tolist()) or kind == "trend"


def test_supertrend_flips_with_the_trend() -> None:
    st_ind = Supertrend(10, 3.0)
    prices = [100 + i for i in range(40)] + [140 - 2 * i for i in range(40)]
    dirs = [v[1] for p in prices if (v := st_ind.update(p + 0.5, p - 0.5, p)) is not None]
    assert dirs[0] == 1
    assert dirs[-1] == -1


def test_vwap_matches_cumulative_sum_and_resets_each_session() -> None:
    rng = np.random.default_rng(3)
    vwap = VWAP()
    day1, day2 = session_open(date(2026, 3, 2)), session_open(date(2026, 3, 3))
    times = [day1 + timedelta(minutes=i) for i in range(200)]
    times += [day2 + timedelta(minutes=i) for i in range(150)]
    prices = 24000 + np.cumsum(rng.normal(0, 5, len(times)))
    volumes = rng.integers(0, 5000, len(times)).astype(float)
    volumes[200] = 0.0  # first bar of day 2 trades nothing: VWAP unknown there
    got = [vwap.update(p, v, t) for p, v, t in zip(prices, volumes, times, strict=True)]
    for session in (slice(0, 200), slice(200, 350)):
        pv = np.cumsum(prices[session] * volumes[session])
        vol = np.cumsum(volumes[session])
        with np.errstate(invalid="ignore"):
            expected = np.where(vol > 0, pv / vol, np.nan)
        np.testing.assert_allclose(_to_array(got[session]), expected, rtol=1e-12)
    assert got[200] is None


def test_vwap_session_is_the_ist_date() -> None:
    vwap = VWAP()
    # 18:29 UTC on 2 Mar is 23:59 IST on 2 Mar; 18:31 UTC is 00:01 IST on 3 Mar.
    vwap.update(100.0, 10, datetime(2026, 3, 2, 18, 29, tzinfo=UTC))
    assert vwap.update(200.0, 10, datetime(2026, 3, 2, 18, 29, 30, tzinfo=UTC)) == 150.0
    assert vwap.update(300.0, 10, datetime(2026, 3, 2, 18, 31, tzinfo=UTC)) == 300.0


def test_volume_average_is_a_20_bar_mean() -> None:
    avg = VolumeAverage(20)
    vols = list(range(1, 41))
    out = [avg.update(v) for v in vols]
    assert out[18] is None
    assert out[19] == pytest.approx(np.mean(vols[:20]))
    assert out[-1] == pytest.approx(np.mean(vols[-20:]))


@pytest.mark.parametrize("bad", [0, -3, 2.5])
def test_constructors_reject_bad_periods(bad) -> None:
    # compiled (mypyc) indicators refuse a float where an int is declared before the check
    with pytest.raises((ValueError, TypeError), match=r"period|int object expected"):
        EMA(bad)


def _feed(ind: Any, bars) -> list:
    out = []
    for high, low, close in bars:
        if isinstance(ind, ATR | ADX | Supertrend):
            out.append(ind.update(high, low, close))
        else:
            out.append(ind.update(close))
    return out


_FACTORIES = [
    lambda: EMA(9), lambda: SMA(20), lambda: RSI(14), lambda: ATR(14), lambda: ADX(14),
    lambda: BollingerBands(20, 2.0), lambda: Supertrend(10, 3.0), lambda: VolumeAverage(20),
]  # fmt: skip

_bars = st.lists(
    st.tuples(
        st.integers(10_000, 30_000),  # close in paise
        st.integers(0, 300),  # high - close
        st.integers(0, 300),  # close - low
    ),
    min_size=1,
    max_size=120,
).map(lambda rows: [((c + u) / 100, (c - d) / 100, c / 100) for c, u, d in rows])


@settings(max_examples=40, deadline=None)
@given(bars=_bars, tail=_bars, which=st.integers(0, len(_FACTORIES) - 1))
def test_reset_equals_fresh_and_snapshot_restore_continues(bars, tail, which) -> None:
    make = _FACTORIES[which]
    used = make()
    _feed(used, bars)
    used.reset()
    assert used == make()
    # snapshot -> restore (into a new object, through pickle) -> continue == uninterrupted
    straight = make()
    expected = _feed(straight, bars + tail)
    first = make()
    head = _feed(first, bars)
    resumed = make()
    resumed.restore(pickle.loads(pickle.dumps(first.snapshot())))
    assert head + _feed(resumed, tail) == expected
    assert resumed == straight


@settings(max_examples=60, deadline=None)
@given(bars=_bars)
def test_rsi_in_range_and_bands_ordered(bars) -> None:
    rsi, bb = RSI(14), BollingerBands(20, 2.0)
    for _, _, c in bars:
        r = rsi.update(c)
        b = bb.update(c)
        if r is not None:
            assert 0.0 <= r <= 100.0
        if b is not None:
            assert b[0] >= b[1] >= b[2]
    assert rsi.ready == (len(bars) > 14)


def test_restore_rejects_other_params() -> None:
    ema = EMA(9)
    with pytest.raises(ValueError, match="params"):
        ema.restore(EMA(21).snapshot())
    with pytest.raises(ValueError, match="cannot restore"):
        ema.restore(SMA(9).snapshot())


def _candles(n: int, volume: bool = True) -> list[Candle]:
    rng = np.random.default_rng(11)
    start = session_open(date(2026, 3, 2))
    close = (2_400_000 + np.cumsum(rng.integers(-800, 800, n))).astype(int)
    out = []
    for i in range(n):
        c = int(close[i])
        t0 = start + timedelta(minutes=i)
        ohlc = (c, c + int(rng.integers(0, 900)), c - int(rng.integers(0, 900)), c)
        vol = int(rng.integers(1, 10_000)) if volume else 0
        out.append(candle("26000", "1m", t0, ohlc, vol, float(c), 10, t0 + timedelta(minutes=1)))
    return out


def test_indicator_set_snapshot_equals_offline_talib() -> None:
    candles = _candles(120)
    iset = IndicatorSet()
    snaps = [iset.update(c) for c in candles]
    close = np.array([c.close / 100 for c in candles])
    high = np.array([c.high / 100 for c in candles])
    low = np.array([c.low / 100 for c in candles])
    vol = np.array([float(c.volume) for c in candles])
    last = snaps[-1]
    assert iset.ready
    assert last.ema9 == pytest.approx(talib.EMA(close, 9)[-1], rel=REL)
    assert last.ema21 == pytest.approx(talib.EMA(close, 21)[-1], rel=REL)
    assert last.rsi14 == pytest.approx(talib.RSI(close, 14)[-1], rel=REL)
    assert last.atr14 == pytest.approx(talib.ATR(high, low, close, 14)[-1], rel=REL)
    assert last.adx14 == pytest.approx(talib.ADX(high, low, close, 14)[-1], rel=REL)
    assert last.plus_di14 == pytest.approx(talib.PLUS_DI(high, low, close, 14)[-1], rel=REL)
    assert last.minus_di14 == pytest.approx(talib.MINUS_DI(high, low, close, 14)[-1], rel=REL)
    upper, middle, lower = talib.BBANDS(close, 20, 2.0, 2.0, talib.MA_Type.SMA)
    assert (last.bb_upper, last.bb_middle, last.bb_lower) == pytest.approx(
        (upper[-1], middle[-1], lower[-1]), rel=REL
    )
    assert last.vol_avg20 == pytest.approx(vol[-20:].mean(), rel=REL)
    assert last.vwap == pytest.approx(float((close * vol).sum() / vol.sum()), rel=1e-12)
    assert last.supertrend is not None
    assert last.supertrend_dir in (1, -1)
    assert snaps[0].ema9 is None
    assert snaps[0].vwap is not None


def test_indicator_set_index_candles_have_no_vwap() -> None:
    iset = IndicatorSet()
    snaps = [iset.update(c) for c in _candles(40, volume=False)]
    assert all(s.vwap is None for s in snaps)
    assert snaps[-1].ema21 is not None


def test_indicator_set_snapshot_restore_continues() -> None:
    candles = _candles(90)
    straight = IndicatorSet()
    expected = [straight.update(c) for c in candles]
    first = IndicatorSet()
    for c in candles[:50]:
        first.update(c)
    resumed = IndicatorSet()
    resumed.restore(pickle.loads(pickle.dumps(first.snapshot())))
    assert resumed.value == expected[49]
    assert [resumed.update(c) for c in candles[50:]] == expected[50:]

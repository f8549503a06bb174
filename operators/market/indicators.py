"""Incremental technical indicators, O(1) per update, equal to TA-Lib after its warm-up.

Why one module (~640 lines): a dozen small indicator classes of one shape on the per-tick
hot path, compiled together by mypyc (see ``operators/_native.py``).

Every indicator is a small object with ``update(...)``, ``.value`` (``None`` while warming up),
``.ready``, ``.reset()`` and a plain-dict ``snapshot()`` / ``restore()`` pair so Bytewax can
checkpoint it: ``snapshot → restore → continue`` gives the same numbers as an uninterrupted run.

Seeding follows TA-Lib (default compatibility, unstable period 0) so the streaming values equal
``talib.EMA/SMA/RSI/ATR/ADX/PLUS_DI/MINUS_DI/BBANDS`` to ~1e-12 relative:

- EMA seeds with the SMA of its first ``period`` inputs, then ``ema += (x - ema) * 2/(n+1)``;
- RSI, ATR, ADX use Wilder smoothing seeded with plain sums/averages exactly as TA-Lib does
  (first RSI/ATR/DI after ``period + 1`` inputs, first ADX after ``2 * period``);
- Bollinger bands use the SMA and the *population* standard deviation.

``IndicatorSet`` bundles the set the market stage computes per instrument and interval and turns
a ``Candle`` (integer paise) into an ``IndicatorSnapshot`` (rupees).
"""

from __future__ import annotations

import math
from collections import deque
from datetime import datetime
from typing import Any, ClassVar

from mypy_extensions import mypyc_attr

from operators import _native
from operators.events import PAISE_PER_RUPEE, Candle, IndicatorSnapshot
from operators.market.sessions import ist_date

SNAPSHOT_VERSION = 1
_SCALE = float(PAISE_PER_RUPEE)


def _positive_int(name: str, value: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        msg = f"{name} must be a positive integer, got {value!r}"
        raise ValueError(msg)
    return value


def _true_range(high: float, low: float, prev_close: float) -> float:
    """TA-Lib's TRANGE: the largest of high-low and the two gaps from the previous close."""
    return max(high - low, abs(high - prev_close), abs(low - prev_close))


@mypyc_attr(allow_interpreted_subclasses=True)
class Indicator:
    """Shared warm-up/serialisation plumbing.

    Subclasses list their mutable attributes in ``_STATE`` and their constructor parameters in
    ``_PARAMS``; ``snapshot`` copies those attributes into a plain dict (deques become lists,
    nested indicators nest their own snapshots) and ``restore`` puts them back.
    """

    _STATE: ClassVar[tuple[str, ...]] = ()
    _PARAMS: ClassVar[tuple[str, ...]] = ()

    @property
    def value(self) -> Any:
        raise NotImplementedError

    @property
    def ready(self) -> bool:
        return self.value is not None

    def reset(self) -> None:
        raise NotImplementedError

    def params(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._PARAMS}

    def snapshot(self) -> dict[str, Any]:
        """A deep, plain (JSON/pickle-friendly) copy of the state."""
        state: dict[str, Any] = {}
        for name in self._STATE:
            item = getattr(self, name)
            if isinstance(item, Indicator):
                state[name] = item.snapshot()
            elif isinstance(item, deque | list):
                state[name] = list(item)
            else:
                state[name] = item
        return {
            "kind": type(self).__name__,
            "version": SNAPSHOT_VERSION,
            "params": self.params(),
            "state": state,
        }

    def restore(self, snap: dict[str, Any]) -> None:
        """Load a snapshot taken from an indicator of the same kind and parameters."""
        if snap.get("kind") != type(self).__name__ or snap.get("version") != SNAPSHOT_VERSION:
            msg = f"snapshot of {snap.get('kind')!r} v{snap.get('version')} cannot restore "
            msg += f"{type(self).__name__} v{SNAPSHOT_VERSION}"
            raise ValueError(msg)
        if snap.get("params") != self.params():
            msg = f"snapshot params {snap.get('params')} differ from {self.params()}"
            raise ValueError(msg)
        for name in self._STATE:
            current = getattr(self, name)
            saved = snap["state"][name]
            if isinstance(current, Indicator):
                current.restore(saved)
            elif isinstance(current, deque):
                setattr(self, name, deque(saved, maxlen=current.maxlen))
            elif isinstance(current, list):
                setattr(self, name, list(saved))
            else:
                setattr(self, name, saved)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, Indicator)
        return self.snapshot() == other.snapshot()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args}) value={self.value!r}"


@mypyc_attr(allow_interpreted_subclasses=True)
class SMA(Indicator):
    """Simple moving average over ``period`` inputs (running sum, like TA-Lib)."""

    _STATE = ("_window", "_total")
    _PARAMS = ("period",)

    def __init__(self, period: int) -> None:
        self.period = _positive_int("period", period)
        self.reset()

    def reset(self) -> None:
        self._window: deque[float] = deque(maxlen=self.period)
        self._total = 0.0

    def update(self, x: float) -> float | None:
        window, n = self._window, self.period
        if len(window) == n:
            self._total -= window[0]
        window.append(x)
        self._total += x
        return self._total / n if len(window) == n else None

    @property
    def value(self) -> float | None:
        if len(self._window) < self.period:
            return None
        return self._total / self.period


@mypyc_attr(allow_interpreted_subclasses=True)
class EMA(Indicator):
    """Exponential moving average, k = 2/(period+1), seeded with the SMA of the first inputs."""

    _STATE = ("_count", "_seed_sum", "_ema")
    _PARAMS = ("period",)

    def __init__(self, period: int) -> None:
        self.period = _positive_int("period", period)
        self.k = 2.0 / (period + 1.0)
        self.reset()

    def reset(self) -> None:
        self._count = 0
        self._seed_sum = 0.0
        self._ema: float | None = None

    def update(self, close: float) -> float | None:
        self._count += 1
        if self._ema is not None:
            self._ema = (close - self._ema) * self.k + self._ema
        else:
            self._seed_sum += close
            if self._count == self.period:
                self._ema = self._seed_sum / self.period
        return self._ema

    @property
    def value(self) -> float | None:
        return self._ema


@mypyc_attr(allow_interpreted_subclasses=True)
class _Wilder(Indicator):
    """Wilder's smoothed indicators (RSI, ATR, ADX): one parameter, the period."""

    _PARAMS = ("period",)

    def __init__(self, period: int = 14) -> None:
        self.period = _positive_int("period", period)
        self.reset()


@mypyc_attr(allow_interpreted_subclasses=True)
class RSI(_Wilder):
    """Wilder's RSI; 0 when there was no movement at all (TA-Lib's convention)."""

    _STATE = ("_count", "_prev", "_gain", "_loss", "_rsi")

    def reset(self) -> None:
        self._count = 0
        self._prev = 0.0
        self._gain = 0.0
        self._loss = 0.0
        self._rsi: float | None = None

    def update(self, close: float) -> float | None:
        count = self._count = self._count + 1
        if count == 1:
            self._prev = close
            return None
        diff = close - self._prev
        self._prev = close
        n = self.period
        gain, loss = self._gain, self._loss
        if count <= n + 1:
            # Seed: plain averages of the first ``period`` moves.
            if diff < 0:
                loss -= diff
            else:
                gain += diff
            if count < n + 1:
                self._gain, self._loss = gain, loss
                return None
            loss /= n
            gain /= n
        else:
            loss *= n - 1
            gain *= n - 1
            if diff < 0:
                loss -= diff
            else:
                gain += diff
            loss /= n
            gain /= n
        self._gain, self._loss = gain, loss
        total = gain + loss
        rsi = self._rsi = 100.0 * (gain / total) if total != 0.0 else 0.0
        return rsi

    @property
    def value(self) -> float | None:
        return self._rsi


@mypyc_attr(allow_interpreted_subclasses=True)
class ATR(_Wilder):
    """Wilder's average true range, seeded with the mean of the first ``period`` true ranges."""

    _STATE = ("_count", "_prev_close", "_tr_sum", "_atr")

    def reset(self) -> None:
        self._count = 0
        self._prev_close = 0.0
        self._tr_sum = 0.0
        self._atr: float | None = None

    def update(self, high: float, low: float, close: float) -> float | None:
        count = self._count = self._count + 1
        atr = self._atr
        if count > 1:
            prev = self._prev_close
            tr = max(high - low, abs(high - prev), abs(low - prev))  # _true_range, inlined
            n = self.period
            if atr is not None:
                atr = self._atr = (atr * (n - 1) + tr) / n
            else:
                self._tr_sum += tr
                if count == n + 1:
                    atr = self._atr = self._tr_sum / n
        self._prev_close = close
        return atr

    @property
    def value(self) -> float | None:
        return self._atr


@mypyc_attr(allow_interpreted_subclasses=True)
class ADX(_Wilder):
    """Wilder's ADX with ``.plus_di`` / ``.minus_di`` (TA-Lib's ADX, PLUS_DI, MINUS_DI).

    The DIs are ready after ``period + 1`` bars, the ADX after ``2 * period`` bars.
    """

    _STATE = (
        "_count", "_prev_high", "_prev_low", "_prev_close", "_plus_dm", "_minus_dm", "_tr",
        "_dx_sum", "_adx", "_plus_di", "_minus_di",
    )  # fmt: skip

    def reset(self) -> None:
        self._count = 0
        self._prev_high = 0.0
        self._prev_low = 0.0
        self._prev_close = 0.0
        self._plus_dm = 0.0
        self._minus_dm = 0.0
        self._tr = 0.0
        self._dx_sum = 0.0
        self._adx: float | None = None
        self._plus_di: float | None = None
        self._minus_di: float | None = None

    def update(self, high: float, low: float, close: float) -> float | None:
        count = self._count = self._count + 1
        n = self.period
        if count == 1:
            self._prev_high, self._prev_low, self._prev_close = high, low, close
            return None
        diff_p = high - self._prev_high
        diff_m = self._prev_low - low
        prev = self._prev_close
        tr = max(high - low, abs(high - prev), abs(low - prev))  # _true_range, inlined
        self._prev_high, self._prev_low, self._prev_close = high, low, close
        minus_dm, plus_dm, tr_sum = self._minus_dm, self._plus_dm, self._tr
        if count > n:  # Wilder smoothing once the first ``period - 1`` moves are summed
            minus_dm -= minus_dm / n
            plus_dm -= plus_dm / n
        if diff_m > 0 and diff_p < diff_m:
            minus_dm += diff_m
        elif diff_p > 0 and diff_p > diff_m:
            plus_dm += diff_p
        tr_sum = tr_sum - tr_sum / n + tr if count > n else tr_sum + tr
        self._minus_dm, self._plus_dm, self._tr = minus_dm, plus_dm, tr_sum
        if count <= n:
            return None
        dx: float | None = None
        if tr_sum != 0.0:
            minus_di = self._minus_di = 100.0 * (minus_dm / tr_sum)
            plus_di = self._plus_di = 100.0 * (plus_dm / tr_sum)
            di_sum = minus_di + plus_di
            if di_sum != 0.0:
                dx = 100.0 * (abs(minus_di - plus_di) / di_sum)
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

    @property
    def value(self) -> float | None:
        return self._adx

    @property
    def plus_di(self) -> float | None:
        return self._plus_di

    @property
    def minus_di(self) -> float | None:
        return self._minus_di


@mypyc_attr(allow_interpreted_subclasses=True)
class BollingerBands(Indicator):
    """SMA ± k population standard deviations, as ``(upper, middle, lower)``.

    The window sums are kept relative to an anchor (a recent input) and recomputed exactly
    each time the window has turned over, so the variance neither drifts nor loses digits to
    the price level (O(1) amortised). A variance within rounding of zero is reported as 0.
    """

    _STATE = ("_window", "_anchor", "_sum", "_sumsq", "_since_exact")
    _PARAMS = ("period", "k")

    def __init__(self, period: int = 20, k: float = 2.0) -> None:
        self.period = _positive_int("period", period)
        if not (math.isfinite(k) and k >= 0):
            msg = f"k must be a finite non-negative number, got {k!r}"
            raise ValueError(msg)
        self.k = float(k)
        self.reset()

    def reset(self) -> None:
        self._window: deque[float] = deque(maxlen=self.period)
        self._anchor = 0.0
        self._sum = 0.0
        self._sumsq = 0.0
        self._since_exact = 0

    def _recompute(self) -> None:
        self._anchor = self._window[-1]
        devs = [x - self._anchor for x in self._window]
        self._sum = math.fsum(devs)
        self._sumsq = math.fsum(d * d for d in devs)
        self._since_exact = 0

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
        return self.value if len(self._window) == self.period else None

    @property
    def value(self) -> tuple[float, float, float] | None:
        n = self.period
        if len(self._window) < n:
            return None
        mean_dev = self._sum / n
        var = self._sumsq / n - mean_dev * mean_dev
        scale = self._sumsq / n
        std = math.sqrt(var) if var > 1e-13 * scale else 0.0
        middle = self._anchor + mean_dev
        return middle + self.k * std, middle, middle - self.k * std


@mypyc_attr(allow_interpreted_subclasses=True)
class Supertrend(Indicator):
    """Supertrend on Wilder's ATR, as ``(value, direction)``; direction +1 up, -1 down.

    Published definition (Olivier Seban; the TradingView script by KivancOzbilgic)::

        up = hl2 - m*ATR;  up = max(up, up[1]) if close[1] > up[1] else up
        dn = hl2 + m*ATR;  dn = min(dn, dn[1]) if close[1] < dn[1] else dn
        trend = +1 if trend[1] == -1 and close > dn[1]
                -1 if trend[1] == +1 and close < up[1]
                trend[1] otherwise          (trend starts at +1)
        value = up if trend == +1 else dn

    On the first bar with an ATR, ``up[1]``/``dn[1]`` are that bar's own bands.
    """

    _STATE = ("_atr", "_up", "_dn", "_trend", "_prev_close")
    _PARAMS = ("period", "multiplier")

    def __init__(self, period: int = 10, multiplier: float = 3.0) -> None:
        self.period = _positive_int("period", period)
        if not (math.isfinite(multiplier) and multiplier > 0):
            msg = f"multiplier must be a finite positive number, got {multiplier!r}"
            raise ValueError(msg)
        self.multiplier = float(multiplier)
        self.reset()

    def reset(self) -> None:
        self._atr = ATR(self.period)
        self._up: float | None = None
        self._dn: float | None = None
        self._trend = 1
        self._prev_close = 0.0

    def update(self, high: float, low: float, close: float) -> tuple[float, int] | None:
        atr = self._atr.update(high, low, close)
        if atr is None:
            self._prev_close = close
            return None
        hl2 = (high + low) / 2.0
        multiplier = self.multiplier
        up = hl2 - multiplier * atr
        dn = hl2 + multiplier * atr
        last_up, last_dn = self._up, self._dn
        prev_up = up if last_up is None else last_up
        prev_dn = dn if last_dn is None else last_dn
        prev_close = self._prev_close
        if last_up is not None and prev_close > prev_up:
            up = max(up, prev_up)
        if last_dn is not None and prev_close < prev_dn:
            dn = min(dn, prev_dn)
        trend = self._trend
        if trend == -1 and close > prev_dn:
            trend = 1
        elif trend == 1 and close < prev_up:
            trend = -1
        self._trend = trend
        self._up, self._dn, self._prev_close = up, dn, close
        return (up if trend == 1 else dn), trend  # == self.value

    @property
    def value(self) -> tuple[float, int] | None:
        if self._up is None or self._dn is None:
            return None
        return (self._up if self._trend == 1 else self._dn), self._trend


@mypyc_attr(allow_interpreted_subclasses=True)
class VWAP(Indicator):
    """Volume-weighted average price of the current NSE session (resets at 09:15 IST).

    The session is the IST calendar date of ``ts_event``. ``value`` is ``None`` until some
    volume has traded in the session (an index has no volume, so its VWAP stays ``None``).
    """

    _STATE = ("_session", "_pv", "_volume")

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._session = -1  # proleptic ordinal of the IST trading date
        self._pv = 0.0
        self._volume = 0.0

    def update(self, price: float, volume: float, ts_event: datetime) -> float | None:
        session = ist_date(ts_event).toordinal()
        if session != self._session:
            self._session, self._pv, self._volume = session, 0.0, 0.0
        if volume > 0:
            self._pv += price * volume
            self._volume += volume
        return self.value

    @property
    def value(self) -> float | None:
        return self._pv / self._volume if self._volume > 0 else None


@mypyc_attr(allow_interpreted_subclasses=True)
class VolumeAverage(SMA):
    """Average volume over the last ``period`` bars."""

    def __init__(self, period: int = 20) -> None:
        super().__init__(period)

    def update(self, volume: float) -> float | None:
        return super().update(volume)


@mypyc_attr(allow_interpreted_subclasses=True)
class IndicatorSet(Indicator):
    """The indicator bundle the market stage keeps per instrument and interval.

    ``update(candle)`` converts the candle's integer paise to rupees, feeds every indicator and
    returns an ``IndicatorSnapshot``. VWAP is fed ``candle.vwap`` weighted by
    ``candle.volume`` at ``candle.start``; for an index (volume 0) it stays ``None``.
    """

    _STATE = ("ema9", "ema21", "vwap", "rsi14", "atr14", "bb", "supertrend", "adx14", "vol20")

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.ema9 = EMA(9)
        self.ema21 = EMA(21)
        self.vwap = VWAP()
        self.rsi14 = RSI(14)
        self.atr14 = ATR(14)
        self.bb = BollingerBands(20, 2.0)
        self.supertrend = Supertrend(10, 3.0)
        self.adx14 = ADX(14)
        self.vol20 = VolumeAverage(20)
        self._last = IndicatorSnapshot()

    def update(self, candle: Candle) -> IndicatorSnapshot:
        scale = _SCALE
        high, low, close = candle.high / scale, candle.low / scale, candle.close / scale
        # Each update returns its indicator's ``.value``, so this equals ``_rebuild_last()``.
        bands = self.bb.update(close)
        st = self.supertrend.update(high, low, close)
        adx = self.adx14
        self._last = last = IndicatorSnapshot(
            ema9=self.ema9.update(close),
            ema21=self.ema21.update(close),
            vwap=self.vwap.update(candle.vwap / scale, candle.volume, candle.start),
            rsi14=self.rsi14.update(close),
            atr14=self.atr14.update(high, low, close),
            bb_upper=bands[0] if bands else None,
            bb_middle=bands[1] if bands else None,
            bb_lower=bands[2] if bands else None,
            supertrend=st[0] if st else None,
            supertrend_dir=st[1] if st else None,
            adx14=adx.update(high, low, close),
            plus_di14=adx._plus_di,
            minus_di14=adx._minus_di,
            vol_avg20=self.vol20.update(candle.volume),
        )
        return last

    @property
    def value(self) -> IndicatorSnapshot:
        """The snapshot after the last candle (all ``None`` before the first)."""
        return self._last

    @property
    def ready(self) -> bool:
        """True once every price indicator has warmed up (VWAP may stay None for an index)."""
        return all(
            ind.ready
            for ind in (self.ema9, self.ema21, self.rsi14, self.atr14, self.bb,
                        self.supertrend, self.adx14, self.vol20)
        )  # fmt: skip

    def restore(self, snap: dict[str, Any]) -> None:
        super().restore(snap)
        self._last = self._rebuild_last()

    def _rebuild_last(self) -> IndicatorSnapshot:
        bands = self.bb.value
        st = self.supertrend.value
        return IndicatorSnapshot(
            ema9=self.ema9.value,
            ema21=self.ema21.value,
            vwap=self.vwap.value,
            rsi14=self.rsi14.value,
            atr14=self.atr14.value,
            bb_upper=bands[0] if bands else None,
            bb_middle=bands[1] if bands else None,
            bb_lower=bands[2] if bands else None,
            supertrend=st[0] if st else None,
            supertrend_dir=st[1] if st else None,
            adx14=self.adx14.value,
            plus_di14=self.adx14.plus_di,
            minus_di14=self.adx14.minus_di,
            vol_avg20=self.vol20.value,
        )


_native.picklable(
    Indicator,
    _Wilder,
    SMA,
    EMA,
    RSI,
    ATR,
    ADX,
    BollingerBands,
    Supertrend,
    VWAP,
    VolumeAverage,
    IndicatorSet,
)

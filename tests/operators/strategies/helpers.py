"""Builders for scripted strategy inputs: a NIFTY option chain, bars, ticks, analytics."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from operators.events import (
    Bar,
    Candle,
    IndicatorSnapshot,
    Instrument,
    Tick,
    to_paise,
)
from operators.market.sessions import IST
from operators.strategies.base import StrategyContext
from operators.strategies.option_map import OptionChain

DAY = date(2026, 1, 7)  # a Wednesday
EXPIRY = date(2026, 1, 13)  # next Tuesday
EXPIRY2 = date(2026, 1, 20)
UNDERLYING_TOKEN = "26000"
STEP = 5_000  # ₹50 in paise


def ist(hh: int, mm: int, ss: int = 0) -> datetime:
    """A UTC-aware time on DAY given as IST wall time."""
    return datetime(DAY.year, DAY.month, DAY.day, hh, mm, ss, tzinfo=IST).astimezone(UTC)


def option_token(strike_rs: int, right: str, expiry: date = EXPIRY) -> str:
    return f"{right}{strike_rs}-{expiry:%m%d}"


def make_chain() -> OptionChain:
    instruments = [
        Instrument(
            token=UNDERLYING_TOKEN, symbol="NIFTY", underlying="NIFTY", kind="INDEX", exchange="NSE"
        )
    ]
    for expiry in (EXPIRY, EXPIRY2):
        for strike in range(23_000, 24_001, 50):
            for right in ("CE", "PE"):
                instruments.append(
                    Instrument(
                        token=option_token(strike, right, expiry),
                        symbol=f"NIFTY{expiry:%d%b%y}{strike}{right}".upper(),
                        underlying="NIFTY",
                        kind=right,
                        strike=strike * 100,
                        expiry=expiry,
                        lot_size=65,
                    )
                )
    return OptionChain("NIFTY", UNDERLYING_TOKEN, STEP, tuple(instruments))


def make_ctx(regime: str | None = "TRENDING") -> StrategyContext:
    return StrategyContext(chain=make_chain(), regime=regime)  # type: ignore[arg-type]


def bar(
    end: datetime,
    close: float,
    *,
    high: float | None = None,
    low: float | None = None,
    volume: int = 1_000,
    ema9: float | None = None,
    ema21: float | None = None,
    vwap: float | None = None,
    rsi: float | None = None,
    atr: float | None = None,
    vol_avg: float | None = None,
    interval: str = "1m",
    token: str = UNDERLYING_TOKEN,
) -> Bar:
    """A closed bar of the underlying ending at ``end``; prices in rupees."""
    span = timedelta(minutes=1) if interval == "1m" else timedelta(seconds=1)
    c = to_paise(close)
    hi = to_paise(high) if high is not None else c
    lo = to_paise(low) if low is not None else c
    return Bar(
        ts_event=end,
        ts_recv=end,
        candle=Candle(
            ts_event=end,
            ts_recv=end,
            token=token,
            interval=interval,  # type: ignore[arg-type]
            start=end - span,
            open=c,
            high=max(hi, c),
            low=min(lo, c),
            close=c,
            volume=volume,
            vwap=close,
            ticks=10,
        ),
        indicators=IndicatorSnapshot(
            ema9=ema9, ema21=ema21, vwap=vwap, rsi14=rsi, atr14=atr, vol_avg20=vol_avg
        ),
    )


def tick(ts: datetime, ltp: float, token: str = UNDERLYING_TOKEN) -> Tick:
    return Tick(ts_event=ts, ts_recv=ts, token=token, exchange="NSE", ltp=to_paise(ltp))

"""Builders for the events and instruments tests feed the operators: the fields a test is
about as arguments, the ones it is not about as defaults (so a literal does not repeat them)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from operators.events import Instrument, OptionAnalytics, Tick
from operators.trading.orders import OrderFilled, SubmitOrder


def option(token: str = "43650", symbol: str = "X", **fields: Any) -> Instrument:
    """A NIFTY 26000 CE (lot 65, tick 5 paise) unless ``fields`` say otherwise."""
    defaults: dict[str, Any] = dict(underlying="NIFTY", kind="CE", strike=2_600_000, lot_size=65)
    return Instrument(token=token, symbol=symbol, **(defaults | fields))


def tick(ts: datetime, token: str, ltp: int, bid: int, ask: int, **fields: Any) -> Tick:
    """An NFO tick received when it happened (``ts_recv == ts_event``)."""
    return Tick(
        ts_event=ts, ts_recv=ts, token=token, exchange="NFO", ltp=ltp, bid=bid, ask=ask, **fields
    )


def buy(
    ts: datetime, order_id: str, account: str, token: str, qty: int, **fields: Any
) -> SubmitOrder:
    """A BUY order: MARKET, of strategy ``s``, unless ``fields`` say otherwise."""
    fields = {"strategy": "s", "side": "BUY", "order_type": "MARKET"} | fields
    return SubmitOrder(
        ts_event=ts, ts_recv=ts, order_id=order_id, account=account, token=token, qty=qty, **fields
    )


def analytics(
    ts: datetime, token: str, iv_percentile: float | None, iv: float | None = 0.18, **fields: Any
) -> OptionAnalytics:
    """A NIFTY 23500 option's analytics (price 120, spot 23,500, 0.015 years to expiry) with
    ``iv`` and ``iv_percentile``, unless ``fields`` say otherwise."""
    spot: dict[str, Any] = {"underlying": "NIFTY", "underlying_price": 23_500.0}
    spot["forward"] = 23_510.0
    fields = spot | {"price": 120.0, "strike": 23_500.0, "t_years": 0.015} | fields
    return OptionAnalytics(
        ts_event=ts, ts_recv=ts, token=token, iv=iv, iv_percentile=iv_percentile, **fields
    )


def filled(
    ts: datetime,
    order_id: str,
    strategy: str,
    token: str,
    side: str,
    qty: int,
    price: int,
    **fields: Any,
) -> OrderFilled:
    """A whole-order fill of account A1 at ``price`` (taker, received when it happened)."""
    defaults: dict[str, Any] = dict(
        account="A1", fill_id=f"{order_id}#1", cum_qty=qty, leaves_qty=0, liquidity="TAKER"
    )
    return OrderFilled(
        ts_event=ts,
        ts_recv=ts,
        order_id=order_id,
        strategy=strategy,
        token=token,
        side=side,  # type: ignore[arg-type]
        fill_qty=qty,
        fill_price=price,
        cum_value=qty * price,
        **(defaults | fields),
    )

"""Builders for the events and instruments tests feed the operators: the fields a test is
about as arguments, the ones it is not about as defaults (so a literal does not repeat them)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from operators.events import Instrument, Tick
from operators.orders import SubmitOrder


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

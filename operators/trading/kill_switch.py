"""Kill-switch triggers and the journaled sequence that flattens an account.

Three triggers, all in event time: session drawdown ≥ N% of peak equity, feed stalled (an
incoming ``FEED_STALLED`` RiskEvent, or no tick for more than N seconds of event time during
the session), bid–ask spread wider than N% of LTP on an instrument with an open position or
order. The response is the fixed sequence KILL_SWITCH → CANCEL_ALL → SQUARE_OFF (one per
position) → HALT as ``RiskEvent``s, plus a ``FlattenAccount`` command that the flow maps to
cancel-all and square-off market orders. After it the risk engine approves nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

import msgspec

from operators.events import Event, RiskEvent, Side, Tick
from operators.market.sessions import ist_date, session_close


class SquareOffLeg(msgspec.Struct, frozen=True, kw_only=True):
    """One market order that closes one (strategy, instrument) position."""

    strategy: str
    instrument: str
    side: Side
    qty: int


class FlattenAccount(Event, frozen=True, kw_only=True):
    """Command: cancel ``cancel_order_ids`` and send the ``legs`` as market orders."""

    account: str
    reason: str
    cancel_order_ids: tuple[str, ...]
    legs: tuple[SquareOffLeg, ...]


def drawdown_breach(peak_equity: int, equity: int, limit_pct: float) -> str | None:
    """Reason string when equity is ``limit_pct`` % or more below the session peak."""
    if peak_equity <= 0:
        return None
    dd_pct = (peak_equity - equity) * 100 / peak_equity
    if dd_pct >= limit_pct:
        return (
            f"SESSION_DRAWDOWN: limit_pct={limit_pct:.2f}, drawdown_pct={dd_pct:.2f}, "
            f"peak={peak_equity / 100:.2f}, equity={equity / 100:.2f}"
        )
    return None


def stall_breach(last_tick: datetime | None, now: datetime, limit_s: float) -> str | None:
    """Reason string when no tick arrived for more than ``limit_s`` seconds of session time.

    The gap is measured up to the session close of the last tick's day, so the overnight
    gap never counts, but a feed that dies at 15:29:50 still does.
    """
    if last_tick is None:
        return None
    close = session_close(ist_date(last_tick))
    if last_tick >= close:
        return None
    gap = (min(now, close) - last_tick).total_seconds()
    if gap > limit_s:
        return f"FEED_STALLED: gap_s={gap:.3f}, limit_s={limit_s:.3f}"
    return None


def spread_breach(tick: Tick, limit_pct: float) -> str | None:
    """Reason string when the quoted spread exceeds ``limit_pct`` % of LTP (mid if no LTP)."""
    if not tick.has_book:
        return None
    ref = tick.ltp if tick.ltp > 0 else tick.mid
    if ref <= 0:
        return None
    spread = tick.ask - tick.bid
    spread_pct = spread * 100 / ref
    if spread_pct > limit_pct:
        return (
            f"SPREAD_BLOWOUT: instrument={tick.token}, spread_pct={spread_pct:.2f}, "
            f"limit_pct={limit_pct:.2f}, bid={tick.bid / 100:.2f}, ask={tick.ask / 100:.2f}"
        )
    return None


def kill_sequence(
    account: str,
    ts: datetime,
    reason: str,
    open_order_ids: Sequence[str],
    positions: Iterable[tuple[str, str, int]],
) -> list[RiskEvent | FlattenAccount]:
    """KILL_SWITCH, CANCEL_ALL, SQUARE_OFF per position, HALT, then the FlattenAccount command.

    ``positions`` are (strategy, instrument, signed qty) with qty ≠ 0, in a stable order.
    """
    legs = tuple(
        SquareOffLeg(
            strategy=strategy,
            instrument=instrument,
            side="SELL" if qty > 0 else "BUY",
            qty=abs(qty),
        )
        for strategy, instrument, qty in positions
        if qty != 0
    )
    out: list[RiskEvent | FlattenAccount] = [
        RiskEvent(ts_event=ts, ts_recv=ts, account=account, kind="KILL_SWITCH", detail=reason),
        RiskEvent(
            ts_event=ts,
            ts_recv=ts,
            account=account,
            kind="CANCEL_ALL",
            detail=f"orders={','.join(open_order_ids)}",
        ),
    ]
    out.extend(
        RiskEvent(
            ts_event=ts,
            ts_recv=ts,
            account=account,
            kind="SQUARE_OFF",
            strategy=leg.strategy,
            instrument=leg.instrument,
            detail=f"side={leg.side}, qty={leg.qty}, type=MARKET",
        )
        for leg in legs
    )
    out.append(
        RiskEvent(
            ts_event=ts,
            ts_recv=ts,
            account=account,
            kind="HALT",
            detail="KILL_SWITCH: trading halted until manual reset",
        )
    )
    out.append(
        FlattenAccount(
            ts_event=ts,
            ts_recv=ts,
            account=account,
            reason=reason,
            cancel_order_ids=tuple(open_order_ids),
            legs=legs,
        )
    )
    return out
